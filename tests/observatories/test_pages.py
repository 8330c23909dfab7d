"""The network page, the target's network-visibility tab and page, in Django's client and in a real browser."""

from __future__ import annotations

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm
from tom_targets.models import Target

from observatories.models import Facility
from observatories.services import facility_status_record

from .conftest import BULGE, Sim


@pytest.fixture
def bulge_target(db, user):
    target = Target.objects.create(name=BULGE["name"], type=Target.SIDEREAL, ra=BULGE["ra"], dec=BULGE["dec"], epoch=2000.0)
    assign_perm("tom_targets.view_target", user, target)
    return target


@pytest.mark.django_db
def test_network_page_shows_every_site_with_state_and_day_or_night(client, user) -> None:
    now = timezone.now()
    facility_status_record(facility=Facility.objects.get(code="lsc-1m0-a"), state="weather", reason="clouds over Tololo", observed_at=now, now=now)
    client.force_login(user)
    response = client.get("/observatories/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-facility="') == Facility.objects.filter(enabled=True).count()
    assert "clouds over Tololo" in html
    for phase_word in ("night", "day", "twilight"):
        if phase_word in html:
            break
    else:
        pytest.fail("no day/night phase on the page")
    rows = response.context["rows"]
    assert {row.site.code for row in rows} == {"lsc", "sor", "coj", "cpt", "tfn", "elp", "ogg", "tlv", "orm", "mko", "caha"}
    assert all(row.phase in ("night", "twilight", "day") for row in rows)
    # TOM's own facility-status page shows the feed through the "Baton" facility.
    tom_status = client.get("/observations/status/list/")
    assert tom_status.status_code == 200
    assert "lsc-1m0-a" in tom_status.content.decode()
    client.logout()
    assert client.get("/observatories/").status_code == 302  # login required


@pytest.mark.django_db
def test_target_page_has_the_network_visibility_tab(client, user, bulge_target) -> None:
    client.force_login(user)
    response = client.get(f"/targets/{bulge_target.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="network-visibility-tab"' in html
    assert 'id="network-visibility"' in html
    assert "plotly-graph-div" in html

    page = client.get(f"/observatories/targets/{bulge_target.pk}/visibility/")
    assert page.status_code == 200
    assert "altitude at each site during its night" in page.content.decode()


@pytest.mark.django_db
def test_visibility_page_of_a_target_the_user_cannot_see_is_404(client, user) -> None:
    hidden = Target.objects.create(name="private", type=Target.SIDEREAL, ra=10.0, dec=10.0, epoch=2000.0)
    client.force_login(user)
    assert client.get(f"/observatories/targets/{hidden.pk}/visibility/").status_code == 404
    assert client.get("/observatories/targets/999999/visibility/").status_code == 404


def test_visibility_plot_draws_each_site_only_at_night(db, bulge_target) -> None:
    from datetime import UTC, datetime

    from observatories.selectors import target_network_visibility

    vis = target_network_visibility(ra_deg=BULGE["ra"], dec_deg=BULGE["dec"], start=datetime(2026, 6, 15, 12, tzinfo=UTC))
    codes = [s.code for s in vis.sites]
    assert len(codes) == 11
    assert vis.altitude_deg.shape == vis.sun_altitude_deg.shape == (11, 24 * 6 + 1)
    lsc = codes.index("lsc")
    night = vis.sun_altitude_deg[lsc] <= -12
    # In June the bulge culminates near the zenith at Cerro Tololo (dec -30.5, latitude -30.2).
    assert vis.altitude_deg[lsc][night].max() > 85
    # From Hawaii (latitude +20.7) it culminates at about 39 degrees.
    assert 37 < vis.altitude_deg[codes.index("ogg")].max() < 40


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_network_page_and_visibility_plot_in_a_browser(sim: Sim, page, live_server, django_user_model) -> None:
    from observatories.services import facility_status_refresh

    sim.downtime("cpt-1m0-a", reason="hydraulics fault")
    for code in ("cpt-1m0-a", "lsc-1m0-a"):
        facility_status_refresh(facility=Facility.objects.select_related("site").get(code=code))
    django_user_model.objects.create_superuser(username="root", password="browser pass 123", email="r@x.org")
    target = Target.objects.create(name=BULGE["name"], type=Target.SIDEREAL, ra=BULGE["ra"], dec=BULGE["dec"], epoch=2000.0)

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login], input[name=username]", "root")
    page.fill("input[name=password]", "browser pass 123")
    page.click("button[type=submit], input[type=submit]")
    page.goto(f"{live_server.url}/observatories/")
    row = page.locator('tr[data-facility="cpt-1m0-a"]')
    assert row.locator(".facility-state").inner_text().strip() == "downtime"
    assert "hydraulics fault" in row.inner_text()
    assert page.locator('tr[data-facility="lsc-1m0-a"] .facility-state').inner_text().strip() in ("available", "weather")

    page.goto(f"{live_server.url}/observatories/targets/{target.pk}/visibility/")
    page.wait_for_selector("#network-visibility .main-svg")
    assert page.locator("#network-visibility .scatterlayer .trace").count() == 11
    page.locator("#network-visibility").screenshot(path=str(live_server_screenshot_path()))


def live_server_screenshot_path():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / ".baton" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path / "observatories-visibility.png"
