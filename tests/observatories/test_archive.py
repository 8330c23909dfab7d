"""The science archive: the simulator's (LCO's archive API over real HTTP), the client, and a copy's data on the target."""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests
from astropy.io import fits
from django.utils import timezone
from tom_dataproducts.models import DataProduct, PhotometryReducedDatum
from tom_observations.models import ObservationRecord
from tom_targets.models import Target

from observatories.archive import (
    ArchiveClient,
    ArchiveError,
    ArchiveUnavailable,
    frame_limit,
    frame_photometry,
)
from observatories.models import Instrument
from observatories.scheduling.models import Dispatch, DispatchState, ObservingRequest
from observatories.scheduling.services.data import ArchiveNotReady, dispatch_data_store
from observatories.scheduling.tasks import dispatch_data_fetch_task
from observatories.simnet.archive import FRAMES_PER_OBSERVATION, zeropoint
from observatories.simnet.auth import simnet_token
from observatories.simnet.models import SimObservation, SimRequest, SimRequestGroup
from policies import clock
from policies.models import DataOwnership
from policies.services import (
    data_release_due,
    policy_update,
    target_record_interest,
    team_create,
    team_member_set,
)
from tests.policies.conftest import document, rule

from .conftest import BULGE, Sim

pytestmark = pytest.mark.django_db(transaction=True)

INSTRUMENT = "lsc-1m0-a-sinistro"
# What the simulator measured: (band, exposure time s, mag, mag_err) per exposure.
EXPOSURES = [("V", 60.0, 16.0123, 0.0213), ("V", 60.0, 15.9871, 0.0209), ("rp", 30.0, 15.6042, 0.0187)]


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Any) -> None:
    """Data products' files go to a directory of the test's own."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


def observed(*, exposures: list[tuple[str, float, float, float]] = EXPOSURES, target: dict[str, Any] = BULGE,
             state: str = "COMPLETED", start: datetime | None = None) -> SimObservation:
    """A request group the simulator has observed: one request, one observation, one photometric point per exposure."""
    instrument = Instrument.objects.select_related("facility").get(code=INSTRUMENT)
    start = start or timezone.now().replace(microsecond=0) - timedelta(hours=3)
    group_state = "COMPLETED" if state == "COMPLETED" else "PENDING"  # a failed attempt leaves the group pending
    group = SimRequestGroup.objects.create(name="baton-archive-test", proposal="LCO2026A-001", state=group_state,
                                           created=start, modified=start)
    configs = [
        {"type": "EXPOSE", "target": {"name": target["name"], "ra": target["ra"], "dec": target["dec"]},
         "instrument_configs": [{"exposure_count": 1, "exposure_time": seconds, "optical_elements": {"filter": band}}]}
        for band, seconds, _, _ in exposures
    ]
    request = SimRequest.objects.create(group=group, facility=instrument.facility, instrument=instrument, state=group_state,
                                        configurations=configs, windows=[], duration_s=600.0, modified=start)
    points, moment = [], start + timedelta(seconds=30)
    for band, seconds, mag, err in exposures:
        moment += timedelta(seconds=60)
        points.append({"time": (moment + timedelta(seconds=seconds / 2)).isoformat(), "band": band, "mag": mag, "mag_err": err})
        moment += timedelta(seconds=seconds + instrument.readout_s)
    return SimObservation.objects.create(request=request, facility=instrument.facility, start=start, end=moment,
                                         state=state, photometry=points if state == "COMPLETED" else [], modified=moment)


def archive(sim: Sim, **options: Any) -> ArchiveClient:
    return ArchiveClient(sim.base_url + "archive/", simnet_token(), 10.0, **options)


def get(sim: Sim, path: str, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Token {token or simnet_token()}"} if token != "" else {}
    return requests.get(sim.base_url + path, headers=headers, timeout=30)


# -- the simulator's archive ---------------------------------------------------------------------


def test_frames_are_listed_by_request_with_real_limit_offset_pagination(sim: Sim) -> None:
    observation = observed()
    observed(exposures=EXPOSURES[:1])  # another request's frame: not listed
    rid = observation.request_id
    first = get(sim, f"archive/frames/?request_id={rid}&reduction_level=91&limit=2").json()
    ids = [observation.pk * FRAMES_PER_OBSERVATION + k for k in (2, 1, 0)]  # newest first, as the archive orders
    assert first["count"] == 3 and [f["id"] for f in first["results"]] == ids[:2]
    assert first["previous"] is None and first["next"].startswith(sim.base_url + "archive/frames/?")
    second = requests.get(first["next"], headers={"Authorization": f"Token {simnet_token()}"}, timeout=30).json()
    assert [f["id"] for f in second["results"]] == ids[2:] and second["next"] is None
    assert second["previous"].startswith(sim.base_url + "archive/frames/?")
    frame = second["results"][0]
    assert frame["request_id"] == frame["REQNUM"] == rid and frame["observation_id"] == frame["BLKUID"] == observation.pk
    assert (frame["FILTER"], frame["EXPTIME"], frame["RLEVEL"], frame["OBJECT"]) == ("V", 60.0, 91, BULGE["name"])
    assert (frame["SITEID"], frame["INSTRUME"], frame["PROPID"]) == ("lsc", INSTRUMENT, "LCO2026A-001")
    assert frame["basename"].endswith(f"-{frame['id']:07d}-e91") and frame["filename"] == frame["basename"] + ".fits"
    start = datetime.fromisoformat(frame["DATE_OBS"].replace("Z", "+00:00"))
    assert start + timedelta(seconds=30) == datetime.fromisoformat(observation.photometry[0]["time"])
    # The older filters TOM's LCO module uses, the reduction level, the detail endpoint.
    assert get(sim, f"archive/frames/?REQNUM={rid}&RLEVEL=91").json()["count"] == 3
    assert get(sim, f"archive/frames/?request_id={rid}&reduction_level=0").json()["count"] == 0
    assert get(sim, f"archive/frames/?request_id={rid}&limit=2&offset=2").json()["previous"] is not None
    assert get(sim, f"archive/frames/{frame['id']}/").json() == frame
    bad = get(sim, "archive/frames/?request_id=abc")
    assert (bad.status_code, bad.json()) == (400, {"request_id": ["Enter a number."]})
    assert get(sim, f"archive/frames/{observation.pk * FRAMES_PER_OBSERVATION + 7}/").status_code == 404


def test_a_frame_that_was_not_observed_is_not_in_the_archive(sim: Sim) -> None:
    failed = observed(state="FAILED")
    assert get(sim, f"archive/frames/?request_id={failed.request_id}").json() == {
        "count": 0, "next": None, "previous": None, "results": []}


def test_a_bad_or_missing_token_is_refused_as_the_archive_refuses_it(sim: Sim) -> None:
    observation = observed()
    frame_id = observation.pk * FRAMES_PER_OBSERVATION
    for path in ("archive/frames/", f"archive/frames/{frame_id}/", f"archive/frames/{frame_id}/download/"):
        bad = get(sim, path, token="not-the-token")
        assert (bad.status_code, bad.json()) == (403, {"detail": "Invalid token."}), path
        missing = get(sim, path, token="")
        assert (missing.status_code, missing.json()) == (403, {"detail": "Authentication credentials were not provided."})
    # The frame's own URL is pre-signed (as the archive's storage URLs are): no token needed, a wrong signature refused.
    url = get(sim, f"archive/frames/{frame_id}/").json()["url"]
    assert requests.get(url, timeout=30).status_code == 200
    assert requests.get(url.replace("sig=", "sig=0"), timeout=30).status_code == 403
    with pytest.raises(ArchiveError) as refused:
        ArchiveClient(sim.base_url + "archive/", "not-the-token", 10.0).frames(observation.request_id)
    assert refused.value.status_code == 403


def test_the_client_retries_a_failing_archive_then_reports_it_unavailable(sim: Sim) -> None:
    observation = observed()
    sim.fault("error_500", path="archive/frames/", count=1)
    assert len(archive(sim).frames(observation.request_id)) == 3  # one failure, retried
    sim.fault("error_500", path="archive/frames/", count=10)
    with pytest.raises(ArchiveUnavailable):
        archive(sim, retries=2).frames(observation.request_id)


def test_a_frame_is_a_real_fits_file_whose_catalogue_gives_back_the_simulators_magnitude(sim: Sim) -> None:
    observation = observed()
    client = archive(sim)
    frames = sorted(client.frames(observation.request_id, page_size=1), key=lambda f: f.id)  # three pages
    assert [f.id % FRAMES_PER_OBSERVATION for f in frames] == [0, 1, 2]
    for frame, truth, (band, seconds, mag, err) in zip(frames, observation.photometry, EXPOSURES, strict=True):
        content = client.download(frame)
        assert client.download(frame) == content  # deterministic
        with fits.open(io.BytesIO(content)) as hdul:
            header, cat = hdul[0].header, hdul["CAT"].data
            assert hdul[0].data.shape == (64, 64)
            assert (header["FILTER"], header["EXPTIME"], header["RLEVEL"], header["REQNUM"]) == (band, seconds, 91, observation.request_id)
            assert (header["SITEID"], header["INSTRUME"], header["OBJECT"]) == ("lsc", INSTRUMENT, BULGE["name"])
            assert header["L1ZP"] == pytest.approx(zeropoint(1.0))
            assert {"ra", "dec", "x", "y", "flux", "fluxerr", "mag", "magerr", "flag"} <= set(cat.columns.names)
            assert len(cat) == 3  # the target and two field stars
            # The image holds the target where the WCS puts it, at the centre, well above the noise.
            assert hdul[0].data[30:34, 30:34].max() > header["L1MEDIAN"] + 5 * header["L1SIGMA"]
        point = frame_photometry(content, ra_deg=BULGE["ra"], dec_deg=BULGE["dec"])
        assert point is not None
        assert (point.band, point.exposure_time, point.unit) == (band, seconds, "Vega mag" if band == "V" else "AB mag")
        assert point.mag == pytest.approx(mag, abs=1e-6) and point.mag_err == pytest.approx(err, abs=1e-6)
        assert abs((point.time - datetime.fromisoformat(truth["time"])).total_seconds()) < 1e-3
        assert point.limit is not None and point.limit > mag  # detected well above the 5-sigma limit
    # Far from any source: nothing.
    assert frame_photometry(content, ra_deg=BULGE["ra"] + 0.5, dec_deg=BULGE["dec"]) is None


def test_a_target_below_three_sigma_is_a_non_detection_with_the_frames_limit(sim: Sim) -> None:
    mag, err = 21.3, 0.6  # SNR 1.8
    observation = observed(exposures=[("rp", 60.0, mag, err)])
    client = archive(sim)
    (frame,) = client.frames(observation.request_id)
    content = client.download(frame)
    assert frame_photometry(content, ra_deg=BULGE["ra"], dec_deg=BULGE["dec"]) is None
    limit = frame_limit(content)
    assert limit is not None and limit.mag is None and limit.band == "rp"
    snr = 1.0857 / math.sqrt(err**2 - 0.005**2)
    assert limit.limit == pytest.approx(mag - 2.5 * math.log10(5.0 / snr), abs=0.01)


# -- a completed copy's data reach the target --------------------------------------------------------


@dataclass
class People:
    team: Any
    other: Any
    member: Any
    outsider_member: Any


@pytest.fixture
def people(django_user_model: Any) -> People:
    """Team A (photometry private for 30 days, then the network's) and team B, one member each; both follow targets."""
    def user(name: str) -> Any:
        return django_user_model.objects.create_user(username=name, password="a long test password 42")

    alice, bob, carol, dave = (user(n) for n in ("alice", "bob", "carol", "dave"))
    a = team_create(name="Team A", slug="team-a", admins=[alice])
    b = team_create(name="Team B", slug="team-b", admins=[carol])
    team_member_set(team=a, user=bob, role="member", by=alice)
    team_member_set(team=b, user=dave, role="member", by=carol)
    policy_update(team=a, by=alice, document=document(photometry=rule((), 30, "network"), requests=rule((), 0, "network")))
    return People(team=a, other=b, member=bob, outsider_member=dave)


def completed_dispatch(observation: SimObservation, *, team: Any, finished: datetime | None = None) -> Dispatch:
    """A copy that completed at the simulator as ``observation``'s request group, with its TOM observation record."""
    target, _ = Target.objects.get_or_create(name=BULGE["name"], defaults={
        "type": Target.SIDEREAL, "ra": BULGE["ra"], "dec": BULGE["dec"], "epoch": 2000.0})
    start = observation.start
    request = ObservingRequest.objects.create(
        target=target, team=team.group, telescope_class="1m0",
        exposures=[{"filter": band, "exposure_s": seconds, "count": 1} for band, seconds, _, _ in EXPOSURES],
        window_start=start - timedelta(hours=1), window_end=start + timedelta(hours=10), state="completed",
    )
    group_id = str(observation.request.group_id)
    record = ObservationRecord.objects.create(target=target, facility="Baton", observation_id=f"lsc:{group_id}",
                                              status="COMPLETED", parameters={})
    return Dispatch.objects.create(
        request=request, facility=observation.facility, state=DispatchState.COMPLETED, remote_id=group_id,
        observation_record=record, window_start=start, window_end=start + timedelta(hours=1), p_success=0.8,
        duration_s=600.0, submitted_at=start, finished_at=finished or observation.end,
    )


def shown(page: str) -> set[float]:
    return {mag for _, _, mag, _ in EXPOSURES if f"{mag}" in page}


def test_a_completed_copys_frames_become_data_products_and_photometry_the_team_sees_first(
    sim: Sim, people: People, client: Any
) -> None:
    observation = observed()
    dispatch = completed_dispatch(observation, team=people.team)
    target = dispatch.request.target
    target_record_interest(target=target, team=people.other.group)  # B follows it too: it may see the target page

    assert dispatch_data_fetch_task.apply(args=(dispatch.pk,)).get() == 3
    assert dispatch_data_store(dispatch_id=dispatch.pk) == 0  # a re-run stores nothing new
    products = DataProduct.objects.filter(target=target).order_by("product_id")
    frame_ids = [observation.pk * FRAMES_PER_OBSERVATION + k for k in range(3)]
    assert [p.product_id for p in products] == [f"{dispatch.facility.code}:frame:{i}" for i in frame_ids]
    assert {p.observation_record_id for p in products} == {dispatch.observation_record_id}
    assert {p.data_product_type for p in products} == {"fits_file"}
    with products[0].data.open("rb") as stored:
        assert fits.getheader(io.BytesIO(stored.read()))["RLEVEL"] == 91
    points = PhotometryReducedDatum.objects.filter(target=target).order_by("timestamp")
    assert [(p.bandpass, p.brightness, p.brightness_error, p.exposure_time, p.unit) for p in points] == [
        (band, mag, err, seconds, "Vega mag" if band == "V" else "AB mag") for band, seconds, mag, err in EXPOSURES
    ]
    assert {(p.telescope, p.instrument, p.source_name, p.limit) for p in points} == {
        (dispatch.facility.code, INSTRUMENT, f"Baton/{dispatch.facility.code}", None)}
    assert {p.data_product.product_id for p in points} == {p.product_id for p in products}
    assert points[0].source_location == f"{sim.base_url}archive/frames/{frame_ids[0]}/"
    owned = DataOwnership.objects.filter(team=people.team.group)
    assert owned.count() == 6 and set(owned.values_list("kind", flat=True)) == {"photometry"}

    # The team's member sees the points on TOM's target page and through the photometry API, and the frames.
    client.force_login(people.member)
    page = client.get(f"/targets/{target.pk}/").content.decode()
    assert shown(page) == {mag for _, _, mag, _ in EXPOSURES}
    files = {p.get_file_name() for p in products}
    assert files <= set(re.findall(r"[\w.-]+-e91\.fits", page))  # the frames, on the target's data tab
    api = client.get(f"/api/data/photometry/?target={target.pk}").json()
    assert sorted((p["brightness"], p["bandpass"], p["unit"]) for p in api) == sorted(
        (mag, band, "Vega mag" if band == "V" else "AB mag") for band, _, mag, _ in EXPOSURES)
    listed = client.get(f"/api/reduceddatums/?target__id={target.pk}").json()["results"]
    assert len(listed) == 3
    # Team B's member sees the target, but none of A's data before its release...
    client.force_login(people.outsider_member)
    page = client.get(f"/targets/{target.pk}/")
    assert page.status_code == 200 and shown(page.content.decode()) == set()
    assert not files & set(re.findall(r"[\w.-]+-e91\.fits", page.content.decode()))
    assert client.get(f"/api/data/photometry/?target={target.pk}").json() == []
    assert client.get(f"/api/reduceddatums/?target__id={target.pk}").json()["results"] == []
    # ...and all of it once released to the network, when the proprietary period is over.
    with clock.moved(by=timedelta(days=31)):
        data_release_due()
        assert shown(client.get(f"/targets/{target.pk}/").content.decode()) == {mag for _, _, mag, _ in EXPOSURES}
        assert len(client.get(f"/api/data/photometry/?target={target.pk}").json()) == 3


def test_an_undetected_target_becomes_a_limit(sim: Sim, people: People) -> None:
    observation = observed(exposures=[("rp", 60.0, 21.3, 0.6)])
    dispatch = completed_dispatch(observation, team=people.team)
    dispatch.request.exposures = [{"filter": "rp", "exposure_s": 60, "count": 1}]
    dispatch.request.save(update_fields=["exposures"])
    assert dispatch_data_store(dispatch_id=dispatch.pk) == 1
    point = PhotometryReducedDatum.objects.get(target=dispatch.request.target)
    assert point.brightness is None and point.limit is not None and 20.0 < point.limit < 21.3


def test_the_task_waits_for_frames_the_archive_has_not_got_yet_and_gives_up_after_a_day(sim: Sim, people: People) -> None:
    observation = observed()
    # The archive has only the first frame so far.
    SimObservation.objects.filter(pk=observation.pk).update(photometry=observation.photometry[:1])
    dispatch = completed_dispatch(observation, team=people.team, finished=timezone.now() - timedelta(hours=1))
    with pytest.raises(ArchiveNotReady) as waiting:
        dispatch_data_store(dispatch_id=dispatch.pk)
    assert waiting.value.stored == 1 and DataProduct.objects.count() == 1
    with pytest.raises(ArchiveNotReady):  # called directly, a retry re-raises: it would be retried
        dispatch_data_fetch_task(dispatch.pk)
    # The rest arrives: the next run stores just those.
    SimObservation.objects.filter(pk=observation.pk).update(photometry=observation.photometry)
    assert dispatch_data_store(dispatch_id=dispatch.pk) == 2
    # A copy finished more than a day ago whose frames never came: given up, not retried.
    late = completed_dispatch(observed(exposures=EXPOSURES[:1]), team=people.team,
                              finished=timezone.now() - timedelta(days=2))
    SimObservation.objects.filter(request__group_id=int(late.remote_id)).update(photometry=[])
    assert dispatch_data_fetch_task(late.pk) == 0


def test_a_copy_that_did_not_complete_stores_nothing(sim: Sim, people: People) -> None:
    dispatch = completed_dispatch(observed(), team=people.team)
    Dispatch.objects.filter(pk=dispatch.pk).update(state=DispatchState.FAILED_WEATHER)
    assert dispatch_data_store(dispatch_id=dispatch.pk) == 0
    assert not DataProduct.objects.exists()



def _fpacked(*, calibrated: bool) -> bytes:
    """A frame as LCO's archive stores it (``.fits.fz``): an empty primary, the image in ``SCI``, the ``CAT`` table."""
    import numpy as np

    header = fits.Header({"DATE-OBS": "2026-06-16T02:00:00.000", "EXPTIME": 100.0, "FILTER": "gp", "PIXSCALE": 0.389,
                          "L1SIGMA": 10.0, "L1FWHM": 2.0})
    if calibrated:
        header["L1ZP"], header["L1ZPERR"] = 23.5, 0.01
    cat = fits.BinTableHDU.from_columns([
        fits.Column(name="ra", format="D", array=np.array([BULGE["ra"] + 1.0 / 3600, BULGE["ra"] + 0.01])),
        fits.Column(name="dec", format="D", array=np.array([BULGE["dec"], BULGE["dec"]])),
        fits.Column(name="flux", format="D", array=np.array([10_000.0, 50_000.0])),
        fits.Column(name="fluxerr", format="D", array=np.array([100.0, 200.0])),
    ], name="CAT")
    sci = fits.CompImageHDU(data=np.zeros((16, 16), dtype=np.float32), header=header, name="SCI")
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), sci, cat]).writeto(buffer)
    return buffer.getvalue()


@pytest.mark.django_db(transaction=False)
def test_frame_photometry_reads_an_fpacked_frame_and_needs_a_zeropoint() -> None:
    content = _fpacked(calibrated=True)
    point = frame_photometry(content, ra_deg=BULGE["ra"], dec_deg=BULGE["dec"])  # the source 0.86" away, not 31"
    assert point is not None and (point.band, point.exposure_time, point.unit) == ("gp", 100.0, "AB mag")
    assert point.mag == pytest.approx(-2.5 * math.log10(10_000.0 / 100.0) + 23.5)
    assert point.mag_err == pytest.approx(math.hypot(1.0857362 * 0.01, 0.01), abs=1e-6)
    assert point.time == datetime(2026, 6, 16, 2, 0, 50, tzinfo=point.time.tzinfo) and point.time.utcoffset() == timedelta(0)
    assert frame_photometry(content, ra_deg=BULGE["ra"], dec_deg=BULGE["dec"], radius_arcsec=0.5) is None
    uncalibrated = _fpacked(calibrated=False)  # (BANZAI calibrates the Sloan filters only)
    assert frame_photometry(uncalibrated, ra_deg=BULGE["ra"], dec_deg=BULGE["dec"]) is None
    assert frame_limit(uncalibrated) is None
