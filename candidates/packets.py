"""Parse alert batches pushed by brokers into validated, survey-neutral ``AlertIn`` records.

Pure Python (no Django): the ingest API and the stream consumers call
:func:`parse_alert_batch` and store what it returns.

Entry point
-----------
``parse_alert_batch(*, body, content_type, broker=None) -> ParsedBatch``

* ``ParsedBatch.alerts`` holds every alert that passed validation, in batch order;
  ``ParsedBatch.errors`` holds one :class:`AlertError` (batch index, alert id if known,
  offending field, human message ``"<field>: <problem>"``) per rejected alert. A bad
  alert never loses the good ones.
* A body that cannot be parsed at all (not JSON, not Avro, truncated or corrupt Avro,
  unknown schema, over :data:`MAX_BATCH_BYTES`, unsupported content type) raises
  :class:`PacketError`, a ``ValueError``. Avro decoding is all-or-nothing: a corrupt
  container or frame loses the whole body (the sender retries; ingest is idempotent).

Content types (parameters such as ``; charset=utf-8`` are ignored):

* ``application/json`` -- Baton's generic JSON format (below).
* ``application/avro``, ``avro/binary``, ``application/vnd.apache.avro+binary`` -- Rubin
  or ZTF Avro, told apart by the writer schema's full name (``lsst.v<M>_<m>.alert`` or
  ``ztf.alert``). Two framings are accepted:

  - an Avro object container file (``Obj\\x01`` magic, schema embedded, one or more
    records, codec ``null`` or ``deflate``; any other codec goes through fastavro's
    generic reader);
  - the Confluent wire format used on Rubin's Kafka: magic byte ``0x00``, a 4-byte
    big-endian schema id, then the schemaless Avro body. Several framed messages may
    be concatenated in one body. The schema id is resolved to the schema shipped in the
    ``lsst-alert-packet`` package by Rubin's convention ``id = 100 * major + minor``
    (``lsst.alert.packet.Schema.get_schema_id`` and the ``confluent:version`` property
    of the shipped ``.avsc`` files), e.g. id 1101 -> ``lsst.v11_1.alert``.

Generic JSON format (``schemas/baton_alert_batch_v1.schema.json``)
------------------------------------------------------------------
``{"alerts": [alert, ...]}`` with each alert an object of:

=================== ======== ============================================================
field               required meaning
=================== ======== ============================================================
``alert_id``        yes      string (or integer), unique per broker, <= 128 characters
``object_id``       yes      the broker's object id, string (or integer)
``ra``, ``dec``     yes      ICRS degrees; ra in [0, 360), dec in [-90, 90]
``time`` | ``mjd``  one      ISO-8601 with an explicit offset (``Z``), or MJD (UTC)
``band``            yes      filter name, e.g. ``"r"``
``mag``+``mag_err`` one pair AB magnitude in [-5, 40] and its 1-sigma error (>= 0)
``flux``+``flux_err``        difference flux in nJy (may be negative) and its error
``broker``          no       must match the authenticated sender when both are given
``classifications`` no       list of ``{classifier, version, class, score}``
``history``         no       list of ``{source_id, time|mjd, band, mag, mag_err |
                             flux, flux_err}`` (earlier points, each with its own id)
``extra``           no       object kept verbatim in ``raw``
=================== ======== ============================================================

Names (``band``, ``broker``, ``classifier``, ``class``, ``version``) are at most 64
characters. Unknown fields are errors (a typo such as ``magerr`` would otherwise vanish),
and so is an ``alert_id`` repeated within one batch (any format). Numbers must
be JSON numbers and finite: an explicit ``NaN``/``Infinity`` (which Python's JSON reader
accepts) is an error, anywhere in the alert including ``extra``. Times must lie in
[1900, 2100), which catches JD-for-MJD and Unix-seconds-for-MJD mix-ups.

Photometry
----------
``mag`` is AB, ``flux`` is nJy, related by ``mag = -2.5 log10(flux) + 31.4``. When only
one pair is given the other is derived (``flux_err = flux * mag_err * ln10 / 2.5``). A
non-positive difference flux is a real detection of a fading source: it keeps its flux
and gets ``mag = None``. A derived magnitude outside [-5, 40] is dropped (``None``); a
magnitude given by the sender outside that range is an error.

Rubin / LSST mapping (schemas 3.0 to 11.1)
------------------------------------------
``diaSource`` is the alert's point: ``diaSourceId`` -> ``alert_id``; ``diaObjectId``
(from ``diaSource``, else from ``diaObject``) -> ``object_id`` (a solar-system source
with only ``ssObjectId`` gets ``"ssObject:<id>"``); ``ra``/``dec`` (``decl`` before v5);
``midpointMjdTai`` (``midPointTai`` before v5) converted TAI -> UTC with the leap-second
table below; ``band`` (``filterName`` before v5); ``psfFlux``/``psfFluxErr`` (``psFlux``
before v5) in nJy. ``reliability`` (v5+) becomes a classification
``("rubin-reliability", reliabilityVersion or schema version, "real", score)``.
``prvDiaSources`` and ``prvDiaForcedSources`` become history points with their own
``diaSourceId``/``diaForcedSourceId``; forced points have ``forced=True``. History points
whose flux is null or NaN (not measured) are skipped; a null or NaN flux error becomes
``None``. ``diaSource.timeWithdrawnMjdTai`` is not interpreted. The shipped sample packets of
schemas 3.0-7.4 carry ``1480360995`` (a Unix time) in the field documented as an MJD;
they are rejected with a precise time error.

ZTF mapping (public schema 3.3-4.02, ``schemas/ztf_alert_v4.02.avsc``)
--------------------------------------------------------------------
``candid`` -> ``alert_id``; ``objectId`` -> ``object_id``; ``candidate.jd`` (UTC,
*start* of exposure) -> ``time``; ``fid`` 1/2/3 -> ``g``/``r``/``i``; ``magpsf``/
``sigmapsf`` -> ``mag``/``mag_err`` (``isdiffpos`` ``f``/``0`` gives a negative flux and
``mag = None``, as for Rubin); ``rb``/``drb`` -> classifications ``"ztf-rb"``/``"ztf-drb"``
labelled ``"real"`` with the model version (``rbversion``/``drbversion``, falling back to
the schema version). ``prv_candidates`` with a ``candid`` become history; the others are
non-detections (upper limits only) and are skipped, as are ``fp_hists``.

Provenance
----------
``AlertIn.schema`` is ``"baton.alert 1"``, ``"lsst.alert <major>.<minor>"`` or
``"ztf.alert <schemavsn>"``.

``raw``
-------
The original record as a JSON-able dict: cutout stamps (``cutoutScience``,
``cutoutTemplate``, ``cutoutDifference``) are dropped to keep rows small; any other bytes
value is base64-encoded (standard alphabet); values of Avro logical types become strings
(timestamps in ISO-8601); non-finite floats become ``None`` so the dict is strict JSON
(PostgreSQL ``jsonb`` refuses NaN).
"""

from __future__ import annotations

import base64
import bisect
import functools
import io
import json
import math
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.util import find_spec
from pathlib import Path
from typing import Any, cast

import fastavro

__all__ = [
    "AB_ZERO_POINT_NJY",
    "AVRO_CONTENT_TYPES",
    "GENERIC_JSON_SCHEMA_PATH",
    "JSON_CONTENT_TYPES",
    "MAX_BATCH_BYTES",
    "AlertError",
    "AlertIn",
    "Classification",
    "PacketError",
    "ParsedBatch",
    "PhotPoint",
    "parse_alert_batch",
    "rubin_schema_ids",
    "ZTF_AVRO_SCHEMA_PATH",
]

MAX_BATCH_BYTES = 64 * 1024 * 1024
"""Largest body accepted, in bytes (64 MiB); the API layer enforces it too."""

MAX_DECOMPRESSED_BYTES = 4 * MAX_BATCH_BYTES
"""Largest total size of deflate-compressed Avro blocks once inflated (zip-bomb guard)."""

AB_ZERO_POINT_NJY = 31.4
"""AB magnitude of a 1 nJy source: mag = -2.5 log10(flux_nJy) + 31.4."""

MAG_MIN, MAG_MAX = -5.0, 40.0
MAX_ID_LENGTH = 128
MAX_NAME_LENGTH = 64

JSON_CONTENT_TYPES = frozenset({"application/json"})
AVRO_CONTENT_TYPES = frozenset({"application/avro", "avro/binary", "application/vnd.apache.avro+binary"})

GENERIC_SCHEMA = "baton.alert 1"
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
GENERIC_JSON_SCHEMA_PATH = SCHEMA_DIR / "baton_alert_batch_v1.schema.json"
ZTF_AVRO_SCHEMA_PATH = SCHEMA_DIR / "ztf_alert_v4.02.avsc"

_CUTOUT_KEYS = ("cutoutDifference", "cutoutScience", "cutoutTemplate")
_ZTF_BANDS = {1: "g", 2: "r", 3: "i"}
_LN10_OVER_2P5 = math.log(10.0) / 2.5
_MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)
_MJD_MIN = 15020.0  # 1900-01-01T00:00Z
_MJD_MAX = 88069.0  # 2100-01-01T00:00Z
_TIME_MIN = _MJD_EPOCH + timedelta(days=_MJD_MIN)
_TIME_MAX = _MJD_EPOCH + timedelta(days=_MJD_MAX)
_JD_MINUS_MJD = 2400000.5

# TAI - UTC in seconds from each UTC date (MJD) on; IERS Bulletin C, no leap second since
# 2017-01-01 (tests check this table against ERFA's). Before 1972 the offset was not an
# integer; 10 s is used there, an error of under 10 s for data nobody sends as alerts.
_LEAP_SECONDS: tuple[tuple[int, int], ...] = (
    (41317, 10), (41499, 11), (41683, 12), (42048, 13), (42413, 14), (42778, 15),
    (43144, 16), (43509, 17), (43874, 18), (44239, 19), (44786, 20), (45151, 21),
    (45516, 22), (46247, 23), (47161, 24), (47892, 25), (48257, 26), (48804, 27),
    (49169, 28), (49534, 29), (50083, 30), (50630, 31), (51179, 32), (53736, 33),
    (54832, 34), (56109, 35), (57204, 36), (57754, 37),
)  # fmt: skip
# The same instants on the TAI scale, for bisecting TAI dates.
_LEAP_TAI_STARTS = [mjd + dat / 86400.0 for mjd, dat in _LEAP_SECONDS]

_RUBIN_NAME = re.compile(r"^lsst\.v(\d+)_(\d+)\.alert$")


class PacketError(ValueError):
    """The body as a whole cannot be parsed; the message says why."""


@dataclass(frozen=True, slots=True)
class Classification:
    """A broker or survey classifier's score for one class, with its provenance."""

    classifier: str
    version: str
    label: str
    score: float


@dataclass(frozen=True, slots=True)
class PhotPoint:
    """An earlier measurement of the alert's object (UTC time, AB mag, flux in nJy).

    ``forced`` marks forced photometry at the object's position (Rubin
    ``prvDiaForcedSources``) as opposed to a detection.
    """

    source_id: str
    time: datetime
    band: str
    mag: float | None
    mag_err: float | None
    flux: float | None
    flux_err: float | None
    forced: bool = False


@dataclass(frozen=True, slots=True)
class AlertIn:
    """One validated alert.

    ``time`` is an aware UTC datetime; ``ra``/``dec`` are ICRS degrees; ``mag`` is AB,
    ``flux`` is nJy; at least one of ``mag`` and ``flux`` is a finite number. ``schema``
    names the format and version the alert came in (provenance); ``raw`` is the original
    record, JSON-able, without cutout stamps.
    """

    broker: str
    alert_id: str
    object_id: str
    time: datetime
    ra: float
    dec: float
    band: str
    mag: float | None
    mag_err: float | None
    flux: float | None
    flux_err: float | None
    classifications: tuple[Classification, ...]
    history: tuple[PhotPoint, ...]
    schema: str
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AlertError:
    """Why the alert at ``index`` in the batch was rejected; ``message`` starts with ``field``."""

    index: int
    alert_id: str | None
    field: str | None
    message: str


@dataclass(slots=True)
class ParsedBatch:
    """The good alerts of a batch, in order, and one error per rejected alert."""

    alerts: list[AlertIn]
    errors: list[AlertError]


class _Invalid(Exception):
    """One alert is invalid; ``field`` names the culprit."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.message = f"{field}: {problem}"


# --------------------------------------------------------------------------------------
# Entry point


def parse_alert_batch(*, body: bytes, content_type: str, broker: str | None = None) -> ParsedBatch:
    """Parse one pushed batch into validated alerts and per-alert errors.

    ``broker`` is the authenticated sender's name: it becomes each alert's ``broker``; a
    generic-JSON alert naming a different broker is rejected. Without it, a JSON alert
    must name its broker and Avro alerts get the survey's name (``"rubin"``, ``"ztf"``).
    Raises :class:`PacketError` when the body as a whole is unusable (see module doc).
    """
    if not isinstance(body, bytes | bytearray | memoryview):
        raise PacketError(f"body must be bytes, got {type(body).__name__}")
    if len(body) > MAX_BATCH_BYTES:
        raise PacketError(f"body is {len(body)} bytes; the limit is {MAX_BATCH_BYTES} bytes (64 MiB)")
    body = bytes(body)
    if not body:
        raise PacketError("body is empty")
    if broker is not None:
        broker = broker.strip() or None
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type in JSON_CONTENT_TYPES:
        return _parse_json_batch(body, broker)
    if media_type in AVRO_CONTENT_TYPES:
        return _parse_avro_batch(body, broker)
    supported = ", ".join(sorted(JSON_CONTENT_TYPES | AVRO_CONTENT_TYPES))
    raise PacketError(f"unsupported content type {content_type!r}; expected one of: {supported}")


# --------------------------------------------------------------------------------------
# Shared validation


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _number(value: object, field: str) -> float:
    if isinstance(value, float):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            raise _Invalid(field, "number too large") from None
    else:
        raise _Invalid(field, f"must be a number, got {_json_type(value)}")
    if not math.isfinite(number):
        raise _Invalid(field, f"must be finite, got {number!r}")
    return number


def _error(value: object, field: str) -> float:
    number = _number(value, field)
    if number < 0.0:
        raise _Invalid(field, f"must be >= 0, got {number!r}")
    return number


def _optional_error(value: object, field: str) -> float | None:
    """A survey's error column: null or NaN means "not measured" (None); negative is invalid."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return _error(value, field)


def _identifier(value: object, field: str) -> str:
    if isinstance(value, str):
        text = value.strip()
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif value is None:
        raise _Invalid(field, "missing required field")
    else:
        raise _Invalid(field, f"must be a string or an integer, got {_json_type(value)}")
    if not text:
        raise _Invalid(field, "must not be empty")
    if len(text) > MAX_ID_LENGTH:
        raise _Invalid(field, f"longer than {MAX_ID_LENGTH} characters")
    return text


def _name(value: object, field: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        if value is None:
            raise _Invalid(field, "missing required field")
        raise _Invalid(field, f"must be a string, got {_json_type(value)}")
    text = value.strip()
    if not text and not allow_empty:
        raise _Invalid(field, "must not be empty")
    if len(text) > MAX_NAME_LENGTH:
        raise _Invalid(field, f"longer than {MAX_NAME_LENGTH} characters")
    return text


def _ra(value: object, field: str) -> float:
    ra = _number(value, field)
    if not 0.0 <= ra < 360.0:
        raise _Invalid(field, f"must be in [0, 360) deg, got {ra!r}")
    return ra


def _dec(value: object, field: str) -> float:
    dec = _number(value, field)
    if not -90.0 <= dec <= 90.0:
        raise _Invalid(field, f"must be in [-90, 90] deg, got {dec!r}")
    return dec


def _check_mjd(mjd: float, field: str, scale: str) -> None:
    if not _MJD_MIN <= mjd < _MJD_MAX:
        raise _Invalid(
            field,
            f"{mjd!r} is not a plausible MJD ({scale}); expected {_MJD_MIN:.0f} to {_MJD_MAX:.0f} "
            "(years 1900 to 2100)",
        )


def _mjd_to_utc(mjd: float, field: str) -> datetime:
    _check_mjd(mjd, field, "UTC")
    return _MJD_EPOCH + timedelta(days=mjd)


def _jd_to_utc(jd: float, field: str) -> datetime:
    if not _MJD_MIN <= jd - _JD_MINUS_MJD < _MJD_MAX:
        raise _Invalid(
            field,
            f"{jd!r} is not a plausible JD (UTC); expected {_MJD_MIN + _JD_MINUS_MJD:.1f} to "
            f"{_MJD_MAX + _JD_MINUS_MJD:.1f} (years 1900 to 2100)",
        )
    return _MJD_EPOCH + timedelta(days=jd - _JD_MINUS_MJD)


def _tai_mjd_to_utc(mjd_tai: float, field: str) -> datetime:
    """UTC datetime of a TAI Modified Julian Date (leap seconds from ``_LEAP_SECONDS``)."""
    _check_mjd(mjd_tai, field, "TAI")
    index = bisect.bisect_right(_LEAP_TAI_STARTS, mjd_tai) - 1
    tai_minus_utc = _LEAP_SECONDS[max(index, 0)][1]
    return _MJD_EPOCH + timedelta(days=mjd_tai - tai_minus_utc / 86400.0)


def _iso_to_utc(value: object, field: str) -> datetime:
    if not isinstance(value, str):
        raise _Invalid(field, f"must be an ISO-8601 string, got {_json_type(value)} (use 'mjd' for MJD)")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(field, f"{value!r} is not an ISO-8601 date-time") from None
    if moment.tzinfo is None:
        raise _Invalid(field, f"{value!r} has no UTC offset; end it with 'Z' or '+00:00'")
    moment = moment.astimezone(UTC)
    if not _TIME_MIN <= moment < _TIME_MAX:
        raise _Invalid(field, f"{value!r} is outside 1900 to 2100")
    return moment


def _flux_to_mag(flux: float, flux_err: float | None) -> tuple[float | None, float | None]:
    """AB mag (and error) of a difference flux in nJy; ``(None, None)`` when not positive."""
    if flux <= 0.0:
        return None, None
    mag = AB_ZERO_POINT_NJY - 2.5 * math.log10(flux)
    if not MAG_MIN <= mag <= MAG_MAX:
        return None, None
    return mag, (None if flux_err is None else flux_err / (flux * _LN10_OVER_2P5))


def _mag_to_flux(mag: float, mag_err: float) -> tuple[float, float]:
    flux = 10.0 ** (-0.4 * (mag - AB_ZERO_POINT_NJY))
    return flux, flux * mag_err * _LN10_OVER_2P5


def _check_mag(mag: float, field: str) -> float:
    if not MAG_MIN <= mag <= MAG_MAX:
        raise _Invalid(field, f"must be in [{MAG_MIN:g}, {MAG_MAX:g}] mag, got {mag!r}")
    return mag


_JSON_SCALARS = (str, int, bool, type(None))


def _make_jsonable(container: dict[str, Any] | list[Any]) -> None:
    """Make a decoded Avro record strict JSON in place.

    Bytes are base64'd, NaN/inf become None, values of Avro logical types become strings
    (timestamps and dates in ISO-8601, decimals and UUIDs as text).

    In place because copying every field of a Rubin packet would double the cost of
    decoding it; the record is ours (fresh from the decoder).
    """
    # Keys of a dict, indexes of a list: either way ``target[key] = ...`` replaces in place.
    target = cast(dict[Any, Any], container)
    items = container.items() if isinstance(container, dict) else enumerate(container)
    for key, value in items:
        kind = type(value)
        if kind is float:
            if value - value != 0.0:  # NaN or +-inf, without a function call
                target[key] = None
        elif kind is dict or kind is list:
            _make_jsonable(value)
        elif kind is bytes:
            target[key] = base64.b64encode(value).decode("ascii")
        elif kind not in _JSON_SCALARS:
            isoformat = getattr(value, "isoformat", None)
            target[key] = isoformat() if isoformat is not None else str(value)


def _raw_without_cutouts(record: dict[str, Any]) -> dict[str, Any]:
    """The decoded record, minus cutout stamps, made strict JSON (mutates ``record``)."""
    for key in _CUTOUT_KEYS:
        record.pop(key, None)
    _make_jsonable(record)
    return record


def _collect(
    records: Iterator[tuple[int, Any]],
    parse_one: Callable[[Any], AlertIn],
    alert_id_of: Callable[[Any], str | None],
) -> ParsedBatch:
    """Run ``parse_one`` on each record, collecting alerts, errors and duplicate ids."""
    alerts: list[AlertIn] = []
    errors: list[AlertError] = []
    seen: dict[str, int] = {}
    for index, record in records:
        try:
            alert = parse_one(record)
        except _Invalid as invalid:
            errors.append(AlertError(index, alert_id_of(record), invalid.field, invalid.message))
            continue
        first = seen.get(alert.alert_id)
        if first is not None:
            message = f"alert_id: duplicate of the alert at index {first} in this batch"
            errors.append(AlertError(index, alert.alert_id, "alert_id", message))
            continue
        seen[alert.alert_id] = index
        alerts.append(alert)
    return ParsedBatch(alerts=alerts, errors=errors)


# --------------------------------------------------------------------------------------
# Generic JSON

_GENERIC_FIELDS = frozenset(
    {
        "alert_id", "object_id", "broker", "ra", "dec", "time", "mjd", "band",
        "mag", "mag_err", "flux", "flux_err", "classifications", "history", "extra",
    }
)  # fmt: skip
_HISTORY_FIELDS = frozenset({"source_id", "time", "mjd", "band", "mag", "mag_err", "flux", "flux_err"})
_CLASSIFICATION_FIELDS = frozenset({"classifier", "version", "class", "score"})


def _parse_json_batch(body: bytes, sender: str | None) -> ParsedBatch:
    try:
        document = json.loads(body)
    except UnicodeDecodeError as exc:
        raise PacketError(f"body is not UTF-8 text: {exc}") from None
    except json.JSONDecodeError as exc:
        raise PacketError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise PacketError("body is not valid JSON: nested too deeply") from None
    if type(document) is not dict:
        raise PacketError(f'body must be a JSON object {{"alerts": [...]}}, got {_json_type(document)}')
    unknown = sorted(set(document) - {"alerts"})
    if unknown:
        raise PacketError(f"unknown top-level field {unknown[0]!r}; the batch holds only 'alerts'")
    alerts = document.get("alerts")
    if type(alerts) is not list:
        raise PacketError(f"'alerts' must be an array, got {_json_type(alerts)}")

    def alert_id_of(item: Any) -> str | None:
        if type(item) is dict:
            value = item.get("alert_id")
            if type(value) is str and 0 < len(value.strip()) <= MAX_ID_LENGTH:
                return value.strip()
            if type(value) is int:
                return str(value)
        return None

    return _collect(enumerate(alerts), lambda item: _generic_alert(item, sender), alert_id_of)


def _generic_photometry(
    item: dict[str, Any], prefix: str
) -> tuple[float | None, float | None, float | None, float | None]:
    mag = mag_err = flux = flux_err = None
    raw_mag, raw_flux = item.get("mag"), item.get("flux")
    if raw_mag is not None or "mag_err" in item:
        mag = _check_mag(_number(raw_mag, prefix + "mag"), prefix + "mag")
        if item.get("mag_err") is None:
            raise _Invalid(prefix + "mag_err", "missing: required with mag")
        mag_err = _error(item["mag_err"], prefix + "mag_err")
    if raw_flux is not None or "flux_err" in item:
        flux = _number(raw_flux, prefix + "flux")
        if item.get("flux_err") is None:
            raise _Invalid(prefix + "flux_err", "missing: required with flux")
        flux_err = _error(item["flux_err"], prefix + "flux_err")
    if mag is None and flux is None:
        raise _Invalid(prefix + "mag", "missing: give mag and mag_err, or flux and flux_err")
    if flux is None:
        assert mag is not None and mag_err is not None  # noqa: S101 -- set together above
        flux, flux_err = _mag_to_flux(mag, mag_err)
    elif mag is None:
        mag, mag_err = _flux_to_mag(flux, flux_err)
    return mag, mag_err, flux, flux_err


def _generic_time(item: dict[str, Any], prefix: str) -> datetime:
    has_time, has_mjd = item.get("time") is not None, item.get("mjd") is not None
    if has_time and has_mjd:
        raise _Invalid(prefix + "time", "give either time or mjd, not both")
    if has_time:
        return _iso_to_utc(item["time"], prefix + "time")
    if has_mjd:
        return _mjd_to_utc(_number(item["mjd"], prefix + "mjd"), prefix + "mjd")
    raise _Invalid(prefix + "time", "missing: give time (ISO-8601 UTC) or mjd")


def _check_finite_tree(value: Any, field: str) -> None:
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise _Invalid(field, f"must be finite, got {value!r} (JSON has no NaN or Infinity)")
    elif kind is dict:
        for key, item in value.items():
            _check_finite_tree(item, f"{field}.{key}")
    elif kind is list:
        for position, item in enumerate(value):
            _check_finite_tree(item, f"{field}[{position}]")


def _generic_alert(item: Any, sender: str | None) -> AlertIn:
    if type(item) is not dict:
        raise _Invalid("alert", f"must be a JSON object, got {_json_type(item)}")
    if not item.keys() <= _GENERIC_FIELDS:
        unknown = sorted(item.keys() - _GENERIC_FIELDS)[0]
        raise _Invalid(unknown, "unknown field (put broker-specific data under 'extra')")
    alert_id = _identifier(item.get("alert_id"), "alert_id")
    object_id = _identifier(item.get("object_id"), "object_id")

    claimed = item.get("broker")
    if claimed is not None:
        claimed = _name(claimed, "broker")
        if sender is not None and claimed != sender:
            raise _Invalid("broker", f"{claimed!r} does not match the sending broker {sender!r}")
    broker = sender or claimed
    if not broker:
        raise _Invalid("broker", "missing: name the broker in the alert or send as an authenticated broker")

    if "ra" not in item:
        raise _Invalid("ra", "missing required field")
    ra = _ra(item["ra"], "ra")
    if "dec" not in item:
        raise _Invalid("dec", "missing required field")
    dec = _dec(item["dec"], "dec")
    time = _generic_time(item, "")
    band = _name(item.get("band"), "band")
    mag, mag_err, flux, flux_err = _generic_photometry(item, "")

    classifications: tuple[Classification, ...] = ()
    raw_classes = item.get("classifications")
    if raw_classes is not None:
        if type(raw_classes) is not list:
            raise _Invalid("classifications", f"must be an array, got {_json_type(raw_classes)}")
        classifications = tuple(
            _generic_classification(entry, f"classifications[{position}].")
            for position, entry in enumerate(raw_classes)
        )

    history: tuple[PhotPoint, ...] = ()
    raw_history = item.get("history")
    if raw_history is not None:
        if type(raw_history) is not list:
            raise _Invalid("history", f"must be an array, got {_json_type(raw_history)}")
        history = tuple(
            _generic_history_point(entry, f"history[{position}].")
            for position, entry in enumerate(raw_history)
        )

    extra = item.get("extra")
    if extra is not None:
        if type(extra) is not dict:
            raise _Invalid("extra", f"must be an object, got {_json_type(extra)}")
        _check_finite_tree(extra, "extra")

    return AlertIn(
        broker=broker,
        alert_id=alert_id,
        object_id=object_id,
        time=time,
        ra=ra,
        dec=dec,
        band=band,
        mag=mag,
        mag_err=mag_err,
        flux=flux,
        flux_err=flux_err,
        classifications=classifications,
        history=history,
        schema=GENERIC_SCHEMA,
        raw=item,
    )


def _generic_classification(entry: Any, prefix: str) -> Classification:
    if type(entry) is not dict:
        raise _Invalid(prefix.rstrip("."), f"must be an object, got {_json_type(entry)}")
    if not entry.keys() <= _CLASSIFICATION_FIELDS:
        unknown = sorted(entry.keys() - _CLASSIFICATION_FIELDS)[0]
        raise _Invalid(prefix + unknown, "unknown field")
    return Classification(
        classifier=_name(entry.get("classifier"), prefix + "classifier"),
        version=_name(entry.get("version"), prefix + "version", allow_empty=True),
        label=_name(entry.get("class"), prefix + "class"),
        score=_number(entry.get("score"), prefix + "score"),
    )


def _generic_history_point(entry: Any, prefix: str) -> PhotPoint:
    if type(entry) is not dict:
        raise _Invalid(prefix.rstrip("."), f"must be an object, got {_json_type(entry)}")
    if not entry.keys() <= _HISTORY_FIELDS:
        unknown = sorted(entry.keys() - _HISTORY_FIELDS)[0]
        raise _Invalid(prefix + unknown, "unknown field")
    source_id = _identifier(entry.get("source_id"), prefix + "source_id")
    time = _generic_time(entry, prefix)
    band = _name(entry.get("band"), prefix + "band")
    mag, mag_err, flux, flux_err = _generic_photometry(entry, prefix)
    return PhotPoint(source_id, time, band, mag, mag_err, flux, flux_err)


# --------------------------------------------------------------------------------------
# Avro framing


def _read_long(buffer: bytes, position: int) -> tuple[int, int]:
    """Decode one zig-zag varint Avro long at ``position``; return (value, next position)."""
    shift = result = 0
    while True:
        if position >= len(buffer):
            raise PacketError("truncated Avro data (varint runs past the end of the body)")
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7
        if shift > 63:
            raise PacketError("corrupt Avro data (varint longer than 10 bytes)")


_AVRO_MAGIC = b"Obj\x01"
_HEADER_SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "org.apache.avro.file.Header",
        "fields": [
            {"name": "magic", "type": {"type": "fixed", "name": "Magic", "size": 4}},
            {"name": "meta", "type": {"type": "map", "values": "bytes"}},
            {"name": "sync", "type": {"type": "fixed", "name": "Sync", "size": 16}},
        ],
    }
)


@functools.lru_cache(maxsize=32)
def _parsed_writer_schema(schema_json: bytes) -> dict[str, Any]:
    # Parsing a Rubin schema costs ~0.3 ms, more than decoding the alert; brokers send a
    # handful of distinct schemas, so a small cache turns one-alert containers cheap.
    return cast(dict[str, Any], fastavro.parse_schema(json.loads(schema_json)))


def _schema_fullname(schema: dict[str, Any]) -> str:
    name = str(schema.get("name", ""))
    namespace = schema.get("namespace")
    return f"{namespace}.{name}" if namespace and "." not in name else name


def _parse_avro_batch(body: bytes, broker: str | None) -> ParsedBatch:
    if body.startswith(_AVRO_MAGIC):
        schema, records = _read_container(body)
    elif body[0] == 0 and len(body) >= 5:
        schema, records = _read_confluent(body)
    else:
        raise PacketError(
            "body is neither an Avro object container file (magic 'Obj\\x01') nor a Confluent-framed "
            "Avro message (magic byte 0x00 and a 4-byte schema id)"
        )
    fullname = _schema_fullname(schema)
    rubin = _RUBIN_NAME.match(fullname)
    if rubin:
        version = f"{int(rubin.group(1))}.{int(rubin.group(2))}"
        return _collect(
            enumerate(records),
            lambda record: _rubin_alert(record, version, broker or "rubin"),
            _rubin_alert_id,
        )
    if fullname == "ztf.alert":
        return _collect(enumerate(records), lambda record: _ztf_alert(record, broker or "ztf"), _ztf_alert_id)
    raise PacketError(
        f"unsupported Avro schema {fullname!r}; expected lsst.v<major>_<minor>.alert or ztf.alert"
    )


def _read_container(body: bytes) -> tuple[dict[str, Any], list[Any]]:
    """Decode an Avro object container file; the parsed writer schema is cached by its text."""
    stream = io.BytesIO(body)
    try:
        header = fastavro.schemaless_reader(stream, _HEADER_SCHEMA, None)
    except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError, ... on garbage
        raise PacketError(f"cannot read the Avro container header: {exc or type(exc).__name__}") from None
    meta = cast(dict[str, bytes], cast(dict[str, Any], header)["meta"])
    codec = meta.get("avro.codec", b"null").decode("ascii", "replace")
    schema_json = meta.get("avro.schema")
    if schema_json is None:
        raise PacketError("Avro container header has no avro.schema")
    try:
        schema = _parsed_writer_schema(schema_json)
    except Exception as exc:
        raise PacketError(f"Avro container carries an invalid schema: {exc}") from None
    if codec not in ("null", "deflate"):
        return schema, _read_container_generic(body)

    sync = cast(bytes, cast(dict[str, Any], header)["sync"])
    records: list[Any] = []
    position = stream.tell()
    inflated_total = 0
    while position < len(body):
        count, position = _read_long(body, position)
        size, position = _read_long(body, position)
        if count < 0 or size < 0 or position + size + 16 > len(body):
            raise PacketError(f"truncated Avro container (block at byte {position} runs past the end)")
        block = body[position : position + size]
        position += size
        if body[position : position + 16] != sync:
            raise PacketError(f"corrupt Avro container (bad sync marker at byte {position})")
        position += 16
        if codec == "deflate":
            inflater = zlib.decompressobj(-15)
            try:
                block = inflater.decompress(block, MAX_DECOMPRESSED_BYTES - inflated_total)
            except zlib.error as exc:
                raise PacketError(f"corrupt deflate block in Avro container: {exc}") from None
            if inflater.unconsumed_tail:
                raise PacketError(f"Avro container inflates past {MAX_DECOMPRESSED_BYTES} bytes")
            inflated_total += len(block)
        records.extend(_decode_block(block, count, schema))
    return schema, records


def _decode_block(block: bytes, count: int, schema: dict[str, Any]) -> list[Any]:
    stream = io.BytesIO(block)
    try:
        records = [fastavro.schemaless_reader(stream, schema, None) for _ in range(count)]
    except Exception as exc:
        raise PacketError(f"cannot decode Avro record: {exc or type(exc).__name__}") from None
    if stream.tell() != len(block):
        raise PacketError("corrupt Avro container (block longer than its records)")
    return records


def _read_container_generic(body: bytes) -> list[Any]:
    try:
        return list(fastavro.reader(io.BytesIO(body)))
    except Exception as exc:
        raise PacketError(f"cannot decode Avro container: {exc or type(exc).__name__}") from None


@functools.cache
def _rubin_schema_root() -> Path | None:
    # find_spec locates the package without importing it (its __init__ costs ~0.2 s).
    spec = find_spec("lsst.alert.packet")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "schema"


def rubin_schema_ids() -> dict[int, str]:
    """Confluent schema ids of the Rubin alert schemas installed, e.g. ``{1101: "11.1"}``."""
    root = _rubin_schema_root()
    found: dict[int, str] = {}
    if root is None or not root.is_dir():
        return found
    for path in root.glob("*/*/lsst.v*_*.alert.avsc"):
        match = re.match(r"^lsst\.v(\d+)_(\d+)\.alert\.avsc$", path.name)
        if match:
            major, minor = int(match.group(1)), int(match.group(2))
            found[100 * major + minor] = f"{major}.{minor}"
    return dict(sorted(found.items()))


@functools.lru_cache(maxsize=32)
def _rubin_schema(schema_id: int) -> dict[str, Any]:
    major, minor = divmod(schema_id, 100)
    root = _rubin_schema_root()
    path = None if root is None else root / str(major) / str(minor) / f"lsst.v{major}_{minor}.alert.avsc"
    if path is None or not path.is_file():
        known = ", ".join(str(key) for key in rubin_schema_ids()) or "none (is lsst-alert-packet installed?)"
        raise PacketError(f"unknown Rubin alert schema id {schema_id}; known ids: {known}")
    return cast(dict[str, Any], fastavro.schema.load_schema(str(path)))


def _read_confluent(body: bytes) -> tuple[dict[str, Any], list[Any]]:
    """Decode one or more concatenated Confluent-framed Rubin messages (same schema)."""
    first_id = int.from_bytes(body[1:5], "big")
    schema = _rubin_schema(first_id)
    records: list[Any] = []
    stream = io.BytesIO(body)
    position = 0
    while position < len(body):
        if body[position] != 0 or position + 5 > len(body):
            raise PacketError(
                f"bad Confluent frame at byte {position} (expected magic byte 0x00 and a schema id)"
            )
        schema_id = int.from_bytes(body[position + 1 : position + 5], "big")
        if schema_id != first_id:
            raise PacketError(
                f"mixed schema ids in one body ({first_id} then {schema_id} at byte {position})"
            )
        stream.seek(position + 5)
        try:
            records.append(fastavro.schemaless_reader(stream, schema, None))
        except Exception as exc:
            raise PacketError(
                f"cannot decode Confluent-framed Avro message at byte {position}: {exc or type(exc).__name__}"
            ) from None
        position = stream.tell()
    return schema, records


# --------------------------------------------------------------------------------------
# Rubin


def _first_present(record: dict[str, Any], *keys: str) -> tuple[str, Any]:
    for key in keys:
        if key in record:
            return key, record[key]
    return keys[0], None


def _rubin_alert_id(record: Any) -> str | None:
    source = record.get("diaSource") if isinstance(record, dict) else None
    if isinstance(source, dict) and source.get("diaSourceId") is not None:
        return str(source["diaSourceId"])
    return None


_RUBIN_POINT_KEYS = ("psfFlux", "psfFluxErr", "midpointMjdTai", "band")  # schema 5.0 on
_RUBIN_POINT_KEYS_V3 = ("psFlux", "psFluxErr", "midPointTai", "filterName")  # 3.0 and 4.0


def _rubin_point(
    source: dict[str, Any], keys: tuple[str, str, str, str], id_key: str, *, forced: bool, prefix: str
) -> PhotPoint | None:
    """A history point from a diaSource or diaForcedSource; None when it has no flux."""
    flux_key, err_key, time_key, band_key = keys
    flux = source.get(flux_key)
    if flux is None or flux - flux != 0.0:  # null or NaN/inf: not measured
        return None
    flux_err, mjd, band, source_id = (
        source.get(err_key),
        source.get(time_key),
        source.get(band_key),
        source.get(id_key),
    )
    if not (  # the common, valid case goes straight through; anything else gets checked below
        type(mjd) is float
        and _MJD_MIN <= mjd < _MJD_MAX
        and type(source_id) is int
        and type(band) is str
        and 0 < len(band) <= MAX_NAME_LENGTH
        and (flux_err is None or (type(flux_err) is float and flux_err >= 0.0))
    ):
        flux_err = _optional_error(flux_err, prefix + err_key)
        mjd = _number(mjd, prefix + time_key)
        _check_mjd(mjd, prefix + time_key, "TAI")
        band = _name(band, prefix + band_key)
        source_id = _identifier(source_id, prefix + id_key)
    tai_minus_utc = _LEAP_SECONDS[max(bisect.bisect_right(_LEAP_TAI_STARTS, mjd) - 1, 0)][1]
    mag, mag_err = _flux_to_mag(flux, flux_err)
    return PhotPoint(
        str(source_id),
        _MJD_EPOCH + timedelta(days=mjd - tai_minus_utc / 86400.0),
        band.strip(),
        mag,
        mag_err,
        float(flux),
        flux_err,
        forced,
    )


def _rubin_alert(record: dict[str, Any], version: str, broker: str) -> AlertIn:
    source = record.get("diaSource")
    if not isinstance(source, dict):
        raise _Invalid("diaSource", "missing")
    alert_id = _identifier(source.get("diaSourceId"), "diaSource.diaSourceId")

    object_id = source.get("diaObjectId")
    if object_id is None and isinstance(record.get("diaObject"), dict):
        object_id = record["diaObject"].get("diaObjectId")
    if object_id is not None:
        object_id = str(object_id)
    elif source.get("ssObjectId") is not None:
        object_id = f"ssObject:{source['ssObjectId']}"
    else:
        raise _Invalid("diaSource.diaObjectId", "missing: the source has neither a diaObject nor an ssObject")

    ra = _ra(source.get("ra"), "diaSource.ra")
    dec_key, dec = _first_present(source, "dec", "decl")
    dec = _dec(dec, "diaSource." + dec_key)
    time_key, mjd = _first_present(source, "midpointMjdTai", "midPointTai")
    time = _tai_mjd_to_utc(_number(mjd, "diaSource." + time_key), "diaSource." + time_key)
    band_key, band = _first_present(source, "band", "filterName")
    band = _name(band, "diaSource." + band_key)
    flux_key, flux = _first_present(source, "psfFlux", "psFlux")
    if flux is None:
        raise _Invalid(f"diaSource.{flux_key}", "missing: the alert has no flux")
    flux = _number(flux, "diaSource." + flux_key)
    err_key, flux_err = _first_present(source, "psfFluxErr", "psFluxErr")
    flux_err = _optional_error(flux_err, "diaSource." + err_key)
    mag, mag_err = _flux_to_mag(flux, flux_err)

    classifications: tuple[Classification, ...] = ()
    reliability = source.get("reliability")
    if reliability is not None and math.isfinite(reliability):
        model_version = source.get("reliabilityVersion") or version
        classifications = (
            Classification("rubin-reliability", str(model_version), "real", float(reliability)),
        )

    keys = _RUBIN_POINT_KEYS_V3 if "psFlux" in source else _RUBIN_POINT_KEYS
    history: list[PhotPoint] = []
    for key, id_key, forced in (
        ("prvDiaSources", "diaSourceId", False),
        ("prvDiaForcedSources", "diaForcedSourceId", True),
    ):
        for position, previous in enumerate(record.get(key) or ()):
            point = _rubin_point(previous, keys, id_key, forced=forced, prefix=f"{key}[{position}].")
            if point is not None:
                history.append(point)

    return AlertIn(
        broker=broker,
        alert_id=alert_id,
        object_id=object_id,
        time=time,
        ra=ra,
        dec=dec,
        band=band,
        mag=mag,
        mag_err=mag_err,
        flux=flux,
        flux_err=flux_err,
        classifications=classifications,
        history=tuple(history),
        schema=f"lsst.alert {version}",
        raw=_raw_without_cutouts(record),
    )


# --------------------------------------------------------------------------------------
# ZTF


def _ztf_alert_id(record: Any) -> str | None:
    if isinstance(record, dict) and record.get("candid") is not None:
        return str(record["candid"])
    return None


def _ztf_band(fid: object, field: str) -> str:
    band = _ZTF_BANDS.get(fid) if type(fid) is int else None
    if band is None:
        raise _Invalid(field, f"unknown filter id {fid!r} (expected 1=g, 2=r, 3=i)")
    return band


def _ztf_photometry(
    candidate: dict[str, Any], prefix: str
) -> tuple[float | None, float | None, float, float]:
    mag = _check_mag(_number(candidate.get("magpsf"), prefix + "magpsf"), prefix + "magpsf")
    mag_err = _error(candidate.get("sigmapsf"), prefix + "sigmapsf")
    flux, flux_err = _mag_to_flux(mag, mag_err)
    if str(candidate.get("isdiffpos", "t")).lower() in ("f", "0"):
        # magpsf measures |flux| of a negative (ref minus sci) subtraction: a fading source.
        return None, None, -flux, flux_err
    return mag, mag_err, flux, flux_err


def _ztf_alert(record: dict[str, Any], broker: str) -> AlertIn:
    candidate = record.get("candidate")
    if not isinstance(candidate, dict):
        raise _Invalid("candidate", "missing")
    alert_id = _identifier(record.get("candid"), "candid")
    object_id = _identifier(record.get("objectId"), "objectId")
    schema_version = str(record.get("schemavsn") or "unknown")
    ra = _ra(candidate.get("ra"), "candidate.ra")
    dec = _dec(candidate.get("dec"), "candidate.dec")
    time = _jd_to_utc(_number(candidate.get("jd"), "candidate.jd"), "candidate.jd")
    band = _ztf_band(candidate.get("fid"), "candidate.fid")
    mag, mag_err, flux, flux_err = _ztf_photometry(candidate, "candidate.")

    classifications = []
    for key, classifier in (("rb", "ztf-rb"), ("drb", "ztf-drb")):
        score = candidate.get(key)
        if score is not None and math.isfinite(score):
            model_version = candidate.get(f"{key}version") or schema_version
            classifications.append(Classification(classifier, str(model_version), "real", float(score)))

    history = []
    for position, previous in enumerate(record.get("prv_candidates") or ()):
        if previous.get("candid") is None or previous.get("magpsf") is None:
            continue  # a non-detection: only an upper limit (diffmaglim)
        prefix = f"prv_candidates[{position}]."
        p_mag, p_mag_err, p_flux, p_flux_err = _ztf_photometry(previous, prefix)
        history.append(
            PhotPoint(
                source_id=str(previous["candid"]),
                time=_jd_to_utc(_number(previous.get("jd"), prefix + "jd"), prefix + "jd"),
                band=_ztf_band(previous.get("fid"), prefix + "fid"),
                mag=p_mag,
                mag_err=p_mag_err,
                flux=p_flux,
                flux_err=p_flux_err,
            )
        )

    return AlertIn(
        broker=broker,
        alert_id=alert_id,
        object_id=object_id,
        time=time,
        ra=ra,
        dec=dec,
        band=band,
        mag=mag,
        mag_err=mag_err,
        flux=flux,
        flux_err=flux_err,
        classifications=tuple(classifications),
        history=tuple(history),
        schema=f"ztf.alert {schema_version}",
        raw=_raw_without_cutouts(record),
    )
