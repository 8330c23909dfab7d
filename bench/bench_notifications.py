"""Notifications under a burst: the outbox's batch planning and burst digests against one message per alert.

Builds, in a throwaway database ``<name>_notifbench`` (created, migrated, dropped), a team
of ``--members`` people and ``--alerts`` targets the team may see, starts a real SMTP
server (aiosmtpd) on a free loopback port, and announces one ``candidate.new`` per target:

* **baseline** (one message per alert): ``notify_event`` once per alert, each in its own
  transaction, with the rate limit off; then every email sent over SMTP, one by one, as
  the worker would (``notification_deliver``);
* **per-call**: the same calls with the rate limit on (what a producer calling the hook
  per alert gets): the burst still folds into one digest per person;
* **batch**: ``notify_events`` of the whole burst in one transaction (what the candidates
  adapter does per ingest batch), rate limit on; then the due digests flushed and sent.

Delivery tasks are not enqueued (the bench drives ``notification_deliver`` itself), so
planning and sending are timed apart.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/baton REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/bench_notifications.py [--alerts 500] [--members 4]
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tomsite.settings")
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(40))
for knob in ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
    os.environ.setdefault(knob, "0")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import logging  # noqa: E402

from aiosmtpd.controller import Controller  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group, Permission  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.db import connection  # noqa: E402
from tqdm import tqdm  # noqa: E402

NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
logging.getLogger("mail.log").setLevel(logging.WARNING)


class Sink:
    """Counts what a real SMTP server receives."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build(*, n_alerts: int, n_members: int) -> tuple[Group, list[dict[str, Any]]]:
    from guardian.models import GroupObjectPermission
    from tom_targets.models import Target

    team = Group.objects.create(name="Bench team")
    users = get_user_model()
    for i in range(n_members):
        team.user_set.add(users.objects.create_user(username=f"m{i}", email=f"m{i}@example.org", password=None))
    targets = Target.objects.bulk_create([Target(name=f"AT bench {i}", type="SIDEREAL", ra=(i * 0.37) % 360, dec=-30.0,
                                                 epoch=2000.0) for i in range(n_alerts)])
    view = Permission.objects.get_by_natural_key("view_target", "tom_targets", "basetarget")
    content_type = ContentType.objects.get_for_model(Target)
    GroupObjectPermission.objects.bulk_create([GroupObjectPermission(group=team, permission=view, content_type=content_type,
                                                                     object_pk=str(t.pk)) for t in targets])
    payloads = [{"candidate_id": t.pk, "target_id": t.pk, "target_name": t.name, "broker": "bench", "band": "r",
                 "magnitude": 17.0 + (i % 30) * 0.1, "match": "filter", "match_name": "bright"}
                for i, t in enumerate(targets)]
    return team, payloads


def reset() -> None:
    from notifications.models import Notification

    Notification.objects.all().delete()


def send_pending(now: datetime, desc: str) -> tuple[int, float]:
    from notifications.models import Notification, Status
    from notifications.services import notification_deliver

    ids = list(Notification.objects.filter(status=Status.PENDING).order_by("pk").values_list("pk", flat=True))
    start = time.perf_counter()
    for pk in tqdm(ids, desc=desc, unit="msg", leave=False):
        notification_deliver(notification_id=pk, now=now)
    return len(ids), time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=500)
    parser.add_argument("--members", type=int, default=4)
    args = parser.parse_args()

    db = settings.DATABASES["default"]
    db.setdefault("TEST", {})["NAME"] = f"{db['NAME']}_notifbench"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS, settings.EMAIL_USE_SSL = "127.0.0.1", port, False, False
    # The bench drives delivery itself: no task goes to the broker.
    from notifications.tasks import notification_deliver_task

    notification_deliver_task.delay_on_commit = lambda *a, **k: None  # type: ignore[attr-defined]
    from notifications.models import DigestKind, Notification
    from notifications.services import EventSpec, notify_event, notify_events, outbox_due

    base = dict(settings.BATON_NOTIFICATIONS)
    try:
        team, payloads = build(n_alerts=args.alerts, n_members=args.members)
        n, r = len(payloads), args.members
        print(f"{n} alerts x {r} members (email + inbox each): {2 * n * r} notifications", flush=True)

        # Baseline: one call per alert, no rate limit, then one email per notification.
        settings.BATON_NOTIFICATIONS = {**base, "RATE_LIMIT_MESSAGES": 10**9}
        start = time.perf_counter()
        for p in tqdm(payloads, desc="baseline plan", unit="alert", leave=False):
            notify_event(event="candidate.new", teams=[team], payload=p, dedupe_key=f"c{p['candidate_id']}", now=NOW)
        base_plan = time.perf_counter() - start
        sink.count = 0
        base_sent, base_send = send_pending(NOW, "baseline send")
        base_received = sink.count
        reset()

        # Per call with the rate limit on.
        settings.BATON_NOTIFICATIONS = base
        start = time.perf_counter()
        for p in tqdm(payloads, desc="per-call plan", unit="alert", leave=False):
            notify_event(event="candidate.new", teams=[team], payload=p, dedupe_key=f"c{p['candidate_id']}", now=NOW)
        call_plan = time.perf_counter() - start
        call_digests = Notification.objects.filter(digest_kind=DigestKind.BURST).count()
        call_early, _ = send_pending(NOW, "per-call early sends")
        reset()

        # Batch, rate limit on; then the digests when due.
        start = time.perf_counter()
        notify_events(events=[EventSpec(event="candidate.new", payload=p, teams=(team,), dedupe_key=f"c{p['candidate_id']}")
                              for p in payloads], now=NOW)
        batch_plan = time.perf_counter() - start
        sink.count = 0
        outbox_due(now=NOW + timedelta(seconds=int(base["BURST_DIGEST_DELAY_S"])))
        batch_sent, batch_send = send_pending(NOW + timedelta(minutes=5), "batch send")
        batch_received = sink.count
    finally:
        settings.BATON_NOTIFICATIONS = base
        controller.stop()
        connection.creation.destroy_test_db(db["NAME"], verbosity=0)

    rows = [
        ("baseline: per alert, no rate limit", base_plan, base_sent, base_send, base_received),
        ("per alert, rate limit on", call_plan, call_early, None, None),
        ("batch (candidates adapter), rate limit on", batch_plan, batch_sent, batch_send, batch_received),
    ]
    print("\n| path | plan s | alerts/s planned | emails sent | send s | emails received |\n| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, plan, sent, send, received in rows:
        print(f"| {name} | {plan:.2f} | {n / plan:,.0f} | {sent} | {'' if send is None else f'{send:.2f}'} | "
              f"{'' if received is None else received} |")
    print(f"\nper-call path: {call_digests} burst digests opened, {call_early} emails went out before the burst was seen")
    print(f"batch planning {base_plan / batch_plan:.1f}x faster than the baseline; "
          f"{base_received} emails -> {batch_received} ({base_received / max(batch_received, 1):.0f}x fewer); "
          f"end to end {(base_plan + base_send) / (batch_plan + batch_send):.1f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
