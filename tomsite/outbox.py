"""What every Baton outbox shares (notifications, sharing): a delivery's outcome and the retry backoff."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one delivery did: ``sent``, ``retry`` (in ``retry_in`` s), ``failed``, or an outbox's own
    ``skipped``/``folded``/``withheld``; ``error`` says why it did not go."""

    status: str
    retry_in: float | None = None
    error: str = ""


def exponential_backoff(attempts: int, *, base_s: float, cap_s: float) -> float:
    """Seconds before attempt ``attempts + 1``: ``base_s`` doubling per attempt made, capped at ``cap_s``."""
    return min(cap_s, base_s * 2 ** max(0, attempts - 1))
