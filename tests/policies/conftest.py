"""Fixtures of the policies tests: two teams (A, B) with admins and members, an outsider, targets and data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tom_dataproducts.models import PhotometryReducedDatum, SpectroscopyReducedDatum
from tom_targets.models import Target

from policies.models import Team
from policies.services import team_create, team_member_set

# A fixed "now" for the tests that move the clock: data taken at T0 under a 30-day proprietary period.
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PASSWORD = "a long test password 42"


def document(**sharing: Any) -> dict[str, Any]:
    """A policy document with the given sharing rules per kind (others: private)."""
    return {"schema": 1, "sharing": sharing, "publication": {"guidelines": "", "claims_need_agreement": True},
            "time": {"overrun_action": "refuse", "unallocated_action": "allow", "allocations": []}, "notifications": []}


def rule(partners: tuple[str, ...] = (), days: float = 0, release_to: str = "none") -> dict[str, Any]:
    return {"partners": list(partners), "proprietary_days": days, "release_to": release_to}


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Test users need no slow password hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def builtin_delivery(settings):
    """These tests exercise the policies' own delivery (policies.hooks.inbox_notify); a test that
    wants the notifications app's adapter sets BATON_POLICIES['NOTIFY'] itself."""
    settings.BATON_POLICIES = {**settings.BATON_POLICIES, "NOTIFY": ""}


@dataclass
class World:
    a: Team
    b: Team
    alice: Any  # admin of A
    bob: Any  # member of A
    carol: Any  # admin of B
    dave: Any  # member of B
    olga: Any  # outsider: in no team
    root: Any  # superuser

    def user(self, name: str) -> Any:
        return getattr(self, name)


@pytest.fixture
def world(django_user_model) -> World:
    def make(name: str, **extra: Any) -> Any:
        return django_user_model.objects.create_user(username=name, password=PASSWORD, email=f"{name}@example.org", **extra)

    alice, bob, carol, dave, olga = (make(n) for n in ("alice_a", "bob_a", "carol_b", "dave_b", "olga"))
    root = make("root", is_superuser=True, is_staff=True)
    a = team_create(name="Team A", slug="team-a", admins=[alice], now=T0 - timedelta(days=400))
    b = team_create(name="Team B", slug="team-b", admins=[carol], now=T0 - timedelta(days=400))
    team_member_set(team=a, user=bob, role="member", by=alice)
    team_member_set(team=b, user=dave, role="member", by=carol)
    return World(a=a, b=b, alice=alice, bob=bob, carol=carol, dave=dave, olga=olga, root=root)


def make_target(name: str, ra: float = 150.0, dec: float = -20.0) -> Target:
    return Target.objects.create(name=name, type=Target.SIDEREAL, ra=ra, dec=dec, epoch=2000.0)


def make_photometry(target: Target, at: datetime, mag: float, band: str = "r") -> PhotometryReducedDatum:
    return PhotometryReducedDatum.objects.create(target=target, timestamp=at, bandpass=band, brightness=mag,
                                                 brightness_error=0.02, telescope="1m0-01", instrument="sinistro")


def make_spectrum(target: Target, at: datetime) -> SpectroscopyReducedDatum:
    return SpectroscopyReducedDatum.objects.create(target=target, timestamp=at, wavelength=[5000.0, 5001.0], flux=[1.0, 1.1],
                                                   telescope="2m0-01", instrument="floyds")


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds: waiting for another process (the worker), not for the clock."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")
