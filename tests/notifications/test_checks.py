"""System checks: a wrong channel path fails fast (notifications.E001), bad knobs too (E002)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from notifications.checks import check_channels, check_policy_channels, check_settings


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


def test_the_configured_channels_and_settings_pass() -> None:
    assert check_channels() == [] and check_settings() == [] and check_policy_channels() == []


@pytest.mark.parametrize("path", ["notifications.channels.PigeonChannel", "nowhere.Channel", "notifications.models.Notification"])
def test_a_wrong_channel_path_fails_the_system_check(db: None, settings: Any, path: str) -> None:
    settings.BATON_NOTIFICATION_CHANNELS = {**settings.BATON_NOTIFICATION_CHANNELS, "pigeon": path}
    errors = check_channels()
    assert ids(errors) == ["notifications.E001"] and "'pigeon'" in errors[0].msg
    with pytest.raises(SystemCheckError, match="notifications.E001"):
        call_command("check")


@pytest.mark.parametrize(("knob", "value"), [
    ("RATE_LIMIT_MESSAGES", 0), ("DAILY_DIGEST_HOUR", 24), ("DEFAULT_TIMEZONE", "Mars/Olympus_Mons"),
    ("QUIET_HOURS_START", "25:00"), ("DEFAULT_CHANNELS", ["email", "pigeon"]), ("SENDING_STALE_S", 60),
])
def test_bad_knobs_fail_the_system_check(settings: Any, knob: str, value: Any) -> None:
    settings.BATON_NOTIFICATIONS = {**settings.BATON_NOTIFICATIONS, knob: value}
    assert "notifications.E002" in ids(check_settings())


def test_quiet_hours_need_both_ends(settings: Any) -> None:
    settings.BATON_NOTIFICATIONS = {**settings.BATON_NOTIFICATIONS, "QUIET_HOURS_START": "22:00", "QUIET_HOURS_END": ""}
    assert ids(check_settings()) == ["notifications.E002"]


def test_a_channel_policies_may_name_but_we_cannot_deliver_warns(settings: Any) -> None:
    settings.BATON_POLICIES = {**settings.BATON_POLICIES,
                               "NOTIFICATION_CHANNELS": {**settings.BATON_POLICIES["NOTIFICATION_CHANNELS"],
                                                         "sms": "policies.hooks.LogChannel"}}
    assert ids(check_policy_channels()) == ["notifications.W001"]
