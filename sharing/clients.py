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
* :class:`HermesDestinationClient` posts one Hermes message per observation or release
  (``POST api/v0/submit_message/``, ``Authorization: Token``), built as ``tom-hermes`` builds
  it and valid as Hermes validates it: ``topic``, ``title``, ``submitter``, ``authors``,
  ``message_text`` and ``data`` with ``targets`` (ra/dec, or orbital elements),
  ``photometry`` or ``spectroscopy`` rows (a telescope or instrument, units in Hermes'
  choices, converted where needed) and ``extra_data`` (each datum's provenance). Hermes'
  answer of 200 with an ``error`` (nothing published) is a refusal.
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models, transaction
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
    """Where the datum comes from: this Baton's address for it, naming its model and id.

    Stable per datum, so a repeat is recognisable; the model is named because TOM's typed
    reduced-data tables each number their rows from 1 (photometry 7 is not spectrum 7).
    """
    base = str(getattr(settings, "BATON_BASE_URL", "http://127.0.0.1:8000")).rstrip("/")
    model = ContentType.objects.get_for_id(item.content_type_id)
    return f"{base}/api/reduceddatums/{item.object_id}/?model={model.app_label}.{model.model}"


def datum_source_name(datum: models.Model) -> str:
    """The datum's own source (a broker, a facility), as TOM's own sharing keeps it; else this Baton."""
    return str(getattr(datum, "source_name", "") or source_name())[:100]


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
        """The partner's id of ``target``: remembered, found by name, or created.

        Two workers sending the first data of a new target would both find nothing and both
        create it; the partner's target names are unique, so the second would be refused (400)
        and its datum lost. So the search-or-create runs under a PostgreSQL advisory lock per
        (destination, target), held for its few HTTP calls: the second worker waits, then finds
        the remembered id. A 400 on the create (the target was made meanwhile by someone else,
        e.g. a person at the partner or another Baton) is followed by one more search.
        """
        known = self._remembered(target)
        if known:
            return known
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                           [f"sharing.remote_target:{self.destination.pk}:{target.pk}"])
            known = self._remembered(target)  # made by the worker we waited for
            if known:
                return known
            remote = self.find_remote(target)
            if remote is None:
                remote = self.create_remote(target)
            RemoteTarget.objects.get_or_create(destination=self.destination, target=target, defaults={"remote_id": remote})
        return remote

    def _remembered(self, target: Any) -> str | None:
        return RemoteTarget.objects.filter(destination=self.destination, target=target).values_list(
            "remote_id", flat=True).first()

    def find_remote(self, target: Any) -> str | None:
        """The partner's id of the one target matching ``target``'s name or an alias; None if it has none.

        TOM's ``name_fuzzy`` filter matches one name (its comma-separated form finds nothing in
        TOM 3.1), so each name is asked for in turn. Several matches are an error unless exactly
        one of them carries one of the names as it is written here.
        """
        names = [target.name, *(alias.name for alias in target.aliases.all())]
        found: dict[str, dict[str, Any]] = {}
        for name in names:
            response = self.request("GET", "api/targets/", params={"name_fuzzy": name})
            if response.status_code != 200:
                raise self.refused(response, f"the search for target {target.name}")
            for row in self.json(response).get("results") or []:
                found[str(row["id"])] = row
        if len(found) <= 1:
            return next(iter(found), None)

        def written(row: dict[str, Any]) -> set[str]:
            return {row.get("name") or "", *(a.get("name") or "" for a in row.get("aliases") or [])}

        exact = [pk for pk, row in found.items() if written(row) & set(names)]
        if len(exact) == 1:
            return exact[0]
        raise PermanentShareError(f"{self.destination.name} has {len(found)} targets matching {target.name}")

    def create_remote(self, target: Any) -> str:
        """Create ``target`` at the partner; on a 400 (its name is taken) find it again."""
        names = [target.name, *(alias.name for alias in target.aliases.all())]
        body = {"name": target.name, "type": target.type, "ra": target.ra, "dec": target.dec, "epoch": target.epoch,
                "groups": [], "targetextra_set": [], "aliases": [{"name": n} for n in names[1:]],
                "shared_from": source_name()}
        response = self.request("POST", "api/targets/", json=body)
        if response.status_code in (200, 201):
            return str(self.json(response)["id"])
        if response.status_code == 400:
            remote = self.find_remote(target)
            if remote is not None:
                return remote
        raise self.refused(response, f"target {target.name}")

    def already_there(self, *, item: OutboxItem, datum: models.Model, remote_target: str) -> bool:
        """Whether an earlier attempt of this item reached the partner (its answer was lost)."""
        response = self.request("GET", "api/reduceddatums/",
                                params={"target__id": remote_target, "source_name": datum_source_name(datum), "limit": 1000})
        if response.status_code != 200:
            return False
        body = self.json(response)
        rows = body.get("results", []) if isinstance(body, dict) else body
        return any(row.get("source_location") == source_location(item) for row in rows)

    def send(self, *, item: OutboxItem, datum: models.Model) -> str:
        data_type, record = record_of(item, datum)
        remote_target = self.remote_target(datum.target)  # type: ignore[attr-defined]  # reduced data have a target
        if item.attempts > 1 and self.already_there(item=item, datum=datum, remote_target=remote_target):
            return f"target {remote_target} (already there)"
        body = {"data_type": data_type, "source_name": datum_source_name(datum), "source_location": source_location(item),
                "timestamp": datum.timestamp.isoformat(),  # type: ignore[attr-defined]
                "value": {k: v for k, v in record.items() if v is not None}, "target": remote_target}
        response = self.request("POST", "api/reduceddatums/", json=body)
        if response.status_code not in (200, 201):
            raise self.refused(response, f"{data_type} of {datum.target.name}")  # type: ignore[attr-defined]
        return f"target {remote_target}"


# --- Hermes' units ---------------------------------------------------------------------------------

HERMES_MAGNITUDES = {"": "AB mag", "ab": "AB mag", "abmag": "AB mag", "magab": "AB mag", "mag(ab)": "AB mag",
                     "vega": "Vega mag", "vegamag": "Vega mag", "magvega": "Vega mag", "mag(vega)": "Vega mag",
                     # A magnitude that names no system: Hermes' default, AB (the recorded unit goes along as provenance).
                     "mag": "AB mag", "mags": "AB mag", "magnitude": "AB mag"}
HERMES_FLUX_UNITS = {"mJy": "mJy", "erg / s / cm² / Å": "erg / (Angstrom s cm2)"}  # Hermes' name: astropy's
HERMES_WAVELENGTH_UNITS = {"Å": "Angstrom", "nm": "nm", "µm": "um", "Hz": "Hz", "GHz": "GHz", "THz": "THz"}


def _astropy_unit(text: str) -> Any:
    import re
    import warnings

    import astropy.units as u

    cleaned = text.replace("Å", "Angstrom").replace("²", "2").replace("µ", "u").replace("μ", "u")
    cleaned = re.sub(r"(?<![A-Za-z])A(?![A-Za-z])", "Angstrom", cleaned)  # "A" in a flux unit is the ångström, not the ampere
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unit = u.Unit(cleaned, parse_strict="silent")
    return None if isinstance(unit, u.UnrecognizedUnit) else unit


def hermes_flux(values: list[float], unit: str, *, default: str) -> tuple[str, list[float]]:
    """(Hermes' flux unit, values in it) for fluxes recorded in ``unit``: mJy for a flux density per frequency,
    erg / s / cm² / Å per wavelength, converted as needed; anything else is a PermanentShareError."""
    import astropy.units as u

    unit = unit.strip() or default
    given = _astropy_unit(unit)
    for name, spelled in HERMES_FLUX_UNITS.items():
        target = u.Unit(spelled)
        if given is not None and given.is_equivalent(target):
            factor = float(given.to(target))
            return name, [v * factor for v in values] if factor != 1.0 else list(values)
    raise PermanentShareError(f"Hermes takes fluxes only in {', '.join(HERMES_FLUX_UNITS)}; this datum's unit is {unit!r}")


def hermes_wavelength_unit(unit: str) -> tuple[str, float]:
    """(Hermes' wavelength unit, factor to it) for wavelengths recorded in ``unit`` (empty: TOM's default, Å)."""
    import astropy.units as u

    given = _astropy_unit(unit.strip() or "Angstrom")
    for name, spelled in HERMES_WAVELENGTH_UNITS.items():
        if given is not None and given == u.Unit(spelled):
            return name, 1.0
    if given is not None and given.is_equivalent(u.nm):
        return "nm", float(given.to(u.nm))
    raise PermanentShareError(f"Hermes takes wavelengths only in {', '.join(HERMES_WAVELENGTH_UNITS)} (or a length); "
                              f"this spectrum's unit is {unit!r}")


def hermes_brightness(value: float | None, unit: str) -> tuple[str, float | None]:
    """(Hermes' brightness unit, value in it) for a photometry value recorded in ``unit``."""
    key = str(unit or "").strip().lower().replace(" ", "").replace("_", "")
    if key in HERMES_MAGNITUDES:
        return HERMES_MAGNITUDES[key], value
    name, [converted] = hermes_flux([value if value is not None else 0.0], str(unit), default="mJy")
    return name, (converted if value is not None else None)


class HermesDestinationClient(DestinationClient):
    """Hermes: one message per observation or release (see :meth:`message`)."""

    batches = True  # the outbox hands over an observation's (or one release's) rows together: one message

    @staticmethod
    def target_row(target: Any) -> dict[str, Any]:
        """Hermes' target: ra/dec for a sidereal target, orbital elements for a non-sidereal one."""
        row: dict[str, Any] = {"name": target.name, "aliases": [alias.name for alias in target.aliases.all()]}
        if target.type == "NON_SIDEREAL":
            elements = {"epoch_of_elements": target.epoch_of_elements, "orbital_inclination": target.inclination,
                        "longitude_of_the_ascending_node": target.lng_asc_node,
                        "argument_of_the_perihelion": target.arg_of_perihelion, "eccentricity": target.eccentricity,
                        "semimajor_axis": target.semimajor_axis, "mean_anomaly": target.mean_anomaly,
                        "perihelion_distance": target.perihdist, "epoch_of_perihelion": target.epoch_of_perihelion}
            row["orbital_elements"] = {k: (str(v) if k.startswith("epoch") else v) for k, v in elements.items() if v is not None}
            return row
        row.update(ra=target.ra, dec=target.dec)
        if target.epoch:
            row["epoch"] = str(target.epoch)
        return row

    def row(self, *, item: OutboxItem, datum: models.Model) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """(Hermes data key, its row, the datum's provenance) for one datum."""
        data_type, record = record_of(item, datum)
        target = datum.target  # type: ignore[attr-defined]
        source = datum_source_name(datum)
        telescope, instrument = record["telescope"] or "", record["instrument"] or ""
        if not (telescope or instrument):
            # Hermes needs one; a broker's or survey's point often records neither, but names its source.
            if not getattr(datum, "source_name", ""):
                raise PermanentShareError("Hermes needs a telescope or an instrument; this datum records neither")
            telescope = source
        row: dict[str, Any] = {"target_name": target.name, "date_obs": datum.timestamp.isoformat(),  # type: ignore[attr-defined]
                               "telescope": telescope, "instrument": instrument}
        recorded_unit = record["unit"] if data_type == "photometry" else record["flux_unit"]
        if data_type == "photometry":
            row["bandpass"] = record["bandpass"] or "unknown"
            if record["brightness"] is not None:
                unit, brightness = hermes_brightness(record["brightness"], record["unit"])
                _, error = hermes_brightness(record["brightness_error"], record["unit"])
                row.update(brightness=brightness, brightness_unit=unit)
                if error is not None:
                    row["brightness_error"] = error
            else:
                unit, limit = hermes_brightness(record["limit"], record["unit"])
                row.update(limiting_brightness=limit, limiting_brightness_unit=unit)
            key = "photometry"
        else:
            flux_unit, flux = hermes_flux(record["flux"], record["flux_unit"], default="erg / s / cm² / Å")
            _, flux_error = hermes_flux(record["error"], record["flux_unit"], default="erg / s / cm² / Å")
            wavelength_unit, factor = hermes_wavelength_unit(record["wavelength_unit"])
            row.update(flux=flux, wavelength=[w * factor for w in record["wavelength"]], flux_units=flux_unit,
                       wavelength_units=wavelength_unit, flux_type="Fν" if flux_unit == "mJy" else "Fλ")
            if flux_error:
                row["flux_error"] = flux_error
            key = "spectroscopy"
        row["comments"] = f"source: {source}" + (f"; unit as recorded: {recorded_unit}" if recorded_unit else "")
        provenance = {"baton_item": f"{source_name()}:{self.destination.pk}:{item.pk}", "source_name": source,
                      "source_location": source_location(item), "unit": recorded_unit}
        return key, row, provenance

    def message(self, *, items: list[tuple[OutboxItem, models.Model]]) -> dict[str, Any]:
        """One Hermes message for ``items`` (one observation's or one release's data of one target, as tom-hermes
        sends one message per selection): ``targets``, ``photometry``/``spectroscopy`` rows, and in ``extra_data``
        each datum's provenance here (its outbox item, source, ``source_location`` and unit as recorded)."""
        team = self.destination.team.name
        data: dict[str, Any] = {"targets": [], "photometry": [], "spectroscopy": [],
                                "extra_data": {"source": source_name(), "items": []}}
        names: set[str] = set()
        for item, datum in items:
            target = datum.target  # type: ignore[attr-defined]
            if target.name not in names:
                names.add(target.name)
                data["targets"].append(self.target_row(target))
            key, row, provenance = self.row(item=item, datum=datum)
            data[key].append(row)
            data["extra_data"]["items"].append(provenance)
        kinds = " and ".join(k for k in ("photometry", "spectroscopy") if data[k])
        what = f"{kinds} of {', '.join(sorted(names))}"
        count = len(data["photometry"]) + len(data["spectroscopy"])
        return {"topic": self.destination.topic or "hermes.test", "title": f"{team}: {what}",
                "submitter": f"{source_name()} ({team})", "authors": self.destination.authors or team,
                "message_text": f"{count} {'datum' if count == 1 else 'data'}: {what}, released by {team} through "
                                f"{source_name()}.",
                "data": {k: v for k, v in data.items() if v}}

    def send_many(self, *, items: list[tuple[OutboxItem, models.Model]]) -> str:
        """Post one message for ``items``; Hermes' uuid for it. An answer of 200 with an ``error`` (Hermes' answer
        when the account has no SCiMMA credential: nothing was published) is a refusal."""
        response = self.request("POST", "api/v0/submit_message/", json=self.message(items=items))
        if response.status_code not in (200, 201):
            raise self.refused(response, "the message")
        body = self.json(response)
        if isinstance(body, dict) and body.get("error"):
            raise PermanentShareError(f"{self.destination.name} did not publish the message: {body['error']}")
        return str(body.get("uuid") or body.get("id") or "") if isinstance(body, dict) else ""

    def send(self, *, item: OutboxItem, datum: models.Model) -> str:
        return self.send_many(items=[(item, datum)])


CLIENTS: dict[str, type[DestinationClient]] = {
    DestinationKind.TOM: TomDestinationClient,
    DestinationKind.HERMES: HermesDestinationClient,
}


def client_for(destination: Destination) -> DestinationClient:
    return CLIENTS[destination.kind](destination)
