"""A real browser: a hostile target name is inert on TOM's targets page, and the sky map still gets it as text."""

from __future__ import annotations

import pytest
from tom_targets.models import Target

from .conftest import make_target
from .test_browser import log_in
from .test_tom_views import PAYLOAD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_hostile_target_name_runs_nowhere_on_the_targets_page(live_server, page, world):
    target = make_target(PAYLOAD)
    Target.objects.filter(pk=target.pk).update(permissions=Target.Permissions.OPEN)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, live_server.url, "olga", "/targets/")
    page.wait_for_load_state("load")
    assert page.locator("img[src=x]").count() == 0
    names = page.evaluate("JSON.parse(document.getElementById('baton-aladin-targets').textContent).map(t => t.name)")
    assert names == [PAYLOAD]
    assert dialogs == []
