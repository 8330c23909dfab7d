"""Sending outbox rows, and the periodic pump that releases, flushes and re-drives them.

:func:`notification_deliver` sends one row: it claims the row under a lock
(``pending``/``retrying`` -> ``sending``, one attempt more), commits, sends
outside any transaction, and records the outcome: ``sent``; ``retrying`` with
the next attempt after an exponential backoff (a transient failure: the server
is down, busy or rate limiting); ``failed`` (a permanent failure, or out of
attempts) with the error, visible to the person and to staff. A row in any
other state is left alone, so a doubled or late task changes nothing.

:func:`outbox_due` (the ``notifications.outbox_due`` beat task, every minute)
releases held rows whose quiet hours ended, sends digests that are due (unless
their person is in quiet hours), re-enqueues retries that are due and rows whose
task was lost (each at most once per ``PENDING_STALE_S`` while no worker takes
them), and takes back rows a dead worker left ``sending``.

Delivery is at least once: a worker that dies between the send and the record
sends again; emails carry a stable Message-ID so such a repeat is recognisable.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from tomsite.outbox import DeliveryOutcome, exponential_backoff

from .. import conf
from ..channels import PermanentDeliveryError, TransientDeliveryError, channel_get
from ..models import SENDABLE, DigestKind, Notification, Status
from ..selectors import preferences_for, quiet_until
from .notify import open_digest_for

logger = logging.getLogger(__name__)


def backoff_s(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: RETRY_BACKOFF_S doubling per attempt, capped."""
    return exponential_backoff(attempts, base_s=float(conf.setting("RETRY_BACKOFF_S")),
                               cap_s=float(conf.setting("RETRY_BACKOFF_MAX_S")))


def _enqueue(ids: Iterable[int]) -> None:
    from ..tasks import notification_deliver_task

    for pk in ids:
        notification_deliver_task.delay_on_commit(pk)  # type: ignore[attr-defined]  # celery-types predates Celery 5.4


def notification_deliver(*, notification_id: int, now: datetime | None = None) -> DeliveryOutcome:
    """Send one outbox row (see the module docstring); idempotent."""
    now = now or timezone.now()
    with transaction.atomic():
        row = (Notification.objects.select_for_update(skip_locked=True, of=("self",)).select_related("team")
               .filter(pk=notification_id, status__in=SENDABLE).first())
        if row is None:
            return DeliveryOutcome("skipped")
        if not row.is_digest and not row.urgent:
            burst = Notification.objects.filter(channel=row.channel, address=row.address, digest_kind=DigestKind.BURST,
                                                status=Status.OPEN).first()
            if burst is not None and row.attempts == 0:
                # A burst began after this row was made: it goes with the burst's digest.
                Notification.objects.filter(pk=row.pk).update(status=Status.DIGESTED, digest=burst, next_attempt_at=None)
                return DeliveryOutcome("folded")
        try:
            channel = channel_get(row.channel)
        except KeyError:
            error = f"channel {row.channel!r} is no longer configured"
            Notification.objects.filter(pk=row.pk).update(status=Status.FAILED, last_error=error, last_attempt_at=now)
            return DeliveryOutcome("failed", error=error)
        row.status, row.attempts, row.last_attempt_at, row.next_attempt_at = Status.SENDING, row.attempts + 1, now, None
        row.save(update_fields=["status", "attempts", "last_attempt_at", "next_attempt_at"])
    try:
        if row.is_digest and not row.items.exists():
            provider_id = "empty digest: nothing to send"
        else:
            provider_id = channel.deliver(notification=row)
    except TransientDeliveryError as exc:
        return _failed_for_now(row, error=str(exc), retry_after=exc.retry_after, now=now)
    except PermanentDeliveryError as exc:
        _finish(row, status=Status.FAILED, last_error=str(exc)[:2000])
        return DeliveryOutcome("failed", error=str(exc))
    except Exception as exc:
        # A bug or an unexpected library error: keep the row, retry it like a transient failure, say so loudly.
        logger.exception("notification %s: unexpected error on %s", row.pk, row.channel)
        return _failed_for_now(row, error=f"unexpected error: {exc!r}", retry_after=None, now=now)
    _finish(row, status=Status.SENT, sent_at=now, provider_id=provider_id[:200], last_error="")
    return DeliveryOutcome("sent")


def _finish(row: Notification, **values: object) -> None:
    # Only if still ours: a reconciler may have taken back a row it thought a dead worker left.
    Notification.objects.filter(pk=row.pk, status=Status.SENDING).update(**values)


def _failed_for_now(row: Notification, *, error: str, retry_after: float | None, now: datetime) -> DeliveryOutcome:
    if row.attempts >= int(conf.setting("MAX_ATTEMPTS")):
        error = f"gave up after {row.attempts} attempts: {error}"
        _finish(row, status=Status.FAILED, last_error=error[:2000])
        return DeliveryOutcome("failed", error=error)
    delay = max(backoff_s(row.attempts), min(float(retry_after or 0), float(conf.setting("RETRY_BACKOFF_MAX_S"))))
    _finish(row, status=Status.RETRYING, next_attempt_at=now + timedelta(seconds=delay), last_error=error[:2000])
    return DeliveryOutcome("retry", retry_in=delay, error=error)


def notifications_retry(*, notification_ids: Iterable[int], now: datetime | None = None) -> int:
    """Send failed rows again (an operator fixed the cause); returns how many were re-queued."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(Notification.objects.select_for_update().filter(pk__in=list(notification_ids), status=Status.FAILED)
                   .exclude(address__startswith="user:", channel__in=["email", "slack"]).values_list("pk", flat=True))
        Notification.objects.filter(pk__in=ids).update(status=Status.PENDING, attempts=0, next_attempt_at=now)
        _enqueue(ids)
    return len(ids)


# --- the pump -----------------------------------------------------------------------------------


def outbox_due(*, now: datetime | None = None) -> dict[str, int]:
    """Release held rows, flush due digests, re-drive lost and due retries (see the module docstring)."""
    now = now or timezone.now()
    return {
        "released": held_release_due(now=now),
        "digests": digests_flush_due(now=now),
        **retries_redrive_due(now=now),
    }


def held_release_due(*, now: datetime) -> int:
    """Held rows whose quiet hours are over go out; a pile of them to one address goes as one digest."""
    limit = int(conf.setting("RATE_LIMIT_MESSAGES"))
    released = 0
    with transaction.atomic():
        rows = list(Notification.objects.select_for_update(skip_locked=True)
                    .filter(status=Status.HELD, not_before__lte=now).order_by("created_at", "pk"))
        by_address: dict[tuple[str, str], list[Notification]] = defaultdict(list)
        for row in rows:
            by_address[(row.channel, row.address)].append(row)
        to_send: list[int] = []
        for group in by_address.values():
            if len(group) > limit:
                digest = open_digest_for(row=group[0], kind=DigestKind.QUIET, due=now, now=now)
                Notification.objects.filter(pk__in=[r.pk for r in group]).update(status=Status.DIGESTED, digest=digest)
            else:
                Notification.objects.filter(pk__in=[r.pk for r in group]).update(status=Status.PENDING, next_attempt_at=now)
                to_send += [r.pk for r in group]
            released += len(group)
        _enqueue(to_send)
    return released


def digests_flush_due(*, now: datetime) -> int:
    """Due digests go out, unless their person is in quiet hours (then at the end of them)."""
    flushed = 0
    with transaction.atomic():
        digests = list(Notification.objects.select_for_update(skip_locked=True)
                       .filter(status=Status.OPEN, not_before__lte=now).order_by("not_before", "pk"))
        preferences = preferences_for(user_ids=sorted({d.recipient_id for d in digests}))
        for digest in digests:
            ends = quiet_until(preference=preferences[digest.recipient_id], now=now) if digest.personal else None
            if ends is not None:
                Notification.objects.filter(pk=digest.pk).update(not_before=ends)
                continue
            Notification.objects.filter(pk=digest.pk).update(status=Status.PENDING, next_attempt_at=now)
            _enqueue([digest.pk])
            flushed += 1
    return flushed


def retries_redrive_due(*, now: datetime) -> dict[str, int]:
    """Re-enqueue retries that are due and pending rows whose task was lost; take back stale sends."""
    stale_sending = now - timedelta(seconds=int(conf.setting("SENDING_STALE_S")))
    stale_pending = now - timedelta(seconds=int(conf.setting("PENDING_STALE_S")))
    with transaction.atomic():
        taken_back = list(Notification.objects.select_for_update(skip_locked=True)
                          .filter(status=Status.SENDING, last_attempt_at__lte=stale_sending).values_list("pk", flat=True))
        Notification.objects.filter(pk__in=taken_back).update(
            status=Status.RETRYING, next_attempt_at=now, last_error="the worker sending it was lost; sending again")
        due = list(Notification.objects.filter(status=Status.RETRYING, next_attempt_at__lte=now).values_list("pk", flat=True))
        lost = list(Notification.objects.filter(status=Status.PENDING, next_attempt_at__lte=stale_pending)
                    .values_list("pk", flat=True))
        # Fresh stamps: while a worker is away, each row is enqueued again once per PENDING_STALE_S, not every minute.
        Notification.objects.filter(pk__in=due).update(next_attempt_at=now + (now - stale_pending))
        Notification.objects.filter(pk__in=lost).update(next_attempt_at=now)
        _enqueue(sorted({*due, *lost}))
    return {"retries": len(due), "lost": len(lost), "taken_back": len(taken_back)}


def notification_mark_read(*, user: object, notification_id: int, now: datetime | None = None) -> Notification | None:
    """Mark one of the person's notifications read (idempotent); None if it is not theirs."""
    now = now or timezone.now()
    row = Notification.objects.filter(pk=notification_id, recipient_id=getattr(user, "pk", None)).exclude(
        status=Status.SUPPRESSED).first()
    if row is None:
        return None
    if row.read_at is None:
        Notification.objects.filter(pk=row.pk, read_at__isnull=True).update(read_at=now)
        row.refresh_from_db(fields=["read_at"])
    return row


def notifications_mark_all_read(*, user: object, now: datetime | None = None) -> int:
    """Mark every unread inbox notification of the person read; returns how many."""
    now = now or timezone.now()
    return Notification.objects.filter(recipient_id=getattr(user, "pk", None), channel="inbox", read_at__isnull=True,
                                       status=Status.SENT).update(read_at=now)

