"""Ingest service: real packets become targets with light curves and provenance; cone matching,
idempotency, filters, watch regions and their versions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import get_groups_with_perms
from tom_dataproducts.models import PhotometryReducedDatum
from tom_targets.models import Target

from candidates.models import Candidate, LightCurvePoint, Match, TargetSky
from candidates.packets import parse_alert_batch
from candidates.services import alerts_ingest, filter_create, filter_update, region_create, region_update

from .conftest import (
    AVRO,
    JSON,
    generic_alert,
    json_body,
    offset,
    rubin_sample,
    rubin_samples_usable,
    ztf_packet,
)

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


def ingest(body: bytes, content_type: str = JSON, broker: str | None = None, **kwargs: Any) -> Any:
    parsed = parse_alert_batch(body=body, content_type=content_type, broker=broker)
    assert parsed.errors == []
    return alerts_ingest(alerts=parsed.alerts, received_at=NOW, now=NOW, **kwargs)


def test_rubin_sample_packets_of_every_usable_schema_make_one_target_with_its_light_curve() -> None:
    versions = rubin_samples_usable()
    assert len(versions) >= 5
    first = ingest(rubin_sample(*versions[0]), AVRO)
    assert (first.stored, first.duplicate, first.new_targets, first.points) == (1, 0, 1, 3)
    # The same alert in every later schema version is the same alert (same diaSourceId): stored once.
    for version in versions[1:]:
        again = ingest(rubin_sample(*version), AVRO)
        assert (again.stored, again.duplicate, again.new_targets, again.points) == (0, 1, 0, 0)

    target = Target.objects.get()
    assert target.name == "rubin:281323062375219201"
    assert (target.ra, target.dec) == (351.570546978, 0.126243049656)
    candidate = Candidate.objects.get()
    assert (candidate.broker, candidate.alert_id, candidate.object_id) == ("rubin", "281323062375219200",
                                                                         "281323062375219201")
    assert candidate.schema == f"lsst.alert {versions[0][0]}.{versions[0][1]}"
    assert candidate.raw["diaSource"]["diaSourceId"] == 281323062375219200
    assert candidate.flux == 1241.0 and candidate.mag == pytest.approx(23.6655705, abs=1e-6)
    points = list(LightCurvePoint.objects.order_by("source_id").values_list("source_id", "band", "target_id"))
    assert points == [("281323062375219198", "r", target.pk), ("281323062375219199", "r", target.pk),
                      ("281323062375219200", "r", target.pk)]
    datum = PhotometryReducedDatum.objects.get(source_location="rubin:281323062375219200")
    assert (datum.target_id, datum.bandpass, datum.brightness) == (target.pk, "r", candidate.mag)
    assert datum.brightness_error == pytest.approx(candidate.mag_err)
    assert TargetSky.objects.get(target=target).ra == target.ra


def test_ztf_packet_gives_coordinates_points_and_classifier_provenance() -> None:
    result = ingest(ztf_packet(), AVRO)
    assert (result.stored, result.new_targets, result.points) == (1, 1, 3)
    target = Target.objects.get()
    assert (target.name, target.ra, target.dec) == ("ZTF23aaqzsni", 268.4541812, -29.9063871)
    candidate = Candidate.objects.get()
    assert candidate.classifications == [
        {"classifier": "ztf-rb", "version": "t17_f5_c3", "class": "real", "score": pytest.approx(0.8614286)},
        {"classifier": "ztf-drb", "version": "d6_m7", "class": "real", "score": pytest.approx(0.99971)},
    ]
    assert candidate.schema == "ztf.alert 4.02"
    # Three points: the alert's own and two earlier detections (the non-detection is skipped); the
    # fading (negative-flux) detection has no magnitude, so TOM's plot gets the two with one.
    assert LightCurvePoint.objects.count() == 3
    fading = LightCurvePoint.objects.get(source_id="2381200000015015002")
    assert fading.mag is None and fading.flux is not None and fading.flux < 0
    assert sorted(PhotometryReducedDatum.objects.values_list("bandpass", "brightness")) == [
        ("g", pytest.approx(18.4)), ("r", pytest.approx(17.8325))  # float32 in the Avro packet
    ]
    assert candidate.rise_rate is None  # no earlier r-band magnitude in the alert


def test_replay_of_a_batch_adds_nothing() -> None:
    body = json_body(generic_alert(), generic_alert(alert_id="a-2", mag=18.0, time="2026-06-02T03:00:00Z"))
    first = ingest(body, broker="b")
    again = ingest(body, broker="b")
    assert (first.stored, first.duplicate) == (2, 0)
    assert (again.stored, again.duplicate, again.points, again.new_targets) == (0, 2, 0, 0)
    assert Candidate.objects.count() == 2 and LightCurvePoint.objects.count() == 2
    assert PhotometryReducedDatum.objects.count() == 2 and Target.objects.count() == 1


def test_cone_match_joins_known_targets_and_makes_new_ones() -> None:
    known = Target.objects.create(name="SN 2026abc", type="SIDEREAL", ra=150.0, dec=2.0)  # indexed by the signal
    near = offset(150.0, 2.0, 1.2)
    far = offset(150.0, 2.0, 3.0)
    body = json_body(
        generic_alert(alert_id="n1", ra=near[0], dec=near[1]),
        generic_alert(alert_id="f1", object_id="OBJ-2", ra=far[0], dec=far[1]),
        # a second new alert 0.5" from the first new one, in the same chunk: the same new target
        generic_alert(alert_id="f2", object_id="OBJ-2b", ra=far[0], dec=far[1] + 0.5 / 3600),
    )
    result = ingest(body, broker="b")
    assert (result.stored, result.new_targets) == (3, 1)
    assert Candidate.objects.get(alert_id="n1").target == known
    assert Candidate.objects.get(alert_id="n1").separation == pytest.approx(1.2, abs=1e-6)
    new = Candidate.objects.get(alert_id="f1").target
    assert new != known and Candidate.objects.get(alert_id="f2").target == new
    assert new.name == "OBJ-2"
    # The nearest of two targets within the radius wins.
    Target.objects.create(name="closer", type="SIDEREAL", ra=150.0, dec=2.0 + 1.0 / 3600)
    ingest(json_body(generic_alert(alert_id="n2", ra=near[0], dec=near[1])), broker="b")
    assert Candidate.objects.get(alert_id="n2").target.name == "closer"


def test_a_name_already_taken_elsewhere_gets_a_suffix() -> None:
    Target.objects.create(name="OBJ-1", type="SIDEREAL", ra=10.0, dec=-5.0)
    ingest(json_body(generic_alert()), broker="b")
    assert Candidate.objects.get().target.name == "OBJ-1-2"


def test_cone_match_across_a_healpix_pixel_corner_and_near_the_pole() -> None:
    for ra, dec in ((45.0, 0.0), (0.0, 89.9999), (359.99999, -41.8103149)):
        Target.objects.create(name=f"t{ra}{dec}", type="SIDEREAL", ra=ra, dec=dec)
    alerts = []
    for i, (ra, dec) in enumerate(((45.0, 1.0 / 3600), (180.0, 89.9999), (0.00001, -41.8103149))):
        alerts.append(generic_alert(alert_id=f"c{i}", ra=ra, dec=dec))
    result = ingest(json_body(*alerts), broker="b")
    assert result.new_targets == 0  # each within 1.5" of a known target across pixel boundaries / RA wrap


def test_filter_matches_record_their_version_and_grant_the_team(team: Group, user: Any) -> None:
    bright = filter_create(name="bright r", team=team, predicates=[
        {"field": "mag", "op": "<=", "value": 18.0}, {"field": "band", "op": "in", "value": ["r"]},
    ])  # fmt: skip
    mine = filter_create(name="rising", owner=user, predicates=[{"field": "rise_rate", "op": ">", "value": 0.5}])
    scored = filter_create(name="real", team=team, predicates=[
        {"field": "score", "classifier": "ztf-rb", "class": "real", "op": ">=", "value": 0.8},
        {"field": "abs_galactic_latitude", "op": "<", "value": 5},
    ])  # fmt: skip
    history = [{"source_id": "h1", "time": "2026-05-31T03:04:05Z", "band": "r", "mag": 19.0, "mag_err": 0.05}]
    body = json_body(
        generic_alert(alert_id="x1", mag=17.5, history=history),  # bright, rising 1.5 mag/day
        generic_alert(alert_id="x2", mag=18.5, band="g"),  # neither
        generic_alert(alert_id="x3", mag=float("nan"), flux=-500.0, flux_err=20.0, **{"mag_err": ...}),
    )
    parsed = parse_alert_batch(body=body, content_type=JSON, broker="b")
    assert [e.field for e in parsed.errors] == ["mag"]  # a NaN magnitude is refused, the others kept
    alerts_ingest(alerts=parsed.alerts, received_at=NOW, now=NOW)
    ingest(ztf_packet(), AVRO)  # rb 0.86 in the Galactic bulge (b ~ -1.8 deg)

    got = sorted(Match.objects.values_list("candidate__alert_id", "filter__name", "filter_version__version"))
    assert got == [("2383254310015015004", "bright r", 1), ("2383254310015015004", "real", 1),
                   ("x1", "bright r", 1), ("x1", "rising", 1)]
    x1 = Candidate.objects.get(alert_id="x1")
    assert x1.rise_rate == pytest.approx(1.5)
    assert Match.objects.get(filter=mine).owner == user
    assert team in get_groups_with_perms(x1.target)

    filter_update(stream_filter=bright, predicates=[{"field": "mag", "op": "<=", "value": 19.0}])
    filter_update(stream_filter=bright, name="bright any band")  # a rename is not a new version
    ingest(json_body(generic_alert(alert_id="x4", mag=18.7, band="g", object_id="O4", ra=151.0)), broker="b")
    assert Match.objects.filter(candidate__alert_id="x4").values_list("filter_version__version", flat=True)[0] == 2
    assert bright.versions.count() == 2 and scored.versions.count() == 1


def test_watch_regions_cone_polygon_and_moc(team: Group) -> None:
    cone = region_create(name="cone", kind="cone", team=team, spec={"ra": 150.0, "dec": 2.0, "radius": 0.1})
    poly = region_create(name="box", kind="polygon", team=team,
                         spec={"vertices": [[149.0, 1.0], [151.0, 1.0], [151.0, 3.0], [149.0, 3.0]]})
    moc = region_create(name="map", kind="moc", team=team, spec={"moc": "9/0-3"})  # a patch around (45, 0)
    assert cone.area == pytest.approx(0.0314, rel=1e-3)
    inside_edge = offset(150.0, 2.0, 0.1 * 3600 - 1)
    outside_edge = offset(150.0, 2.0, 0.1 * 3600 + 1)
    body = json_body(
        generic_alert(alert_id="in", ra=inside_edge[0], dec=inside_edge[1]),
        generic_alert(alert_id="out", object_id="O2", ra=outside_edge[0], dec=outside_edge[1]),
        generic_alert(alert_id="far", object_id="O3", ra=10.0, dec=-60.0),
        generic_alert(alert_id="m", object_id="O4", ra=45.01, dec=0.01),
    )
    ingest(body, broker="b")
    got = sorted(Match.objects.values_list("candidate__alert_id", "region__name", "region_version"))
    assert got == [("in", "box", 1), ("in", "cone", 1), ("m", "map", 1), ("out", "box", 1)]
    region_update(region=cone, spec={"ra": 150.0, "dec": 2.0, "radius": 0.2})
    ingest(json_body(generic_alert(alert_id="out2", object_id="O5", ra=outside_edge[0], dec=outside_edge[1])),
           broker="b")
    assert Match.objects.get(candidate__alert_id="out2", region=cone).region_version == 2
    assert moc.area > 0 and poly.area == pytest.approx(4.0, rel=0.05)


@pytest.mark.parametrize(
    ("kind", "spec", "message"),
    [
        ("cone", {"ra": 400, "dec": 0, "radius": 1}, "ra: 400 is outside [0.0, 360.0)"),
        ("cone", {"ra": 1, "dec": 0, "radius": 0}, "radius: must be positive"),
        ("cone", {"ra": 1, "dec": 0}, "radius: must be a finite number"),
        ("polygon", {"vertices": [[1, 1], [2, 2]]}, "vertices: must be a list of 3 to 1000 [ra, dec] pairs"),
        ("moc", {"moc": "not a moc"}, "moc: cannot be read"),
        ("ellipse", {}, "kind: 'ellipse' is not one of cone, polygon, moc"),
    ],
)
def test_bad_regions_are_refused_and_store_nothing(team: Group, kind: str, spec: Any, message: str) -> None:
    from candidates.models import WatchRegion
    from candidates.services import RegionInvalid

    with pytest.raises(RegionInvalid, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        region_create(name="bad", kind=kind, team=team, spec=spec)
    assert WatchRegion.objects.count() == 0


@pytest.mark.parametrize(
    ("predicates", "message"),
    [
        ({"field": "mag"}, "predicates: must be a list"),
        ([{"field": "colour", "op": "<", "value": 1}], "predicates[0].field: 'colour' is not one of"),
        ([{"field": "mag", "op": "~", "value": 1}], "predicates[0].op: '~' is not one of"),
        ([{"field": "mag", "op": "<", "value": "bright"}], "predicates[0].value: must be a finite number"),
        ([{"field": "score", "op": ">", "value": 0.5}], "predicates[0].classifier: must be a name"),
        ([{"field": "band", "op": "in", "value": []}], "predicates[0].value: must be a non-empty list"),
    ],
)
def test_bad_predicates_are_refused(team: Group, predicates: Any, message: str) -> None:
    from candidates.services import FilterInvalid

    with pytest.raises(FilterInvalid) as caught:
        filter_create(name="bad", team=team, predicates=predicates)
    assert str(caught.value).startswith(message)


def test_chunks_are_transactions_and_cost_stays_flat_with_many_targets(django_assert_max_num_queries: Any) -> None:
    """A chunk's queries do not grow with the alerts in it or the targets in the database."""
    from candidates.services import target_sky_backfill

    Target.objects.bulk_create(
        [Target(name=f"bg{i}", type="SIDEREAL", ra=(i * 0.37) % 360, dec=((i * 0.11) % 170) - 85) for i in range(3000)]
    )
    assert target_sky_backfill() == 3000
    alerts = [generic_alert(alert_id=f"k{i}", object_id=f"K{i}", ra=(i * 0.37) % 360,
                            dec=((i * 0.11) % 170) - 85 + 0.5 / 3600, time="2026-06-01T00:00:00Z")
              for i in range(0, 3000, 3)]
    parsed = parse_alert_batch(body=json_body(*alerts), content_type=JSON, broker="b")
    with django_assert_max_num_queries(20):
        result = alerts_ingest(alerts=parsed.alerts, received_at=NOW, now=NOW, chunk_size=5000)
    assert (result.stored, result.new_targets) == (1000, 0)  # every one joined its background target


def test_time_is_recorded_as_given() -> None:
    ingest(json_body(generic_alert(time="2026-06-01T03:04:05.250Z")), broker="b")
    assert Candidate.objects.get().time == datetime(2026, 6, 1, 3, 4, 5, 250000, tzinfo=UTC)
    assert Candidate.objects.get().received_at == NOW
    assert Candidate.objects.get().created_at == NOW - timedelta(0)
