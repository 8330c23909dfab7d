"""Reads of `sharing`: a team's destinations with their outbox counts, and its outbox."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Count, Max, QuerySet

from policies.models import Team

from .models import Destination, OutboxItem


def destinations_of(*, team: Team) -> list[Destination]:
    """The team's destinations, each with ``outbox`` (rows per status)."""
    rows = list(Destination.objects.filter(team=team.group).order_by("name"))
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for dest_id, status, n in (OutboxItem.objects.filter(destination__team=team.group).values("destination_id", "status")
                               .annotate(n=Count("pk")).values_list("destination_id", "status", "n").order_by()):
        counts[dest_id][status] = n
    last_sent = dict(OutboxItem.objects.filter(destination__team=team.group, status="sent").values("destination_id")
                     .annotate(at=Max("sent_at")).values_list("destination_id", "at").order_by())
    for row in rows:
        row.outbox = counts[row.pk]  # type: ignore[attr-defined]
        row.waiting = sum(counts[row.pk].get(s, 0) for s in ("pending", "retrying", "sending"))  # type: ignore[attr-defined]
        # Health: the last success, and the latest error of a row not sent (the newest attempt that went wrong).
        row.last_sent_at = last_sent.get(row.pk)  # type: ignore[attr-defined]
        row.last_error_row = (  # type: ignore[attr-defined]
            OutboxItem.objects.filter(destination=row).exclude(last_error="").exclude(status="sent")
            .order_by("-last_attempt_at", "-pk").only("last_error", "last_attempt_at", "status").first()
        )
    return rows


def outbox_of(*, team: Team, status: str | None = None, destination: str | None = None) -> QuerySet[OutboxItem]:
    """The team's outbox rows, newest first, optionally of one status and/or destination (by name)."""
    qs = OutboxItem.objects.filter(destination__team=team.group).select_related("destination", "content_type")
    if status:
        qs = qs.filter(status=status)
    if destination:
        qs = qs.filter(destination__name=destination)
    return qs.order_by("-created_at", "-pk")


def destination_row(destination: Destination) -> dict[str, Any]:
    return {"id": destination.pk, "name": destination.name, "kind": destination.kind, "base_url": destination.base_url,
            "auth": destination.auth, "username": destination.username, "topic": destination.topic,
            "authors": destination.authors, "enabled": destination.enabled, "created_at": destination.created_at,
            "updated_at": destination.updated_at, "outbox": getattr(destination, "outbox", {})}


def outbox_row(item: OutboxItem) -> dict[str, Any]:
    return {"id": item.pk, "destination": item.destination.name, "kind": item.kind,
            "datum_type": f"{item.content_type.app_label}.{item.content_type.model}", "datum_id": item.object_id,
            "target_id": item.target_id, "status": item.status, "attempts": item.attempts, "created_at": item.created_at,
            "last_attempt_at": item.last_attempt_at, "next_attempt_at": item.next_attempt_at, "sent_at": item.sent_at,
            "last_error": item.last_error, "remote_id": item.remote_id, "policy_version_id": item.policy_version_id}
