"""The visibility matrix: two teams and an outsider see exactly what the policies allow, on every path.

Team A keeps its photometry 30 days, then the network sees it; its spectra go
to partner team B at once and nowhere else; its targets (requests) reach the
network after 30 days. Team B shares photometry with everybody at once, keeps
its spectra, and shows its targets to the network at once.

Every path is asked before (day 1) and after (day 31) A's proprietary period,
with the clock moved, never slept: TOM's target list, search, CSV export,
target page (light-curve plot, photometry table, recent photometry,
spectroscopy), TOM's target, ReducedDatum (and its ``.json`` variant) and
DataProduct APIs, TOM's data product list, Baton's light-curve JSON/CSV export,
and notifications to another team. The export is also fetched over real HTTP
from the live server.

TOM's target page costs about a second to render (it computes Moon distances
with astropy), so after the release only the users whose view changed reload
it; every other path is asked of every user at both times.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
import requests
from django.core.files.base import ContentFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from tom_dataproducts.models import DataProduct

from policies import clock
from policies.hooks import notify
from policies.models import InboxNotification, PolicyDecision
from policies.services import data_record_ownership, data_release_due, policy_update, target_record_interest

from .conftest import T0, document, make_photometry, make_spectrum, make_target, rule

pytestmark = pytest.mark.django_db

BEFORE = T0 + timedelta(days=1)
AFTER = T0 + timedelta(days=31)

# Magnitudes and fluxes are unique strings, so a page either shows a datum or does not.
MAGS = {"pA": 17.1234, "pAS": 17.5678, "pB": 16.2345, "pBS": 16.6789}
FLUX = {"sA": 3.98765, "sB": 2.34567}  # not constants that plotly.js (inlined in the page) contains
TARGETS = ("Alpha-A", "Bravo-B", "Shared-S")

EXPECTED = {
    BEFORE: {
        "bob_a": {"targets": {"Alpha-A", "Bravo-B", "Shared-S"}, "data": {"pA", "pAS", "pB", "pBS", "sA", "dpA"}},
        "dave_b": {"targets": {"Alpha-A", "Bravo-B", "Shared-S"}, "data": {"pB", "pBS", "sA", "sB"}},
        "olga": {"targets": {"Bravo-B", "Shared-S"}, "data": {"pB", "pBS"}},
    },
    AFTER: {
        "bob_a": {"targets": {"Alpha-A", "Bravo-B", "Shared-S"}, "data": {"pA", "pAS", "pB", "pBS", "sA", "dpA"}},
        "dave_b": {"targets": {"Alpha-A", "Bravo-B", "Shared-S"}, "data": {"pA", "pAS", "pB", "pBS", "sA", "sB", "dpA"}},
        "olga": {"targets": {"Bravo-B", "Shared-S"}, "data": {"pB", "pBS"}},
    },
}


@pytest.fixture
def scenario(world, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    policy_update(team=world.a, by=world.alice, now=T0, comment="A's policy", document=document(
        photometry=rule((), 30, "network"), spectra=rule(("team-b",), 0, "none"), requests=rule((), 30, "network")))
    policy_update(team=world.b, by=world.carol, now=T0, comment="B's policy", document=document(
        photometry=rule((), 0, "public"), spectra=rule((), 0, "none"), requests=rule((), 0, "network")))
    ta, tb, ts = (make_target(name, ra=150 + i) for i, name in enumerate(TARGETS))
    for target, team in ((ta, world.a), (tb, world.b), (ts, world.a), (ts, world.b)):
        target_record_interest(target=target, team=team.group, since=T0, now=T0)
    data = {
        "pA": make_photometry(ta, T0, MAGS["pA"]), "pAS": make_photometry(ts, T0, MAGS["pAS"]),
        "pB": make_photometry(tb, T0, MAGS["pB"]), "pBS": make_photometry(ts, T0, MAGS["pBS"], band="g"),
        "sA": make_spectrum(ta, T0), "sB": make_spectrum(tb, T0),
    }
    data["sA"].flux = [FLUX["sA"]] * 2
    data["sA"].save()
    data["sB"].flux = [FLUX["sB"]] * 2
    data["sB"].save()
    data["dpA"] = DataProduct.objects.create(target=ta, product_id="dpA-secret", data_product_type="photometry",
                                             data=ContentFile(b"mjd,mag\n", name="dpA_secret.csv"))
    for key in ("pA", "pAS", "dpA"):
        data_record_ownership(data=data[key], team=world.a.group, kind="photometry", acquired_at=T0, now=T0)
    data_record_ownership(data=data["sA"], team=world.a.group, kind="spectra", now=T0)
    for key in ("pB", "pBS"):
        data_record_ownership(data=data[key], team=world.b.group, kind="photometry", now=T0)
    data_record_ownership(data=data["sB"], team=world.b.group, kind="spectra", now=T0)
    return {"targets": {t.name: t for t in (ta, tb, ts)}, "data": data}


def _number_in(value: float, text: str) -> bool:
    """Whether ``value`` stands in ``text`` as a whole number, not as the start of a longer one.

    Pages also carry thousands of computed floats (the network visibility plot's altitudes
    and airmasses at the real time of the test run); a plain substring test would now and
    then find "17.1234" inside "17.123456789".
    """
    return re.search(rf"(?<![\d.]){re.escape(str(value))}(?!\d)", text) is not None


def shown_in(text: str) -> set[str]:
    """Which data of the scenario a text (a page, a CSV, a JSON body) shows."""
    shown = {key for key, mag in MAGS.items() if _number_in(mag, text)}
    shown |= {key for key, flux in FLUX.items() if _number_in(flux, text)}
    if "dpA_secret" in text:
        shown.add("dpA")
    return shown


def targets_in(text: str) -> set[str]:
    return {name for name in TARGETS if name in text}


def check_pages(client, user, targets, expected):
    """TOM's own pages, as this user."""
    client.force_login(user)
    listing = client.get("/targets/")
    assert listing.status_code == 200
    assert targets_in(listing.content.decode()) == expected["targets"], "target list"
    export = client.get("/targets/export/")
    assert targets_in(b"".join(export.streaming_content).decode()) == expected["targets"], "target CSV export"
    seen: set[str] = set()
    for name, target in targets.items():
        search = client.get(f"/targets/name/{name}")
        assert (search.url == f"/targets/{target.pk}/") == (name in expected["targets"]), f"search for {name}"
        page = client.get(f"/targets/{target.pk}/")
        if name not in expected["targets"]:
            assert page.status_code in (403, 404), f"target page of {name}"
            continue
        assert page.status_code == 200
        seen |= shown_in(page.content.decode())
    products = client.get("/dataproducts/data/")
    seen |= shown_in(products.content.decode())
    assert seen == expected["data"], "target pages (plots, tables, recent photometry, spectra) and data list"


def check_api(user, targets, expected):
    """TOM's and Baton's APIs, with the user's token."""
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    tom_targets = http.get("/api/targets/").json()
    assert {t["name"] for t in tom_targets["results"]} == expected["targets"], "TOM target API"
    photometry = expected["data"] & set(MAGS)
    spectra = expected["data"] & set(FLUX)
    for path in ("/api/reduceddatums/", "/api/reduceddatums.json", "/api/reduceddatums/?data_type=photometry"):
        body = http.get(path).content.decode()
        wanted = photometry | (spectra if "photometry" not in path else set())
        assert shown_in(body) == wanted, f"TOM ReducedDatum API {path}"
    products = http.get("/api/dataproducts/").content.decode()
    assert shown_in(products) == expected["data"] & {"dpA"}, "TOM DataProduct API"
    exported: set[str] = set()
    for name, target in targets.items():
        as_json = http.get("/api/data/photometry/", {"target": target.pk})
        if name not in expected["targets"]:
            assert as_json.status_code == 404
            continue
        assert as_json.status_code == 200
        exported |= shown_in(as_json.content.decode())
        as_csv = http.get("/api/data/photometry/", {"target": target.pk, "format": "csv"})
        assert as_csv["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
        assert {float(r["brightness"]) for r in rows} == {MAGS[k] for k in shown_in(as_json.content.decode())}
    assert exported == photometry, "Baton light-curve export"


@pytest.mark.parametrize("moment", [BEFORE, AFTER], ids=["before-release", "after-release"])
def test_everyone_sees_exactly_what_the_policies_allow(scenario, world, client, moment):
    data_release_due(now=moment)  # the beat task, at the moved clock
    with clock.moved(to=moment):
        for name, expected in EXPECTED[moment].items():
            user = world.user(name.split("_")[0] if "_" in name else name)
            check_api(user, scenario["targets"], expected)
            if moment == BEFORE or expected != EXPECTED[BEFORE][name]:
                check_pages(client, user, scenario["targets"], expected)
        check_api(world.root, scenario["targets"], {"targets": set(TARGETS), "data": {*MAGS, *FLUX, "dpA"}})


@pytest.mark.django_db(transaction=True)
def test_the_light_curve_export_over_real_http(scenario, world, live_server):
    http = requests.Session()
    http.headers["Authorization"] = f"Token {Token.objects.get_or_create(user=world.dave)[0].key}"
    target = scenario["targets"]["Shared-S"]
    for moment, wanted in ((BEFORE, {"pBS"}), (AFTER, {"pAS", "pBS"})):
        data_release_due(now=moment)
        with clock.moved(to=moment):
            as_csv = http.get(f"{live_server.url}/api/data/photometry/?target={target.pk}&format=csv", timeout=30)
        assert as_csv.status_code == 200 and as_csv.headers["Content-Disposition"].endswith(f'photometry-{target.pk}.csv"')
        assert shown_in(as_csv.text) == wanted


def test_notifications_to_another_team_wait_for_the_release(scenario, world):
    point = scenario["data"]["pA"]
    payload = {"target_id": point.target_id, "data": [{"model": "tom_dataproducts.photometryreduceddatum", "id": point.pk}]}
    assert notify("data.new", [world.b.group], payload, now=BEFORE) == []
    suppressed = PolicyDecision.objects.get(action="notify", decision="suppressed", user=world.carol)
    assert suppressed.reason == "photometry of team-a is proprietary until 2026-03-31 12:00 UTC"
    assert suppressed.team_id == world.a.group_id  # A's policy decided, with A's version
    assert suppressed.policy_version == world.a.policy_versions.get(number=2)
    sent = notify("data.new", [world.b.group], payload, now=AFTER)
    assert [(n.recipient, n.channel, n.status) for n in sent] == [(world.carol, "inbox", "delivered")]
    assert InboxNotification.objects.filter(recipient=world.carol, event="data.new").count() == 1
    # A's own admin hears at once.
    assert [n.recipient for n in notify("data.new", [world.a.group], payload, now=BEFORE)] == [world.alice]


def test_with_the_notifications_app_proprietary_data_is_still_never_sent(scenario, world, settings):
    pytest.importorskip("notifications.adapters")
    settings.BATON_POLICIES = {**settings.BATON_POLICIES, "NOTIFY": "notifications.adapters.policies_notify"}
    point = scenario["data"]["pA"]
    payload = {"target_id": point.target_id, "data": [{"model": "tom_dataproducts.photometryreduceddatum", "id": point.pk}]}
    before = notify("data.new", [world.b.group], payload, now=BEFORE)
    assert before and {str(n.status) for n in before} == {"suppressed"}
    after = notify("data.new", [world.b.group], payload, now=AFTER)
    assert after and "suppressed" not in {str(n.status) for n in after}
    audited = PolicyDecision.objects.filter(action="notify", object_id="data.new")
    assert {d.decision for d in audited.filter(at=BEFORE)} == {"suppressed"}
    assert {d.decision for d in audited.filter(at=AFTER)} == {"sent"}


def test_tightening_the_policy_hides_released_data_at_once(scenario, world, client):
    data_release_due(now=AFTER)
    target = scenario["targets"]["Alpha-A"]
    client.force_login(world.dave)
    assert str(MAGS["pA"]) in client.get(f"/targets/{target.pk}/").content.decode()
    with clock.moved(to=AFTER):
        policy_update(team=world.a, by=world.alice, comment="back to private", document=document(
            photometry=rule((), 30, "none"), spectra=rule((), 0, "none"), requests=rule((), 30, "network")))
        page = client.get(f"/targets/{target.pk}/")
    assert page.status_code == 200  # the target itself is still shared (requests rule)
    assert shown_in(page.content.decode()) == set()
