"""Small helpers the test packages share: a free local port, waiting for another process's work, and
which API paths are TOM Toolkit's own."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

# TOM Toolkit's own endpoints are not Baton's to fix: fuzzed, several answer 500
# (e.g. malformed filters reach the ORM). Everything Baton adds is tested.
TOM_OWN_PATHS = (
    r"^/api/(targets|targetextra|targetlist|targetname|observations|dataproducts|reduceddatums|groups|token-auth)/"
    r"|^/targets/"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "the condition") -> Any:
    """Poll ``condition`` until it is truthy (for work done by another process); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
