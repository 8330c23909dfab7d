"""The preferences form: what a person may choose within their teams' rules."""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from django import forms

from .events import catalogue
from .models import Digest


class PreferenceForm(forms.Form):
    timezone = forms.ChoiceField(required=False, help_text="Quiet hours and daily digests follow your time zone.")
    quiet_start = forms.TimeField(required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
                                  help_text="Non-urgent messages wait until quiet hours end; urgent ones still come.")
    quiet_end = forms.TimeField(required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    digest = forms.ChoiceField(choices=Digest.choices, help_text="Fold non-urgent email and Slack messages into a digest.")
    digest_hour = forms.IntegerField(required=False, min_value=0, max_value=23, label="Daily digest hour",
                                     help_text="Local hour the daily digest arrives (empty: the site default).")
    email_enabled = forms.BooleanField(required=False, label="Email", widget=forms.CheckboxInput(attrs={"class": "form-check-input"}))
    slack_enabled = forms.BooleanField(required=False, label="Slack", widget=forms.CheckboxInput(attrs={"class": "form-check-input"}))
    muted_events = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
                                             help_text="Muted events reach your inbox only.")
    slack_webhook_url = forms.URLField(required=False, max_length=500, assume_scheme="https", label="Your Slack webhook URL")
    slack_member_id = forms.RegexField(r"^[UW][A-Z0-9]{2,30}$", required=False, max_length=32, label="Your Slack member id",
                                       help_text="With it, the Baton bot messages you directly.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        zones = sorted(available_timezones())
        self.fields["timezone"].choices = [("", "Site default")] + [(z, z) for z in zones]  # type: ignore[attr-defined]
        self.fields["muted_events"].choices = [(name, f"{name}: {meaning}") for name, meaning in sorted(catalogue().items())]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if (data.get("quiet_start") is None) != (data.get("quiet_end") is None):
            self.add_error("quiet_end", "Quiet hours need both a start and an end.")
        return data
