"""Changing a team's policy: every change is a new version, and TOM's permissions follow at once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Max
from rest_framework.exceptions import ValidationError

from .. import clock
from ..documents import PolicyDocument, document_validate
from ..models import PolicyDecision, PolicyVersion, Team
from ..selectors import team_is_admin
from .audit import decision_record
from .errors import PolicyForbidden, PolicyInvalid
from .ownership import policy_apply


def policy_merge(*, current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A partial change applied to a document: top-level parts replace, sharing merges per kind."""
    merged = {**current, **{k: v for k, v in changes.items() if k != "sharing"}}
    if "sharing" in changes:
        merged["sharing"] = {**current.get("sharing", {}), **(changes["sharing"] or {})}
    return merged


def policy_update(*, team: Team, by: Any, document: dict[str, Any] | PolicyDocument, comment: str = "",
                  now: datetime | None = None) -> PolicyVersion:
    """Make ``document`` the team's policy as a new version. Only the team's admins may.

    The permissions TOM reads are re-projected in the same transaction, so data the new
    version withdraws is hidden before the call returns. Raises :class:`PolicyForbidden`
    or :class:`PolicyInvalid` (with the validation errors) and then changes nothing.
    """
    from ..hooks import notify

    now = now or clock.now()
    if not team_is_admin(user=by, team=team):
        raise PolicyForbidden("only the team's admins may change its policy")
    if isinstance(document, PolicyDocument):
        document = document.to_json()
    try:
        validated = document_validate(data=document, team=team)
    except ValidationError as exc:
        raise PolicyInvalid(str(exc.detail)) from exc
    with transaction.atomic():
        Team.objects.select_for_update().get(pk=team.pk)  # version numbers are handed out one at a time
        number = (team.policy_versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = PolicyVersion.objects.create(team=team, number=number, document=validated.to_json(), created_by=by,
                                               created_at=now, comment=comment[:300])
        sync = policy_apply(team=team.group, now=now)
        decision_record(action=PolicyDecision.Action.POLICY, decision="changed", team=team.group, policy_version_id=version.pk,
                        user=by, obj=version, reason=comment or f"version {number}",
                        detail={"released": sync.released, "target_grants_added": sync.target_grants_added,
                                "target_grants_removed": sync.target_grants_removed}, now=now)
        notify("policy.changed", [team.group], {"team_id": team.group_id, "version": number, "by": by.get_username()}, now=now)
    return version
