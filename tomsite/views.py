"""The health probe: database, Redis and the worker's last heartbeat."""

from __future__ import annotations

from datetime import datetime

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from .tasks import HEARTBEAT_KEY

HEARTBEAT_STALE_AFTER_S = 180


def system_status() -> dict[str, object]:
    """Whether the database and Redis answer, and how old the worker's last heartbeat is.

    ``status`` is "ok" when the database and Redis answer. A worker that has not
    beaten for a few minutes is reported as "stale" without failing the status:
    the web tier is still fine.
    """
    checks: dict[str, object] = {}
    ok = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        checks["database"] = f"error: {exc.__class__.__name__}"
        ok = False
    try:
        beat = cache.get(HEARTBEAT_KEY)
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        beat = None
        checks["redis"] = f"error: {exc.__class__.__name__}"
        ok = False
    if beat:
        age = (timezone.now() - datetime.fromisoformat(beat["at"])).total_seconds()
        checks["worker"] = "ok" if age < HEARTBEAT_STALE_AFTER_S else "stale"
        checks["worker_heartbeat_age_s"] = round(age, 1)
    else:
        checks["worker"] = "unknown"
    return {"status": "ok" if ok else "error", **checks}


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """The load balancer's probe: 200 with :func:`system_status` when healthy, else 503."""
    body = system_status()
    return JsonResponse(body, status=200 if body["status"] == "ok" else 503)
