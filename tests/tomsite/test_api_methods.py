"""Every method an API view answers is listed in the OpenAPI schema and is the view's own, and a
DELETE is answered only where one is meant.

The schema fuzz (test_api_schema.py) cannot see a method the schema wrongly advertises: drills'
sub-resources once inherited ``DELETE`` from the drill's view, and the schema, built from the same
classes, said 204. So this test walks the URL conf itself and asks each view what it answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from rest_framework.schemas.generators import EndpointEnumerator
from rest_framework.views import APIView

PROBED = ("GET", "POST", "PUT", "PATCH", "DELETE")  # HEAD mirrors GET, OPTIONS is DRF's metadata: never operations
PROJECT_PACKAGES = {"candidates", "drills", "notifications", "observatories", "policies", "sharing", "tomsite"}

# Under /api/ but not described by the schema, on purpose: the description itself and DRF's browsable root.
UNDESCRIBED = {
    "/api/": {"GET"},
    "/api/schema/": {"GET"},
    "/api/docs/": {"GET"},
    "/api/redoc/": {"GET"},
}

# Every DELETE the API answers, and what it removes. A new one must be added here, deliberately.
INTENDED_DELETES = {
    "/api/drills/{id}/": "a drill and everything it made (team admins)",
    "/api/teams/{slug}/members/{user_id}/": "a member from a team",
    "/api/teams/{slug}/destinations/{id}/": "a team's sharing destination",
    "/api/reduceddatums/{id}/": "a datum, through the policies' door (TOM's own path)",
    "/api/dataproducts/{id}/": "a data product (TOM's own)",
    "/api/targets/{id}/": "a target (TOM's own)",
    "/api/targetextra/{id}/": "a target's extra (TOM's own)",
    "/api/targetname/{id}/": "a target's alias (TOM's own)",
    "/api/targetlist/{id}/": "a target group (TOM's own)",
}

# Found by this test in code another team owns; each entry must still be true (the test fails when it
# is fixed, so that the entry is removed and the check covers that path again).
KNOWN = {
    ("/api/reduceddatums/", "undescribed GET"):
        "PolicyReducedDatumViewSet is @extend_schema(exclude=True) and shadows TOM's entry (policies/tom_overrides.py)",
    ("/api/reduceddatums/", "undescribed POST"): "as above",
    ("/api/reduceddatums/{id}/", "undescribed DELETE"): "as above",
}


@dataclass
class Route:
    path: str  # as the OpenAPI schema spells it
    url: str  # a URL that resolves to this pattern
    callback: Any

    @property
    def view_class(self) -> Any:
        return getattr(self.callback, "cls", None) or getattr(self.callback, "view_class", None)

    def handlers(self) -> dict[str, str]:
        """HTTP method -> the name of the attribute that answers it, as the view class declares."""
        cls = self.view_class
        if cls is None:
            return {}
        actions = getattr(self.callback, "actions", None)
        if actions:  # a viewset: only the actions it was routed with (DRF adds "head" once it has served a GET)
            return {method.upper(): action for method, action in actions.items() if method.upper() in PROBED}
        return {m.upper(): m for m in cls.http_method_names if m.upper() in PROBED and hasattr(cls, m)}


def _walk(patterns: list, prefix: str = "") -> list[tuple[str, URLPattern]]:
    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found += _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            found.append((prefix + str(pattern.pattern), pattern))
    return found


def api_routes() -> list[Route]:
    """Every reachable URL pattern under /api/ (format-suffix twins and shadowed patterns left out)."""
    enumerator = EndpointEnumerator()
    routes = []
    for regex, pattern in _walk(get_resolver().url_patterns):
        path = enumerator.get_path_from_regex(regex)
        if not path.startswith("/api/") or "{format}" in path:
            continue
        path = path.replace("{pk}", "{id}")
        url = re.sub(r"\{[^}]+\}", "1", path)
        try:
            match = resolve(url)
        except Resolver404:
            continue
        if match.func is not pattern.callback:  # an earlier pattern answers this URL
            continue
        routes.append(Route(path=path, url=url, callback=pattern.callback))
    return routes


@pytest.fixture
def schema_methods(client) -> dict[str, set[str]]:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return {path: {m.upper() for m in ops if m.upper() in PROBED} for path, ops in response.json()["paths"].items()}


@pytest.fixture
def staff_client(django_user_model):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    admin = django_user_model.objects.create_superuser("methods-admin", "admin@example.org", "x")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=admin)[0].key}")
    return client


def _inherited(route: Route) -> list[str]:
    """Methods whose handler the view takes from another of the project's API views."""
    cls = route.view_class
    if cls is None:
        return []
    found = []
    for method, attr in route.handlers().items():
        owner = next(k for k in cls.__mro__ if attr in vars(k))
        if (owner is not cls and issubclass(owner, APIView)
                and owner.__module__.split(".")[0] in PROJECT_PACKAGES):
            found.append(f"inherited {method}")
    return found


@pytest.mark.django_db
def test_every_api_method_is_listed_owned_and_deletes_are_intended(schema_methods, staff_client):
    routes = api_routes()
    assert len(routes) > 50, "the walk of the URL conf found too few API routes"
    assert {r.path for r in routes} >= {"/api/drills/{id}/report/", "/api/teams/{slug}/members/{user_id}/"}

    findings: dict[tuple[str, str], str] = {}
    for route in routes:
        listed = schema_methods.get(route.path, UNDESCRIBED.get(route.path, set()))
        answered = set(route.handlers())
        # Ask the view as well, for what it answers beyond its declared handlers (a method answered
        # without a handler shows here). Only methods the schema does not list are sent: 405 or a finding.
        for method in sorted(set(PROBED) - listed):
            status = getattr(staff_client, method.lower())(route.url).status_code
            if status != 405:
                answered.add(method)
        for method in sorted(answered - listed):
            findings[(route.path, f"undescribed {method}")] = f"{route.view_class} answers it; the schema does not list it"
        for method in sorted(listed - answered):
            findings[(route.path, f"unanswered {method}")] = "the schema lists it; the view does not answer it"
        if "DELETE" in answered and route.path not in INTENDED_DELETES:
            findings[(route.path, "unintended DELETE")] = f"{route.view_class} answers DELETE"
        for what in _inherited(route):
            findings[(route.path, what)] = f"{route.view_class} takes this handler from a parent API view"

    unexpected = {key: why for key, why in findings.items() if key not in KNOWN}
    assert not unexpected, "\n".join(f"{path} {what}: {why}" for (path, what), why in sorted(unexpected.items()))
    stale = set(KNOWN) - set(findings)
    assert not stale, f"fixed, so remove from KNOWN: {sorted(stale)}"
    unrouted = set(INTENDED_DELETES) - {r.path for r in routes if "DELETE" in r.handlers()}
    assert not unrouted, f"INTENDED_DELETES names paths that answer no DELETE: {sorted(unrouted)}"


@pytest.mark.django_db
def test_drill_sub_resources_answer_only_their_own_methods(staff_client):
    for sub in ("report", "rerun", "acks"):
        assert staff_client.delete(f"/api/drills/1/{sub}/").status_code == 405
    assert staff_client.get("/api/drills/1/rerun/").status_code == 405
    assert staff_client.get("/api/drills/1/acks/").status_code == 405
