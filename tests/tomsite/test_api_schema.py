"""Property-based tests of the REST API against its own OpenAPI description (schemathesis)."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import checks

from tests.support import TOM_OWN_PATHS
from tomsite.wsgi import application


@pytest.fixture
def api_schema(db):
    # As Django's test client does: an in-process request must not close the
    # connection that holds the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path_regex=TOM_OWN_PATHS)


@pytest.fixture
def token(user):
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=user)[0].key


# Derandomized: the same cases every run (tests/conftest.py). BATON_EXPLORE=1 draws new ones, more of them.
EXAMPLES = 60 if settings.get_current_profile_name() == "baton-explore" else 15


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case, token):
    # Schema-valid is not the same as acceptable: a well-formed id of a row that does not
    # exist, or a window that is already over, must be refused (400/404), so the
    # "positive data is accepted" check does not apply; every other check does.
    case.call_and_validate(
        headers={"Authorization": f"Token {token}"}, excluded_checks=[checks.positive_data_acceptance]
    )
