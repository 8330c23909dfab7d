"""notify_event: recipients per rules and preferences, de-duplication, quiet hours, digests, the rate limit."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from notifications.models import DigestKind, Notification, Status
from notifications.services import (
    NotificationInvalid,
    held_release_due,
    notify_event,
    notify_events,
    outbox_due,
    preference_update,
)
from notifications.services.notify import EventSpec

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
FACILITY = {"facility": "lsc-1m0-a", "facility_name": "LSC 1m A", "old_state": "available", "new_state": "downtime",
            "reason": "dome fault", "request_ids": [1]}


def rows(**filters: Any) -> list[tuple[str, str, str]]:
    """(username, channel, status) of the matching individual notifications, sorted."""
    qs = Notification.objects.filter(digest_kind="", **filters).select_related("recipient")
    return sorted((n.recipient.username, n.channel, n.status) for n in qs)


def test_default_rule_every_member_by_email_and_inbox(people: Any) -> None:
    created = notify_event(event="facility.down", teams=[people.team], payload=FACILITY, now=NOW)

    assert len(created) == 4
    assert rows() == [("alice", "email", "pending"), ("alice", "inbox", "sent"),
                      ("bob", "email", "pending"), ("bob", "inbox", "sent")]
    email = Notification.objects.get(recipient=people.alice, channel="email")
    assert email.address == "alice@example.org" and email.personal and email.next_attempt_at == NOW
    assert email.payload == FACILITY and email.rule == "notifications default" and email.team == people.team
    inbox = Notification.objects.get(recipient=people.bob, channel="inbox")
    assert inbox.address == f"user:{people.bob.pk}" and inbox.sent_at == NOW


def test_delivery_is_enqueued_only_when_the_transaction_commits(people: Any, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        notify_event(event="facility.down", teams=[people.team], payload=FACILITY, now=NOW)
    assert len(callbacks) == 2  # the two emails; the inbox rows are delivered by being stored


def test_the_same_event_reaches_an_address_once_per_channel(people: Any) -> None:
    notify_event(event="facility.down", teams=[people.team], payload=FACILITY, now=NOW)
    again = notify_event(event="facility.down", teams=[people.team, people.team], payload=dict(FACILITY), now=NOW)
    assert again == []
    # The same person through two teams: still once.
    from django.contrib.auth.models import Group

    other = Group.objects.create(name="Second team")
    other.user_set.add(people.alice)
    twice = notify_event(event="facility.down", teams=[people.team, other], payload={**FACILITY, "reason": "flood"},
                         dedupe_key="flood-1", now=NOW)
    assert sorted((n.recipient.username, n.channel) for n in twice) == [
        ("alice", "email"), ("alice", "inbox"), ("bob", "email"), ("bob", "inbox")]
    assert notify_event(event="facility.down", teams=[other], payload={"anything": 1}, dedupe_key="flood-1", now=NOW) == []
    # The derived key is per UTC day: tomorrow the same payload is news again.
    assert len(notify_event(event="facility.down", teams=[people.team], payload=FACILITY, now=NOW + timedelta(days=1))) == 4


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"event": "request.exploded"}, "event: unknown event 'request.exploded'"),
    ({"payload": {"at": object()}}, "payload: object is not JSON-able"),
    ({"payload": ["not", "a", "mapping"]}, "payload: must be a mapping"),
    ({"payload": {"blob": "x" * 70_000}}, "payload: larger than 65536 bytes"),
    ({"dedupe_key": "k" * 201}, "dedupe_key: 1 to 200 characters"),
])
def test_bad_input_is_refused_and_writes_nothing(people: Any, kwargs: dict[str, Any], message: str) -> None:
    arguments = {"event": "facility.down", "teams": [people.team], "payload": FACILITY, "now": NOW, **kwargs}
    with pytest.raises(NotificationInvalid, match=message.replace("(", r"\(").replace(")", r"\)")):
        notify_event(**arguments)
    assert Notification.objects.count() == 0


def test_an_unsaved_group_is_refused(people: Any) -> None:
    from django.contrib.auth.models import Group

    with pytest.raises(NotificationInvalid, match="is not a saved auth.Group"):
        notify_event(event="facility.down", teams=[Group(name="ghost")], payload=FACILITY, now=NOW)


def test_preferences_narrow_channels_and_mute_events(people: Any) -> None:
    preference_update(user=people.alice, changes={"email_enabled": False})
    preference_update(user=people.bob, changes={"muted_events": ["facility.down"]})
    notify_event(event="facility.down", teams=[people.team], payload=FACILITY, now=NOW)
    # A muted event still lands in the inbox: muting silences, it does not hide.
    assert rows() == [("alice", "inbox", "sent"), ("bob", "inbox", "sent")]


def test_a_person_without_an_email_address_gets_a_visible_failure(people: Any) -> None:
    people.bob.email = ""
    people.bob.save()
    notify_event(event="facility.down", teams=[people.team], payload=FACILITY, now=NOW)
    failed = Notification.objects.get(recipient=people.bob, channel="email")
    assert (failed.status, failed.last_error, failed.address) == ("failed", "bob has no email address", f"user:{people.bob.pk}")


def test_an_inactive_member_is_not_notified(people: Any) -> None:
    people.bob.is_active = False
    people.bob.save()
    notify_event(event="facility.down", teams=[people.team], payload=FACILITY, now=NOW)
    assert {n.recipient.username for n in Notification.objects.all()} == {"alice"}


def test_personal_recipients_get_the_default_channels(people: Any) -> None:
    notify_event(event="facility.up", teams=[], users=[people.outsider], payload={"facility": "x"}, now=NOW)
    assert rows() == [("olga", "email", "pending"), ("olga", "inbox", "sent")]
    assert Notification.objects.get(channel="email").rule == "personal"


# --- quiet hours ---------------------------------------------------------------------------------


BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = datetime(2026, 3, 10, 23, 30, tzinfo=BERLIN)  # 22:30 UTC
MORNING = datetime(2026, 3, 11, 7, 0, tzinfo=BERLIN)


def test_quiet_hours_hold_non_urgent_messages_in_the_recipients_time_zone(people: Any) -> None:
    preference_update(user=people.alice, changes={"timezone": "Europe/Berlin", "quiet_start": time(22), "quiet_end": time(7)})
    notify_event(event="facility.down", teams=[people.team], payload=FACILITY, now=NIGHT)

    held = Notification.objects.get(recipient=people.alice, channel="email")
    assert (held.status, held.not_before) == ("held", MORNING)
    assert Notification.objects.get(recipient=people.alice, channel="inbox").status == "sent"  # the inbox is silent
    assert Notification.objects.get(recipient=people.bob, channel="email").status == "pending"  # bob keeps no quiet hours

    assert held_release_due(now=MORNING - timedelta(seconds=1)) == 0
    assert outbox_due(now=MORNING)["released"] == 1
    held.refresh_from_db()
    assert (held.status, held.next_attempt_at) == ("pending", MORNING)


def test_urgent_events_come_through_quiet_hours(people: Any) -> None:
    preference_update(user=people.alice, changes={"timezone": "Europe/Berlin", "quiet_start": time(22), "quiet_end": time(7)})
    notify_event(event="facility.down", teams=[people.team], payload=FACILITY, urgent=True, now=NIGHT)
    urgent = Notification.objects.get(recipient=people.alice, channel="email")
    assert (urgent.status, urgent.urgent) == ("pending", True)


def test_events_listed_as_urgent_are_urgent_without_being_told(people: Any) -> None:
    assert Notification.objects.count() == 0
    preference_update(user=people.alice, changes={"timezone": "Europe/Berlin", "quiet_start": time(22), "quiet_end": time(7),
                                                  "digest": "daily"})
    notify_event(event="request.expired", teams=[], users=[people.alice], payload={"request_id": 7}, now=NIGHT)
    row = Notification.objects.get(channel="email")
    assert (row.status, row.urgent) == ("pending", True)  # neither held nor digested


def test_quiet_hours_span_daylight_saving_changes(people: Any) -> None:
    # Berlin springs forward on 2026-03-29: quiet hours that began on the 28th end at 07:00 CEST (05:00 UTC).
    preference_update(user=people.alice, changes={"timezone": "Europe/Berlin", "quiet_start": time(22), "quiet_end": time(7)})
    notify_event(event="facility.down", teams=[], users=[people.alice], payload=FACILITY,
                 now=datetime(2026, 3, 28, 23, 0, tzinfo=BERLIN))
    held = Notification.objects.get(channel="email")
    assert held.not_before == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)


def test_a_pile_of_held_messages_is_released_as_one_digest(people: Any, settings: Any) -> None:
    settings.BATON_NOTIFICATIONS = {**settings.BATON_NOTIFICATIONS, "RATE_LIMIT_MESSAGES": 3}
    preference_update(user=people.alice, changes={"timezone": "Europe/Berlin", "quiet_start": time(22), "quiet_end": time(7)})
    for i in range(5):
        notify_event(event="facility.down", teams=[], users=[people.alice], payload={**FACILITY, "reason": f"r{i}"},
                     now=NIGHT + timedelta(minutes=i))
    outbox_due(now=MORNING)
    digest = Notification.objects.get(digest_kind=DigestKind.QUIET)
    assert digest.status == "pending" and digest.items.count() == 5
    assert set(Notification.objects.filter(channel="email", digest_kind="").values_list("status", flat=True)) == {"digested"}


def test_digests_outwait_quiet_hours(people: Any) -> None:
    preference_update(user=people.alice, changes={"timezone": "Europe/Berlin", "quiet_start": time(22), "quiet_end": time(7),
                                                  "digest": "hourly"})
    notify_event(event="facility.down", teams=[], users=[people.alice], payload=FACILITY,
                 now=datetime(2026, 3, 10, 21, 30, tzinfo=BERLIN))
    digest = Notification.objects.get(digest_kind=DigestKind.HOURLY)
    assert digest.not_before == datetime(2026, 3, 10, 22, 0, tzinfo=BERLIN).astimezone(UTC)
    assert outbox_due(now=digest.not_before)["digests"] == 0  # due at 22:00, but quiet: it waits
    digest.refresh_from_db()
    assert (digest.status, digest.not_before) == ("open", MORNING)
    assert outbox_due(now=MORNING)["digests"] == 1


# --- digests -----------------------------------------------------------------------------------------


def test_hourly_and_daily_digests_collect_until_due(people: Any) -> None:
    preference_update(user=people.alice, changes={"digest": "hourly"})
    preference_update(user=people.bob, changes={"digest": "daily", "digest_hour": 9, "timezone": "America/Santiago"})
    for minute in (1, 2, 3):
        notify_event(event="facility.down", teams=[people.team], payload={**FACILITY, "reason": str(minute)},
                     now=NOW + timedelta(minutes=minute))
    hourly = Notification.objects.get(digest_kind=DigestKind.HOURLY)
    daily = Notification.objects.get(digest_kind=DigestKind.DAILY)
    assert (hourly.recipient, hourly.status, hourly.items.count()) == (people.alice, "open", 3)
    assert hourly.not_before == datetime(2026, 3, 10, 13, 0, tzinfo=UTC)
    # 09:00 in Santiago (UTC-3 in March) is 12:00 UTC; it is past that, so tomorrow's.
    assert daily.not_before == datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
    assert daily.items.count() == 3 and rows(channel="email") == [("alice", "email", "digested"), ("alice", "email", "digested"),
                                                                  ("alice", "email", "digested"), ("bob", "email", "digested"),
                                                                  ("bob", "email", "digested"), ("bob", "email", "digested")]
    assert outbox_due(now=hourly.not_before)["digests"] == 1
    hourly.refresh_from_db()
    assert hourly.status == "pending"
    # A new event after the flush opens the next digest.
    notify_event(event="facility.up", teams=[], users=[people.alice], payload={"facility": "x"}, now=hourly.not_before)
    assert Notification.objects.filter(digest_kind=DigestKind.HOURLY, status="open").count() == 1


# --- the rate limit --------------------------------------------------------------------------------


def candidate(i: int) -> EventSpec:
    return EventSpec(event="facility.down", payload={**FACILITY, "reason": f"burst {i}"}, dedupe_key=f"burst-{i}")


def test_a_burst_folds_into_one_digest_per_recipient(people: Any, settings: Any) -> None:
    settings.BATON_NOTIFICATIONS = {**settings.BATON_NOTIFICATIONS, "RATE_LIMIT_MESSAGES": 3}
    notify_events(events=[EventSpec(**{**candidate(i).__dict__, "teams": (people.team,)}) for i in range(25)], now=NOW)

    for person in (people.alice, people.bob):
        digests = Notification.objects.filter(recipient=person, digest_kind=DigestKind.BURST)
        assert digests.count() == 1
        digest = digests.get()
        assert (digest.status, digest.not_before, digest.items.count()) == ("open", NOW + timedelta(seconds=300), 25)
        # Nothing of the burst goes out on its own, not even its first three.
        assert not Notification.objects.filter(recipient=person, channel="email", status="pending").exists()
    assert Notification.objects.filter(channel="inbox", status="sent").count() == 50  # the inbox lists them all


def test_a_burst_across_transactions_joins_the_open_digest_and_urgent_ones_pass(people: Any, settings: Any) -> None:
    settings.BATON_NOTIFICATIONS = {**settings.BATON_NOTIFICATIONS, "RATE_LIMIT_MESSAGES": 3}
    for i in range(2):  # two go out as they come (well within the limit)...
        notify_event(event="facility.down", teams=[], users=[people.alice], payload={"reason": f"a{i}"}, now=NOW)
    Notification.objects.filter(channel="email").update(status=Status.SENT)
    for i in range(4):  # ...then the burst: the third is still within the limit, the fourth opens the digest
        notify_event(event="facility.down", teams=[], users=[people.alice], payload={"reason": f"b{i}"},
                     now=NOW + timedelta(seconds=i))
    notify_event(event="facility.down", teams=[], users=[people.alice], payload={"reason": "urgent"}, urgent=True, now=NOW)
    digest = Notification.objects.get(digest_kind=DigestKind.BURST)
    assert digest.items.count() == 4  # b0 was still pending when the burst began: it goes with it
    assert sorted(Notification.objects.filter(channel="email", digest_kind="").values_list("payload__reason", "status")) == [
        ("a0", "sent"), ("a1", "sent"), ("b0", "digested"), ("b1", "digested"), ("b2", "digested"), ("b3", "digested"),
        ("urgent", "pending")]


def test_the_rate_limit_window_slides(people: Any, settings: Any) -> None:
    settings.BATON_NOTIFICATIONS = {**settings.BATON_NOTIFICATIONS, "RATE_LIMIT_MESSAGES": 2, "RATE_LIMIT_WINDOW_S": 600}
    for i in range(2):
        notify_event(event="facility.down", teams=[], users=[people.alice], payload={"reason": f"{i}"}, now=NOW)
    later = notify_event(event="facility.down", teams=[], users=[people.alice], payload={"reason": "later"},
                         now=NOW + timedelta(seconds=601))
    assert [n.status for n in later if n.channel == "email"] == ["pending"]
