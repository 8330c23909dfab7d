"""Changes to the facility network: loading the default network and recording facility status."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from observatories.models import Facility, FacilityStatus
from observatories.network import NetworkLoadResult, network_load
from observatories.portal.client import PortalError, PortalUnavailable, portal_client_for

logger = logging.getLogger(__name__)

__all__ = [
    "facility_instruments_refresh",
    "facility_status_prune",
    "facility_status_record",
    "facility_status_refresh",
    "network_load_default",
]


def network_load_default() -> NetworkLoadResult:
    """Load (or bring up to date) the default network from ``data/default_network.json``, atomically."""
    with transaction.atomic():
        return network_load()


def facility_instruments_refresh(*, facility: Facility) -> list[str]:
    """Bring the facility's instruments in line with its portal's ``api/instruments/`` (as TOM's OCS module reads
    it): each instrument whose type the portal lists gets that type's selectable optical elements (the group its
    ``optical_element_group`` names, else the type's first group), readout modes and default, acquisition and
    guiding defaults, and its kind. Returns the codes of the instruments changed. Raises PortalError /
    PortalUnavailable (nothing changed) when the portal refuses or cannot be reached, ImproperlyConfigured for a
    facility that is not a portal."""
    described = portal_client_for(facility).instruments()
    changed = []
    with transaction.atomic():
        for instrument in facility.instruments.select_for_update():
            spec = described.get(instrument.portal_instrument_type)
            if not isinstance(spec, dict):
                continue
            groups = spec.get("optical_elements") or {}
            group = f"{instrument.optical_element_group or 'filter'}s"
            if group not in groups and groups:
                group = next(iter(groups))
            modes = spec.get("modes") or {}
            readout = modes.get("readout") or {}
            values = {
                "kind": "spectra" if str(spec.get("type", "")).upper() == "SPECTRA" else "imaging",
                "optical_element_group": group[:-1] if group.endswith("s") else group,
                "filters": [e["code"] for e in groups.get(group, []) if e.get("schedulable", True) and e.get("code")]
                or instrument.filters,
                "readout_modes": [m["code"] for m in readout.get("modes", []) if m.get("code")],
                "default_readout_mode": str(readout.get("default") or ""),
                "acquisition_mode": str((modes.get("acquisition") or {}).get("default") or instrument.acquisition_mode),
                "guiding_mode": str((modes.get("guiding") or {}).get("default") or instrument.guiding_mode),
            }
            diff = [name for name, value in values.items() if getattr(instrument, name) != value]
            if diff:
                for name in diff:
                    setattr(instrument, name, values[name])
                instrument.save(update_fields=diff)
                changed.append(instrument.code)
    return changed


def facility_status_record(
    *, facility: Facility, state: str, reason: str, observed_at: datetime | None, now: datetime
) -> FacilityStatus:
    """Record that ``facility`` is in ``state`` as of ``now``; return the row that says so.

    If the latest row already has this state and reason, only its
    ``fetched_at`` moves to ``now`` (the feed keeps changes, not every poll);
    otherwise a new row is written with ``observed_at`` (default ``now``).
    Raises ValueError for a state outside available/weather/downtime/unknown.
    """
    if state not in FacilityStatus.State.values:
        raise ValueError(f"unknown facility state {state!r}")
    reason = reason[:500]
    with transaction.atomic():
        # Lock the facility row so two concurrent polls cannot both insert.
        Facility.objects.select_for_update().filter(pk=facility.pk).first()
        latest = FacilityStatus.objects.filter(facility=facility).order_by("-fetched_at", "-id").first()
        if latest is not None and latest.state == state and latest.reason == reason:
            if now > latest.fetched_at:
                latest.fetched_at = now
                latest.save(update_fields=["fetched_at"])
            return latest
        row = FacilityStatus.objects.create(
            facility=facility, state=state, reason=reason, observed_at=observed_at or now, fetched_at=now
        )
        if latest is not None and latest.state != state:
            old_state = latest.state
            transaction.on_commit(
                lambda: _status_changed(facility=facility, old_state=old_state, new_state=state, reason=reason)
            )
    return row


def _status_changed(*, facility: Facility, old_state: str, new_state: str, reason: str) -> None:
    """A facility changed state: re-plan the network, and tell the hook (notifications) if one is set.

    The planner reads live status, so a site going down or clouding over moves
    copies elsewhere within one planning run instead of waiting for beat's next.
    """
    from django.utils.module_loading import import_string

    from observatories.scheduling.tasks import network_plan_task

    network_plan_task.delay()
    path = getattr(settings, "OBSERVATORIES_STATUS_CHANGE_HOOK", "")
    if path:
        import_string(path)(facility=facility, old_state=old_state, new_state=new_state, reason=reason)


def facility_status_refresh(*, facility: Facility, now: datetime | None = None) -> FacilityStatus:
    """Ask the facility's adapter for its state and record it; an unreachable portal is recorded as unknown.

    Never raises for the portal's failures: a timeout, a 5xx after retries or a
    refused call becomes an ``unknown`` status whose reason says what happened,
    which is exactly what the planner and the network page need to know.
    """
    now = now or timezone.now()
    try:
        state = portal_client_for(facility).facility_state()
    except PortalUnavailable as exc:
        return facility_status_record(facility=facility, state="unknown", reason=f"portal unreachable: {exc}", observed_at=None, now=now)
    except (PortalError, ImproperlyConfigured) as exc:
        return facility_status_record(facility=facility, state="unknown", reason=f"status unavailable: {exc}", observed_at=None, now=now)
    return facility_status_record(facility=facility, state=state.state, reason=state.reason, observed_at=state.observed_at, now=now)


def facility_status_prune(*, now: datetime | None = None, keep_days: int | None = None) -> int:
    """Delete status rows last confirmed more than ``keep_days`` ago (keeping each facility's latest)."""
    now = now or timezone.now()
    keep_days = settings.OBSERVATORIES_STATUS_KEEP_DAYS if keep_days is None else keep_days
    cutoff = now - timedelta(days=keep_days)
    latest_ids = (
        FacilityStatus.objects.order_by("facility_id", "-fetched_at", "-id").distinct("facility_id").values_list("id", flat=True)
    )
    deleted, _ = FacilityStatus.objects.filter(fetched_at__lt=cutoff).exclude(id__in=list(latest_ids)).delete()
    return deleted
