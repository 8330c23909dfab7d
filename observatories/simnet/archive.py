"""The simulator's science archive, shaped as LCO's (``archive-api.lco.global``): reduced frames of completed observations.

Every exposure of a COMPLETED `SimObservation` is one reduced frame (BANZAI's
reduction level 91), made on demand from the simulator's own record of what it
observed (``SimObservation.photometry``), so nothing is stored:

- ``GET archive/frames/?request_id=&reduction_level=&limit=&offset=`` the frames, newest first, as the
  archive's DRF limit/offset pagination (``count``, absolute ``next``/``previous``, ``results``); the
  archive's older upper-case filters (``REQNUM``, ``RLEVEL``, ``BLKUID``, ``PROPID``) work too, as
  TOM's LCO module uses ``REQNUM``
- ``GET archive/frames/{id}/`` one frame
- ``GET archive/frames/{id}/download/?sig=`` the FITS file; ``url`` of a frame carries the signature,
  as the archive's are pre-signed storage URLs that need no token

A frame's id is ``observation id * 1000 + exposure index``. Its FITS file is
deterministic: a primary HDU with a small image (the target at the centre, two
field stars, seeded noise) and the headers BANZAI writes (``DATE-OBS``,
``EXPTIME``, ``FILTER``, ``REQNUM``, ``RLEVEL``, the photometric zeropoint
``L1ZP``/``L1ZPERR``, background ``L1SIGMA``, seeing ``L1FWHM``, a TAN WCS), and
a ``CAT`` binary table of sources as BANZAI's source detector writes it (``x``,
``y``, ``ra``, ``dec``, ``flux``, ``fluxerr``, ...; ``mag``/``magerr`` as its
photometric calibrator adds). The catalogue flux of the target is the
simulator's measured magnitude through the zeropoint (``mag = -2.5 log10(flux /
EXPTIME) + L1ZP``, BANZAI's convention); a target measured below 3 sigma is not
in the catalogue (a non-detection), and the image noise is the one that gives
its error. Real BANZAI calibrates only the Sloan filters; the simulator
calibrates every filter.

Auth as the archive's DRF stack answers (SessionAuthentication first): no or a
bad token is 403 ``{"detail": ...}``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from observatories.simnet.auth import simnet_token, simnet_token_ok
from observatories.simnet.models import SimFault, SimObservation
from observatories.simnet.services import night_of
from observatories.simnet.views import _in_drill, _take_fault  # the portal API's drill and fault handling

REDUCTION_LEVEL = 91
FRAMES_PER_OBSERVATION = 1000  # frame id = observation id * 1000 + exposure index
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
IMAGE_SIZE = 64  # pixels a side
DEFAULT_PIXEL_SCALE = 0.389  # arcsec/pixel, a Sinistro's
SEEING_ARCSEC = 2.0
ZEROPOINT_ERROR = 0.005  # mag
DETECTION_SNR = 3.0
SKY_COUNTS_PER_S = 2.0
PROPRIETARY = timedelta(days=365)  # LCO's default proprietary period
# Two field stars: offsets from the target (east, north) in arcsec and their magnitudes.
FIELD_STARS = ((7.0, 4.0, 14.5), (-5.0, -8.0, 16.0))
GAUSSIAN_AREA = 4.0 * math.pi  # effective noise area of a Gaussian PSF, in units of sigma^2
MAG_PER_LN = 2.5 / math.log(10.0)  # 1.0857: d(mag) per fractional flux error


@dataclass(frozen=True)
class SimFrame:
    """One reduced frame: exposure ``index`` of a completed observation, and what the simulator measured in it."""

    id: int
    observation: SimObservation
    index: int
    date_obs: datetime  # exposure start, UTC
    exposure_time: float  # s
    band: str
    mag: float
    mag_err: float
    target: dict[str, Any]


def _exposures(observation: SimObservation) -> list[tuple[float, dict[str, Any]]]:
    """(exposure time, target) of each exposure, in the order the simulator observed them (its photometry's)."""
    out = []
    for config in observation.request.configurations:
        for ic in config.get("instrument_configs", []):
            out += [(float(ic["exposure_time"]), config.get("target", {}))] * int(ic.get("exposure_count", 1))
    return out


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def observation_frames(observation: SimObservation) -> list[SimFrame]:
    """The frames of one observation: one per exposure of a COMPLETED one, none otherwise."""
    if observation.state != "COMPLETED":
        return []
    exposures = _exposures(observation)
    frames = []
    for index, point in enumerate(observation.photometry or []):
        seconds, target = exposures[index] if index < len(exposures) else (60.0, {})
        seconds = float(point.get("exposure_time", seconds))
        frames.append(
            SimFrame(
                id=observation.pk * FRAMES_PER_OBSERVATION + index, observation=observation, index=index,
                date_obs=_parse_time(point["time"]) - timedelta(seconds=seconds / 2), exposure_time=seconds,
                band=str(point["band"]), mag=float(point["mag"]), mag_err=float(point["mag_err"]), target=target,
            )
        )
    return frames


def _observations() -> Any:
    return SimObservation.objects.filter(state="COMPLETED").select_related(
        "facility__site", "request__instrument", "request__group"
    )


def frame_get(*, frame_id: int) -> SimFrame | None:
    """The frame ``frame_id``, or None."""
    observation_id, index = divmod(frame_id, FRAMES_PER_OBSERVATION)
    observation = _observations().filter(pk=observation_id).first()
    frames = observation_frames(observation) if observation else []
    return frames[index] if index < len(frames) else None


# -- serialisation -----------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _basename(frame: SimFrame) -> str:
    """LCO-style: ``<telescope>-<instrument>-<DAY-OBS>-<frame number>-e91``."""
    observation = frame.observation
    day = night_of(site=observation.facility.site, at=frame.date_obs)
    return f"{observation.facility.code}-{observation.request.instrument.code}-{day:%Y%m%d}-{frame.id:07d}-e{REDUCTION_LEVEL}"


def download_signature(frame_id: int) -> str:
    """The signature that lets a frame's download URL work without a token (as a pre-signed storage URL)."""
    return hmac.new(simnet_token().encode(), f"frame:{frame_id}".encode(), hashlib.sha256).hexdigest()[:32]


def frame_json(frame: SimFrame, request: HttpRequest) -> dict[str, Any]:
    """A frame as the archive's API gives it: its current field names, and the older upper-case ones."""
    observation = frame.observation
    facility, sim_request = observation.facility, observation.request
    basename = _basename(frame)
    namespace = request.resolver_match.namespace if request.resolver_match else "observatories:simnet"
    download = reverse(f"{namespace}:archive-frame-download", kwargs={"pk": frame.id})
    url = request.build_absolute_uri(f"{download}?sig={download_signature(frame.id)}")
    day = night_of(site=facility.site, at=frame.date_obs)
    public = frame.date_obs + PROPRIETARY
    telescope_id = facility.telescope or facility.telescope_class
    fields = {
        "basename": basename, "filename": f"{basename}.fits", "url": url,
        "observation_date": _iso(frame.date_obs), "observation_day": f"{day:%Y-%m-%d}",
        "proposal_id": sim_request.group.proposal, "instrument_id": sim_request.instrument.code,
        "target_name": str(frame.target.get("name", "")), "site_id": facility.site.code, "telescope_id": telescope_id,
        "exposure_time": frame.exposure_time, "primary_optical_element": frame.band, "public_date": _iso(public),
        "configuration_type": "EXPOSE", "observation_id": observation.pk, "request_id": sim_request.pk,
        "reduction_level": REDUCTION_LEVEL,
    }
    return {
        "id": frame.id,
        **fields,
        "area": None,
        "related_frames": [],
        "version_set": [{"id": frame.id, "created": _iso(observation.modified), "key": f"{frame.id:032x}",
                         "md5": hashlib.md5(basename.encode()).hexdigest(),  # noqa: S324 - an id, not security
                         "extension": ".fits", "url": url}],
        "DATE_OBS": fields["observation_date"], "DAY_OBS": fields["observation_day"], "PROPID": fields["proposal_id"],
        "INSTRUME": fields["instrument_id"], "OBJECT": fields["target_name"], "SITEID": fields["site_id"],
        "TELID": telescope_id, "EXPTIME": frame.exposure_time, "FILTER": frame.band, "L1PUBDAT": fields["public_date"],
        "OBSTYPE": "EXPOSE", "BLKUID": observation.pk, "REQNUM": sim_request.pk, "RLEVEL": REDUCTION_LEVEL,
    }


# -- the FITS file -----------------------------------------------------------------------------


def zeropoint(aperture_m: float) -> float:
    """The simulated telescopes' zeropoint, mag for 1 count/s: 23.0 for a 1-m, scaling with collecting area."""
    return 23.0 + 5.0 * math.log10(aperture_m)


def _sexagesimal(value: float, *, hours: bool) -> str:
    import astropy.units as u
    from astropy.coordinates import Angle

    angle = Angle(value, u.deg)
    if hours:
        return str(angle.to_string(unit=u.hour, sep=":", precision=3, pad=True))
    return str(angle.to_string(unit=u.deg, sep=":", precision=2, alwayssign=True, pad=True))


def frame_fits(frame: SimFrame) -> bytes:
    """The frame's FITS file (bytes), the same every time for the same frame (see the module docstring)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    observation = frame.observation
    facility, sim_request = observation.facility, observation.request
    ra0, dec0 = float(frame.target.get("ra", 0.0)), float(frame.target.get("dec", 0.0))
    scale = float(sim_request.instrument.pixel_scale or DEFAULT_PIXEL_SCALE)
    zp = zeropoint(facility.aperture_m)
    sigma_px = SEEING_ARCSEC / scale / 2.3548
    noise_area = math.sqrt(GAUSSIAN_AREA) * sigma_px
    # Background-limited noise, set so that the target's flux error is the simulator's (less the zeropoint's).
    stat_err = math.sqrt(max(frame.mag_err**2 - ZEROPOINT_ERROR**2, 1e-6)) / MAG_PER_LN
    target_flux = frame.exposure_time * 10 ** (-0.4 * (frame.mag - zp))
    target_fluxerr = target_flux * stat_err
    pixel_sigma = target_fluxerr / noise_area
    sky = SKY_COUNTS_PER_S * frame.exposure_time

    header = fits.Header()
    centre = (IMAGE_SIZE + 1) / 2.0
    wcs_cards = {
        "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": ra0, "CRVAL2": dec0, "CRPIX1": centre, "CRPIX2": centre,
        "CD1_1": -scale / 3600.0, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": scale / 3600.0, "CUNIT1": "deg", "CUNIT2": "deg",
        "RADESYS": "ICRS",
    }
    wcs = WCS(wcs_cards)
    cos_dec = max(math.cos(math.radians(dec0)), 1e-6)
    sources = [(ra0, dec0, target_flux, target_fluxerr, target_flux / target_fluxerr >= DETECTION_SNR)]
    for east, north, mag in FIELD_STARS:
        flux = frame.exposure_time * 10 ** (-0.4 * (mag - zp))
        fluxerr = math.hypot(math.sqrt(flux), pixel_sigma * noise_area)
        sources.append((ra0 + east / 3600.0 / cos_dec, dec0 + north / 3600.0, flux, fluxerr, True))

    rng = np.random.default_rng([settings.SIMNET_SEED, frame.id])
    yy, xx = np.mgrid[1 : IMAGE_SIZE + 1, 1 : IMAGE_SIZE + 1].astype(float)  # FITS pixel coordinates
    image = sky + rng.normal(0.0, pixel_sigma, (IMAGE_SIZE, IMAGE_SIZE))
    rows = []
    for ra, dec, flux, fluxerr, detected in sources:
        x, y = (float(v) for v in wcs.all_world2pix([[ra, dec]], 1)[0])
        peak = flux / (2.0 * math.pi * sigma_px**2)
        image += peak * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2.0 * sigma_px**2))
        if detected:
            rows.append((x, y, ra, dec, flux, fluxerr, peak))

    day = night_of(site=facility.site, at=frame.date_obs)
    cards: dict[str, Any] = {
        "ORIGIN": "LCOGT", "SITEID": facility.site.code, "SITE": facility.site.name, "TELID": facility.telescope or facility.telescope_class,
        "TELESCOP": facility.code, "INSTRUME": sim_request.instrument.code, "OBSTYPE": "EXPOSE",
        "OBJECT": str(frame.target.get("name", ""))[:68], "RA": _sexagesimal(ra0, hours=True), "DEC": _sexagesimal(dec0, hours=False),
        "CAT-RA": _sexagesimal(ra0, hours=True), "CAT-DEC": _sexagesimal(dec0, hours=False),
        "DATE-OBS": frame.date_obs.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3], "DAY-OBS": f"{day:%Y%m%d}",
        "MJD-OBS": frame.date_obs.timestamp() / 86400.0 + 40587.0, "EXPTIME": frame.exposure_time, "FILTER": frame.band,
        "PROPID": sim_request.group.proposal, "REQNUM": sim_request.pk, "BLKUID": observation.pk,
        "ORIGNAME": f"{_basename(frame)[:-3]}e00.fits", "PIXSCALE": scale, "GAIN": 1.0, "RLEVEL": REDUCTION_LEVEL,
        "L1PUBDAT": frame.date_obs.strftime("%Y-%m-%dT%H:%M:%S"), **wcs_cards,
        "L1MEAN": sky, "L1MEDIAN": sky, "L1SIGMA": pixel_sigma, "L1FWHM": SEEING_ARCSEC,
        "L1ZP": zp, "L1ZPERR": ZEROPOINT_ERROR, "WCSERR": 0,
    }
    for key, value in cards.items():
        header[key] = value
    header["L1ZP"] = (zp, "Instrumental zeropoint [mag]")
    header["L1ZPERR"] = (ZEROPOINT_ERROR, "Error on Instrumental zeropoint [mag]")
    primary = fits.PrimaryHDU(data=image.astype(np.float32), header=header)
    catalog = _catalog(rows, sigma_px=sigma_px, sky=sky, zp=zp, exposure_time=frame.exposure_time)
    buffer = io.BytesIO()
    fits.HDUList([primary, catalog]).writeto(buffer)
    return buffer.getvalue()


def _catalog(rows: Sequence[tuple[float, ...]], *, sigma_px: float, sky: float, zp: float, exposure_time: float) -> Any:
    """BANZAI's ``CAT`` extension: the detected sources, brightest first, FITS pixel convention."""
    from astropy.io import fits

    rows = sorted(rows, key=lambda r: -r[4])
    x, y, ra, dec, flux, fluxerr, peak = (np.array([r[i] for r in rows], dtype=float) for i in range(7))
    fwhm = np.full(len(rows), 2.3548 * sigma_px)
    columns = [
        ("x", x, "pixel"), ("y", y, "pixel"), ("xwin", x, "pixel"), ("ywin", y, "pixel"),
        ("ra", ra, "deg"), ("dec", dec, "deg"), ("flux", flux, "count"), ("fluxerr", fluxerr, "count"),
        ("peak", peak, "count"), ("background", np.full(len(rows), sky), "count"), ("fwhm", fwhm, "pixel"),
        ("a", np.full(len(rows), sigma_px), "pixel"), ("b", np.full(len(rows), sigma_px), "pixel"),
        ("theta", np.zeros(len(rows)), "deg"), ("ellipticity", np.zeros(len(rows)), ""),
        ("mag", -2.5 * np.log10(flux / exposure_time) + zp, "mag"), ("magerr", MAG_PER_LN * fluxerr / flux, "mag"),
    ]
    cols = [fits.Column(name=name, format="D", unit=unit or None, array=values) for name, values, unit in columns]
    cols.append(fits.Column(name="flag", format="I", array=np.zeros(len(rows), dtype=np.int16)))
    return fits.BinTableHDU.from_columns(cols, name="CAT")


# -- views -------------------------------------------------------------------------------------


def _forbidden(detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=403)


def archive_api(*, signed: bool = False) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Wrap an archive view: GET only, the token (or, if ``signed``, a valid ``sig``), drills and injected faults."""
    def wrap(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def wrapped(request: HttpRequest, **kwargs: Any) -> HttpResponse:
            if request.method not in ("GET", "HEAD"):
                return JsonResponse({"detail": f'Method "{request.method}" not allowed.'}, status=405)
            header = request.headers.get("Authorization", "")
            presigned = signed and hmac.compare_digest(request.GET.get("sig", ""), download_signature(kwargs.get("pk", -1)))
            if not presigned and not header:
                return _forbidden("Authentication credentials were not provided.")
            if not presigned and not simnet_token_ok(header):
                return _forbidden("Invalid token.")
            drill = request.headers.get("X-Baton-Drill", "")
            if drill:
                from tomsite import sandbox

                if sandbox.current() is None:
                    return _in_drill(request, drill, lambda: wrapped(request, **kwargs))
            fault = _take_fault(request)
            if fault is not None and fault.kind == SimFault.Kind.ERROR_500:
                return JsonResponse({"detail": "injected fault: internal server error"}, status=500)
            response = view(request, **kwargs)
            if fault is not None and fault.kind == SimFault.Kind.DELAY_AFTER:
                time.sleep(min(fault.delay_s, 30.0))
            if fault is not None and fault.kind == SimFault.Kind.ERROR_500_AFTER:
                return JsonResponse({"detail": "injected fault: internal server error after the work was done"}, status=500)
            return response

        return wrapped

    return wrap


def _int_filter(request: HttpRequest, *names: str) -> tuple[int | None, JsonResponse | None]:
    """The first of ``names`` given as a query parameter, as an integer; a 400 as django-filter answers a bad one."""
    for name in names:
        raw = request.GET.get(name, "")
        if raw:
            try:
                return int(raw), None
            except ValueError:
                return None, JsonResponse({name: ["Enter a number."]}, status=400)
    return None, None


def _page_url(request: HttpRequest, *, offset: int, limit: int) -> str:
    params = request.GET.copy()
    params["limit"] = str(limit)
    if offset > 0:
        params["offset"] = str(offset)
    else:
        params.pop("offset", None)
    return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")


def _paging(request: HttpRequest) -> tuple[int, int]:
    """(limit, offset) as DRF's LimitOffsetPagination reads them: bad or negative values fall back to the defaults."""
    try:
        limit = int(request.GET.get("limit", DEFAULT_LIMIT))
        limit = min(limit, MAX_LIMIT) if limit > 0 else DEFAULT_LIMIT
    except ValueError:
        limit = DEFAULT_LIMIT
    try:
        offset = max(int(request.GET.get("offset", 0)), 0)
    except ValueError:
        offset = 0
    return limit, offset


@archive_api()
def frames(request: HttpRequest) -> HttpResponse:
    observations = _observations()
    frames_filters = {
        "request_id": ("request_id", "REQNUM"), "pk": ("observation_id", "BLKUID"),
    }
    for field, names in frames_filters.items():
        value, error = _int_filter(request, *names)
        if error is not None:
            return error
        if value is not None:
            observations = observations.filter(**{field: value})
    level, error = _int_filter(request, "reduction_level", "RLEVEL")
    if error is not None:
        return error
    proposal = request.GET.get("proposal_id") or request.GET.get("PROPID")
    if proposal:
        observations = observations.filter(request__group__proposal=proposal)
    found = [] if level not in (None, REDUCTION_LEVEL) else [f for o in observations for f in observation_frames(o)]
    found.sort(key=lambda f: (f.date_obs, f.id), reverse=True)  # the archive's order: newest first
    limit, offset = _paging(request)
    page = found[offset : offset + limit]
    return JsonResponse({
        "count": len(found),
        "next": _page_url(request, offset=offset + limit, limit=limit) if offset + limit < len(found) else None,
        "previous": _page_url(request, offset=max(offset - limit, 0), limit=limit) if offset > 0 else None,
        "results": [frame_json(f, request) for f in page],
    })


def _no_frame() -> JsonResponse:
    return JsonResponse({"detail": "No Frame matches the given query."}, status=404)


@archive_api()
def frame_detail(request: HttpRequest, pk: int) -> HttpResponse:
    frame = frame_get(frame_id=pk)
    return JsonResponse(frame_json(frame, request)) if frame else _no_frame()


@archive_api(signed=True)
def frame_download(request: HttpRequest, pk: int) -> HttpResponse:
    frame = frame_get(frame_id=pk)
    if frame is None:
        return _no_frame()
    response = HttpResponse(frame_fits(frame), content_type="application/fits")
    response["Content-Disposition"] = f'attachment; filename="{_basename(frame)}.fits"'
    return response

