"""Forms of the policy pages: the policy editor (a document built from fields), members, claims."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.forms import formset_factory

from .documents import (
    DIGESTS,
    EVENTS,
    OVERRUN_ACTIONS,
    QUIET_ACTIONS,
    UNALLOCATED_ACTIONS,
    PolicyDocument,
    notification_channels,
)
from .models import Audience, DataKind, Role, Team


class SharingForm(forms.Form):
    """The sharing rule of one data kind (the form's prefix is the kind)."""

    partners = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                         help_text="teams that see this at once")
    proprietary_days = forms.FloatField(min_value=0, max_value=36500, initial=0)
    release_to = forms.ChoiceField(choices=Audience.choices, initial=Audience.NONE)
    destinations = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                             help_text="pushed there once released (the team's sharing destinations)")

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        from django.apps import apps

        kind = kwargs.get("prefix", "").removeprefix("sharing-")
        super().__init__(*args, **kwargs)
        partners = self.fields["partners"]
        assert isinstance(partners, forms.MultipleChoiceField)  # noqa: S101 - declared above
        partners.choices = [(t.slug, t.name) for t in Team.objects.exclude(pk=team.pk).select_related("group")]
        destinations = self.fields["destinations"]
        assert isinstance(destinations, forms.MultipleChoiceField)  # noqa: S101 - declared above
        if kind == DataKind.REQUESTS or not apps.is_installed("sharing"):
            del self.fields["destinations"]  # requests are never pushed anywhere
        else:
            destinations.choices = [(name, name) for name in apps.get_model("sharing", "Destination").objects
                                    .filter(team_id=team.group_id).order_by("name").values_list("name", flat=True)]


class PublicationForm(forms.Form):
    guidelines = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 5}), max_length=20000)
    claims_need_agreement = forms.BooleanField(required=False, initial=True,
                                               label="Claims by other teams on our targets need our agreement")


class TimeForm(forms.Form):
    overrun_action = forms.ChoiceField(choices=[(a, a) for a in OVERRUN_ACTIONS], label="A request that would overrun an allocation is")
    unallocated_action = forms.ChoiceField(choices=[(a, a) for a in UNALLOCATED_ACTIONS],
                                           label="A request on a class without an allocation is")


class AllocationForm(forms.Form):
    facility_class = forms.CharField(max_length=32)
    facility_code = forms.CharField(max_length=64, required=False, help_text="empty: any facility of the class")
    semester = forms.RegexField(r"^\d{4}[AB]$", max_length=5, help_text="e.g. 2026A")
    hours = forms.FloatField(min_value=0, max_value=100000)
    proposal = forms.RegexField(
        r"^[A-Za-z0-9._-]*$", max_length=64, required=False,
        help_text="the team's proposal id at the facility's portal; empty: the facility's default proposal",
    )


class NotificationRuleForm(forms.Form):
    # The blank first choice leaves a browser's empty extra form unchanged (a select always submits a value).
    event = forms.ChoiceField(choices=[("", "— choose an event —"), *sorted((e, f"{e}: {d}") for e, d in EVENTS.items())])
    roles = forms.MultipleChoiceField(choices=Role.choices, required=False, widget=forms.CheckboxSelectMultiple)
    channels = forms.MultipleChoiceField(choices=(), widget=forms.CheckboxSelectMultiple)
    conditions = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                                 help_text='JSON list, e.g. [{"field": "magnitude", "op": "lt", "value": 18}]')
    quiet_start = forms.TimeField(required=False, label="Quiet from")
    quiet_end = forms.TimeField(required=False, label="Quiet until")
    quiet_timezone = forms.CharField(required=False, max_length=64, initial="UTC", label="Time zone")
    quiet_action = forms.ChoiceField(choices=[(a, a) for a in QUIET_ACTIONS], initial="hold")
    digest = forms.ChoiceField(choices=[(d, d) for d in DIGESTS], initial="immediate")
    urgent_bypasses_quiet = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        channels = self.fields["channels"]
        assert isinstance(channels, forms.MultipleChoiceField)  # noqa: S101 - declared above
        channels.choices = [(c, c) for c in sorted(notification_channels())]

    def clean_conditions(self) -> list[Any]:
        raw = self.cleaned_data.get("conditions") or "[]"
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"not JSON: {exc}") from exc
        if not isinstance(value, list):
            raise forms.ValidationError("a JSON list of conditions")
        return value

    def to_json(self) -> dict[str, Any]:
        data = self.cleaned_data
        quiet = None
        if data.get("quiet_start") and data.get("quiet_end"):
            quiet = {"start": data["quiet_start"].strftime("%H:%M"), "end": data["quiet_end"].strftime("%H:%M"),
                     "timezone": data.get("quiet_timezone") or "UTC"}
        return {"event": data["event"], "roles": data["roles"], "users": [], "channels": data["channels"],
                "conditions": data["conditions"], "quiet_hours": quiet, "quiet_action": data["quiet_action"],
                "digest": data["digest"], "urgent_bypasses_quiet": data["urgent_bypasses_quiet"]}


AllocationFormSet = formset_factory(AllocationForm, extra=2, can_delete=True)
NotificationRuleFormSet = formset_factory(NotificationRuleForm, extra=1, can_delete=True)


class PolicyEditor:
    """The policy editor: one form per part, built from a document and turned back into one."""

    def __init__(self, *, team: Team, document: PolicyDocument, data: Any = None) -> None:
        self.team = team
        self.sharing = {
            kind: SharingForm(data, team=team, prefix=f"sharing-{kind}", initial=document.rule(kind).to_json())
            for kind in DataKind.values
        }
        self.publication = PublicationForm(data, prefix="publication", initial=document.publication.to_json())
        self.time = TimeForm(data, prefix="time", initial=document.time.to_json())
        self.allocations = AllocationFormSet(data, prefix="allocations", initial=[a.to_json() for a in document.time.allocations])
        self.rules = NotificationRuleFormSet(data, prefix="rules", initial=[
            {**r.to_json(), "conditions": json.dumps([c.to_json() for c in r.conditions]),
             "quiet_start": r.quiet_hours.start if r.quiet_hours else None,
             "quiet_end": r.quiet_hours.end if r.quiet_hours else None,
             "quiet_timezone": r.quiet_hours.timezone if r.quiet_hours else "UTC"}
            for r in document.notifications
        ])
        self.errors: list[str] = []

    def sharing_forms(self) -> list[tuple[str, str, SharingForm]]:
        return [(kind, DataKind(kind).label, form) for kind, form in self.sharing.items()]

    def is_valid(self) -> bool:
        forms_valid = [form.is_valid() for form in (*self.sharing.values(), self.publication, self.time)]
        return all(forms_valid) and self.allocations.is_valid() and self.rules.is_valid()

    def document(self) -> dict[str, Any]:
        """The document the forms describe (after :meth:`is_valid`); the service validates it again."""
        return {
            "schema": 1,
            "sharing": {kind: {**form.cleaned_data, "partners": form.cleaned_data["partners"]} for kind, form in self.sharing.items()},
            "publication": self.publication.cleaned_data,
            "time": {**self.time.cleaned_data, "allocations": [
                {**f.cleaned_data, "facility_code": f.cleaned_data.get("facility_code") or "",
                 "proposal": f.cleaned_data.get("proposal") or ""}
                for f in self.allocations.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")
            ]},
            "notifications": [f.to_json() for f in self.rules.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")],
        }


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class ClaimForm(forms.Form):
    team = forms.ChoiceField(choices=())
    title = forms.CharField(max_length=200)
    scope = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    target = forms.IntegerField(required=False, min_value=1, help_text="target id (or leave empty and name a topic)")
    object_class = forms.CharField(required=False, max_length=64, help_text="e.g. microlensing")
    ra = forms.FloatField(required=False, min_value=0, max_value=359.999999, help_text="cone centre, deg")
    dec = forms.FloatField(required=False, min_value=-90, max_value=90, help_text="cone centre, deg")
    radius_deg = forms.FloatField(required=False, min_value=0.000001, max_value=180, help_text="cone radius, deg")
    exclusive_until = forms.DateTimeField(help_text="UTC, e.g. 2026-06-30 00:00")
    expires_at = forms.DateTimeField(help_text="UTC")

    def __init__(self, *args: Any, teams: list[Team], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        team = self.fields["team"]
        assert isinstance(team, forms.ChoiceField)  # noqa: S101 - declared above
        team.choices = [(t.slug, t.name) for t in teams]
