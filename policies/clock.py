"""The policies' clock: ``timezone.now()``, unless a test has moved it.

Every service and door function takes ``now=``; when it is not given they read
this clock, so a test can move the time for a whole request (pages and API
included) instead of sleeping::

    with clock.moved(to=datetime(2026, 4, 1, tzinfo=UTC)):
        client.get("/api/data/photometry/?target=1")

The clock keeps running while moved (it is an offset), and only this process
sees it: the move never reaches another process such as a Celery worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.utils import timezone

_offset = timedelta(0)


def now() -> datetime:
    """The current time, UTC, as the policies see it."""
    return timezone.now() + _offset


@contextmanager
def moved(*, to: datetime | None = None, by: timedelta | None = None) -> Iterator[None]:
    """Move the clock to ``to`` (or ``by`` an amount) inside the block."""
    global _offset
    saved = _offset
    if to is not None:
        _offset = to - timezone.now()
    elif by is not None:
        _offset = saved + by
    try:
        yield
    finally:
        _offset = saved
