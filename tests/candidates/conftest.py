"""Fixtures of the candidates tests: real alert packets (Rubin samples, a ZTF packet built from the
published schema, generic JSON), teams, a broker account with a token, a request factory."""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any, cast

import fastavro
import MulensModel
import numpy as np
import pytest

from candidates.packets import ZTF_AVRO_SCHEMA_PATH

AVRO = "application/avro"
JSON = "application/json"
MULENS_DATA = Path(MulensModel.__file__).resolve().parent / "data" / "photometry_files"


def rubin_schema_root() -> Path:
    spec = find_spec("lsst.alert.packet")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "schema"


def rubin_sample(major: int, minor: int) -> bytes:
    """The sample alert shipped with lsst-alert-packet for one schema version (an Avro container)."""
    return (rubin_schema_root() / str(major) / str(minor) / "sample_data" / "fakeAlert.avro").read_bytes()


def rubin_samples_usable() -> list[tuple[int, int]]:
    """Schema versions whose shipped sample has a valid MJD (8.0 on; older ones carry a Unix time)."""
    versions = []
    for path in rubin_schema_root().glob("*/*/sample_data/fakeAlert.avro"):
        major, minor = int(path.parts[-4]), int(path.parts[-3])
        if (major, minor) >= (8, 0):
            versions.append((major, minor))
    return sorted(versions)


def rubin_record(major: int = 11, minor: int = 1) -> tuple[dict[str, Any], dict[str, Any]]:
    reader = fastavro.reader(io.BytesIO(rubin_sample(major, minor)))
    return cast(dict[str, Any], reader.writer_schema), cast(dict[str, Any], next(reader))


def rubin_container(records: list[dict[str, Any]], major: int = 11, minor: int = 1) -> bytes:
    schema, _ = rubin_record(major, minor)
    out = io.BytesIO()
    fastavro.writer(out, schema, records)
    return out.getvalue()


def ztf_schema() -> dict[str, Any]:
    return cast(dict[str, Any], fastavro.parse_schema(json.loads(ZTF_AVRO_SCHEMA_PATH.read_text())))


def ztf_record(**candidate_values: Any) -> dict[str, Any]:
    """A ZTF alert (schema 4.02): a bulge transient with two earlier detections and a non-detection."""
    schema = ztf_schema()
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
    candidate.update(candidate_values)
    prv_type = next(f for f in schema["fields"] if f["name"] == "prv_candidates")["type"][1]["items"]

    def prv(**values: Any) -> dict[str, Any]:
        point: dict[str, Any] = {f["name"]: None for f in prv_type["fields"]}
        point.update(jd=2460120.71, fid=1, pid=2380210, programid=1, rbversion="t17_f5_c3", diffmaglim=20.3)
        point.update(values)
        return point

    return {
        "schemavsn": "4.02",
        "publisher": "ZTF (www.ztf.caltech.edu)",
        "objectId": "ZTF23aaqzsni",
        "candid": candidate["candid"],
        "candidate": candidate,
        "prv_candidates": [
            prv(jd=2460118.69, magpsf=None, sigmapsf=None),  # a non-detection: an upper limit only
            prv(candid=2380210000015015001, magpsf=18.4, sigmapsf=0.06, ra=268.45418, dec=-29.90638, isdiffpos="t"),
            prv(jd=2460121.70, fid=2, candid=2381200000015015002, magpsf=19.7, sigmapsf=0.12, ra=268.45418,
                dec=-29.90638, isdiffpos="f"),  # a fading source: negative difference flux, no magnitude
        ],
        "fp_hists": None,
        "cutoutScience": None,
        "cutoutTemplate": None,
        "cutoutDifference": None,
    }


def ztf_packet(*records: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.writer(out, ztf_schema(), list(records) or [ztf_record()])
    return out.getvalue()


def generic_alert(**overrides: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "alert_id": "a-1",
        "object_id": "OBJ-1",
        "ra": 150.0,
        "dec": 2.0,
        "time": "2026-06-01T03:04:05Z",
        "band": "r",
        "mag": 18.5,
        "mag_err": 0.05,
    }
    alert.update(overrides)
    return {k: v for k, v in alert.items() if v is not ...}


def json_body(*alerts: Any) -> bytes:
    return json.dumps({"alerts": list(alerts)}, allow_nan=True).encode()


def offset(ra: float, dec: float, arcsec: float) -> tuple[float, float]:
    """A position ``arcsec`` north of (ra, dec)."""
    return ra, dec + arcsec / 3600.0


def ob08092_alerts(*, broker: str = "ogle", upto: int | None = None) -> list[dict[str, Any]]:
    """OGLE-2008-BLG-092 (MulensModel's OGLE-IV light curve, HJD-2450000) as one alert per point:
    each carries its own point and, as history, the points before it."""
    data = np.loadtxt(MULENS_DATA / "OB08092" / "phot_ob08092_O4.dat", usecols=(0, 1, 2))
    rows = data if upto is None else data[:upto]
    points = [{"source_id": f"ob08092-{i}", "mjd": float(t) + 49999.5, "band": "I", "mag": float(m),
               "mag_err": float(e)} for i, (t, m, e) in enumerate(rows)]
    last = points[-1]
    return [{
        "alert_id": last["source_id"], "object_id": "OGLE-2008-BLG-092", "ra": 269.9379, "dec": -29.3236,
        "mjd": last["mjd"], "band": "I", "mag": last["mag"], "mag_err": last["mag_err"], "broker": broker,
        "history": points[:-1],
    }]  # fmt: skip


def mjd_to_datetime(mjd: float) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime(1858, 11, 17, tzinfo=UTC) + timedelta(days=mjd)


@dataclass
class RecordedRequest:
    firing_id: int
    team: str
    target: str
    params: dict[str, Any]
    pk: str


RECORDED: list[RecordedRequest] = []


def record_request(*, firing: Any) -> RecordedRequest:
    """A request factory for tests (BATON_TRIGGER_REQUEST_FACTORY): records what it was asked."""
    made = RecordedRequest(firing.pk, firing.rule.team.name, firing.target.name, dict(firing.request_params),
                           f"req-{firing.pk}")
    RECORDED.append(made)
    return made


def failing_request(*, firing: Any) -> None:
    raise RuntimeError("the scheduler is down")


@pytest.fixture
def recorded_requests() -> Any:
    RECORDED.clear()
    yield RECORDED
    RECORDED.clear()


@pytest.fixture
def team(db: Any, user: Any) -> Any:

    from policies.services import team_create

    return team_create(name="bulge-team", admins=[user]).group  # only Baton teams own filters and regions


@pytest.fixture
def broker_account(db: Any, django_user_model: Any) -> Any:
    """A registered broker's push account and its API token."""
    from rest_framework.authtoken.models import Token

    from candidates.models import Broker

    account = django_user_model.objects.create_user(username="ztf-push", password="broker pass phrase 1")
    Broker.objects.create(name="ztf-broker", user=account)
    account.token = Token.objects.get_or_create(user=account)[0].key
    return account


def assert_finite(value: float | None) -> None:
    assert value is not None and math.isfinite(value)
