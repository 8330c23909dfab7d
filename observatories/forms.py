"""The TOM observation form of the "Baton" facility: one target, one instrument, one filter, one window."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from crispy_forms.layout import Div, Layout
from django import forms
from tom_observations.facility import BaseRoboticObservationForm
from tom_targets.models import Target


def _parse_utc(value: str) -> datetime:
    """Parse an ISO date-time (a browser's datetime-local value is read as UTC)."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise forms.ValidationError(f"{value!r} is not an ISO date and time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class PortalObservationForm(BaseRoboticObservationForm):
    """Observe a target with one instrument of Baton's network.

    ``idempotency_key`` is drawn when the form is first shown, so submitting
    the same form twice (a double click, a reload) makes one request group.
    Start and end are ISO date-times in UTC (strings, as TOM stores the form's
    parameters as JSON).
    """

    instrument = forms.ChoiceField(help_text="facility and instrument")
    filter = forms.CharField(max_length=16, initial="rp")
    exposure_time = forms.FloatField(min_value=0.1, max_value=3600.0, initial=60.0, help_text="seconds")
    exposure_count = forms.IntegerField(min_value=1, max_value=100, initial=1)
    start = forms.CharField(help_text="UTC, ISO 8601")
    end = forms.CharField(help_text="UTC, ISO 8601")
    max_airmass = forms.FloatField(min_value=1.0, max_value=5.0, initial=2.0)
    min_lunar_distance = forms.FloatField(min_value=0.0, max_value=180.0, initial=30.0, help_text="degrees")
    ipp_value = forms.FloatField(min_value=0.5, max_value=2.0, initial=1.0, help_text="intra-proposal priority")
    proposal = forms.CharField(
        max_length=64, required=False, help_text="your proposal on that facility; blank: the facility's default proposal"
    )
    idempotency_key = forms.CharField(max_length=50, widget=forms.HiddenInput())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from observatories.models import Instrument

        instruments = (
            Instrument.objects.filter(facility__enabled=True, facility__adapter="observatories.adapters.PortalFacility")
            .select_related("facility__site")
            .order_by("facility__site__code", "code")
        )
        self.fields["instrument"].choices = [
            (i.code, f"{i.facility.site.code} / {i.facility.name} / {i.code} ({i.kind})") for i in instruments
        ]
        now = datetime.now(tz=UTC).replace(microsecond=0, second=0)
        self.fields["start"].initial = now.isoformat()
        self.fields["end"].initial = (now + timedelta(days=1)).isoformat()
        self.fields["idempotency_key"].initial = f"tom-{uuid.uuid4().hex}"

    def layout(self) -> Layout:
        return Layout(
            "instrument",
            Div(Div("filter", css_class="col"), Div("exposure_time", css_class="col"), Div("exposure_count", css_class="col"), css_class="row"),
            Div(Div("start", css_class="col"), Div("end", css_class="col"), css_class="row"),
            Div(
                Div("max_airmass", css_class="col"),
                Div("min_lunar_distance", css_class="col"),
                Div("ipp_value", css_class="col"),
                Div("proposal", css_class="col"),
                css_class="row",
            ),
            "idempotency_key",
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        from observatories.models import Instrument

        instrument = Instrument.objects.select_related("facility__site").filter(code=cleaned.get("instrument")).first()
        if instrument is None:
            return cleaned
        if instrument.filters and cleaned.get("filter") not in instrument.filters:
            self.add_error("filter", f"{instrument.code} has the filters {', '.join(instrument.filters)}")
        try:
            start = _parse_utc(cleaned.get("start", ""))
            end = _parse_utc(cleaned.get("end", ""))
        except forms.ValidationError as exc:
            raise forms.ValidationError(exc.messages) from exc
        if end <= start:
            self.add_error("end", "the window must end after it starts")
        return cleaned

    def is_valid(self) -> bool:
        """Valid here and at the portal (as TOM's OCS forms do): a target never visible in the window is an error."""
        if not super().is_valid():
            return False
        from observatories.portal.client import PortalError, PortalUnavailable
        from observatories.portal.facility import PortalFacility

        try:
            errors = PortalFacility().validate_observation(self.observation_payload())
        except PortalUnavailable as exc:
            errors = [f"the facility cannot be reached now, try again: {exc}"]
        except (PortalError, ValueError) as exc:
            errors = [str(exc)]
        for error in errors:
            self.add_error(None, error)
        return not errors

    def observation_payload(self) -> dict[str, Any]:
        """The facility code, the LCO-style request group and the idempotency key, for `PortalFacility`."""
        from observatories.models import Instrument
        from observatories.portal.payload import Exposure, request_group_payload

        data = self.cleaned_data
        target = Target.objects.get(pk=data["target_id"])
        instrument = Instrument.objects.select_related("facility__site").get(code=data["instrument"])
        payload = request_group_payload(
            target_name=target.name,
            ra_deg=target.ra,
            dec_deg=target.dec,
            instrument=instrument,
            exposures=[Exposure(filter=data["filter"], exposure_time_s=data["exposure_time"], count=data["exposure_count"])],
            window_start=_parse_utc(data["start"]),
            window_end=_parse_utc(data["end"]),
            max_airmass=data["max_airmass"],
            min_lunar_distance_deg=data["min_lunar_distance"],
            ipp_value=data["ipp_value"],
            proposal=data.get("proposal") or instrument.facility.default_proposal,
            name=data["idempotency_key"],
        )
        return {"facility": instrument.facility.code, "payload": payload, "idempotency_key": data["idempotency_key"]}
