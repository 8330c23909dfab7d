"""A real browser: a team admin edits the policy in Baton's pages; a member cannot; the history shows it."""

from __future__ import annotations

import pytest

from policies.selectors import policy_in_force

from .conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, base: str, username: str, then: str) -> None:
    page.goto(f"{base}{then}")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{base}{then}")


def test_an_admin_edits_the_policy_and_the_history_shows_it(live_server, page, world):
    log_in(page, live_server.url, "alice_a", "/teams/team-a/policy/edit/")
    page.fill("#id_sharing-photometry-proprietary_days", "21")
    page.select_option("#id_sharing-photometry-release_to", "public")
    page.check("#sharing-spectra input[value=team-b]")
    page.fill("#id_allocations-0-facility_class", "1m0")
    page.fill("#id_allocations-0-semester", "2026A")
    page.fill("#id_allocations-0-hours", "30")
    page.fill("#id_comment", "three weeks, then public")
    page.click("#policy-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/teams/team-a/policy/")
    assert "version 2" in page.locator("h3").inner_text()
    assert "21 days" in page.locator("#sharing").inner_text()
    assert "team-b" in page.locator("#sharing").inner_text()
    policy = policy_in_force(team=world.a)
    assert policy.document.rule("photometry").proprietary_days == 21 and policy.document.time.allocations[0].hours == 30
    page.goto(f"{live_server.url}/teams/team-a/policy/history/")
    assert "three weeks, then public" in page.locator("#versions").inner_text()
    page.click("text=v2")
    assert "+      \"proprietary_days\": 21.0" in page.locator("#diff").inner_text()


def test_a_member_reads_but_cannot_edit(live_server, page, world):
    log_in(page, live_server.url, "bob_a", "/teams/team-a/policy/")
    assert page.locator("text=Edit policy").count() == 0
    page.goto(f"{live_server.url}/teams/team-a/policy/edit/")
    assert "/accounts/login/" in page.url  # TOM sends a refused page to the login form
    assert policy_in_force(team=world.a).number == 1
