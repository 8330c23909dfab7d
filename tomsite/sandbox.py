"""Is this process running a drill? (see :mod:`drills`).

A drill rehearses a campaign in a PostgreSQL schema of its own, in accelerated time. While it
runs, :func:`active` is true in the process that runs it, and anything that would reach the
world outside Baton and its simulated network (a real facility, a data-sharing partner) must
refuse or do nothing. Notifications still go out, marked as a drill (:func:`label`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.backends.signals import connection_created

SCHEMA_RE = re.compile(r"^drill_[0-9]{1,12}$")


@dataclass
class Sandbox:
    """The drill being run: its id, schema, name, simulated now and the faults active now."""

    drill_id: int
    schema: str
    name: str
    now: datetime | None = None
    faults: set[str] = field(default_factory=set)
    extra: dict[str, Any] = field(default_factory=dict)


_current: ContextVar[Sandbox | None] = ContextVar("baton_sandbox", default=None)


def current() -> Sandbox | None:
    """The drill this process is running, or None (the real world)."""
    return _current.get()


def active() -> bool:
    """Whether this process is running a drill."""
    return _current.get() is not None


def fault(name: str) -> bool:
    """Whether the running drill injects the fault ``name`` now (e.g. ``"slack_down"``)."""
    box = _current.get()
    return box is not None and name in box.faults


def label() -> str:
    """The prefix that marks a message as a drill ("" outside a drill)."""
    box = _current.get()
    return f"[DRILL {box.name}] " if box is not None else ""


def _search_path(schema: str | None) -> None:
    with connection.cursor() as cursor:
        if schema is None:
            cursor.execute("SET search_path TO DEFAULT")
        else:
            if not SCHEMA_RE.match(schema):
                raise ValueError(f"not a drill schema: {schema!r}")
            # The drill's schema only: a table it lacks is an error, never a silent read of real data.
            cursor.execute(f'SET search_path TO "{schema}"')


@contextmanager
def running(box: Sandbox) -> Iterator[Sandbox]:
    """Run the block inside ``box``: the database connection reads and writes the drill's schema.

    Call it outside any transaction (``SET search_path`` is session-wide and a rollback would undo it).
    """
    token = _current.set(box)
    try:
        _search_path(box.schema)
        yield box
    finally:
        try:
            _search_path(None)
        finally:
            _current.reset(token)


def schema_exists(schema: str) -> bool:
    if not SCHEMA_RE.match(schema):
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema])
        return cursor.fetchone() is not None


def _on_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    """A connection opened while a drill runs (e.g. after a dropped one) uses the drill's schema too."""
    box = _current.get()
    if box is not None and SCHEMA_RE.match(box.schema):
        with connection.cursor() as cursor:
            cursor.execute(f'SET search_path TO "{box.schema}"')


connection_created.connect(_on_connection, dispatch_uid="baton-sandbox-search-path")
