"""The planner re-reads live copies with the news: a sky that clouded over, a telescope that went down."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from observatories.scheduling.planner import LiveCopy, RequestSpec, live_copy_now, plan_network

from .test_planner import BULGE, FACILITIES, NOW, SITES

LSC = [f for f in FACILITIES if f.site_code == "lsc" and f.telescope_class == "1m0"]


def request(**kw) -> RequestSpec:
    # The bulge from Cerro Tololo (lsc) during its night of 1-2 June 2027 only.
    base = RequestSpec(id=1, telescope_class="1m0", duration_s=900, window_start=NOW + timedelta(hours=10),
                       window_end=NOW + timedelta(hours=20), **BULGE)
    return replace(base, **kw)


def as_live(plan_chances) -> tuple[LiveCopy, ...]:
    return tuple(LiveCopy(facility_code=c.facility_code, site_code=c.site_code, start=c.start, end=c.end, p=c.p,
                          duration_s=c.duration_s) for c in plan_chances)


def test_a_live_copy_under_a_sky_that_clouded_over_no_longer_covers_its_request():
    first = plan_network(requests=[request(window_end=NOW + timedelta(hours=40))], sites=SITES,
                         facilities=FACILITIES, now=NOW)[1]
    assert first.outcome == "planned"
    live = as_live(first.chosen)
    earliest = min(live, key=lambda c: c.start)
    # Re-planned as the earliest copy's night begins, without news: nothing to add.
    at = earliest.start
    again = plan_network(requests=[request(window_start=at, window_end=NOW + timedelta(hours=40), live=live)],
                         sites=SITES, facilities=FACILITIES, now=at)[1]
    assert again.outcome == "already covered"
    assert again.chosen == []
    # The same moment, but that site reports cloud: its copy no longer counts, backups are added elsewhere.
    cloudy = [replace(s, weather_now="cloudy", weather_at=at) if s.code == earliest.site_code else s for s in SITES]
    news = plan_network(requests=[request(window_start=at, window_end=NOW + timedelta(hours=40), live=live)],
                        sites=cloudy, facilities=FACILITIES, now=at)[1]
    assert news.chosen
    assert earliest.site_code not in {c.site_code for c in news.chosen if abs(c.start - earliest.start) < timedelta(hours=12)}
    assert news.p_total >= 0.95


def test_a_live_copy_at_a_telescope_that_went_down_frees_its_site_night_for_another_telescope():
    chosen = plan_network(requests=[request()], sites=SITES, facilities=LSC, now=NOW)[1].chosen
    assert [c.site_code for c in chosen] == ["lsc"]
    live = as_live(chosen)
    down = [replace(f, down_until=NOW + timedelta(hours=22)) if f.code == live[0].facility_code else f for f in LSC]
    plan = plan_network(requests=[request(live=live)], sites=SITES, facilities=down, now=NOW)[1]
    assert [c.site_code for c in plan.chosen] == ["lsc"]
    assert plan.chosen[0].facility_code != live[0].facility_code
    assert plan.p_total == pytest.approx(plan.chosen[0].p)


def test_without_news_a_live_copy_keeps_the_probability_it_was_dispatched_with():
    copy = LiveCopy(facility_code="lsc-1m0-a", site_code="lsc", start=NOW + timedelta(hours=11),
                    end=NOW + timedelta(hours=19), p=0.61, duration_s=900)
    lsc = next(s for s in SITES if s.code == "lsc")
    assert live_copy_now(copy, site=lsc, facility=LSC[0], now=NOW) == copy
    clear = replace(lsc, weather_now="clear", weather_at=NOW + timedelta(hours=11))
    assert live_copy_now(copy, site=clear, facility=LSC[0], now=NOW + timedelta(hours=11)).p == pytest.approx(
        LSC[0].p_operational)
    down = replace(LSC[0], down_until=NOW + timedelta(hours=19))
    assert live_copy_now(copy, site=clear, facility=down, now=NOW).p == 0.0
    # Down only until before the copy's window ends: it may still run.
    briefly = replace(LSC[0], down_until=NOW + timedelta(hours=12))
    assert live_copy_now(copy, site=lsc, facility=briefly, now=NOW) == copy


def test_the_plan_lists_every_chance_it_could_use():
    plan = plan_network(requests=[request()], sites=SITES, facilities=FACILITIES, now=NOW)[1]
    assert len(plan.chances) == plan.chances_seen > 0
    assert {c.facility_code for c in plan.chances} >= {f.code for f in LSC}
    assert set(plan.chosen) <= set(plan.chances)
