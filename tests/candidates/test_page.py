"""The team candidates page, in a real browser: newest matches, a light curve, one-click follow-up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.test import Client

from candidates.models import RuleKind, TriggerFiring
from candidates.packets import parse_alert_batch
from candidates.services import alerts_ingest, filter_create, region_create
from policies.services import team_create

from .conftest import JSON, generic_alert, json_body

NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


def seed(user: Any) -> Group:
    team = team_create(name="bulge-team", admins=[user]).group
    filter_create(name="bright", team=team, predicates=[{"field": "mag", "op": "<", "value": 19}])
    region_create(name="COSMOS", kind="cone", team=team, spec={"ra": 150.1, "dec": 2.2, "radius": 1.5})
    history = [
        {"source_id": f"h{i}", "time": f"2026-05-{20 + i:02d}T03:00:00Z", "band": band, "mag": 19.5 - 0.1 * i,
         "mag_err": 0.05}
        for i in range(8) for band in ("g",)
    ]  # fmt: skip
    alerts = [
        generic_alert(alert_id="sn-1", object_id="SN-A", history=history),
        generic_alert(alert_id="faint-1", object_id="FAINT", ra=150.5, mag=20.5),
        generic_alert(alert_id="elsewhere", object_id="FAR", ra=20.0, dec=-40.0, mag=21.0),  # no match
    ]
    parsed = parse_alert_batch(body=json_body(*alerts), content_type=JSON, broker="fink")
    alerts_ingest(alerts=parsed.alerts, received_at=NOW, now=NOW)
    return team


@pytest.mark.django_db
def test_page_lists_matches_and_filters(user: Any) -> None:
    team = seed(user)
    client = Client()
    client.force_login(user)
    page = client.get("/candidates/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('data-match="') == 3  # SN-A by filter and region, FAINT by region
    assert "FAR" not in html and "plotly-graph-div" in html
    by_filter = client.get(f"/candidates/?filter={team.stream_filters.get().pk}").content.decode()
    assert by_filter.count('data-match="') == 1 and "filter bright v1" in by_filter
    assert client.get("/candidates/?band=i").content.decode().count('data-match="') == 0


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_request_follow_up_in_one_click(live_server: Any, page: Any, user: Any, tmp_path: Any) -> None:
    team = seed(user)
    client = Client()
    client.force_login(user)
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                               "url": live_server.url}])  # fmt: skip
    page.goto(f"{live_server.url}/candidates/")
    assert page.locator("#matches tbody tr").count() == 3
    page.locator("#lightcurve .plotly-graph-div").wait_for()
    sn_row = page.locator("#matches tbody tr", has_text="filter bright v1")
    assert "SN-A" in sn_row.inner_text()
    sn_row.get_by_role("button", name="Request follow-up").click()
    page.wait_for_load_state()
    assert "Follow-up of SN-A requested for bulge-team." in page.content()
    # Every row of that target now shows it as requested (once per team and target).
    assert page.locator("#matches tbody tr", has_text="SN-A").locator(".badge", has_text="requested").count() == 2
    firing = TriggerFiring.objects.get()
    assert (firing.rule.team, firing.rule.kind, firing.target.name, firing.requested_by) == (
        team, RuleKind.MANUAL, "SN-A", user
    )
    page.locator("#matches tbody tr", has_text="FAINT").locator("a", has_text="FAINT").click()
    page.wait_for_load_state()
    assert "Light curve of FAINT" in page.locator("#lightcurve").inner_text()
    page.screenshot(path=str(tmp_path / "candidates.png"), full_page=True)
