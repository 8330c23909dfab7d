"""A real browser logs in and opens a target page (Playwright driving Debian's Chromium)."""

from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm
from tom_targets.models import Target

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_and_open_a_target_page(live_server, page, django_user_model):
    bob = django_user_model.objects.create_user(username="bob", password="a long browser password")
    target = Target.objects.create(name="AT 2026xyz", type=Target.SIDEREAL, ra=210.91, dec=54.31)
    # Targets are private by default: bob is given the right to see this one.
    assign_perm("tom_targets.view_target", bob, target)

    # Requests outside Baton are refused and recorded: the page frame (Bootstrap, htmx, Alpine.js) is Baton's own;
    # only TOM's sky and FITS viewers on the target page (Aladin Lite, JS9) reach out, for images from the internet.
    elsewhere: list[str] = []

    def only_baton(route):
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_baton)
    page.goto(f"{live_server.url}/targets/{target.pk}/")
    # Locked site: the browser lands on the login form first.
    assert "/accounts/login/" in page.url
    page.fill("input[name=login]", "bob")
    page.fill("input[name=password]", "a long browser password")
    page.click("form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/targets/{target.pk}/")
    assert page.locator("h3, h2, h1").filter(has_text="AT 2026xyz").count() >= 1
    assert page.locator("body").inner_text().count("210.91") >= 1
    # Styled from Baton's own static files, with no CDN: Bootstrap's navbar is a flex box.
    assert page.evaluate("getComputedStyle(document.querySelector('nav.navbar')).display") == "flex"
    # ...and TOM's interactive bits run on Baton's own copy of Alpine.js (TOM links it from a CDN).
    page.wait_for_function("typeof window.Alpine === 'object'")
    assert [u for u in elsewhere if "aladin" not in u and "/js9/" not in u] == []
