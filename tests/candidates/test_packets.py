"""Tests for candidates.packets: generic JSON, Rubin Avro (shipped samples, Confluent framing) and ZTF Avro."""

from __future__ import annotations

import copy
import io
import json
import math
import zlib
from datetime import UTC, datetime, timedelta
from importlib.util import find_spec
from pathlib import Path
from typing import Any, cast

import erfa
import fastavro
import jsonschema
import pytest

from candidates.packets import (
    AB_ZERO_POINT_NJY,
    GENERIC_JSON_SCHEMA_PATH,
    MAX_BATCH_BYTES,
    ZTF_AVRO_SCHEMA_PATH,
    AlertError,
    AlertIn,
    Classification,
    PacketError,
    PhotPoint,
    parse_alert_batch,
    rubin_schema_ids,
)

AVRO = "application/avro"
JSON = "application/json"

# --------------------------------------------------------------------------------------
# Rubin sample packets, read independently of the parser


def _rubin_schema_root() -> Path:
    spec = find_spec("lsst.alert.packet")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "schema"


RUBIN_SAMPLES = sorted(
    _rubin_schema_root().glob("*/*/sample_data/fakeAlert.avro"),
    key=lambda path: (int(path.parts[-4]), int(path.parts[-3])),
)


def _version(path: Path) -> tuple[int, int]:
    return int(path.parts[-4]), int(path.parts[-3])


def _read_container(data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    reader = fastavro.reader(io.BytesIO(data))
    return cast(dict[str, Any], reader.writer_schema), [cast(dict[str, Any], record) for record in reader]


def _tai_mjd_to_utc_erfa(mjd_tai: float) -> datetime:
    """TAI MJD -> aware UTC datetime through ERFA (the SOFA library astropy uses)."""
    utc1, utc2 = erfa.taiutc(2400000.5, mjd_tai)
    # d2dtf, not jd2cal: ERFA stretches a UTC day that ends in a leap second to 86401 s.
    year, month, day, (hour, minute, second, micro) = erfa.d2dtf("UTC", 6, utc1, utc2)
    return datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), int(micro), tzinfo=UTC
    )


def _flux_from_mag(mag: float, mag_err: float, *, sign: float = 1.0) -> tuple[float, float]:
    """Expected (flux, flux_err) in nJy of an AB magnitude, compared to 1e-12 (pytest.approx)."""
    flux = 10 ** (-0.4 * (mag - 31.4))
    return (
        cast(float, pytest.approx(sign * flux, rel=1e-12)),
        cast(float, pytest.approx(flux * mag_err * math.log(10) / 2.5, rel=1e-12)),
    )


def _pick(record: dict[str, Any], *keys: str) -> Any:
    return next(record[key] for key in keys if key in record)


def _assert_matches_rubin_record(alert: AlertIn, record: dict[str, Any], version: tuple[int, int]) -> None:
    source = record["diaSource"]
    object_id = source.get("diaObjectId") or record["diaObject"]["diaObjectId"]
    assert alert.alert_id == str(source["diaSourceId"])
    assert alert.object_id == str(object_id)
    assert alert.ra == source["ra"]
    assert alert.dec == _pick(source, "dec", "decl")
    assert alert.band == _pick(source, "band", "filterName")
    flux, flux_err = _pick(source, "psfFlux", "psFlux"), _pick(source, "psfFluxErr", "psFluxErr")
    assert alert.flux == flux and alert.flux_err == flux_err
    assert alert.mag == pytest.approx(-2.5 * math.log10(flux) + 31.4, abs=1e-12)
    assert alert.mag_err == pytest.approx(2.5 / math.log(10) * flux_err / flux, rel=1e-12)
    mjd_tai = _pick(source, "midpointMjdTai", "midPointTai")
    assert abs(alert.time - _tai_mjd_to_utc_erfa(mjd_tai)) < timedelta(microseconds=20)
    assert alert.time.tzinfo is UTC
    previous = (record.get("prvDiaSources") or []) + (record.get("prvDiaForcedSources") or [])
    assert len(alert.history) == len(previous)
    assert [point.source_id for point in alert.history] == [
        str(point.get("diaSourceId", point.get("diaForcedSourceId"))) for point in previous
    ]
    for point, expected in zip(alert.history, previous, strict=True):
        assert point.flux == _pick(expected, "psfFlux", "psFlux")
        assert point.band == _pick(expected, "band", "filterName")
        mjd = _pick(expected, "midpointMjdTai", "midPointTai")
        assert abs(point.time - _tai_mjd_to_utc_erfa(mjd)) < timedelta(microseconds=20)
    assert alert.schema == f"lsst.alert {version[0]}.{version[1]}"
    assert alert.broker == "rubin"
    for key in ("cutoutDifference", "cutoutScience", "cutoutTemplate"):
        assert key not in alert.raw
    json.dumps(alert.raw, allow_nan=False)  # strict JSON: no NaN, no bytes


def test_every_schema_version_of_lsst_alert_packet_has_a_sample() -> None:
    assert len(RUBIN_SAMPLES) == len(rubin_schema_ids()) >= 15
    assert {100 * major + minor for major, minor in map(_version, RUBIN_SAMPLES)} == set(rubin_schema_ids())


@pytest.mark.parametrize("path", RUBIN_SAMPLES, ids=lambda path: "v{}.{}".format(*_version(path)))
def test_shipped_rubin_sample_alert(path: Path) -> None:
    data = path.read_bytes()
    _, (record,) = _read_container(data)
    version = _version(path)
    batch = parse_alert_batch(body=data, content_type=AVRO)

    if version >= (8, 0):
        assert batch.errors == []
        (alert,) = batch.alerts
        _assert_matches_rubin_record(alert, record, version)
        assert alert.ra == 351.570546978 and alert.dec == 0.126243049656 and alert.band == "r"
        assert alert.flux == 1241.0 and alert.mag == pytest.approx(23.6655705, abs=1e-6)
        assert len(alert.history) == 2
    else:
        # Samples 3.0-7.4 carry a Unix time (1480360995 s = 2016-11-28) in the field the
        # schema documents as an MJD: rejected, with the field named.
        key = "midPointTai" if version < (5, 0) else "midpointMjdTai"
        assert batch.alerts == []
        assert batch.errors == [
            AlertError(
                index=0,
                alert_id=str(record["diaSource"]["diaSourceId"]),
                field=f"diaSource.{key}",
                message=(
                    f"diaSource.{key}: 1480360995.0 is not a plausible MJD (TAI); expected 15020 to 88069 "
                    "(years 1900 to 2100)"
                ),
            )
        ]


@pytest.mark.parametrize(
    "path", [p for p in RUBIN_SAMPLES if _version(p) < (8, 0)], ids=lambda p: "v{}.{}".format(*_version(p))
)
def test_old_rubin_sample_maps_once_its_time_is_an_mjd(path: Path) -> None:
    """The older samples' field mapping (decl, filterName, psFlux, ...) works on a repaired copy."""
    schema, (record,) = _read_container(path.read_bytes())
    repaired = copy.deepcopy(record)
    for number, source in enumerate([repaired["diaSource"], *(repaired.get("prvDiaSources") or [])]):
        key = "midPointTai" if "midPointTai" in source else "midpointMjdTai"
        source[key] = 60900.5 - number
    stream = io.BytesIO()
    fastavro.writer(stream, schema, [repaired])
    (alert,) = parse_alert_batch(body=stream.getvalue(), content_type=AVRO).alerts
    _assert_matches_rubin_record(alert, repaired, _version(path))


def test_rubin_tai_to_utc_across_leap_seconds_matches_erfa() -> None:
    schema, (record,) = _read_container(RUBIN_SAMPLES[-1].read_bytes())
    # Around the 1999, 2012, 2015 and 2017 leap seconds, and today (TAI - UTC = 37 s).
    moments = [51178.99, 51179.0004, 56109.0003, 57203.9999, 57204.0005, 57753.9, 57754.00043, 60902.99]
    records = []
    for number, mjd in enumerate(moments):
        copy_ = copy.deepcopy(record)
        copy_["diaSource"]["diaSourceId"] += number
        copy_["diaSource"]["midpointMjdTai"] = mjd
        copy_["prvDiaSources"] = None
        records.append(copy_)
    stream = io.BytesIO()
    fastavro.writer(stream, schema, records)
    batch = parse_alert_batch(body=stream.getvalue(), content_type=AVRO)
    assert batch.errors == []
    for alert, mjd in zip(batch.alerts, moments, strict=True):
        assert abs(alert.time - _tai_mjd_to_utc_erfa(mjd)) < timedelta(microseconds=20)


def test_leap_second_table_is_erfas() -> None:
    """Guard: if ERFA learns of a new leap second, the parser's table must learn it too."""
    from candidates.packets import _LEAP_SECONDS

    table = [
        (int(year), int(month), float(dat)) for year, month, dat in erfa.leap_seconds.get() if year >= 1972
    ]
    ours = []
    for mjd, dat in _LEAP_SECONDS:
        year, month, day, _ = erfa.jd2cal(2400000.5, mjd)
        assert day == 1
        ours.append((int(year), int(month), float(dat)))
    assert ours == table


def _confluent_frame(schema_id: int, record: dict[str, Any]) -> bytes:
    major, minor = divmod(schema_id, 100)
    path = _rubin_schema_root() / str(major) / str(minor) / f"lsst.v{major}_{minor}.alert.avsc"
    stream = io.BytesIO()
    stream.write(b"\x00" + schema_id.to_bytes(4, "big"))
    fastavro.schemaless_writer(stream, fastavro.schema.load_schema(str(path)), record)
    return stream.getvalue()


@pytest.mark.parametrize("schema_id", [800, 1000, 1101])
def test_confluent_framed_rubin_message(schema_id: int) -> None:
    major, minor = divmod(schema_id, 100)
    sample = _rubin_schema_root() / str(major) / str(minor) / "sample_data" / "fakeAlert.avro"
    _, (record,) = _read_container(sample.read_bytes())
    body = _confluent_frame(schema_id, record)
    batch = parse_alert_batch(body=body, content_type="application/vnd.apache.avro+binary")
    assert batch.errors == []
    (alert,) = batch.alerts
    _assert_matches_rubin_record(alert, record, (major, minor))
    assert alert == parse_alert_batch(body=sample.read_bytes(), content_type=AVRO).alerts[0]


def test_concatenated_confluent_frames_and_a_bad_alert_among_them() -> None:
    _, (record,) = _read_container(RUBIN_SAMPLES[-1].read_bytes())
    second, bad = copy.deepcopy(record), copy.deepcopy(record)
    second["diaSource"]["diaSourceId"] += 1
    bad["diaSource"]["diaSourceId"] += 2
    bad["diaSource"]["ra"] = 400.0
    body = b"".join(_confluent_frame(1101, r) for r in (record, bad, second))
    batch = parse_alert_batch(body=body, content_type="avro/binary", broker="pitt-google")
    assert [a.alert_id for a in batch.alerts] == [
        str(record["diaSource"]["diaSourceId"]),
        str(second["diaSource"]["diaSourceId"]),
    ]
    assert {a.broker for a in batch.alerts} == {"pitt-google"}
    assert batch.errors == [
        AlertError(
            1,
            str(bad["diaSource"]["diaSourceId"]),
            "diaSource.ra",
            "diaSource.ra: must be in [0, 360) deg, got 400.0",
        )
    ]


def test_confluent_unknown_or_mixed_schema_ids_are_refused() -> None:
    _, (record,) = _read_container(RUBIN_SAMPLES[-1].read_bytes())
    frame = _confluent_frame(1101, record)
    with pytest.raises(PacketError, match=r"unknown Rubin alert schema id 4242; known ids: 300, 400, .*1101"):
        parse_alert_batch(body=b"\x00" + (4242).to_bytes(4, "big") + frame[5:], content_type=AVRO)
    older = _confluent_frame(
        1100, _read_container((_rubin_schema_root() / "11/0/sample_data/fakeAlert.avro").read_bytes())[1][0]
    )
    with pytest.raises(PacketError, match=r"mixed schema ids in one body \(1101 then 1100"):
        parse_alert_batch(body=frame + older, content_type=AVRO)


def test_rubin_non_positive_flux_keeps_flux_without_mag_and_reliability_is_a_classification() -> None:
    schema, (record,) = _read_container(RUBIN_SAMPLES[-1].read_bytes())
    fading = copy.deepcopy(record)
    fading["diaSource"]["psfFlux"] = -812.5
    fading["diaSource"]["reliability"] = 0.875
    fading["diaSource"]["reliabilityVersion"] = "rel-2025.1"
    fading["prvDiaSources"][0]["psfFlux"] = float("nan")  # not measured: skipped
    stream = io.BytesIO()
    fastavro.writer(stream, schema, [fading])
    (alert,) = parse_alert_batch(body=stream.getvalue(), content_type=AVRO).alerts
    assert alert.flux == -812.5 and alert.mag is None and alert.mag_err is None and alert.flux_err == 12.0
    assert alert.classifications == (Classification("rubin-reliability", "rel-2025.1", "real", 0.875),)
    assert [p.source_id for p in alert.history] == [str(fading["prvDiaSources"][1]["diaSourceId"])]


def test_rubin_forced_sources_become_forced_history_points() -> None:
    schema, (record,) = _read_container(RUBIN_SAMPLES[-1].read_bytes())
    with_forced = copy.deepcopy(record)
    forced = {
        "diaForcedSourceId": 99001, "diaObjectId": record["diaObject"]["diaObjectId"], "ra": record["diaSource"]["ra"],
        "dec": record["diaSource"]["dec"], "visit": 7, "detector": 42, "psfFlux": -55.0, "psfFluxErr": 11.0,
        "midpointMjdTai": 60899.25, "scienceFlux": 5000.0, "scienceFluxErr": 20.0, "band": "g",
        "timeProcessedMjdTai": 60899.3, "timeWithdrawnMjdTai": None,
    }  # fmt: skip
    with_forced["prvDiaForcedSources"] = [forced, {**forced, "diaForcedSourceId": 99002, "psfFlux": None}]
    stream = io.BytesIO()
    fastavro.writer(stream, schema, [with_forced])
    (alert,) = parse_alert_batch(body=stream.getvalue(), content_type=AVRO).alerts
    assert alert.history[-1] == PhotPoint(
        source_id="99001", time=_tai_mjd_to_utc_erfa(60899.25), band="g", mag=None, mag_err=None,
        flux=-55.0, flux_err=11.0, forced=True,
    )  # fmt: skip
    assert len(alert.history) == 3  # two prvDiaSources and one measured forced source


def test_deflate_and_bzip2_containers_with_many_alerts() -> None:
    schema, (record,) = _read_container(RUBIN_SAMPLES[-1].read_bytes())
    records = []
    for number in range(40):
        copy_ = copy.deepcopy(record)
        copy_["diaSource"]["diaSourceId"] += number
        records.append(copy_)
    for codec in ("deflate", "bzip2"):
        stream = io.BytesIO()
        fastavro.writer(stream, schema, records, codec=codec, sync_interval=4000)
        batch = parse_alert_batch(body=stream.getvalue(), content_type=AVRO)
        assert batch.errors == []
        assert [a.alert_id for a in batch.alerts] == [str(r["diaSource"]["diaSourceId"]) for r in records]


# --------------------------------------------------------------------------------------
# ZTF


def _jd_to_datetime(jd: float) -> datetime:
    """UTC datetime of a UTC Julian date, counted from J2000 (JD 2451545.0 = 2000-01-01T12:00)."""
    return datetime(2000, 1, 1, 12, tzinfo=UTC) + timedelta(days=jd - 2451545.0)


def _ztf_schema() -> dict[str, Any]:
    return cast(dict[str, Any], fastavro.parse_schema(json.loads(ZTF_AVRO_SCHEMA_PATH.read_text())))


def _ztf_candidate(schema: dict[str, Any], **values: Any) -> dict[str, Any]:
    fields = next(f for f in schema["fields"] if f["name"] == "candidate")["type"]["fields"]
    candidate: dict[str, Any] = {f["name"]: None for f in fields}
    candidate.update(
        jd=2460123.7543171, fid=2, pid=2383254310015, diffmaglim=20.61, programid=1,
        candid=2383254310015015004, isdiffpos="t", nid=2383, rcid=61, field=1735, xpos=2203.1, ypos=715.9,
        ra=268.4541812, dec=-29.9063871, magpsf=17.8325, sigmapsf=0.0412, chipsf=1.62, magap=17.79,
        sigmagap=0.052, distnr=0.31, magnr=19.114, sigmagnr=0.036, sky=-0.12, fwhm=2.41, classtar=0.98,
        mindtoedge=715.9, seeratio=1.04, nneg=3, nbad=0, rb=0.8614286, ssdistnr=-999.0, ssmagnr=-999.0,
        sumrat=0.97, ranr=268.4541901, decnr=-29.9063712, sgmag1=19.41, srmag1=18.9, simag1=18.62,
        sgscore1=0.996, distpsnr1=0.27, ndethist=12, ncovhist=251, jdstarthist=2460094.8, jdendhist=2460123.75,
        scorr=38.4, tooflag=0, objectidps1=72082684541894001, nmtchps=14, rfid=735120161, jdstartref=2458204.0,
        jdendref=2458431.6, nframesref=15, rbversion="t17_f5_c3", magzpsci=26.21, nmatches=1093, exptime=30.0,
        drb=0.99971, drbversion="d6_m7",
    )  # fmt: skip
    candidate.update(values)
    return candidate


def _ztf_prv(schema: dict[str, Any], **values: Any) -> dict[str, Any]:
    alert_fields = schema["fields"]
    prv_type = next(f for f in alert_fields if f["name"] == "prv_candidates")["type"][1]["items"]
    point: dict[str, Any] = {f["name"]: None for f in prv_type["fields"]}
    point.update(jd=2460120.71, fid=1, pid=2380210, programid=1, rbversion="t17_f5_c3", diffmaglim=20.3)
    point.update(values)
    return point


def _ztf_packet(*records: dict[str, Any]) -> bytes:
    stream = io.BytesIO()
    fastavro.writer(stream, _ztf_schema(), list(records))
    return stream.getvalue()


def _ztf_record(schema: dict[str, Any], **candidate_values: Any) -> dict[str, Any]:
    candidate = _ztf_candidate(schema, **candidate_values)
    stamp = {
        "fileName": "candid2383254310015015004_pid2383254310_targ_sci.fits.gz",
        "stampData": zlib.compress(b"SIMPLE" * 400),
    }
    return {
        "schemavsn": "4.02",
        "publisher": "ZTF (www.ztf.caltech.edu)",
        "objectId": "ZTF23aaqzsni",
        "candid": candidate["candid"],
        "candidate": candidate,
        "prv_candidates": [
            _ztf_prv(schema, jd=2460118.69, magpsf=None, sigmapsf=None),  # a non-detection
            _ztf_prv(schema, candid=2380210000015015001, magpsf=18.4, sigmapsf=0.06, ra=268.45418, dec=-29.90638, isdiffpos="t", rb=0.74),
            _ztf_prv(schema, jd=2460121.70, fid=2, candid=2381200000015015002, magpsf=19.7, sigmapsf=0.12, ra=268.45418, dec=-29.90638, isdiffpos="f"),
        ],
        "fp_hists": None,
        "cutoutScience": stamp,
        "cutoutTemplate": stamp,
        "cutoutDifference": stamp,
    }  # fmt: skip


def test_ztf_schema_file_is_the_published_v4_02_layout() -> None:
    schema = json.loads(ZTF_AVRO_SCHEMA_PATH.read_text())
    assert (schema["namespace"], schema["name"], schema["version"]) == ("ztf", "alert", "4.02")
    names = [f["name"] for f in schema["fields"]]
    assert names == [
        "schemavsn", "publisher", "objectId", "candid", "candidate", "prv_candidates", "fp_hists",
        "cutoutScience", "cutoutTemplate", "cutoutDifference",
    ]  # fmt: skip
    candidate = schema["fields"][4]["type"]["fields"]
    assert len(candidate) == 103 and candidate[-2:] == [
        {"name": "drb", "type": ["null", "float"], "default": None,
         "doc": "RealBogus quality score from Deep-Learning-based classifier; range is 0 to 1 where closer to 1 is more reliable"},
        {"name": "drbversion", "type": "string",
         "doc": "version of Deep-Learning-based classifier model used to assign RealBogus (drb) quality score"},
    ]  # fmt: skip
    assert len(schema["fields"][5]["type"][1]["items"]["fields"]) == 57


def test_ztf_packet_built_from_the_schema() -> None:
    schema = _ztf_schema()
    body = _ztf_packet(_ztf_record(schema))
    _, (expected,) = _read_container(body)  # float32 values as they come back from Avro
    candidate = expected["candidate"]
    batch = parse_alert_batch(body=body, content_type="avro/binary", broker="alerce")
    assert batch.errors == []
    (alert,) = batch.alerts
    assert (alert.broker, alert.alert_id, alert.object_id) == (
        "alerce",
        "2383254310015015004",
        "ZTF23aaqzsni",
    )
    assert (alert.ra, alert.dec, alert.band) == (268.4541812, -29.9063871, "r")
    assert alert.mag == candidate["magpsf"] and alert.mag_err == candidate["sigmapsf"]
    assert alert.flux == pytest.approx(10 ** (-0.4 * (candidate["magpsf"] - AB_ZERO_POINT_NJY)), rel=1e-12)
    assert abs(alert.time - _jd_to_datetime(2460123.7543171)) < timedelta(microseconds=50)
    assert alert.time.date().isoformat() == "2023-06-28"
    assert alert.classifications == (
        Classification("ztf-rb", "t17_f5_c3", "real", candidate["rb"]),
        Classification("ztf-drb", "d6_m7", "real", candidate["drb"]),
    )
    assert alert.schema == "ztf.alert 4.02"
    prv = expected["prv_candidates"]
    assert alert.history == (
        PhotPoint("2380210000015015001", alert.history[0].time, "g", prv[1]["magpsf"], prv[1]["sigmapsf"],
                  *_flux_from_mag(prv[1]["magpsf"], prv[1]["sigmapsf"])),
        PhotPoint("2381200000015015002", alert.history[1].time, "r", None, None,
                  *_flux_from_mag(prv[2]["magpsf"], prv[2]["sigmapsf"], sign=-1.0)),
    )  # fmt: skip
    assert abs(alert.history[0].time - _jd_to_datetime(2460120.71)) < timedelta(microseconds=50)
    assert abs(alert.history[1].time - _jd_to_datetime(2460121.70)) < timedelta(microseconds=50)
    assert "cutoutScience" not in alert.raw and alert.raw["candidate"]["candid"] == 2383254310015015004
    json.dumps(alert.raw, allow_nan=False)


def test_ztf_bad_alert_does_not_lose_the_good_ones() -> None:
    schema = _ztf_schema()
    good = _ztf_record(schema)
    bad_filter = _ztf_record(schema, fid=4, candid=2383254310015015005)
    bad_filter["candid"] = 2383254310015015005
    negative = _ztf_record(schema, isdiffpos="f", candid=2383254310015015006)
    negative["candid"] = 2383254310015015006
    batch = parse_alert_batch(body=_ztf_packet(good, bad_filter, negative), content_type=AVRO)
    assert [a.alert_id for a in batch.alerts] == ["2383254310015015004", "2383254310015015006"]
    fading = batch.alerts[1]
    assert fading.mag is None and fading.flux is not None and fading.flux < 0  # a fading source
    assert batch.errors == [
        AlertError(
            1,
            "2383254310015015005",
            "candidate.fid",
            "candidate.fid: unknown filter id 4 (expected 1=g, 2=r, 3=i)",
        )
    ]


# --------------------------------------------------------------------------------------
# Generic JSON


def _generic_alert(**overrides: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "alert_id": "fink-2025-000123",
        "object_id": "ZTF25aabcdef",
        "ra": 268.4541812,
        "dec": -29.9063871,
        "time": "2025-06-01T03:04:05.250Z",
        "band": "r",
        "mag": 17.83,
        "mag_err": 0.04,
    }
    alert.update(overrides)
    return {key: value for key, value in alert.items() if value is not ...}


def _json_body(*alerts: Any) -> bytes:
    return json.dumps({"alerts": list(alerts)}, allow_nan=True).encode()


def test_generic_json_round_trip_and_schema_agree() -> None:
    full = _generic_alert(
        broker="fink",
        classifications=[
            {"classifier": "fink-microlensing", "version": "2.1.0", "class": "microlensing", "score": 0.93}
        ],
        history=[
            {"source_id": "s1", "mjd": 60826.05, "band": "g", "mag": 18.9, "mag_err": 0.08},
            {
                "source_id": 778,
                "time": "2025-05-31T05:00:00+02:00",
                "band": "r",
                "flux": -120.0,
                "flux_err": 30.0,
            },
        ],
        extra={"fink": {"snn_snia_vs_nonia": 0.1, "tags": ["bulge"]}},
    )
    mjd_alert = _generic_alert(
        alert_id=42, time=..., mjd=60827.5, mag=..., mag_err=..., flux=2500.0, flux_err=25.0
    )
    document = {"alerts": [full, mjd_alert]}
    jsonschema.Draft202012Validator.check_schema(json.loads(GENERIC_JSON_SCHEMA_PATH.read_text()))
    jsonschema.validate(document, json.loads(GENERIC_JSON_SCHEMA_PATH.read_text()))

    batch = parse_alert_batch(
        body=json.dumps(document).encode(), content_type="application/json; charset=utf-8", broker="fink"
    )
    assert batch.errors == []
    first, second = batch.alerts
    assert first == AlertIn(
        broker="fink",
        alert_id="fink-2025-000123",
        object_id="ZTF25aabcdef",
        time=datetime(2025, 6, 1, 3, 4, 5, 250000, tzinfo=UTC),
        ra=268.4541812,
        dec=-29.9063871,
        band="r",
        mag=17.83,
        mag_err=0.04,
        flux=_flux_from_mag(17.83, 0.04)[0],
        flux_err=_flux_from_mag(17.83, 0.04)[1],
        classifications=(Classification("fink-microlensing", "2.1.0", "microlensing", 0.93),),
        history=(
            PhotPoint("s1", first.history[0].time, "g", 18.9, 0.08, *_flux_from_mag(18.9, 0.08)),
            PhotPoint("778", datetime(2025, 5, 31, 3, 0, tzinfo=UTC), "r", None, None, -120.0, 30.0),
        ),
        schema="baton.alert 1",
        raw=full,
    )  # fmt: skip
    assert abs(first.history[0].time - datetime(2025, 5, 31, 1, 12, tzinfo=UTC)) < timedelta(microseconds=10)
    assert second.alert_id == "42" and second.time == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    assert second.flux == 2500.0 and second.mag == pytest.approx(31.4 - 2.5 * math.log10(2500.0))
    assert second.mag_err == pytest.approx(2.5 / math.log(10) * 25.0 / 2500.0)


def test_generic_json_broker_comes_from_sender_or_alert() -> None:
    body = _json_body(_generic_alert(broker="antares"))
    assert parse_alert_batch(body=body, content_type=JSON).alerts[0].broker == "antares"
    batch = parse_alert_batch(body=_json_body(_generic_alert()), content_type=JSON)
    assert batch.errors == [
        AlertError(
            0,
            "fink-2025-000123",
            "broker",
            "broker: missing: name the broker in the alert or send as an authenticated broker",
        )
    ]


GOOD_0 = _generic_alert(alert_id="good-0")
GOOD_2 = _generic_alert(alert_id="good-2")

MALFORMED: list[tuple[str, Any, str | None, str]] = [
    ("missing alert_id", _generic_alert(alert_id=...), "alert_id", "alert_id: missing required field"),
    ("empty object_id", _generic_alert(object_id=" "), "object_id", "object_id: must not be empty"),
    ("missing ra", _generic_alert(ra=...), "ra", "ra: missing required field"),
    ("ra = 360", _generic_alert(ra=360.0), "ra", "ra: must be in [0, 360) deg, got 360.0"),
    ("ra < 0", _generic_alert(ra=-0.5), "ra", "ra: must be in [0, 360) deg, got -0.5"),
    ("ra as text", _generic_alert(ra="12.5"), "ra", "ra: must be a number, got string"),
    ("ra NaN", _generic_alert(ra=float("nan")), "ra", "ra: must be finite, got nan"),
    ("dec > 90", _generic_alert(dec=90.5), "dec", "dec: must be in [-90, 90] deg, got 90.5"),
    ("dec inf", _generic_alert(dec=float("inf")), "dec", "dec: must be finite, got inf"),
    ("mag NaN", _generic_alert(mag=float("nan")), "mag", "mag: must be finite, got nan"),
    ("mag_err NaN", _generic_alert(mag_err=float("nan")), "mag_err", "mag_err: must be finite, got nan"),
    ("flux NaN", _generic_alert(mag=..., mag_err=..., flux=float("nan"), flux_err=3.0), "flux", "flux: must be finite, got nan"),
    ("flux -inf", _generic_alert(mag=..., mag_err=..., flux=float("-inf"), flux_err=3.0), "flux", "flux: must be finite, got -inf"),
    ("mag too faint", _generic_alert(mag=45.0), "mag", "mag: must be in [-5, 40] mag, got 45.0"),
    ("mag too bright", _generic_alert(mag=-7.2), "mag", "mag: must be in [-5, 40] mag, got -7.2"),
    ("negative mag_err", _generic_alert(mag_err=-0.1), "mag_err", "mag_err: must be >= 0, got -0.1"),
    ("negative flux_err", _generic_alert(mag=..., mag_err=..., flux=10.0, flux_err=-1.0), "flux_err", "flux_err: must be >= 0, got -1.0"),
    ("mag without error", _generic_alert(mag_err=...), "mag_err", "mag_err: missing: required with mag"),
    ("no brightness", _generic_alert(mag=..., mag_err=...), "mag", "mag: missing: give mag and mag_err, or flux and flux_err"),
    ("unparseable time", _generic_alert(time="yesterday"), "time", "time: 'yesterday' is not an ISO-8601 date-time"),
    ("naive time", _generic_alert(time="2025-06-01T03:04:05"), "time", "time: '2025-06-01T03:04:05' has no UTC offset; end it with 'Z' or '+00:00'"),
    ("time as number", _generic_alert(time=60827.5), "time", "time: must be an ISO-8601 string, got number (use 'mjd' for MJD)"),
    ("JD given as MJD", _generic_alert(time=..., mjd=2460827.5), "mjd", "mjd: 2460827.5 is not a plausible MJD (UTC); expected 15020 to 88069 (years 1900 to 2100)"),
    ("time far future", _generic_alert(time="2999-01-01T00:00:00Z"), "time", "time: '2999-01-01T00:00:00Z' is outside 1900 to 2100"),
    ("time and mjd", _generic_alert(mjd=60827.5), "time", "time: give either time or mjd, not both"),
    ("no time", _generic_alert(time=...), "time", "time: missing: give time (ISO-8601 UTC) or mjd"),
    ("missing band", _generic_alert(band=...), "band", "band: missing required field"),
    ("unknown field", _generic_alert(magerr=0.1), "magerr", "magerr: unknown field (put broker-specific data under 'extra')"),
    ("bad history point", _generic_alert(history=[{"source_id": "p", "mjd": 60800.0, "band": "g", "mag": 19.0, "mag_err": -0.2}]),
     "history[0].mag_err", "history[0].mag_err: must be >= 0, got -0.2"),
    ("history not a list", _generic_alert(history={"source_id": "p"}), "history", "history: must be an array, got object"),
    ("classification NaN", _generic_alert(classifications=[{"classifier": "c", "version": "1", "class": "SN", "score": float("nan")}]),
     "classifications[0].score", "classifications[0].score: must be finite, got nan"),
    ("NaN in extra", _generic_alert(extra={"snr": float("nan")}), "extra.snr", "extra.snr: must be finite, got nan (JSON has no NaN or Infinity)"),
    ("other broker", _generic_alert(broker="alerce"), "broker", "broker: 'alerce' does not match the sending broker 'fink'"),
    ("not an object", ["good-1"], "alert", "alert: must be a JSON object, got array"),
    ("duplicate id", _generic_alert(alert_id="good-0"), "alert_id", "alert_id: duplicate of the alert at index 0 in this batch"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "bad", "field", "message"), MALFORMED, ids=[case[0] for case in MALFORMED])
def test_malformed_alert_is_reported_and_the_good_ones_kept(
    case: str, bad: Any, field: str, message: str
) -> None:
    batch = parse_alert_batch(body=_json_body(GOOD_0, bad, GOOD_2), content_type=JSON, broker="fink")
    assert [alert.alert_id for alert in batch.alerts] == ["good-0", "good-2"]
    alert_id = bad.get("alert_id") if isinstance(bad, dict) else None
    assert batch.errors == [AlertError(1, None if alert_id is None else str(alert_id), field, message)]


# Rules a JSON Schema can state (required fields, types, ranges, unknown fields, one of
# time/mjd, paired errors); NaN is not JSON, and offsets, date ranges and duplicates are
# the parser's job alone.
STRUCTURAL = {
    "missing alert_id", "missing ra", "ra = 360", "ra < 0", "ra as text", "dec > 90", "mag too faint",
    "mag too bright", "negative mag_err", "negative flux_err", "mag without error", "no brightness",
    "time as number", "JD given as MJD", "time and mjd", "no time", "missing band", "unknown field",
    "bad history point", "history not a list", "not an object",
}  # fmt: skip


@pytest.mark.parametrize(
    ("case", "bad"),
    [(c[0], c[1]) for c in MALFORMED if c[0] in STRUCTURAL],
    ids=[c[0] for c in MALFORMED if c[0] in STRUCTURAL],
)
def test_the_shipped_json_schema_rejects_the_structural_errors(case: str, bad: Any) -> None:
    validator = jsonschema.Draft202012Validator(json.loads(GENERIC_JSON_SCHEMA_PATH.read_text()))
    assert validator.is_valid({"alerts": [GOOD_0]})
    assert list(validator.iter_errors({"alerts": [bad]})), case


# --------------------------------------------------------------------------------------
# Whole-body failures


def test_unparseable_bodies_raise_packet_error() -> None:
    cases = [
        (b"{not json", JSON, r"body is not valid JSON: Expecting property name"),
        (b"[1, 2]", JSON, r"body must be a JSON object \{\"alerts\": \[\.\.\.\]\}, got array"),
        (b'{"alerts": {}}', JSON, r"'alerts' must be an array, got object"),
        (b'{"alerts": [], "batch": 1}', JSON, r"unknown top-level field 'batch'"),
        (b"\xff\xfe\x00garbage", JSON, r"body is not"),
        (b"[" * 100000, JSON, r"body is not valid JSON"),
        (b"", JSON, r"body is empty"),
        (b"hello world", AVRO, r"neither an Avro object container file"),
        (b"Obj\x01\x99\x99\x99", AVRO, r"cannot read the Avro container header"),
        (b"{}", "text/csv", r"unsupported content type 'text/csv'"),
    ]
    for body, content_type, pattern in cases:
        with pytest.raises(PacketError, match=pattern):
            parse_alert_batch(body=body, content_type=content_type)


def test_truncated_or_corrupt_avro_raises_packet_error_at_every_cut() -> None:
    data = RUBIN_SAMPLES[-1].read_bytes()
    _, (record,) = _read_container(data)
    frame = _confluent_frame(1101, record)
    for body in (data, frame):
        for cut in [*range(1, 64), *range(64, len(body) - 1, 509)]:
            with pytest.raises(PacketError):
                parse_alert_batch(body=body[:cut], content_type=AVRO)
    corrupt = bytearray(data)
    corrupt[-5] ^= 0xFF  # inside the trailing sync marker
    with pytest.raises(PacketError, match=r"bad sync marker"):
        parse_alert_batch(body=bytes(corrupt), content_type=AVRO)


def test_unsupported_avro_schema_is_refused() -> None:
    stream = io.BytesIO()
    schema = {
        "type": "record",
        "name": "candidate",
        "namespace": "antares.alert",
        "fields": [{"name": "x", "type": "int"}],
    }
    fastavro.writer(stream, schema, [{"x": 1}])
    with pytest.raises(PacketError, match=r"unsupported Avro schema 'antares.alert.candidate'"):
        parse_alert_batch(body=stream.getvalue(), content_type=AVRO)


def test_oversize_body_is_refused() -> None:
    assert MAX_BATCH_BYTES == 64 * 1024 * 1024
    with pytest.raises(PacketError, match=r"body is 67108865 bytes; the limit is 67108864 bytes \(64 MiB\)"):
        parse_alert_batch(body=b" " * (MAX_BATCH_BYTES + 1), content_type=JSON)
