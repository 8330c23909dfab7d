"""The project answers: health probe, TOM's target pages, the API schema, production settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse
from tom_targets.models import Target

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.django_db
def test_health_reports_database_and_redis(client):
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["redis"] == "ok"


@pytest.mark.django_db
def test_pages_need_a_login(client):
    response = client.get(reverse("targets:list"))
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


@pytest.mark.django_db
def test_logged_in_user_creates_a_target_and_sees_its_page(client, user):
    client.force_login(user)
    response = client.post(
        reverse("targets:create"),
        data={
            "name": "AT 2026abc", "type": "SIDEREAL", "ra": "150.25", "dec": "-12.5", "epoch": "2000",
            "permissions": "PRIVATE",
            "targetextra_set-TOTAL_FORMS": "0", "targetextra_set-INITIAL_FORMS": "0",
            "aliases-TOTAL_FORMS": "0", "aliases-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    target = Target.objects.get(name="AT 2026abc")
    assert target.ra == pytest.approx(150.25)
    assert target.dec == pytest.approx(-12.5)
    page = client.get(reverse("targets:detail", kwargs={"pk": target.pk}))
    assert page.status_code == 200
    assert b"AT 2026abc" in page.content


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    doc = schema.json()
    assert doc["info"]["title"] == "Baton API"
    assert doc["openapi"].startswith("3.")
    assert any(path.startswith("/api/targets/") for path in doc["paths"])
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


def test_production_settings_pass_check_deploy():
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "x7!" + "k" * 30 + "Q9#zv" + "m" * 20,
        "ALLOWED_HOSTS": "baton.example.org",
    }
    test_only = ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "DJANGO_ALLOW_ASYNC_UNSAFE")
    for name in ("DJANGO_SETTINGS_MODULE", *test_only):
        env.pop(name, None)
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # TOM Toolkit's own serializers draw drf-spectacular warnings; no security warning may remain.
    assert "security." not in result.stdout + result.stderr


def test_missing_secret_key_outside_debug_fails_fast():
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": ""}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["offset=abc", "offset=-1", "limit=0", "limit=1001", "limit=x"])
def test_malformed_paging_is_refused_not_ignored(api_client, query):
    response = api_client.get(f"/api/requests/?{query}")
    assert response.status_code == 400
    assert set(response.json()) <= {"limit", "offset"}


@pytest.mark.django_db
def test_good_paging_pages(api_client):
    response = api_client.get("/api/requests/?limit=5&offset=0")
    assert response.status_code == 200
    assert response.json()["count"] == 0


@pytest.mark.django_db
def test_no_model_change_lacks_a_migration():
    # Also guards TOM's own apps: a project-wide DEFAULT_AUTO_FIELD they do not use would show here.
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
