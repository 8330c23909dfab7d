"""Talking to destinations: a partner TOM or Baton (TOM Toolkit's REST API) and Hermes.

:class:`DestinationClient` is the base: :meth:`~DestinationClient.send` pushes one datum and
returns the destination's id for it, or raises :class:`TransientShareError` (try again
later: unreachable, 5xx, 408/429) or :class:`PermanentShareError` (refused: bad
credentials, a 4xx, data it cannot take). Every HTTP call has a timeout.

* :class:`TomDestinationClient` speaks what TOM's own ``DATA_SHARING`` does
  (``tom_dataproducts.sharing.share_data_with_tom``): find the target by name
  (``GET api/targets/?name_fuzzy=``; created with ``POST api/targets/`` when the partner
  has none), then ``POST api/reduceddatums/`` with the ``ReducedDatumSerializer`` shape
  (``data_type``, ``source_name``, ``source_location``, ``timestamp``, ``value``, ``target``).
  ``source_location`` names the datum here, so a repeat after a lost answer is recognised
  (``GET api/reduceddatums/?target__id=&source_name=``) and not posted twice.
* :class:`HermesDestinationClient` posts a Hermes message (``POST api/v0/submit_message/``,
  ``Authorization: Token``), built as ``tom-hermes`` builds it: ``topic``, ``title``,
  ``submitter``, ``authors``, ``message_text`` and ``data`` with ``targets``, ``photometry``
  or ``spectroscopy`` rows and ``extra_data`` (the outbox item's key).
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from django.db import models
from tom_dataproducts.models import PhotometryReducedDatum, ReducedDatum, SpectroscopyReducedDatum

from . import conf
from .models import Destination, DestinationKind, OutboxItem, RemoteTarget

TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


class ShareError(Exception):
    pass


class TransientShareError(ShareError):
    """The destination may take it later (unreachable, overloaded, a server error)."""


class PermanentShareError(ShareError):
    """The destination refused it; trying again will not help."""


def source_name() -> str:
    return str(getattr(settings, "TOM_NAME", "Baton"))


def source_location(item: OutboxItem) -> str:
    """Where the datum comes from: this Baton's address for it (stable per datum, so repeats are recognisable)."""
    base = str(getattr(settings, "BATON_BASE_URL", "http://127.0.0.1:8000")).rstrip("/")
    return f"{base}/api/reduceddatums/{item.object_id}/"


# --- data as plain records ------------------------------------------------------------------------


def photometry_record(datum: models.Model) -> dict[str, Any]:
    """A photometry point (TOM's typed model, or a generic ReducedDatum's ``value``) as plain fields."""
    if isinstance(datum, PhotometryReducedDatum):
        return {"brightness": datum.brightness, "brightness_error": datum.brightness_error, "limit": datum.limit,
                "bandpass": datum.bandpass, "unit": datum.unit, "telescope": datum.telescope,
                "instrument": datum.instrument}
    assert isinstance(datum, ReducedDatum)  # noqa: S101 - the outbox holds only reduced data
    value = datum.value if isinstance(datum.value, dict) else {}

    def first(*names: str) -> Any:
        return next((value[n] for n in names if value.get(n) is not None), None)

    return {"brightness": first("brightness", "magnitude", "mag"),
            "brightness_error": first("brightness_error", "error", "magnitude_error", "mag_err"),
            "limit": first("limit", "limiting_magnitude"), "bandpass": first("bandpass", "filter", "band") or "",
            "unit": first("unit") or "", "telescope": datum.telescope or first("telescope") or "",
            "instrument": datum.instrument or first("instrument") or ""}


def spectrum_record(datum: models.Model) -> dict[str, Any]:
    if isinstance(datum, SpectroscopyReducedDatum):
        return {"flux": list(datum.flux), "wavelength": list(datum.wavelength), "error": list(datum.error),
                "flux_unit": datum.flux_unit, "wavelength_unit": datum.wavelength_unit,
                "telescope": datum.telescope, "instrument": datum.instrument}
    assert isinstance(datum, ReducedDatum)  # noqa: S101
    value = datum.value if isinstance(datum.value, dict) else {}
    return {"flux": value.get("flux", []), "wavelength": value.get("wavelength", []), "error": value.get("error", []),
            "flux_unit": value.get("flux_unit", ""), "wavelength_unit": value.get("wavelength_unit", ""),
            "telescope": datum.telescope, "instrument": datum.instrument}


def record_of(item: OutboxItem, datum: models.Model) -> tuple[str, dict[str, Any]]:
    """(TOM data_type, plain fields) of a datum; a kind the destinations cannot take is a permanent error."""
    if item.kind == "photometry":
        return "photometry", photometry_record(datum)
    if item.kind == "spectra":
        return "spectroscopy", spectrum_record(datum)
    raise PermanentShareError(f"{item.kind} is not pushed to destinations")


# --- clients --------------------------------------------------------------------------------------


class DestinationClient:
    """Pushes one datum to a destination. Subclasses override :meth:`send`."""

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        self.timeout = float(conf.setting("HTTP_TIMEOUT_S"))

    def send(self, *, item: OutboxItem, datum: models.Model) -> str:
        """Push ``datum`` (the item's datum); return the destination's id for it (may be "").

        Raise :class:`TransientShareError` or :class:`PermanentShareError` on failure.
        """
        raise NotImplementedError

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One HTTP call with the destination's credentials and the timeout; failures mapped to share errors."""
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        auth = None
        if self.destination.token:
            headers["Authorization"] = f"Token {self.destination.token}"
        elif self.destination.username:
            auth = (self.destination.username, self.destination.password)
        url = self.destination.root + path
        try:
            response = requests.request(method, url, headers=headers, auth=auth, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise TransientShareError(f"{self.destination.name} is unreachable: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code in TRANSIENT_STATUS:
            raise TransientShareError(f"{self.destination.name} answered {response.status_code} to {method} {path}: "
                                      f"{response.text[:300]}")
        return response

    def refused(self, response: requests.Response, what: str) -> PermanentShareError:
        return PermanentShareError(f"{self.destination.name} refused {what} ({response.status_code}): {response.text[:500]}")

    @staticmethod
    def json(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise TransientShareError(f"not JSON ({response.status_code}): {response.text[:200]}") from exc


class TomDestinationClient(DestinationClient):
    """Another TOM or Baton, through TOM Toolkit's REST API (see the module docstring)."""

    def remote_target(self, target: Any) -> str:
        """The partner's id of ``target``: remembered, found by name, or created."""
        known = RemoteTarget.objects.filter(destination=self.destination, target=target).values_list("remote_id", flat=True).first()
        if known:
            return known
        names = [target.name, *(alias.name for alias in target.aliases.all())]
        response = self.request("GET", "api/targets/", params={"name_fuzzy": ",".join(names)})
        if response.status_code != 200:
            raise self.refused(response, f"the search for target {target.name}")
        results = self.json(response).get("results") or []
        exact = [r for r in results if r.get("name") in names]
        if len(exact) == 1 or (len(results) == 1 and not exact):
            remote = str((exact or results)[0]["id"])
        elif results:
            raise PermanentShareError(f"{self.destination.name} has {len(results)} targets matching {target.name}")
        else:
            body = {"name": target.name, "type": target.type, "ra": target.ra, "dec": target.dec, "epoch": target.epoch,
                    "groups": [], "targetextra_set": [], "aliases": [{"name": n} for n in names[1:]],
                    "shared_from": source_name()}
            response = self.request("POST", "api/targets/", json=body)
            if response.status_code not in (200, 201):
                raise self.refused(response, f"target {target.name}")
            remote = str(self.json(response)["id"])
        RemoteTarget.objects.get_or_create(destination=self.destination, target=target, defaults={"remote_id": remote})
        return remote

    def already_there(self, *, item: OutboxItem, remote_target: str) -> bool:
        """Whether an earlier attempt of this item reached the partner (its answer was lost)."""
        response = self.request("GET", "api/reduceddatums/",
                                params={"target__id": remote_target, "source_name": source_name(), "limit": 1000})
        if response.status_code != 200:
            return False
        body = self.json(response)
        rows = body.get("results", []) if isinstance(body, dict) else body
        return any(row.get("source_location") == source_location(item) for row in rows)

    def send(self, *, item: OutboxItem, datum: models.Model) -> str:
        data_type, record = record_of(item, datum)
        remote_target = self.remote_target(datum.target)  # type: ignore[attr-defined]  # reduced data have a target
        if item.attempts > 1 and self.already_there(item=item, remote_target=remote_target):
            return f"target {remote_target} (already there)"
        body = {"data_type": data_type, "source_name": source_name(), "source_location": source_location(item),
                "timestamp": datum.timestamp.isoformat(),  # type: ignore[attr-defined]
                "value": {k: v for k, v in record.items() if v is not None}, "target": remote_target}
        response = self.request("POST", "api/reduceddatums/", json=body)
        if response.status_code not in (200, 201):
            raise self.refused(response, f"{data_type} of {datum.target.name}")  # type: ignore[attr-defined]
        return f"target {remote_target}"


class HermesDestinationClient(DestinationClient):
    """Hermes: one message per datum (see the module docstring)."""

    def message(self, *, item: OutboxItem, datum: models.Model) -> dict[str, Any]:
        data_type, record = record_of(item, datum)
        target = datum.target  # type: ignore[attr-defined]
        team = self.destination.team.name
        date_obs = datum.timestamp.isoformat()  # type: ignore[attr-defined]
        target_row = {"name": target.name, "ra": target.ra, "dec": target.dec,
                      "aliases": [alias.name for alias in target.aliases.all()]}
        if target.epoch:
            target_row["epoch"] = target.epoch
        data: dict[str, Any] = {"targets": [target_row], "photometry": [], "spectroscopy": [],
                                "extra_data": {"baton_item": f"{source_name()}:{self.destination.pk}:{item.pk}",
                                               "source_location": source_location(item)}}
        if data_type == "photometry":
            row = {"target_name": target.name, "date_obs": date_obs, "telescope": record["telescope"],
                   "instrument": record["instrument"], "bandpass": record["bandpass"]}
            unit = "AB mag" if str(record["unit"]).upper() in ("AB", "ABFLUX", "") else record["unit"]
            if record["brightness"] is not None:
                row.update(brightness=record["brightness"], brightness_unit=unit)
                if record["brightness_error"] is not None:
                    row["brightness_error"] = record["brightness_error"]
            else:
                row.update(limiting_brightness=record["limit"], limiting_brightness_unit=unit)
            data["photometry"].append(row)
        else:
            data["spectroscopy"].append({"target_name": target.name, "date_obs": date_obs, "telescope": record["telescope"],
                                         "instrument": record["instrument"], "flux": record["flux"],
                                         "flux_error": record["error"], "wavelength": record["wavelength"],
                                         "flux_units": record["flux_unit"], "wavelength_units": record["wavelength_unit"]})
        return {"topic": self.destination.topic or "hermes.test", "title": f"{team}: {data_type} of {target.name}",
                "submitter": f"{source_name()} ({team})", "authors": self.destination.authors or team,
                "message_text": f"{data_type.capitalize()} of {target.name} released by {team} through {source_name()}.",
                "data": data}

    def send(self, *, item: OutboxItem, datum: models.Model) -> str:
        response = self.request("POST", "api/v0/submit_message/", json=self.message(item=item, datum=datum))
        if response.status_code not in (200, 201):
            raise self.refused(response, "the message")
        body = self.json(response)
        return str(body.get("uuid") or body.get("id") or "") if isinstance(body, dict) else ""


CLIENTS: dict[str, type[DestinationClient]] = {
    DestinationKind.TOM: TomDestinationClient,
    DestinationKind.HERMES: HermesDestinationClient,
}


def client_for(destination: Destination) -> DestinationClient:
    return CLIENTS[destination.kind](destination)
