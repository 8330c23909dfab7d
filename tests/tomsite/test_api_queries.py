"""Every query parameter of Baton's API refuses an empty, a blank and a malformed value with 400.

The schema fuzz finds such cases only when its random draw happens on them (and a user who is no
team's member is refused with 403 first, hiding the bug). This test sends them all, every run, as a
member and admin of a team, next to valid values for whatever else the operation requires.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.support import TOM_OWN_PATHS

START, END = "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"

# Refused in code another team owns; each entry must still be true (the test fails once it is fixed,
# so that the entry goes and the check covers it again).
KNOWN: dict[tuple[str, str, str], str] = {}


def bad_values(schema: dict[str, Any]) -> list[str]:
    """An empty and a blank value, and one the parameter's schema does not allow, if it has a shape."""
    values = ["", " "]
    if "enum" in schema:
        values.append("no-such-choice")
    elif schema.get("type") == "integer":
        values += ["one", "\u00b2"]  # "²": str.isdigit() says yes, int() says no
    elif schema.get("type") == "boolean":
        values.append("perhaps")
    elif schema.get("format") == "date-time":
        values.append("yesterday")
    elif "pattern" in schema:
        values.append("%%")
    return values


@pytest.fixture
def world(user):
    from tom_targets.models import Target

    from policies.services import team_create

    team = team_create(name="Query Team", slug="query-team", admins=[user])
    target = Target.objects.create(name="AT 2026qry", type=Target.SIDEREAL, ra=150.0, dec=-20.0, epoch=2000.0,
                                   permissions=Target.Permissions.PUBLIC)
    return {"team": team, "target": target}


def valid_value(name: str, schema: dict[str, Any], world: dict[str, Any]) -> str:
    if name == "team":
        return str(world["team"].group_id) if schema.get("type") == "integer" else world["team"].slug
    return {"target": str(world["target"].pk), "start": START, "end": END}[name]


def get_operations(schema: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Baton's GET operations that take query parameters: (path, parameters)."""
    found = []
    for path, item in schema["paths"].items():
        if not path.startswith("/api/") or re.search(TOM_OWN_PATHS, path) or "get" not in item:
            continue
        query = [p for p in item["get"].get("parameters", []) if p["in"] == "query"]
        if query:
            found.append((path, query))
    return found


@pytest.mark.django_db
def test_empty_blank_and_malformed_query_parameters_are_400(api_client, world):
    schema = api_client.get("/api/schema/?format=json").json()
    operations = get_operations(schema)
    assert len(operations) >= 10, "too few operations with query parameters: is the schema read right?"
    assert "/api/candidates/labels/training-set/" in dict(operations)

    findings = {}
    for path, parameters in operations:
        url = path.replace("{slug}", world["team"].slug)
        # What the operation requires, and the team (the ledgers want a team or mine=true).
        required = {p["name"]: valid_value(p["name"], p["schema"], world) for p in parameters
                    if p.get("required") or p["name"] == "team"}
        baseline = api_client.get(url, required)
        assert baseline.status_code == 200, f"{path} with {required}: {baseline.status_code} {baseline.content[:300]!r}"
        for parameter in parameters:
            name = parameter["name"]
            for value in bad_values(parameter["schema"]):
                status = api_client.get(url, {**required, name: value}).status_code
                if status != 400:
                    findings[(path, name, value)] = status

    unexpected = {key: status for key, status in findings.items() if key not in KNOWN}
    assert not unexpected, "\n".join(f"GET {p}?{n}={v!r} answered {s}" for (p, n, v), s in sorted(unexpected.items()))
    stale = set(KNOWN) - set(findings)
    assert not stale, f"fixed, so remove from KNOWN: {sorted(stale)}"


@pytest.mark.django_db
def test_training_set_refuses_an_empty_format_and_end(api_client, world):
    # The case that once made the fuzz red at random (issue 19).
    response = api_client.get("/api/candidates/labels/training-set/", {"team": world["team"].group_id, "format": "",
                                                                       "end": ""})
    assert response.status_code == 400
    assert set(response.json()) == {"format", "end"}
