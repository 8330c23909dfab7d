"""A client of a science archive (LCO's archive API: frames by request id), and photometry read from a reduced frame.

- `ArchiveClient` lists a request's frames (``GET frames/?request_id=&reduction_level=``,
  following the archive's ``next`` links) and downloads them. Typed errors as the
  portal client's: `ArchiveError` permanent (4xx, a malformed answer),
  `ArchiveUnavailable` transient (timeout, connection error, 5xx, 429, after the
  client's retries); every call has a timeout.
- `frame_photometry` and `frame_limit` are pure: they read a BANZAI-reduced FITS
  frame's ``CAT`` extension and zeropoint (``L1ZP``; ``mag = -2.5 log10(flux /
  EXPTIME) + L1ZP``) and give the target's magnitude, or the frame's 5-sigma
  limit when the target is not in the catalogue.

The archive works against LCO's (``https://archive-api.lco.global/``, the same
token as the portal) and Baton's simulated one (``/sim/archive/``).
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from django.conf import settings

if TYPE_CHECKING:
    from observatories.models import Facility

logger = logging.getLogger(__name__)

REDUCED = 91  # BANZAI's reduction level
MAX_PAGES = 1000
MAG_PER_LN = 2.5 / math.log(10.0)
# Johnson-Cousins filters are calibrated to Vega; the Sloan-like ones (BANZAI: gp, rp, ip, zs against ATLAS-Refcat2) to AB.
VEGA_BANDS = frozenset({"U", "B", "V", "R", "I"})


class ArchiveError(Exception):
    """A permanent failure: the archive refused the call (4xx) or answered something unusable; retrying will not help."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ArchiveUnavailable(Exception):
    """A transient failure that outlasted the client's retries (timeout, connection error, 5xx, 429): retry later."""


@dataclass(frozen=True)
class ArchiveFrame:
    """One frame as the archive lists it (its current field names, else the older upper-case ones)."""

    id: int
    basename: str
    filename: str
    url: str
    request_id: str
    observation_date: datetime | None
    filter: str
    exposure_time: float | None
    instrument: str
    site: str
    telescope: str
    target_name: str
    reduction_level: int | None
    proposal_id: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _either(raw: dict[str, Any], current: str, legacy: str) -> Any:
    value = raw.get(current)
    return raw.get(legacy) if value in (None, "") else value


def frame_from_json(raw: Any) -> ArchiveFrame:
    """An archive frame from its JSON; `ArchiveError` if it lacks an id or a download URL."""
    try:
        frame_id, url = int(raw["id"]), str(raw["url"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArchiveError(f"malformed frame: {raw!r:.200}") from exc
    exposure = _either(raw, "exposure_time", "EXPTIME")
    level = _either(raw, "reduction_level", "RLEVEL")
    basename = str(raw.get("basename") or "")
    return ArchiveFrame(
        id=frame_id, basename=basename, filename=str(raw.get("filename") or f"{basename or frame_id}.fits"), url=url,
        request_id=str(_either(raw, "request_id", "REQNUM") or ""),
        observation_date=_time(_either(raw, "observation_date", "DATE_OBS")),
        filter=str(_either(raw, "primary_optical_element", "FILTER") or ""),
        exposure_time=float(exposure) if exposure is not None else None,
        instrument=str(_either(raw, "instrument_id", "INSTRUME") or ""), site=str(_either(raw, "site_id", "SITEID") or ""),
        telescope=str(_either(raw, "telescope_id", "TELID") or ""), target_name=str(_either(raw, "target_name", "OBJECT") or ""),
        reduction_level=int(level) if level is not None else None, proposal_id=str(_either(raw, "proposal_id", "PROPID") or ""),
        raw=dict(raw),
    )


class _Transient(Exception):
    """One attempt failed in a way worth retrying (internal)."""


class ArchiveClient:
    """A client of one science archive. Every HTTP call has ``timeout`` seconds (connect and read); transient failures
    are retried ``retries`` more times with exponential backoff from ``backoff_s``, then raised as
    `ArchiveUnavailable`; a 4xx is `ArchiveError` at once. ``sleep`` is injectable so tests need not wait.

    The token goes only to the archive's own origin: a frame's download URL may be a pre-signed storage URL
    (LCO's are S3's), which refuses a second credential.
    """

    def __init__(
        self, base_url: str, token: str = "", timeout: float | None = None, *, retries: int | None = None,
        backoff_s: float | None = None, session: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.token = token
        self.timeout = settings.OBSERVATORIES_HTTP_TIMEOUT_S if timeout is None else timeout
        self.retries = settings.OBSERVATORIES_HTTP_RETRIES if retries is None else retries
        self.backoff_s = settings.OBSERVATORIES_HTTP_BACKOFF_S if backoff_s is None else backoff_s
        self.session = session or requests.Session()
        self.sleep = sleep

    def frames(self, request_id: str | int, *, reduction_level: int | None = REDUCED, page_size: int = 100) -> list[ArchiveFrame]:
        """Every frame of the portal request ``request_id`` (of ``reduction_level``; None: all levels), all pages."""
        params = {"request_id": str(request_id), "limit": str(page_size)}
        if reduction_level is not None:
            params["reduction_level"] = str(reduction_level)
        url: str | None = urljoin(self.base_url, "frames/") + "?" + urlencode(params)
        out: list[ArchiveFrame] = []
        seen: set[str] = set()
        while url:
            if url in seen or len(seen) >= MAX_PAGES:
                raise ArchiveError(f"{self.base_url}: the frames' pages do not end (at {url})")
            seen.add(url)
            body = self._call(url, lambda response: response.json())
            if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                raise ArchiveError(f"{url}: not a page of frames")
            out += [frame_from_json(raw) for raw in body["results"]]
            url = body.get("next") or None
        return out

    def frame(self, frame_id: int) -> ArchiveFrame:
        """One frame by its archive id."""
        return frame_from_json(self._call(urljoin(self.base_url, f"frames/{int(frame_id)}/"), lambda r: r.json()))

    def download(self, frame: ArchiveFrame) -> bytes:
        """The frame's file, as stored (FITS; LCO's are fpacked ``.fits.fz``)."""
        return self._call(frame.url, lambda response: response.content)

    # -- internals ---------------------------------------------------------------------------

    def _headers(self, url: str) -> dict[str, str]:
        from tomsite import sandbox

        headers: dict[str, str] = {}
        own = urlsplit(url)[:2] == urlsplit(self.base_url)[:2]
        if self.token and own:
            headers["Authorization"] = f"Token {self.token}"
        box = sandbox.current()
        if box is not None and own:  # the simulator answers a drill from the drill's own schema, at its time
            headers["X-Baton-Drill"] = box.schema
            if box.now is not None:
                headers["X-Baton-Drill-Now"] = box.now.isoformat()
        return headers

    def _once(self, url: str, read: Callable[[requests.Response], Any]) -> Any:
        try:
            response = self.session.get(url, headers=self._headers(url), timeout=self.timeout)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise _Transient(f"GET {url}: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise _Transient(f"GET {url}: HTTP {response.status_code}")
        if not response.ok:
            raise ArchiveError(f"GET {url}: HTTP {response.status_code}: {response.text[:300]}", status_code=response.status_code)
        try:
            return read(response)
        except ValueError as exc:
            raise _Transient(f"GET {url}: unreadable answer: {exc}") from exc

    def _call(self, url: str, read: Callable[[requests.Response], Any]) -> Any:
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(min(self.backoff_s * (2 ** (attempt - 1)), 30.0))
            try:
                return self._once(url, read)
            except _Transient as exc:
                last = exc
                logger.info("archive %s: attempt %d failed: %s", self.base_url, attempt + 1, exc)
        raise ArchiveUnavailable(f"{self.base_url}: failed after {self.retries + 1} attempts: {last}")


def archive_client_for(facility: Facility, **options: Any) -> ArchiveClient:
    """The archive client of ``facility``: its ``archive_base_url`` and its portal token (LCO's archive takes the
    portal's). A drill reaches only simulated facilities (`ArchiveError` otherwise)."""
    from tomsite import sandbox

    if sandbox.active() and not facility.simulated:
        raise ArchiveError(f"facility {facility.code} is not simulated: a drill never reaches a real archive")
    return ArchiveClient(facility.archive_base_url, facility.portal_token, **options)


# -- photometry from a reduced frame ---------------------------------------------------------------


@dataclass(frozen=True)
class FramePhotometry:
    """What a frame says about the target: its magnitude and 1-sigma error (None for a non-detection), the frame's
    5-sigma limiting magnitude (None when the header cannot give it), the mid-exposure time (UTC), the filter and
    the exposure time (s)."""

    time: datetime
    band: str
    mag: float | None
    mag_err: float | None
    limit: float | None
    exposure_time: float

    @property
    def unit(self) -> str:
        """The magnitude system: Vega for Johnson-Cousins filters, AB otherwise (BANZAI's Sloan calibration)."""
        return "Vega mag" if self.band in VEGA_BANDS else "AB mag"


def _open(fits_bytes: bytes) -> Any:
    from astropy.io import fits

    return fits.open(io.BytesIO(fits_bytes), memmap=False)


def _science_header(hdul: Any) -> Any:
    """The science header: the primary's, or SCI's in an fpacked file (whose primary is empty)."""
    return hdul["SCI"].header if "SCI" in hdul else hdul[0].header


def _float(header: Any, key: str) -> float | None:
    try:
        value = float(header[key])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _limit(header: Any, *, zp: float, exposure_time: float) -> float | None:
    """5-sigma limit of a point source in a Gaussian PSF's optimal area (4 pi sigma^2) over the background noise."""
    sigma, fwhm, scale = _float(header, "L1SIGMA"), _float(header, "L1FWHM"), _float(header, "PIXSCALE")
    if not sigma or not fwhm or not scale or sigma <= 0 or fwhm <= 0 or scale <= 0:
        return None
    psf_sigma_px = fwhm / scale / 2.3548
    return zp - 2.5 * math.log10(5.0 * sigma * math.sqrt(4.0 * math.pi) * psf_sigma_px / exposure_time)


def _basics(header: Any) -> tuple[datetime, str, float, float, float] | None:
    """(mid-exposure time, filter, exposure time, L1ZP, L1ZPERR), or None for a frame without a zeropoint or times."""
    zp, exposure_time = _float(header, "L1ZP"), _float(header, "EXPTIME")
    start = _time(header.get("DATE-OBS"))
    if zp is None or not exposure_time or exposure_time <= 0 or start is None:
        return None
    return start + timedelta(seconds=exposure_time / 2), str(header.get("FILTER", "")), exposure_time, zp, _float(header, "L1ZPERR") or 0.0


def frame_photometry(fits_bytes: bytes, *, ra_deg: float, dec_deg: float, radius_arcsec: float = 2.0) -> FramePhotometry | None:
    """The target's photometry in a BANZAI-reduced frame: the catalogue source nearest (ra_deg, dec_deg) within
    ``radius_arcsec``, its magnitude ``-2.5 log10(flux / EXPTIME) + L1ZP`` and error (flux error and zeropoint error
    in quadrature). None when no source is that near (a non-detection: see `frame_limit`), or the frame has no
    catalogue or no zeropoint (not photometrically calibrated)."""
    import numpy as np

    with _open(fits_bytes) as hdul:
        header = _science_header(hdul)
        basics = _basics(header)
        if basics is None or "CAT" not in hdul:
            return None
        when, band, exposure_time, zp, zp_err = basics
        cat = hdul["CAT"].data
        if cat is None or len(cat) == 0:
            return None
        ra, dec = np.radians(np.asarray(cat["ra"], dtype=float)), np.radians(np.asarray(cat["dec"], dtype=float))
        flux, fluxerr = np.asarray(cat["flux"], dtype=float), np.asarray(cat["fluxerr"], dtype=float)
        ra0, dec0 = math.radians(ra_deg), math.radians(dec_deg)
        # Haversine: exact at arcsecond separations, where the cosine formula loses its digits.
        hav = np.sin((dec - dec0) / 2) ** 2 + np.cos(dec) * math.cos(dec0) * np.sin((ra - ra0) / 2) ** 2
        separation = np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0.0, 1.0)))) * 3600.0
        usable = (separation <= radius_arcsec) & (flux > 0) & np.isfinite(flux) & np.isfinite(fluxerr)
        if not usable.any():
            return None
        best = int(np.argmin(np.where(usable, separation, np.inf)))
        mag = -2.5 * math.log10(flux[best] / exposure_time) + zp
        mag_err = math.hypot(MAG_PER_LN * fluxerr[best] / flux[best], zp_err)
        limit = _limit(header, zp=zp, exposure_time=exposure_time)
    return FramePhotometry(time=when, band=band, mag=mag, mag_err=mag_err, limit=limit, exposure_time=exposure_time)


def frame_limit(fits_bytes: bytes) -> FramePhotometry | None:
    """The frame's 5-sigma limiting magnitude as a non-detection (``mag`` None), from its zeropoint, background noise
    (``L1SIGMA``, counts per pixel), seeing (``L1FWHM``, arcsec) and pixel scale; None when the header lacks them."""
    with _open(fits_bytes) as hdul:
        header = _science_header(hdul)
        basics = _basics(header)
        if basics is None:
            return None
        when, band, exposure_time, zp, _ = basics
        limit = _limit(header, zp=zp, exposure_time=exposure_time)
    if limit is None:
        return None
    return FramePhotometry(time=when, band=band, mag=None, mag_err=None, limit=limit, exposure_time=exposure_time)
