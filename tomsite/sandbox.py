"""Is this process running a drill? (see :mod:`drills`).

A drill rehearses a campaign in a PostgreSQL schema of its own, in accelerated time. While it
runs, :func:`active` is true in the process that runs it, and anything that would reach the
world outside Baton and its simulated network (a real facility, a data-sharing partner) must
refuse or do nothing. Notifications still go out, marked as a drill (:func:`label`).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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


def enter(box: Sandbox) -> Any:
    """Start running ``box`` in this context; returns the token for :func:`leave`."""
    return _current.set(box)


def leave(token: Any) -> None:
    _current.reset(token)
