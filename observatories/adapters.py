"""Facility adapters, by the dotted paths stored in ``Facility.adapter``: one import point for the portal package.

``observatories.adapters.PortalFacility`` is the adapter path the default
network's rows carry, so it stays importable here. The code lives in
``observatories.portal``: the HTTP client (`client`), the request-group
payload (`payload`) and the TOM facility class (`facility`); TOM facility
modules that are not portals are driven by ``observatories.tomfacility``.
"""

from __future__ import annotations

from observatories.portal.client import (
    Attempt,
    FacilityState,
    FailureKind,
    PortalClient,
    PortalError,
    PortalUnavailable,
    RemoteRequest,
    RequestState,
    TelescopeEvent,
    failure_kind_from_reason,
    portal_client_for,
)
from observatories.portal.facility import PortalFacility, adapter_class, speaks_portal_api
from observatories.portal.payload import Exposure, request_group_payload

__all__ = [
    "Attempt",
    "Exposure",
    "FacilityState",
    "FailureKind",
    "PortalClient",
    "PortalError",
    "PortalFacility",
    "PortalUnavailable",
    "RemoteRequest",
    "RequestState",
    "TelescopeEvent",
    "adapter_class",
    "failure_kind_from_reason",
    "portal_client_for",
    "request_group_payload",
    "speaks_portal_api",
]
