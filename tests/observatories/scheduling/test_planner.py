"""The redundant planner: weather model, choice of copies, network competition (pure, no database)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from observatories.scheduling.planner import (
    Chance,
    FacilitySpec,
    LiveCopy,
    RequestSpec,
    SiteSpec,
    choose_chances,
    expected_cost,
    p_clear_at,
    plan_network,
)

NETWORK = json.loads((Path(__file__).resolve().parents[3] / "observatories/data/default_network.json").read_text())
SITES = [
    SiteSpec(code=s["code"], latitude_deg=s["latitude_deg"], longitude_deg=s["longitude_deg"],
             elevation_m=s["elevation_m"], clear_fraction=s["clear_fraction"],
             clear_spell_nights=s["clear_spell_nights"], cloudy_spell_nights=s["cloudy_spell_nights"])
    for s in NETWORK
]
FACILITIES = [
    FacilitySpec(code=f["code"], site_code=s["code"], telescope_class=f["telescope_class"])
    for s in NETWORK for f in s["facilities"]
]
NOW = datetime(2027, 6, 1, 12, tzinfo=UTC)
BULGE = {"ra_deg": 268.5, "dec_deg": -29.0}  # high in the southern winter sky


def chance(site: str, hours: float, p: float = 0.7, length_h: float = 2.0, facility: str | None = None) -> Chance:
    start = NOW + timedelta(hours=hours)
    return Chance(request_id=1, facility_code=facility or f"{site}-1m0", site_code=site, start=start,
                  end=start + timedelta(hours=length_h), p_visible=1.0, p_clear=p, p_operational=1.0, duration_s=600)


def site(code: str = "x", **kw) -> SiteSpec:
    base = SiteSpec(code=code, latitude_deg=0, longitude_deg=0, elevation_m=0, clear_fraction=0.75,
                    clear_spell_nights=4.0, cloudy_spell_nights=4.0 / 3.0)
    return replace(base, **kw)


class TestWeatherModel:
    def test_unknown_state_gives_the_clear_fraction(self):
        assert p_clear_at(site(), at=NOW + timedelta(hours=5), now=NOW) == pytest.approx(0.75)

    def test_cloudy_now_makes_tonight_unlikely_and_relaxes_to_the_prior(self):
        cloudy = site(weather_now="cloudy", weather_at=NOW)
        # a = 1/4, b = 3/4, lambda = 0: memory of one night only.
        assert p_clear_at(cloudy, at=NOW, now=NOW) == pytest.approx(0.0)
        assert p_clear_at(cloudy, at=NOW + timedelta(days=1), now=NOW) == pytest.approx(0.75)

    def test_persistent_weather_decays_geometrically(self):
        # Spells of 10 clear / 5 cloudy nights: pi = 2/3, lambda = 1 - 0.1 - 0.2 = 0.7.
        s = site(clear_fraction=2 / 3, clear_spell_nights=10, cloudy_spell_nights=5, weather_now="cloudy", weather_at=NOW)
        for days in (0.5, 1, 2, 5):
            expected = 2 / 3 + (0 - 2 / 3) * 0.7**days
            assert p_clear_at(s, at=NOW + timedelta(days=days), now=NOW) == pytest.approx(expected)


class TestChooseChances:
    def test_reaches_the_target_with_independent_sites(self):
        pool = [chance("a", 1), chance("a", 1.5, facility="a-1m0-b"), chance("b", 6), chance("c", 12), chance("d", 20)]
        chosen, p, _ = choose_chances(chances=pool, live=[], target_p=0.95, epoch=NOW)
        # 1 - 0.3^3 = 0.973 >= 0.95 with three sites; 0.3^2 = 0.91 is not enough.
        assert len(chosen) == 3
        assert p == pytest.approx(1 - 0.3**3)
        assert len({c.site_code for c in chosen}) == 3

    def test_never_two_copies_under_one_sky_unless_asked(self):
        pool = [chance("a", 1, facility="a-1"), chance("a", 1, facility="a-2"), chance("a", 1, facility="a-3")]
        chosen, p, _ = choose_chances(chances=pool, live=[], target_p=0.95, epoch=NOW)
        assert len(chosen) == 1
        assert p == pytest.approx(0.7)
        chosen, _, _ = choose_chances(chances=pool, live=[], target_p=0.95, epoch=NOW, allow_same_site=True)
        assert len(chosen) == 3

    def test_same_site_on_another_night_is_allowed(self):
        pool = [chance("a", 1), chance("a", 25)]
        chosen, _, _ = choose_chances(chances=pool, live=[], target_p=0.9, epoch=NOW)
        assert [c.start for c in chosen] == [NOW + timedelta(hours=1), NOW + timedelta(hours=25)]

    def test_live_copies_count_toward_the_target(self):
        live = [LiveCopy(facility_code="a-1m0", site_code="a", start=NOW, end=NOW + timedelta(hours=2), p=0.7, duration_s=600),
                LiveCopy(facility_code="b-1m0", site_code="b", start=NOW, end=NOW + timedelta(hours=2), p=0.7, duration_s=600)]
        pool = [chance("a", 1), chance("c", 3), chance("d", 5)]
        chosen, p, _ = choose_chances(chances=pool, live=live, target_p=0.95, epoch=NOW)
        assert [c.site_code for c in chosen] == ["c"]
        assert p == pytest.approx(1 - 0.3**3)

    def test_a_backup_after_an_earlier_copy_is_cheap(self):
        # The later copy runs only if the earlier one failed.
        cost = expected_cost([(0.0, 3600.0, 0.7, 600.0), (7200.0, 9000.0, 0.7, 600.0)])
        assert cost == pytest.approx(600 * 0.7 + 600 * 0.7 * 0.3)
        simultaneous = expected_cost([(0.0, 3600.0, 0.7, 600.0), (0.0, 3600.0, 0.7, 600.0)])
        assert simultaneous == pytest.approx(2 * 600 * 0.7)

    def test_best_effort_when_the_target_is_out_of_reach(self):
        chosen, p, _ = choose_chances(chances=[chance("a", 1, p=0.5)], live=[], target_p=0.95, epoch=NOW)
        assert len(chosen) == 1
        assert p == pytest.approx(0.5)


class TestPlanNetwork:
    def request(self, **kw) -> RequestSpec:
        base = RequestSpec(id=1, telescope_class="1m0", duration_s=900, window_start=NOW,
                           window_end=NOW + timedelta(hours=36), **BULGE)
        return replace(base, **kw)

    def test_bulge_target_gets_copies_on_several_continents(self):
        plans = plan_network(requests=[self.request()], sites=SITES, facilities=FACILITIES, now=NOW)
        plan = plans[1]
        assert plan.outcome == "planned"
        assert plan.p_total >= 0.95
        continents = {s["continent"] for s in NETWORK for c in plan.chosen if c.site_code == s["code"]}
        assert len(continents) >= 2
        assert all(NOW <= c.start < c.end <= NOW + timedelta(hours=36) for c in plan.chosen)
        # each chance is long enough and its probability is the product of its parts
        for c in plan.chosen:
            assert (c.end - c.start).total_seconds() + 300 >= 900
            assert c.p == pytest.approx(c.p_visible * c.p_clear * c.p_operational)

    def test_far_northern_target_is_never_visible_from_the_network(self):
        plan = plan_network(requests=[self.request(ra_deg=10.0, dec_deg=88.0, max_airmass=1.5)], sites=SITES,
                            facilities=FACILITIES, now=NOW)[1]
        assert plan.outcome == "never visible"
        assert plan.chosen == []

    def test_an_observation_longer_than_any_night_window_is_too_long(self):
        plan = plan_network(requests=[self.request(duration_s=14 * 3600)], sites=SITES, facilities=FACILITIES, now=NOW)[1]
        assert plan.outcome == "window too short"

    def test_downtime_removes_a_facility(self):
        down = [replace(f, down_until=NOW + timedelta(days=5)) if f.site_code == "lsc" else f for f in FACILITIES]
        plan = plan_network(requests=[self.request()], sites=SITES, facilities=down, now=NOW)[1]
        assert plan.chosen
        assert "lsc" not in {c.site_code for c in plan.chosen}

    def test_cloudy_site_is_avoided_tonight(self):
        cloudy = [replace(s, weather_now="cloudy", weather_at=NOW) if s.code == "lsc" else s for s in SITES]
        plan = plan_network(requests=[self.request(window_end=NOW + timedelta(hours=20))], sites=cloudy,
                            facilities=FACILITIES, now=NOW)[1]
        lsc = [c for c in plan.chosen if c.site_code == "lsc"]
        assert all(c.p_clear < 0.5 for c in lsc)

    def test_higher_priority_wins_scarce_time(self):
        only = [f for f in FACILITIES if f.code == "lsc-1m0-a"]
        requests = [self.request(id=i, priority=float(i), duration_s=3 * 3600, target_key=f"t{i}",
                                 window_end=NOW + timedelta(hours=20)) for i in range(1, 6)]
        plans = plan_network(requests=requests, sites=SITES, facilities=only, now=NOW)
        served = {i for i, p in plans.items() if p.chosen}
        assert served and max(served) == 5
        assert all(plans[i].outcome == "outranked" for i in set(plans) - served)

    def test_diminishing_returns_spread_time_across_targets(self):
        only = [f for f in FACILITIES if f.code == "lsc-1m0-a"]
        same = [self.request(id=i, priority=5.0, duration_s=3 * 3600, target_key="hot",
                             window_end=NOW + timedelta(hours=20)) for i in (1, 2)]
        other = self.request(id=3, priority=4.0, duration_s=3 * 3600, target_key="cold", ra_deg=270.0, dec_deg=-25.0,
                             window_end=NOW + timedelta(hours=20))
        plans = plan_network(requests=[*same, other], sites=SITES, facilities=only, now=NOW)
        # The second goal on the hot target (5/sqrt(2) = 3.5) ranks below the other target (4).
        assert plans[3].chosen
        assert sum(bool(plans[i].chosen) for i in (1, 2)) == 1

    def test_window_over_is_reported(self):
        plan = plan_network(requests=[self.request(window_end=NOW - timedelta(hours=1), window_start=NOW - timedelta(hours=5))],
                            sites=SITES, facilities=FACILITIES, now=NOW)[1]
        assert plan.outcome == "window over"

    def test_thousand_requests_plan_in_one_call(self):
        requests = [self.request(id=i, ra_deg=(i * 7.3) % 360, dec_deg=-60 + (i % 100), target_key=str(i))
                    for i in range(1000)]
        plans = plan_network(requests=requests, sites=SITES, facilities=FACILITIES, now=NOW, horizon=timedelta(days=1))
        assert len(plans) == 1000
        assert sum(1 for p in plans.values() if p.chosen) > 100
        assert all(math.isfinite(p.p_total) for p in plans.values())


def test_a_second_night_at_one_site_counts_less_than_another_site():
    # Weather persists: after a cloudy night at "a", the next is clear only 1/cloudy_spell of the time.
    first = chance("a", 1, p=0.7)
    again = replace(chance("a", 25, p=0.7), p_clear_after_cloudy=0.3)
    other = chance("b", 30, p=0.6)
    chosen, p, _ = choose_chances(chances=[first, again, other], live=[], target_p=0.85, epoch=NOW)
    assert [c.site_code for c in chosen] == ["a", "b"]
    assert p == pytest.approx(1 - 0.3 * 0.4)


def test_every_chance_is_long_enough_for_its_observation_whenever_the_plan_is_made():
    # A run of visibility already under way is clipped to now; what is left of it must still hold the observation
    # (a 5-minute chance for a 7-minute observation was once sent, and the portal refused it as never visible).
    request = RequestSpec(id=1, telescope_class="1m0", duration_s=420, window_start=NOW,
                          window_end=NOW + timedelta(hours=36), **BULGE)
    seen = 0
    for minutes in range(0, 24 * 60, 7):  # plans made at every 7th minute of a day, edges of nights included
        now = NOW + timedelta(minutes=minutes)
        plan = plan_network(requests=[replace(request, window_start=now)], sites=SITES, facilities=FACILITIES, now=now)[1]
        for c in plan.chances:
            seen += 1
            assert c.start >= now and (c.end - c.start).total_seconds() >= request.duration_s, (minutes, c)
    assert seen > 100
