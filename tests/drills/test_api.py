"""Drills without running them: who may start one, bad scenarios, scheduling, the synthetic alerts, the last door
before a real facility, and the schema a drill gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from drills import scenarios
from drills.models import Drill, DrillState
from drills.schema import schema_create, schema_drop
from drills.services import drill_create, drills_start_due
from observatories.adapters import PortalError, portal_client_for
from observatories.models import Facility
from policies.services import team_create
from tomsite import sandbox

pytestmark = pytest.mark.django_db

SCENARIO = {"duration_hours": 6, "step_minutes": 30, "sim_start": "2026-12-15T00:00:00Z",
            "events": [{"kind": "fast_transient", "name": "FT", "ra": 83.0, "dec": -25.0}]}


@pytest.fixture
def team(user: Any) -> Any:
    return team_create(name="Drill Team", admins=[user]).group


def test_only_team_admins_start_drills(team: Any, django_user_model: Any) -> None:
    member = django_user_model.objects.create_user(username="bob")
    team.user_set.add(member)
    client = APIClient()
    client.force_authenticate(member)
    response = client.post("/api/drills/", {"team": "drill-team", "name": "x", "scenario": SCENARIO}, format="json")
    assert response.status_code == 403 and Drill.objects.count() == 0
    # The member sees no drill to remove either, and an outsider sees none at all.
    drill = Drill.objects.create(team=team, name="d", scenario=SCENARIO, sim_start=timezone.now(), steps=1)
    assert client.get("/api/drills/").json()["count"] == 1
    assert client.delete(f"/api/drills/{drill.pk}/").status_code == 403 and Drill.objects.filter(pk=drill.pk).exists()
    outsider = APIClient()
    outsider.force_authenticate(django_user_model.objects.create_user(username="eve"))
    assert outsider.get("/api/drills/").json()["count"] == 0
    assert outsider.get(f"/api/drills/{drill.pk}/report/").status_code == 404


@pytest.mark.parametrize(("change", "field"), [
    ({"events": []}, "events"),
    ({"events": [{"kind": "supernova"}]}, "events[0].kind"),
    ({"events": [{"kind": "fast_transient", "name": "FT"}]}, "events[0].ra"),
    ({"events": [{"kind": "microlensing", "u0": -1}]}, "events[0].u0"),
    ({"duration_hours": 10_000}, "duration_hours"),
    ({"sim_start": "yesterday"}, "sim_start"),
    ({"faults": [{"kind": "clouds", "site": "atlantis"}]}, "faults[0].site"),
    ({"faults": [{"kind": "downtime", "facility": "real-1m0-a"}]}, "faults[0].facility"),
    ({"surprise": 1}, "unknown field"),
])
def test_a_bad_scenario_is_refused_with_its_field(team: Any, api_client: Any, change: dict, field: str) -> None:
    response = api_client.post("/api/drills/", {"team": "drill-team", "name": "x", "scenario": {**SCENARIO, **change}},
                               format="json")
    assert response.status_code == 400 and field in response.json()["scenario"]
    assert Drill.objects.count() == 0


def test_scenario_or_preset_not_both(team: Any, api_client: Any) -> None:
    both = api_client.post("/api/drills/", {"team": "drill-team", "name": "x", "scenario": SCENARIO,
                                            "preset": "fast-transient"}, format="json")
    assert both.status_code == 400
    assert api_client.post("/api/drills/", {"team": "nobody", "name": "x", "preset": "fast-transient"},
                           format="json").status_code == 400
    assert Drill.objects.count() == 0


def test_a_scheduled_drill_waits_for_its_time(team: Any, user: Any, django_capture_on_commit_callbacks: Any) -> None:
    later = timezone.now() + timedelta(hours=2)
    with django_capture_on_commit_callbacks() as callbacks:
        drill = drill_create(team=team, user=user, name="later", scenario=SCENARIO, scheduled_for=later)
    assert callbacks == [] and drill.state == DrillState.SCHEDULED
    assert drill.steps == 12 and drill.step_s == 1800
    assert drill.sim_start == datetime(2026, 12, 15, tzinfo=UTC)
    assert drills_start_due(now=later - timedelta(minutes=1)) == []
    Drill.objects.filter(pk=drill.pk).update(scheduled_for=timezone.now() - timedelta(seconds=1))
    assert drills_start_due() == [drill.pk]


def test_the_same_seed_makes_the_same_alerts() -> None:
    clean = scenarios.scenario_validate({"duration_hours": 72, "sim_start": "2027-06-10T00:00:00Z",
                                         "events": [{"kind": "microlensing", "name": "PSPL", "peak_hours": 36}]},
                                        default_start=timezone.now())
    a = scenarios.scenario_alerts(clean, seed=3)
    assert a == scenarios.scenario_alerts(clean, seed=3)
    assert a != scenarios.scenario_alerts(clean, seed=4)
    mags = [alert["mag"] for alert in a]
    peak = a[mags.index(min(mags))]
    # OGLE-2003-BLG-235's point-lens fit peaks ~2.2 mag above baseline (u0 = 0.133) 36 h in.
    assert 16.5 < peak["mag"] < 17.1
    assert abs(datetime.fromisoformat(peak["time"].replace("Z", "+00:00")) - datetime(2027, 6, 11, 12, tzinfo=UTC)) < timedelta(hours=4)
    assert all(len(alert["history"]) <= 10 for alert in a) and a[-1]["history"]


def test_a_real_light_curve_is_replayed_point_by_point() -> None:
    """The preset replays OGLE's published photometry of OGLE-2003-BLG-235, ten times faster, peak 36 h in."""
    clean = scenarios.scenario_validate(scenarios.preset("bulge-microlensing"), default_start=timezone.now())
    alerts = [a for a in scenarios.scenario_alerts(clean, seed=1) if a["object_id"] == "DRILL-OB03235"]
    assert alerts == [a for a in scenarios.scenario_alerts(clean, seed=2) if a["object_id"] == "DRILL-OB03235"]
    brightest = min(alerts, key=lambda a: a["mag"])
    assert (brightest["mag"], brightest["mag_err"], brightest["band"]) == (17.388, 0.021, "I")  # the real peak point
    expected = datetime(2027, 6, 11, 12, tzinfo=UTC) + timedelta(days=(2452848.67499 - 2452848.06) / 10)
    assert abs(datetime.fromisoformat(brightest["time"].replace("Z", "+00:00")) - expected) < timedelta(seconds=1)
    # 72 simulated hours at 10x hold the real points within 30 days of the peak (OGLE's nightly cadence).
    data = scenarios.dataset_points("OB03235-OGLE")
    assert len(alerts) == int(((data[:, 0] > 2452848.06 - 15) & (data[:, 0] <= 2452848.06 + 15)).sum())
    assert (alerts[0]["ra"], alerts[0]["dec"]) == (270.318125, -28.895)


def test_a_drill_never_reaches_a_real_facility(team: Any) -> None:
    from observatories.network import network_load

    network_load()
    real = Facility.objects.get(code="lsc-1m0-a")
    real.simulated = False
    real.api_url = "http://127.0.0.1:9/"
    real.save()
    assert portal_client_for(real).base_url  # outside a drill it is an ordinary facility
    box = sandbox.Sandbox(drill_id=1, schema="drill_1", name="t")
    token = sandbox._current.set(box)  # the context alone (no schema needed to refuse)
    try:
        with pytest.raises(PortalError, match="never reaches a real facility"):
            portal_client_for(real)
    finally:
        sandbox._current.reset(token)


def test_a_drill_schema_holds_only_the_team_and_the_simulated_network(team: Any, django_user_model: Any) -> None:
    from candidates.services import filter_create
    from observatories.network import network_load

    network_load()
    Facility.objects.filter(code="lsc-1m0-a").update(simulated=False)
    other = team_create(name="Other Team", admins=[django_user_model.objects.create_user(username="zed")]).group
    filter_create(name="mine", team=team, predicates=[])
    filter_create(name="theirs", team=other, predicates=[])
    try:
        copied = schema_create(schema="drill_424242", team_id=team.pk)
        assert copied["candidates_streamfilter"] == 1 and copied["policies_team"] == 1
        with connection.cursor() as cursor:
            cursor.execute("SELECT code FROM drill_424242.observatories_facility")
            codes = {row[0] for row in cursor.fetchall()}
            cursor.execute("SELECT username FROM drill_424242.auth_user")
            users = {row[0] for row in cursor.fetchall()}
        assert "lsc-1m0-a" not in codes and len(codes) == Facility.objects.filter(simulated=True).count()
        assert users == {"alice"}
        with sandbox.running(sandbox.Sandbox(drill_id=424242, schema="drill_424242", name="t")):
            from candidates.models import StreamFilter

            assert list(StreamFilter.objects.values_list("name", flat=True)) == ["mine"]
            made = StreamFilter.objects.create(name="drill-only", team=team)
            assert made.pk > StreamFilter.objects.exclude(pk=made.pk).order_by("-pk").values_list("pk", flat=True)[0]
        from candidates.models import StreamFilter

        assert not StreamFilter.objects.filter(name="drill-only").exists()
    finally:
        schema_drop(schema="drill_424242")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'drill_424242'")
        assert cursor.fetchone()[0] == 0
