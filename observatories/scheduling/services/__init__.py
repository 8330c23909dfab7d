"""The scheduler's services: lifecycle, planning, dispatch and reconciliation."""

from .dispatch import (
    dispatch_apply_remote,
    dispatch_cancel,
    dispatch_cancel_remote,
    dispatch_poll,
    dispatch_submit,
    request_cancel,
    requests_expire,
)
from .lifecycle import IllegalTransition, dispatch_transition, request_transition
from .planning import RequestInvalid, network_plan, request_submit
from .reconcile import cadence_advance, scheduling_reconcile

__all__ = [
    "IllegalTransition",
    "RequestInvalid",
    "cadence_advance",
    "dispatch_apply_remote",
    "dispatch_cancel",
    "dispatch_cancel_remote",
    "dispatch_poll",
    "dispatch_submit",
    "dispatch_transition",
    "network_plan",
    "request_cancel",
    "request_submit",
    "request_transition",
    "requests_expire",
    "scheduling_reconcile",
]
