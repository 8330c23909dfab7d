"""A completed copy's data: its frames from the facility's science archive become TOM data products and photometry.

For each portal request of the copy's request group, the archive's reduced
frames (LCO: ``frames/?request_id=``) are stored once each as a TOM
``DataProduct`` (the FITS file, ``product_id`` ``<facility>:frame:<frame id>``,
on the copy's observation record) and the target's photometry in the frame as
a TOM ``PhotometryReducedDatum`` (a magnitude, or a 5-sigma limit when the
target is not detected), written with the team's ownership in one transaction
per frame: the team's policy then decides who sees them and when they are
released (and shared out). TOM's target page, light curve, exports and
photometry APIs read exactly these rows.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from tom_dataproducts.models import DataProduct, PhotometryReducedDatum

from observatories.adapters import portal_client_for
from observatories.archive import ArchiveFrame, archive_client_for, frame_limit, frame_photometry

from .. import hooks
from ..models import Dispatch, DispatchState

logger = logging.getLogger(__name__)

# The archive ingests a night's frames within minutes to hours; after this long, what is missing is not coming.
DATA_FETCH_GIVE_UP = timedelta(days=1)
MATCH_RADIUS_ARCSEC = 2.0
FITS_PRODUCT_TYPE = "fits_file"


class ArchiveNotReady(Exception):
    """The archive holds fewer frames of a completed copy than it exposed (none yet, or some): try again later.

    Raised after the frames it has were stored (``stored`` of them new).
    """

    def __init__(self, message: str, *, stored: int = 0) -> None:
        super().__init__(message)
        self.stored = stored


def product_id_of(*, facility_code: str, frame_id: int) -> str:
    """The TOM ``DataProduct.product_id`` of an archive frame: unique across facilities and archives."""
    return f"{facility_code}:frame:{frame_id}"


def _frames_expected(dispatch: Dispatch) -> int:
    return sum(int(e.get("count", 1)) for e in dispatch.request.exposures)


def dispatch_data_store(*, dispatch_id: int) -> int:
    """Store the archive's frames of a COMPLETED dispatch and their photometry; return how many new frames.

    Idempotent: a frame already stored (by ``product_id``) is skipped, so a re-run
    stores nothing new. A dispatch that is not COMPLETED (or has no request
    group) stores nothing. Raises `ArchiveNotReady` when the archive lists fewer
    frames than the request exposed, after storing those it lists;
    ``ArchiveUnavailable``/``PortalUnavailable`` when the archive or portal is
    unreachable; ``ArchiveError``/``PortalError`` when they refuse.
    """
    dispatch = Dispatch.objects.select_related("facility__site", "request__target", "request__team").get(pk=dispatch_id)
    if dispatch.state != DispatchState.COMPLETED or not dispatch.remote_id:
        return 0
    from observatories.portal.facility import speaks_portal_api_path

    if not speaks_portal_api_path(dispatch.facility.adapter):
        return _store_through_tom_module(dispatch)
    remote = portal_client_for(dispatch.facility).status(remote_id=dispatch.remote_id)
    archive = archive_client_for(dispatch.facility)
    listed = stored = 0
    for request_id in remote.request_ids:
        for frame in archive.frames(request_id):
            listed += 1
            product_id = product_id_of(facility_code=dispatch.facility.code, frame_id=frame.id)
            if DataProduct.objects.filter(product_id=product_id).exists():
                continue
            location = urljoin(archive.base_url, f"frames/{frame.id}/")
            stored += _frame_store(dispatch_id=dispatch.pk, frame=frame, product_id=product_id, location=location,
                                   content=archive.download(frame))
    if listed < _frames_expected(dispatch):
        raise ArchiveNotReady(
            f"dispatch {dispatch.pk}: the archive lists {listed} of {_frames_expected(dispatch)} frames", stored=stored
        )
    return stored


def _store_through_tom_module(dispatch: Dispatch) -> int:
    """A copy at a facility that is not a portal: its TOM module's own data products, owned by the team."""
    from observatories.tomfacility import TomFacilityCopy

    if dispatch.observation_record is None:
        return 0
    products = TomFacilityCopy(dispatch.facility).save_data(observation_record=dispatch.observation_record)
    if products:
        hooks.data_record(data=products, team=dispatch.request.team, kind="photometry")
    return len(products)


def _mag(value: float | None) -> float | None:
    """A magnitude to 0.1 mmag, far below any error: what the catalogue measured, without float noise."""
    return None if value is None else round(value, 4)


def dispatch_data_due(*, dispatch_id: int, now: datetime | None = None) -> bool:
    """Whether a copy's data are still worth waiting for: until `DATA_FETCH_GIVE_UP` after it finished."""
    finished = Dispatch.objects.filter(pk=dispatch_id).values_list("finished_at", flat=True).first()
    return finished is None or (now or timezone.now()) < finished + DATA_FETCH_GIVE_UP


def _frame_store(*, dispatch_id: int, frame: ArchiveFrame, product_id: str, location: str, content: bytes) -> int:
    """One frame of a dispatch and its photometry, with the team's ownership, in one transaction; 1 if new, 0 if
    stored meanwhile."""
    with transaction.atomic():
        # The row lock orders concurrent runs for one dispatch, so each frame is written once.
        dispatch = (
            Dispatch.objects.select_for_update(of=("self",))
            .select_related("facility", "request__target", "request__team", "observation_record")
            .get(pk=dispatch_id)
        )
        return frame_store(
            target=dispatch.request.target, facility=dispatch.facility, observation_record=dispatch.observation_record,
            team=dispatch.request.team, frame=frame, product_id=product_id, location=location, content=content,
            extra={"dispatch": dispatch.pk},
        )


def frame_store(
    *, target: Any, facility: Any, observation_record: Any, team: Any, frame: ArchiveFrame, product_id: str,
    location: str, content: bytes, extra: dict[str, Any] | None = None,
) -> int:
    """One archive frame as a TOM DataProduct and its photometry of ``target`` as TOM photometry (a point, or a limit
    when the target is not detected), owned by ``team`` when one is given; 1 if new, 0 if already stored. Run it in
    the caller's transaction (and under a lock that orders concurrent runs for the same frames)."""
    with transaction.atomic():
        if DataProduct.objects.filter(product_id=product_id).exists():
            return 0
        product = DataProduct(
            product_id=product_id, target=target, observation_record=observation_record,
            data_product_type=FITS_PRODUCT_TYPE,
            extra_data=json.dumps({"archive_frame_id": frame.id, "basename": frame.basename, "request_id": frame.request_id,
                                   "reduction_level": frame.reduction_level, "facility": facility.code}),
        )
        # (Should the transaction roll back, the written file stays as an orphan; a re-run writes it under a new name.)
        product.data.save(frame.filename, ContentFile(content), save=False)
        product.save()
        owned: list[Any] = [product]
        point = frame_photometry(content, ra_deg=float(target.ra), dec_deg=float(target.dec), radius_arcsec=MATCH_RADIUS_ARCSEC)
        point = point or frame_limit(content)
        if point is not None:
            detected = point.mag is not None
            owned.append(PhotometryReducedDatum.objects.create(
                target=target, data_product=product, timestamp=point.time, bandpass=point.band[:32],
                brightness=_mag(point.mag), brightness_error=_mag(point.mag_err), limit=None if detected else _mag(point.limit), unit=point.unit, exposure_time=point.exposure_time,
                telescope=facility.code, instrument=frame.instrument[:255], source_name=f"Baton/{facility.code}"[:100],
                source_location=location[:200], reduction_version=str(frame.reduction_level or ""),
                value={"archive_frame_id": frame.id, "basename": frame.basename, "request_id": frame.request_id,
                       **(extra or {})},
            ))
        else:
            logger.info("%s: frame %s has no calibrated photometry of the target", facility.code, frame.id)
        if team is not None:
            hooks.data_record(data=owned, team=team, kind="photometry")
    return 1
