"""Services of `sharing`: a team's destinations, and the outbox that pushes released data to them.

:func:`outbox_enqueue_released` is the policies' release hook
(``BATON_POLICIES['RELEASE_HOOK']``): called in the transaction that released data (or
re-projected a whole team), it writes one outbox row per released datum and destination the
policy names (unique per destination and datum) and enqueues their delivery when that
transaction commits. :func:`outbox_item_deliver` sends one row as the notifications outbox
does: it claims the row under a lock, asks the door again
(:func:`policies.access.share_out_access`: a datum whose release was withdrawn is withheld,
never sent), commits, sends outside any transaction, and records ``sent``, ``retrying``
(exponential backoff) or ``failed`` (visible on the team's sharing page and API).
:func:`outbox_due` (the ``sharing.outbox_due`` beat task) re-drives due retries, items a lost
task left pending, and sends a dead worker left. During a drill (``tomsite.sandbox.active()``)
nothing is enqueued and nothing is sent.

Delivery is at least once at the HTTP level; a TOM destination is asked before a repeat
whether the datum is already there, so each datum lands once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from tom_dataproducts.models import REDUCED_DATUM_MODELS

from policies import access, clock
from policies.models import Audience, DataOwnership, PolicyDecision, Team
from policies.selectors import policies_in_force, team_is_admin
from policies.services import PolicyForbidden, PolicyInvalid, decision_record
from tomsite import sandbox
from tomsite.outbox import DeliveryOutcome, exponential_backoff

from . import conf
from .clients import PermanentShareError, TransientShareError, client_for
from .models import SENDABLE, Destination, OutboxItem, OutboxStatus

logger = logging.getLogger(__name__)

SHARED_KINDS = ("photometry", "spectra")
DESTINATION_FIELDS = ("name", "kind", "base_url", "token", "username", "password", "topic", "authors", "enabled")


# --- destinations -----------------------------------------------------------------------------


def _admin_only(*, team: Team, by: Any) -> None:
    if not team_is_admin(user=by, team=team):
        raise PolicyForbidden("only the team's admins may manage its sharing destinations")


def destination_create(*, team: Team, by: Any, data: dict[str, Any], now: datetime | None = None) -> Destination:
    """Add a destination (validated ``data``: DESTINATION_FIELDS). Admins only; a taken name is PolicyInvalid."""
    _admin_only(team=team, by=by)
    now = now or timezone.now()
    try:
        with transaction.atomic():
            return Destination.objects.create(team=team.group, created_by=by, created_at=now, updated_at=now,
                                              **{k: v for k, v in data.items() if k in DESTINATION_FIELDS})
    except IntegrityError as exc:
        raise PolicyInvalid(f"the team has a destination named {data.get('name')!r} already") from exc


def destination_update(*, team: Team, by: Any, destination: Destination, data: dict[str, Any],
                       now: datetime | None = None) -> Destination:
    """Change a destination. Renaming one its policy names is refused (the policy would lose it).

    Re-enabling it queues again what was withheld while it was off.
    """
    _admin_only(team=team, by=by)
    now = now or timezone.now()
    new_name = data.get("name", destination.name)
    if new_name != destination.name and _named_by_policy(team=team, name=destination.name):
        raise PolicyInvalid(f"the team's policy names {destination.name!r}: change the policy before renaming it")
    for key, value in data.items():
        if key in DESTINATION_FIELDS:
            setattr(destination, key, value)
    destination.updated_at = now
    try:
        with transaction.atomic():
            destination.save()
            if destination.enabled:
                outbox_enqueue_released(team=team.group, now=clock.now(), destinations=[destination])
    except IntegrityError as exc:
        raise PolicyInvalid(f"the team has a destination named {new_name!r} already") from exc
    return destination


def destination_delete(*, team: Team, by: Any, destination: Destination) -> None:
    """Remove a destination and its outbox. One the policy in force names is refused."""
    _admin_only(team=team, by=by)
    if _named_by_policy(team=team, name=destination.name):
        raise PolicyInvalid(f"the team's policy names {destination.name!r}: change the policy before removing it")
    destination.delete()


def _named_by_policy(*, team: Team, name: str) -> bool:
    policy = policies_in_force().get(team.group_id)
    return policy is not None and any(name in policy.document.rule(kind).destinations for kind in SHARED_KINDS)


# --- the outbox ---------------------------------------------------------------------------------


def backoff_s(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: RETRY_BACKOFF_S doubling per attempt, capped."""
    return exponential_backoff(attempts, base_s=float(conf.setting("RETRY_BACKOFF_S")),
                               cap_s=float(conf.setting("RETRY_BACKOFF_MAX_S")))


def _enqueue(ids: Iterable[int]) -> None:
    from .tasks import outbox_item_deliver_task

    for pk in ids:
        outbox_item_deliver_task.delay_on_commit(pk)  # type: ignore[attr-defined]  # celery-types predates Celery 5.4


def outbox_enqueue_released(*, team: Group, now: datetime, ownership: QuerySet | None = None,
                            destinations: list[Destination] | None = None) -> int:
    """Queue the team's released data (all of it, or the ``ownership`` rows) for the destinations its policy names.

    The policies' release hook. Writes an outbox row per (destination, datum) not queued yet,
    queues again rows the door withheld earlier (the datum is released again), and enqueues
    their delivery on commit. Returns how many rows it queued. Nothing during a drill.
    """
    if sandbox.active():
        return 0
    policy = policies_in_force().get(team.pk)
    if policy is None:
        return 0
    stamp = timezone.now()  # the outbox keeps real time (its pump runs on real time); ``now`` is the policies' clock
    reduced = [ContentType.objects.get_for_model(m).pk for m in REDUCED_DATUM_MODELS]
    queued: list[int] = []
    for kind in SHARED_KINDS:
        rule = policy.document.rule(kind)
        if rule.release_to == Audience.NONE or not rule.destinations:
            continue
        chosen = Destination.objects.filter(team=team, name__in=rule.destinations, enabled=True)
        if destinations is not None:
            chosen = chosen.filter(pk__in=[d.pk for d in destinations])
        rows = DataOwnership.objects.filter(team=team, kind=kind, released_at__isnull=False, content_type_id__in=reduced)
        if ownership is not None:
            rows = rows.filter(pk__in=ownership.values("pk"))
        for destination in chosen:
            missing = rows.exclude(Exists(OutboxItem.objects.filter(
                destination=destination, content_type_id=OuterRef("content_type_id"), object_id=OuterRef("object_id"))))
            fresh = [OutboxItem(destination=destination, content_type_id=ct, object_id=oid, target_id=target, kind=kind,
                                created_at=stamp, next_attempt_at=stamp)
                     for ct, oid, target in missing.values_list("content_type_id", "object_id", "target_id").iterator()]
            created = OutboxItem.objects.bulk_create(fresh, ignore_conflicts=True, batch_size=1000)
            again = OutboxItem.objects.filter(destination=destination, status=OutboxStatus.WITHHELD).filter(
                Exists(rows.filter(content_type_id=OuterRef("content_type_id"), object_id=OuterRef("object_id"))))
            again_ids = list(again.values_list("pk", flat=True))
            OutboxItem.objects.filter(pk__in=again_ids).update(status=OutboxStatus.PENDING, next_attempt_at=stamp, last_error="")
            keys = {(item.content_type_id, item.object_id) for item in created}
            new_ids = [pk for pk, ct, oid in OutboxItem.objects.filter(
                destination=destination, status=OutboxStatus.PENDING, attempts=0, created_at=stamp,
            ).values_list("pk", "content_type_id", "object_id") if (ct, oid) in keys]
            queued += new_ids + again_ids
    _enqueue(queued)
    return len(queued)


def outbox_item_deliver(*, item_id: int, now: datetime | None = None) -> DeliveryOutcome:
    """Send one outbox row (see the module docstring); idempotent: a row not pending or retrying is left alone.

    For a destination whose client takes several data in one message (Hermes: ``batches``), the
    row's sendable siblings go with it (:func:`_siblings`: the same destination, kind and target,
    and the same observation or the same release), each asked at the door on its own; their own
    tasks then find them taken and skip.
    """
    if sandbox.active():
        return DeliveryOutcome("skipped")  # a drill never reaches a partner
    now = now or timezone.now()
    with transaction.atomic():
        item = (OutboxItem.objects.select_for_update(skip_locked=True, of=("self",)).select_related("destination__team")
                .filter(pk=item_id, status__in=SENDABLE).first())
        if item is None:
            return DeliveryOutcome("skipped")
        client = client_for(item.destination)
        claimed: list[tuple[OutboxItem, Any]] = []
        outcome = DeliveryOutcome("skipped")
        for row in [item, *(_siblings(item) if getattr(client, "batches", False) else [])]:
            datum, withheld = _door(row)
            if withheld is not None:
                if row.pk == item.pk:
                    outcome = withheld
                continue
            row.status, row.attempts, row.last_attempt_at, row.next_attempt_at = OutboxStatus.SENDING, row.attempts + 1, now, None
            row.save(update_fields=["status", "attempts", "last_attempt_at", "next_attempt_at", "policy_version_id"])
            claimed.append((row, datum))
        if not claimed:
            return outcome
    try:
        if len(claimed) > 1:
            remote_id = client.send_many(items=claimed)  # type: ignore[attr-defined]  # batches: HermesDestinationClient
        else:
            remote_id = client.send(item=claimed[0][0], datum=claimed[0][1])
    except TransientShareError as exc:
        return [_failed_for_now(row, error=str(exc), now=now) for row, _ in claimed][0]
    except PermanentShareError as exc:
        for row, _ in claimed:
            _finish(row, status=OutboxStatus.FAILED, last_error=str(exc)[:2000])
        _failure_announce(item, error=str(exc), now=now)
        return DeliveryOutcome("failed", error=str(exc))
    except Exception as exc:
        # A bug or an unexpected library error: keep the rows, retry them like a transient failure, say so loudly.
        logger.exception("outbox item %s: unexpected error sending to %s", item.pk, item.destination.name)
        return [_failed_for_now(row, error=f"unexpected error: {exc!r}", now=now) for row, _ in claimed][0]
    for row, _ in claimed:
        _finish(row, status=OutboxStatus.SENT, sent_at=timezone.now(), remote_id=remote_id[:200], last_error="")
    Destination.objects.filter(pk=item.destination_id, failure_notified_at__isnull=False).update(failure_notified_at=None)
    return DeliveryOutcome("sent")


def _failure_announce(item: OutboxItem, *, error: str, now: datetime) -> None:
    """Tell the team (``sharing.failed``, to whom its notification rules name) that data failed for good at a
    destination: once per episode, until a success there clears it."""
    from policies.hooks import notify

    if not Destination.objects.filter(pk=item.destination_id, failure_notified_at__isnull=True).update(
        failure_notified_at=now
    ):
        return  # already announced since the last success
    team = item.destination.team
    notify("sharing.failed", [team], {
        "team_id": team.pk, "destination": item.destination.name, "kind": item.kind, "error": error[:500],
        "urgent": False,
    }, now=now)


MAX_BATCH = 200  # data in one message at most


def _siblings(item: OutboxItem) -> list[OutboxItem]:
    """Sendable rows to go in ``item``'s message: the same destination, kind and target, and either queued
    in the same release (the same ``created_at`` stamp) or data of the same observation. Locked, skipping
    rows another worker holds."""
    same_release = Q(created_at=item.created_at)
    model = ContentType.objects.get_for_id(item.content_type_id).model_class()
    record = None
    if model is not None and any(f.name == "data_product" for f in model._meta.get_fields()):
        record = (model._default_manager.filter(pk=item.object_id)
                  .values_list("data_product__observation_record_id", flat=True).first())
    if record is not None:
        same_observation = Q(content_type_id=item.content_type_id, object_id__in=model._default_manager.filter(  # type: ignore[union-attr]
            data_product__observation_record_id=record).values("pk"))
        same_release |= same_observation
    return list(OutboxItem.objects.select_for_update(skip_locked=True).select_related("destination__team")
                .filter(same_release, destination_id=item.destination_id, kind=item.kind, target_id=item.target_id,
                        status__in=SENDABLE).exclude(pk=item.pk).order_by("pk")[:MAX_BATCH - 1])


def _door(item: OutboxItem) -> tuple[Any, DeliveryOutcome | None]:
    """(the datum, None) when ``item`` may go now (its policy version set on it); else the row is marked
    withheld, the decision recorded, and (None, the outcome) returned. Inside the claiming transaction."""
    ownership = DataOwnership.objects.filter(content_type_id=item.content_type_id, object_id=item.object_id).first()
    decision = access.share_out_access(ownership=ownership, destination=item.destination.name)
    datum = None
    if decision:
        datum = ContentType.objects.get_for_id(item.content_type_id).model_class()._default_manager.filter(  # type: ignore[union-attr]
            pk=item.object_id).first()
    reason = ("the destination is disabled" if not item.destination.enabled
              else decision.reason if not decision else "the datum was deleted" if datum is None else "")
    if reason:
        OutboxItem.objects.filter(pk=item.pk).update(status=OutboxStatus.WITHHELD, next_attempt_at=None, last_error=reason)
        decision_record(action=PolicyDecision.Action.RELEASE, decision="withheld", team=item.destination.team,
                        policy_version_id=decision.policy_version_id, object_type=item.kind, object_id=item.object_id,
                        reason=f"not pushed to {item.destination.name}: {reason}", detail={"outbox_item": item.pk})
        return None, DeliveryOutcome("withheld", error=reason)
    item.policy_version_id = decision.policy_version_id
    return datum, None


def _finish(item: OutboxItem, **values: object) -> None:
    # Only if still ours: the pump may have taken back a row it thought a dead worker left.
    OutboxItem.objects.filter(pk=item.pk, status=OutboxStatus.SENDING).update(**values)


def _failed_for_now(item: OutboxItem, *, error: str, now: datetime) -> DeliveryOutcome:
    if item.attempts >= int(conf.setting("MAX_ATTEMPTS")):
        error = f"gave up after {item.attempts} attempts: {error}"
        _finish(item, status=OutboxStatus.FAILED, last_error=error[:2000])
        _failure_announce(item, error=error, now=now)
        return DeliveryOutcome("failed", error=error)
    delay = backoff_s(item.attempts)
    _finish(item, status=OutboxStatus.RETRYING, next_attempt_at=now + timedelta(seconds=delay), last_error=error[:2000])
    return DeliveryOutcome("retry", retry_in=delay, error=error)


def outbox_due(*, now: datetime | None = None) -> dict[str, int]:
    """Re-enqueue due retries and pending rows whose task was lost; take back sends a dead worker left."""
    if sandbox.active():
        return {"retries": 0, "lost": 0, "taken_back": 0}
    now = now or timezone.now()
    stale_sending = now - timedelta(seconds=int(conf.setting("SENDING_STALE_S")))
    stale_pending = now - timedelta(seconds=int(conf.setting("PENDING_STALE_S")))
    with transaction.atomic():
        taken_back = list(OutboxItem.objects.select_for_update(skip_locked=True)
                          .filter(status=OutboxStatus.SENDING, last_attempt_at__lte=stale_sending).values_list("pk", flat=True))
        OutboxItem.objects.filter(pk__in=taken_back).update(
            status=OutboxStatus.RETRYING, next_attempt_at=now, last_error="the worker sending it was lost; sending again")
        due = list(OutboxItem.objects.filter(status=OutboxStatus.RETRYING, next_attempt_at__lte=now).values_list("pk", flat=True))
        lost = list(OutboxItem.objects.filter(status=OutboxStatus.PENDING, next_attempt_at__lte=stale_pending)
                    .values_list("pk", flat=True))
        # Fresh stamps: while no worker takes them, each row is enqueued again once per PENDING_STALE_S, not every minute.
        OutboxItem.objects.filter(pk__in=due).update(next_attempt_at=now + (now - stale_pending))
        OutboxItem.objects.filter(pk__in=lost).update(next_attempt_at=now)
        _enqueue(sorted({*due, *lost}))
    return {"retries": len(due), "lost": len(lost), "taken_back": len(taken_back)}


def outbox_retry(*, team: Team, by: Any, item_ids: Iterable[int], now: datetime | None = None) -> int:
    """Send the team's failed rows again (an admin fixed the cause); returns how many were queued."""
    _admin_only(team=team, by=by)
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(OutboxItem.objects.select_for_update().filter(
            pk__in=list(item_ids), destination__team=team.group, status=OutboxStatus.FAILED).values_list("pk", flat=True))
        OutboxItem.objects.filter(pk__in=ids).update(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now)
        _enqueue(ids)
    return len(ids)
