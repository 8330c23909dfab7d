"""Copies at facilities that are not portals: driven through their TOM facility module, whatever it is.

Any class implementing TOM Toolkit's ``BaseRoboticObservationFacility`` can hold a
copy: TOM's own Gemini, SOAR, Blanco modules, or installed third-party ones
(tom-eso, tom-lt, tom-swift). Baton uses only what that contract offers:

- submit: the module's own observation form, filled from the facility's
  ``tom_parameters`` (the fixed fields, e.g. Gemini's program and template
  observation) with the copy's values put into ``{placeholders}``
  (`PLACEHOLDERS`), validated by the form, then ``submit_observation``;
- status: ``get_observation_status`` against ``get_terminal_observing_states``
  and ``get_failed_observing_states`` (terminal and not failed: observed);
- cancel: ``cancel_observation``, where the module implements it;
- data: ``save_data_products``.

Such a module has no idempotency key, so a copy is submitted to it at most once:
when an attempt's outcome is unknown (a worker died mid-call), the copy is not
sent again (it fails, and the request is re-planned elsewhere) rather than risk
a second trigger at the telescope.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from observatories.portal.client import RemoteRequest, RequestState
from observatories.portal.facility import adapter_class

if TYPE_CHECKING:
    from observatories.models import Facility

logger = logging.getLogger(__name__)

__all__ = ["PLACEHOLDERS", "TomFacilityCopy", "TomFacilityRefused"]

# What a facility's ``tom_parameters`` may ask Baton to fill in.
PLACEHOLDERS = (
    "target_name", "ra_deg", "dec_deg", "window_start", "window_end", "window_date", "window_time", "window_hours",
    "exposure_s", "exposure_count", "filter", "max_airmass", "mag",
)


class TomFacilityRefused(Exception):
    """The module's form or the facility refused the copy; ``messages`` say why (permanent)."""

    def __init__(self, message: str, *, messages: list[str] | None = None) -> None:
        super().__init__(message)
        self.messages = messages or [message]


@dataclass(frozen=True)
class CopyValues:
    """What a copy asks for, in the terms `PLACEHOLDERS` name."""

    target_name: str
    ra_deg: float
    dec_deg: float
    window_start: datetime
    window_end: datetime
    exposure_s: float
    exposure_count: int
    filter: str
    max_airmass: float
    mag: float | None = None

    def as_strings(self) -> dict[str, str]:
        hours = max(1, round((self.window_end - self.window_start).total_seconds() / 3600.0))
        return {
            "target_name": self.target_name, "ra_deg": f"{self.ra_deg:.6f}", "dec_deg": f"{self.dec_deg:.6f}",
            "window_start": self.window_start.strftime("%Y-%m-%d %H:%M:%S"),
            "window_end": self.window_end.strftime("%Y-%m-%d %H:%M:%S"),
            "window_date": self.window_start.strftime("%Y-%m-%d"), "window_time": self.window_start.strftime("%H:%M"),
            "window_hours": str(hours), "exposure_s": str(round(self.exposure_s)),
            "exposure_count": str(self.exposure_count), "filter": self.filter, "max_airmass": f"{self.max_airmass:g}",
            "mag": "" if self.mag is None else f"{self.mag:.2f}",
        }


def _fill(template: Any, values: dict[str, str]) -> Any:
    """The template with every ``{placeholder}`` in its strings replaced (lists and dicts walked)."""
    if isinstance(template, str):
        out = template
        for key, value in values.items():
            out = out.replace("{" + key + "}", value)
        return out
    if isinstance(template, list):
        return [_fill(item, values) for item in template]
    if isinstance(template, dict):
        return {key: _fill(value, values) for key, value in template.items()}
    return template


class TomFacilityCopy:
    """One Baton facility driven through its TOM facility module (``Facility.adapter``)."""

    def __init__(self, facility: Facility) -> None:
        self.facility = facility
        self.cls = adapter_class(facility)
        self.module = self.cls()

    @property
    def tom_name(self) -> str:
        """The module's facility name, as TOM's ObservationRecord.facility records it."""
        return str(self.cls.name)

    def form_for(self, *, target: Any, values: CopyValues) -> Any:
        """The module's own observation form, filled and bound (not yet validated)."""
        observation_type = next(iter(getattr(self.cls, "observation_forms", {}) or {"": None}))
        form_class = self.module.get_form(observation_type)
        data = {
            "facility": self.tom_name, "target_id": target.pk, "observation_type": observation_type,
            **_fill(self.facility.tom_parameters or {}, values.as_strings()),
        }
        form = form_class(data=data, initial={"target_id": target.pk, "facility": self.tom_name})
        # Choice fields fixed when the module was imported (e.g. Gemini's programs from settings) also take the
        # values the facility's own parameters name: the facility row is the authority on its programme.
        for name, value in (self.facility.tom_parameters or {}).items():
            field = form.fields.get(name)
            choices = getattr(field, "choices", None)
            if choices is not None:
                wanted = value if isinstance(value, list) else [value]
                known = {str(c[0]) for c in choices}
                field.choices = [*choices, *((str(v), str(v)) for v in wanted if str(v) not in known)]
        return form

    def submit(self, *, target: Any, values: CopyValues) -> RemoteRequest:
        """Validate the copy with the module's form and submit it once; the facility's observation id."""
        form = self.form_for(target=target, values=values)
        if not form.is_valid():
            messages = [f"{field}: {'; '.join(str(e) for e in errors)}" for field, errors in form.errors.items()]
            raise TomFacilityRefused(f"{self.facility.code}: {'; '.join(messages)}", messages=messages)
        ids = self.module.submit_observation(form.observation_payload())
        if not ids:
            raise TomFacilityRefused(f"{self.facility.code}: the module returned no observation id")
        return RemoteRequest(remote_id=str(ids[0]), state=RequestState.PENDING, raw_state="SUBMITTED", name="")

    def status(self, *, remote_id: str) -> RemoteRequest:
        """The copy's state as the module reports it: failed, observed (terminal, not failed) or still pending."""
        status = self.module.get_observation_status(remote_id) or {}
        raw = str(status.get("state") or "")
        failed = set(self.module.get_failed_observing_states() or [])
        terminal = set(self.module.get_terminal_observing_states() or [])
        if raw and raw in failed:
            state = RequestState.CANCELED if raw in ("CANCELED", "CANCELLED") else RequestState.FAILED
            reason = f"{self.tom_name} reports {raw}"
        elif raw and raw in terminal:
            state, reason = RequestState.COMPLETED, ""
        else:
            state, reason = RequestState.PENDING, ""
        return RemoteRequest(
            remote_id=remote_id, state=state, raw_state=raw or "UNKNOWN", reason=reason,
            scheduled_start=status.get("scheduled_start"), scheduled_end=status.get("scheduled_end"),
        )

    def cancel(self, *, remote_id: str) -> bool:
        """Withdraw the copy where the module can; False when it cannot (the facility must be told by hand)."""
        try:
            return bool(self.module.cancel_observation(remote_id))
        except NotImplementedError:
            logger.warning("%s: %s cannot cancel %s through its TOM module", self.facility.code, self.tom_name, remote_id)
            return False

    def save_data(self, *, observation_record: Any) -> list[Any]:
        """The module's data products of the copy (TOM's own ``save_data_products``)."""
        return list(self.module.save_data_products(observation_record) or [])
