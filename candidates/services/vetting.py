"""Vetting: team members label candidates (real/bogus, a class, a free note).

One current label per (candidate, team, user), changed in place; the team's label of a candidate
is its members' most recently changed one (:mod:`candidates.ledger`). Labels feed the ledger,
the filters' and classifiers' efficiency and purity, and the team's training set.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from candidates.models import Candidate, CandidateLabel, Verdict

MAX_NOTE = 2000
MAX_CLASS = 64


class LabelInvalid(ValueError):
    """A label that cannot be recorded (nothing is written); the message names the field."""


class LabelRefused(PermissionError):
    """The user may not label for that team."""


def label_set(
    *, candidate: Candidate, team: Group, user: Any, verdict: str = "", label_class: str = "", note: str = "",
    now: datetime | None = None,
) -> tuple[CandidateLabel, bool]:
    """Record ``user``'s label of ``candidate`` for ``team``; returns (label, created).

    The user must be a member of the team (LabelRefused). ``verdict`` is ``real``, ``bogus`` or
    empty; at least one of verdict, class and note is required (LabelInvalid). A second label by
    the same user for the same team replaces the first.
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        raise LabelRefused("sign in to label candidates")
    if not user.groups.filter(pk=team.pk).exists():
        raise LabelRefused("you are not a member of that team")
    verdict = (verdict or "").strip().lower()
    if verdict not in ("", *Verdict.values):
        raise LabelInvalid(f"verdict: {verdict!r} is not one of real, bogus (or empty)")
    label_class = (label_class or "").strip()
    if len(label_class) > MAX_CLASS:
        raise LabelInvalid(f"label_class: at most {MAX_CLASS} characters")
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise LabelInvalid(f"note: at most {MAX_NOTE} characters")
    if not (verdict or label_class or note):
        raise LabelInvalid("verdict: give a verdict (real or bogus), a class or a note")
    now = now or timezone.now()
    with transaction.atomic():
        label, created = CandidateLabel.objects.select_for_update().get_or_create(
            candidate=candidate, team=team, user=user,
            defaults={"verdict": verdict, "label_class": label_class, "note": note, "created_at": now,
                      "updated_at": now},
        )
        if not created:
            label.verdict, label.label_class, label.note, label.updated_at = verdict, label_class, note, now
            label.save(update_fields=["verdict", "label_class", "note", "updated_at"])
    return label, created
