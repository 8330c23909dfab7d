"""The TOM face of the portal network: "Baton" as a TOM ``BaseRoboticObservationFacility``, and adapter look-up.

`PortalFacility` puts Baton's portal facilities into TOM's own pages (the
target's Observe tab, observation records, facility status). `adapter_class`
imports a facility's adapter (any TOM facility class, by dotted path) and
`speaks_portal_api` says whether it talks the portal API (then Baton drives it
with `PortalClient`) or is driven through its TOM methods
(``observatories.tomfacility``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from tom_observations.facility import BaseRoboticObservationFacility

from observatories.forms import PortalObservationForm
from observatories.portal.client import PortalError, RequestState, portal_client_for

if TYPE_CHECKING:
    from observatories.models import Facility

__all__ = ["PortalFacility", "adapter_class", "speaks_portal_api", "speaks_portal_api_path"]


def adapter_class(facility: Facility) -> type[BaseRoboticObservationFacility]:
    """Import the facility's adapter class; a clear `ImproperlyConfigured` if it cannot be used."""
    try:
        cls = import_string(facility.adapter)
    except ImportError as exc:
        raise ImproperlyConfigured(f"facility {facility.code}: adapter {facility.adapter!r} cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, BaseRoboticObservationFacility)):
        raise ImproperlyConfigured(
            f"facility {facility.code}: adapter {facility.adapter!r} is not a TOM BaseRoboticObservationFacility"
        )
    return cls


def speaks_portal_api(cls: type) -> bool:
    """Whether a TOM facility class talks the LCO portal API: `PortalFacility`, or TOM's OCS family (LCO, SOAR, ...)."""
    from tom_observations.facilities.ocs import OCSFacility

    return issubclass(cls, PortalFacility | OCSFacility)


@functools.lru_cache(maxsize=64)
def speaks_portal_api_path(path: str) -> bool:
    """`speaks_portal_api` for a dotted path; False for a path that cannot be imported (cached: the planner asks per
    facility and request, and a class's kind does not change while the process runs)."""
    try:
        cls = import_string(path)
    except ImportError:
        return False
    return isinstance(cls, type) and speaks_portal_api(cls)



class PortalFacility(BaseRoboticObservationFacility):
    """Baton's network as one TOM facility, "Baton": every enabled facility whose adapter this is.

    TOM observation ids are ``"<facility code>:<request-group id>"``, so status,
    cancel and data calls find their facility. Data are the facility's archive
    frames, saved as TOM data products with the target's photometry from each.
    """

    name = "Baton"
    observation_forms = {"IMAGING": PortalObservationForm}
    detail_url_name = "observatories:network"
    button_label = "Baton network"
    button_tooltip = "Observe with a facility of Baton's network"

    def get_form(self, observation_type: str) -> type[PortalObservationForm]:
        return PortalObservationForm

    def get_template_form(self, observation_type: str) -> None:
        return None

    @staticmethod
    def _split(observation_id: str) -> tuple[Facility, str]:
        from observatories.models import Facility

        code, _, remote_id = str(observation_id).rpartition(":")
        facility = Facility.objects.select_related("site").filter(code=code).first()
        if facility is None or not remote_id:
            raise PortalError(f"observation id {observation_id!r} names no Baton facility")
        return facility, remote_id

    def submit_observation(self, observation_payload: dict[str, Any]) -> list[str]:
        """Submit the form's payload (facility code, request group, key); return TOM observation ids."""
        from observatories.models import Facility

        facility = Facility.objects.select_related("site").get(code=observation_payload["facility"])
        remote = portal_client_for(facility).submit(
            payload=observation_payload["payload"], idempotency_key=observation_payload["idempotency_key"]
        )
        return [f"{facility.code}:{remote.remote_id}"]

    def validate_observation(self, observation_payload: dict[str, Any]) -> list[str]:
        from observatories.models import Facility

        facility = Facility.objects.select_related("site").get(code=observation_payload["facility"])
        return portal_client_for(facility).validate(payload=observation_payload["payload"])

    def cancel_observation(self, observation_id: str) -> bool:
        facility, remote_id = self._split(observation_id)
        return portal_client_for(facility).cancel(remote_id=remote_id).state is RequestState.CANCELED

    def get_observation_url(self, observation_id: str) -> str:
        facility, remote_id = self._split(observation_id)
        return portal_client_for(facility).observation_url(remote_id=remote_id)

    def get_terminal_observing_states(self) -> list[str]:
        return ["COMPLETED", "WINDOW_EXPIRED", "CANCELED", "FAILURE_LIMIT_REACHED", "NOT_ATTEMPTED"]

    def get_failed_observing_states(self) -> list[str]:
        return ["WINDOW_EXPIRED", "CANCELED", "FAILURE_LIMIT_REACHED", "NOT_ATTEMPTED"]

    def get_observing_sites(self) -> dict[str, dict[str, Any]]:
        """Sites of the enabled facilities, in TOM's format (for TOM's own visibility plot)."""
        from observatories.models import Site

        sites = Site.objects.filter(facilities__enabled=True).distinct()
        return {
            s.name: {"sitecode": s.code, "latitude": s.latitude_deg, "longitude": s.longitude_deg, "elevation": s.elevation_m}
            for s in sites
        }

    def get_facility_status(self) -> dict[str, Any]:
        """The facility-status feed in TOM's format (sites -> telescopes -> status)."""
        from django.utils import timezone

        from observatories.models import Facility
        from observatories.selectors import facility_status_current

        now = timezone.now()
        sites: dict[str, list[dict[str, str]]] = {}
        for facility in Facility.objects.filter(enabled=True).select_related("site"):
            current = facility_status_current(facility=facility, now=now)
            sites.setdefault(facility.site.code, []).append({"code": facility.code, "status": current.state.upper()})
        return {"code": self.name, "sites": [{"code": code, "telescopes": tels} for code, tels in sites.items()]}

    def get_observation_status(self, observation_id: str) -> dict[str, Any]:
        facility, remote_id = self._split(observation_id)
        remote = portal_client_for(facility).status(remote_id=remote_id)
        return {"state": remote.raw_state, "scheduled_start": remote.scheduled_start, "scheduled_end": remote.scheduled_end}

    def data_products(self, observation_id: str, product_id: str | None = None) -> list[dict[str, Any]]:
        """The observation's frames in the facility's science archive (frames by request id, as LCO's)."""
        from observatories.archive import archive_client_for

        facility, remote_id = self._split(observation_id)
        remote = portal_client_for(facility).status(remote_id=remote_id)
        archive = archive_client_for(facility)
        return [
            {"id": f"{facility.code}:frame:{frame.id}", "filename": frame.filename, "created": frame.observation_date,
             "url": frame.url}
            for request_id in remote.request_ids for frame in archive.frames(request_id)
        ]

    def save_data_products(self, observation_record: Any, product_id: str | None = None) -> list[Any]:
        """Save the observation's archive frames as TOM data products and their photometry of the target as TOM
        photometry (idempotent). A copy Baton dispatched is stored as its team's data (``services.data``)."""
        from urllib.parse import urljoin

        from tom_dataproducts.models import DataProduct

        from observatories.archive import archive_client_for
        from observatories.scheduling.services.data import dispatch_data_store, frame_store, product_id_of

        dispatch_id = (observation_record.parameters or {}).get("baton_dispatch")
        if dispatch_id:
            dispatch_data_store(dispatch_id=int(dispatch_id))
            return list(DataProduct.objects.filter(observation_record=observation_record).order_by("pk"))
        facility, remote_id = self._split(observation_record.observation_id)
        remote = portal_client_for(facility).status(remote_id=remote_id)
        archive = archive_client_for(facility)
        for request_id in remote.request_ids:
            for frame in archive.frames(request_id):
                key = product_id_of(facility_code=facility.code, frame_id=frame.id)
                if DataProduct.objects.filter(product_id=key).exists():
                    continue
                frame_store(
                    target=observation_record.target, facility=facility, observation_record=observation_record,
                    team=None, frame=frame, product_id=key, location=urljoin(archive.base_url, f"frames/{frame.id}/"),
                    content=archive.download(frame),
                )
        return list(DataProduct.objects.filter(observation_record=observation_record).order_by("pk"))
