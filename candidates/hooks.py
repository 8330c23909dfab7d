"""Where candidates meet the rest of Baton: observing requests from trigger firings, match notices.

Each hook reads one dotted path from settings; an empty path gives the neutral behaviour
documented on the function, so ingest and triggers work before (and without) the scheduling
and notification apps.

* ``BATON_TRIGGER_REQUEST_FACTORY``: ``factory(*, firing) -> request`` makes the observing
  request of a :class:`~candidates.models.TriggerFiring` (its ``rule.team``, ``target``,
  ``candidate``, ``priority``, ``cadence`` and ``request_params``: the team's defaults
  overridden by the rule's, plus ``priority``/``cadence_hours`` for microlensing) and returns
  it (its ``pk`` is recorded). It runs inside the transaction that marks the firing, under a
  row lock, so a request made in the same database is made exactly once.
* ``BATON_CANDIDATES_MATCH_HOOK``: ``hook(*, match_ids)`` is told about new matches (for
  notification rules), from a Celery task after the matches commit.
* ``BATON_CANDIDATES_FIRED_HOOK``: ``hook(*, event, request, **payload)`` (the scheduler's notify
  hook signature, e.g. ``notifications.adapters.scheduling_notify``) is told ``trigger.fired``
  with the request a firing made, after the firing commits.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string


def _path(name: str) -> str:
    return str(getattr(settings, name, "") or "")


def trigger_fired(*, firing: Any) -> Any:
    """Make the firing's observing request, or record the firing when no factory is configured.

    Sets ``firing.status`` (``requested`` or ``recorded``) and ``firing.request_ref``; the
    caller saves. Returns the request the factory made (None without a factory). A factory's
    exception propagates (the caller records it as ``failed``).
    """
    from candidates.models import FiringStatus

    path = _path("BATON_TRIGGER_REQUEST_FACTORY")
    if not path:
        firing.status = FiringStatus.RECORDED
        return None
    request = import_string(path)(firing=firing)
    firing.request_ref = str(getattr(request, "pk", request) if request is not None else "")[:100]
    firing.status = FiringStatus.REQUESTED
    return request


def trigger_announce(*, firing: Any, request: Any) -> None:
    """Tell ``BATON_CANDIDATES_FIRED_HOOK`` that ``firing``'s rule made ``request`` (neutral: nothing).

    The event is ``trigger.fired``, to the request's team (the rule's); the payload names the rule,
    the firing and the alert, so the notification's default dedupe key is once per firing.
    """
    path = _path("BATON_CANDIDATES_FIRED_HOOK")
    if not path or request is None:
        return
    candidate = firing.candidate
    import_string(path)(
        event="trigger.fired", request=request, firing_id=firing.pk, rule_id=firing.rule_id,
        rule_name=firing.rule.name, rule_kind=firing.rule.kind,
        alert_id=candidate.alert_id if candidate is not None else "",
        broker=candidate.broker if candidate is not None else "",
    )


def matches_recorded(*, match_ids: list[int]) -> None:
    """Announce new matches to ``BATON_CANDIDATES_MATCH_HOOK`` through a task (neutral: nothing)."""
    if not _path("BATON_CANDIDATES_MATCH_HOOK") or not match_ids:
        return
    from candidates.tasks import matches_notify_task

    matches_notify_task.delay(match_ids)


def matches_notify(*, match_ids: list[int]) -> None:
    """Call the configured match hook (from the Celery task)."""
    path = _path("BATON_CANDIDATES_MATCH_HOOK")
    if path:
        import_string(path)(match_ids=match_ids)
