"""The request group a portal accepts: one target on one instrument, in the portal's own terms.

What LCO's observation portal checks, and so what this builder guarantees
(see ``observatories.simnet`` for the same rules on the serving side):

- ``name`` (1-50 characters) is always present: the idempotency key on submit,
  a placeholder for validation;
- ``proposal`` is the team's proposal on that facility (see
  ``observatories.scheduling.hooks.proposal_for``), never a made-up one;
- ``instrument_type`` is the portal's type (``1M0-SCICAM-SINISTRO``), shared by
  every telescope of the class, and ``mode`` one of its readout modes;
- optical elements are keyed by the instrument's element group (``filter``
  for imagers, ``slit`` for spectrographs, plus any fixed elements such as a
  grating), acquisition and guiding follow the instrument (``WCS`` acquisition
  for a slit);
- the target's name is at most 50 characters (a longer name is cut, the full
  name kept in the target's ``extra_params``);
- every window lies inside one semester (a window that crosses a semester
  boundary is cut at it; one with nothing left raises ``ValueError``);
- the location is the telescope class at the site: the portal's scheduler
  places the group on any telescope of that class there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from observatories.models import Instrument

__all__ = ["MAX_NAME", "Exposure", "request_group_payload", "semester_bounds", "semester_code"]

# The portal's limit on request-group and target names.
MAX_NAME = 50
VALIDATION_NAME = "baton-validate"


@dataclass(frozen=True)
class Exposure:
    """One optical element's exposures in a request: ``count`` exposures of ``exposure_time_s`` seconds.

    ``filter`` is the element's code in the instrument's element group (a filter for an imager, a slit for a
    spectrograph).
    """

    filter: str
    exposure_time_s: float
    count: int = 1


def semester_bounds(moment: datetime) -> tuple[datetime, datetime]:
    """The LCO semester holding ``moment``: A is 1 Feb - 1 Aug, B is 1 Aug - 1 Feb (UTC)."""
    moment = moment.astimezone(UTC)
    year = moment.year
    if moment.month == 1:
        return datetime(year - 1, 8, 1, tzinfo=UTC), datetime(year, 2, 1, tzinfo=UTC)
    if moment.month < 8:
        return datetime(year, 2, 1, tzinfo=UTC), datetime(year, 8, 1, tzinfo=UTC)
    return datetime(year, 8, 1, tzinfo=UTC), datetime(year + 1, 2, 1, tzinfo=UTC)


def semester_code(moment: datetime) -> str:
    """The semester's name as LCO and Baton's allocations write it, e.g. ``2026B``."""
    start, _ = semester_bounds(moment)
    return f"{start.year}{'A' if start.month == 2 else 'B'}"


def request_group_payload(
    *,
    target_name: str,
    ra_deg: float,
    dec_deg: float,
    instrument: Instrument,
    exposures: Sequence[Exposure],
    window_start: datetime,
    window_end: datetime,
    proposal: str,
    max_airmass: float = 2.0,
    min_lunar_distance_deg: float = 30.0,
    ipp_value: float = 1.0,
    observation_type: str = "NORMAL",
    target_mag: float | None = None,
    name: str = VALIDATION_NAME,
    min_duration_s: float = 0.0,
) -> dict[str, Any]:
    """Build a portal request group for one target on one instrument (see the module docstring).

    ``name`` is replaced by `PortalClient.submit` with the idempotency key.
    ``target_mag`` (V-ish magnitude) goes into the target's ``extra_params`` as
    ``v_magnitude``, as LCO's own target form does. ``min_duration_s``: a
    window cut at a semester boundary must keep at least this long.

    Raises ``ValueError`` for an empty exposure list, an element the
    instrument does not have, a non-positive exposure, an airmass limit below
    1, a lunar distance outside [0, 180], coordinates out of range, naive
    datetimes, ``window_end <= window_start``, a blank proposal, or a window
    with too little left inside its semester.
    """
    if not exposures:
        raise ValueError("at least one exposure is needed")
    if not proposal:
        raise ValueError(f"no proposal on {instrument.facility.code} for this team")
    if not (0.0 <= ra_deg < 360.0 and -90.0 <= dec_deg <= 90.0):
        raise ValueError(f"coordinates out of range: ra={ra_deg}, dec={dec_deg}")
    if window_start.tzinfo is None or window_end.tzinfo is None:
        raise ValueError("window times must be timezone-aware (UTC)")
    if window_end <= window_start:
        raise ValueError("window_end must be after window_start")
    if max_airmass < 1.0:
        raise ValueError("max_airmass must be at least 1")
    if not (0.0 <= min_lunar_distance_deg <= 180.0):
        raise ValueError("min_lunar_distance_deg must be in [0, 180]")
    _, semester_end = semester_bounds(window_start)
    if window_end > semester_end:
        if (semester_end - window_start).total_seconds() < max(min_duration_s, 1.0):
            raise ValueError(
                f"the window starts too close to the end of semester {semester_code(window_start)} "
                f"({semester_end:%Y-%m-%d}); the portal takes no window across semesters"
            )
        window_end = semester_end
    group = instrument.optical_element_group or "filter"
    instrument_configs = []
    for exposure in exposures:
        if instrument.filters and exposure.filter not in instrument.filters:
            raise ValueError(
                f"{instrument.code} has no {group} {exposure.filter!r} (it has {', '.join(instrument.filters)})"
            )
        if exposure.exposure_time_s <= 0 or exposure.count < 1:
            raise ValueError("exposure times must be positive and counts at least 1")
        config: dict[str, Any] = {
            "exposure_time": float(exposure.exposure_time_s),
            "exposure_count": int(exposure.count),
            "optical_elements": {**(instrument.fixed_optical_elements or {}), group: exposure.filter},
            "extra_params": {},
        }
        if instrument.default_readout_mode:
            config["mode"] = instrument.default_readout_mode
        instrument_configs.append(config)
    target: dict[str, Any] = {
        "name": target_name[:MAX_NAME],
        "type": "ICRS",
        "ra": float(ra_deg),
        "dec": float(dec_deg),
        "epoch": 2000.0,
        "extra_params": {},
    }
    if len(target_name) > MAX_NAME:
        target["extra_params"]["full_name"] = target_name
    if target_mag is not None:
        target["extra_params"]["v_magnitude"] = float(target_mag)
    facility = instrument.facility
    return {
        "name": name[:MAX_NAME],
        "proposal": proposal,
        "ipp_value": float(ipp_value),
        "operator": "SINGLE",
        "observation_type": observation_type,
        "requests": [
            {
                "acceptability_threshold": 90,
                "configurations": [
                    {
                        "type": "SPECTRUM" if instrument.kind == "spectra" else "EXPOSE",
                        "instrument_type": instrument.portal_instrument_type,
                        "target": target,
                        "constraints": {
                            "max_airmass": float(max_airmass),
                            "min_lunar_distance": float(min_lunar_distance_deg),
                        },
                        "acquisition_config": {"mode": instrument.acquisition_mode or "OFF", "extra_params": {}},
                        "guiding_config": {
                            "mode": instrument.guiding_mode or "ON",
                            "optional": bool(instrument.guiding_optional),
                            "extra_params": {},
                        },
                        "instrument_configs": instrument_configs,
                    }
                ],
                "windows": [{"start": _iso(window_start), "end": _iso(window_end)}],
                "location": {"telescope_class": facility.telescope_class, "site": facility.site.code},
            }
        ],
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
