"""Fixtures of the observatories tests: the default network, and the simulated network over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

# A fixed night on which the Galactic bulge is up all night from Chile: the
# microlensing event OGLE-2016-BLG-1195 from Cerro Tololo (lsc), June 2026.
BULGE: dict[str, Any] = {"name": "OGLE-2016-BLG-1195", "ra": 268.5317917, "dec": -30.4728056}
# Polaris never rises at Cerro Tololo (latitude -30 deg).
POLARIS: dict[str, Any] = {"name": "Polaris", "ra": 37.9546, "dec": 89.2641}
EVENING = datetime(2026, 6, 15, 20, 0, tzinfo=UTC)  # before sunset at lsc (~22:50 UTC)
WINDOW = (datetime(2026, 6, 15, 20, 0, tzinfo=UTC), datetime(2026, 6, 16, 12, 0, tzinfo=UTC))
NEXT_MORNING = datetime(2026, 6, 16, 12, 0, tzinfo=UTC)


@pytest.fixture
def network(db: Any) -> None:
    """The default network in the database (the migration loads it; a transactional test's flush removes it)."""
    from observatories.network import network_load

    network_load()


class Sim:
    """Drives Baton's simulated network over real HTTP, as a test or a drill would."""

    def __init__(self, base_url: str) -> None:
        from observatories.simnet.auth import simnet_token

        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {simnet_token()}"

    def post(self, path: str, body: dict[str, Any] | None = None, status: int = 200) -> Any:
        response = self.session.post(self.base_url + path, json=body or {}, timeout=30)
        assert response.status_code == status, response.text
        return response.json()

    def get(self, path: str) -> Any:
        response = self.session.get(self.base_url + path, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def tick(self, now: datetime) -> Any:
        return self.post("api/tick/", {"now": now.isoformat()})

    def weather(self, site: str, state: str, hours: float = 24.0) -> Any:
        return self.post("api/weather/", {"site": site, "state": state, "hours": hours})

    def downtime(self, facility: str, reason: str = "dome shutter fault") -> Any:
        return self.post("api/downtime/", {"facility": facility, "reason": reason}, status=201)

    def fault(self, kind: str, *, path: str = "", method: str = "", count: int = 1, delay_s: float = 0.0) -> Any:
        body = {"kind": kind, "path": path, "method": method, "count": count, "delay_s": delay_s}
        return self.post("api/faults/", body, status=201)


@pytest.fixture
def sim(live_server: Any, settings: Any, network: None) -> Iterator[Sim]:
    """The simulated network served by the live server; simulated facilities point at it (BATON_BASE_URL)."""
    settings.BATON_BASE_URL = live_server.url
    # No waiting between retries: the tests are about outcomes, not backoff.
    settings.OBSERVATORIES_HTTP_BACKOFF_S = 0.0
    settings.OBSERVATORIES_HTTP_TIMEOUT_S = 10.0
    yield Sim(live_server.url + "/sim/")


def bulge_payload(*, instrument_code: str = "lsc-1m0-a-sinistro", target: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """An LCO-style request group: two V and one rp exposure of the bulge event, tonight at lsc."""
    from observatories.adapters import Exposure, request_group_payload
    from observatories.models import Instrument

    spec = target or BULGE
    kwargs: dict[str, Any] = {
        "target_name": spec["name"],
        "ra_deg": spec["ra"],
        "dec_deg": spec["dec"],
        "instrument": Instrument.objects.select_related("facility__site").get(code=instrument_code),
        "exposures": [Exposure(filter="V", exposure_time_s=60, count=2), Exposure(filter="rp", exposure_time_s=30, count=1)],
        "window_start": WINDOW[0],
        "window_end": WINDOW[1],
        "target_mag": 16.0,
        "proposal": "BATON-NETWORK",
    }
    kwargs.update(overrides)
    return request_group_payload(**kwargs)
