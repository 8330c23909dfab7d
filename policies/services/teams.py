"""Teams and their members: create a team, set and remove members' roles, keep the audience groups."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.text import slugify
from guardian.conf import settings as guardian_settings

from .. import clock
from ..documents import PolicyDocument, document_validate
from ..models import Audience, AudienceGroup, PolicyDecision, PolicyVersion, Role, Team, TeamRole
from ..selectors import audience_group, team_role_of
from .audit import decision_record
from .errors import PolicyForbidden, PolicyInvalid


def team_create(
    *, name: str, slug: str = "", description: str = "", admins: Iterable[Any] = (), by: Any = None,
    document: dict[str, Any] | None = None, now: datetime | None = None,
) -> Team:
    """Create a team: its group, version 1 of its policy (``document`` or the closed default) and its admins."""
    now = now or clock.now()
    name = (name or "").strip()
    slug = slug or slugify(name)
    if not name or not slug:
        raise PolicyInvalid("a team needs a name (and a slug made of letters, digits and dashes)")
    if Group.objects.filter(name=name).exists():
        raise PolicyInvalid(f"a group named {name!r} exists already")
    if Team.objects.filter(slug=slug).exists():
        raise PolicyInvalid(f"a team with slug {slug!r} exists already")
    if name in {"Public", "Baton network (all teams)"}:
        raise PolicyInvalid(f"{name!r} is reserved for an audience group")
    if by is not None and not (by.is_superuser or by.is_staff):
        raise PolicyForbidden("only staff may create teams")
    admins = list(admins)
    if not admins:
        raise PolicyInvalid("a team needs at least one admin")
    with transaction.atomic():
        group = Group.objects.create(name=name)
        team = Team.objects.create(group=group, slug=slug, description=description, created_at=now)
        doc = document_validate(data=document, team=team) if document is not None else PolicyDocument()
        version = PolicyVersion.objects.create(team=team, number=1, document=doc.to_json(), created_by=by,
                                               created_at=now, comment="team created")
        for admin in admins:
            group.user_set.add(admin)
            TeamRole.objects.update_or_create(team=team, user=admin, defaults={"role": Role.ADMIN})
        audience_members_sync(user_ids=[a.pk for a in admins])
        decision_record(action=PolicyDecision.Action.POLICY, decision="created", team=group, policy_version_id=version.pk,
                        user=by, obj=version, reason="team created with policy version 1", now=now)
    return team


def _check_admin(*, by: Any, team: Team) -> None:
    if by is not None and getattr(by, "is_superuser", False):
        return  # site administrators may manage membership (never policy)
    if by is None or team_role_of(user=by, team=team) != Role.ADMIN:
        raise PolicyForbidden("only the team's admins may manage its members")


def _admins_left(*, team: Team, without: Any) -> int:
    return TeamRole.objects.filter(team=team, role=Role.ADMIN, user__groups=team.group, user__is_active=True).exclude(user=without).count()


def team_member_set(*, team: Team, user: Any, role: str, by: Any, now: datetime | None = None) -> TeamRole:
    """Add ``user`` to the team, or change their role. ``by`` must be an admin of the team."""
    if role not in Role.values:
        raise PolicyInvalid(f"unknown role {role!r}; roles are {', '.join(Role.values)}")
    _check_admin(by=by, team=team)
    if not user.is_active:
        raise PolicyInvalid(f"{user.get_username()} is not an active user")
    with transaction.atomic():
        Team.objects.select_for_update().get(pk=team.pk)  # one membership change of a team at a time
        current = team_role_of(user=user, team=team)
        if current == Role.ADMIN and role != Role.ADMIN and _admins_left(team=team, without=user) == 0:
            raise PolicyInvalid("a team must keep at least one admin")
        team.group.user_set.add(user)
        membership, _ = TeamRole.objects.update_or_create(team=team, user=user, defaults={"role": role})
        audience_members_sync(user_ids=[user.pk])
        decision_record(action=PolicyDecision.Action.MEMBERSHIP, decision="set", team=team.group, user=by, obj=membership,
                        reason=f"{user.get_username()}: {current or 'not a member'} -> {role}", now=now)
    return membership


def team_member_remove(*, team: Team, user: Any, by: Any, now: datetime | None = None) -> None:
    """Remove ``user`` from the team (an admin removes anyone; a member may leave)."""
    if by is None or by.pk != user.pk:
        _check_admin(by=by, team=team)
    with transaction.atomic():
        Team.objects.select_for_update().get(pk=team.pk)
        current = team_role_of(user=user, team=team)
        if current is None:
            raise PolicyInvalid(f"{user.get_username()} is not a member of {team}")
        if current == Role.ADMIN and _admins_left(team=team, without=user) == 0:
            raise PolicyInvalid("a team must keep at least one admin")
        team.group.user_set.remove(user)
        TeamRole.objects.filter(team=team, user=user).delete()
        audience_members_sync(user_ids=[user.pk])
        decision_record(action=PolicyDecision.Action.MEMBERSHIP, decision="removed", team=team.group, user=by,
                        object_type="auth.user", object_id=user.pk, reason=f"{user.get_username()} left the team", now=now)


def audience_members_sync(*, user_ids: Iterable[int] | None = None) -> dict[str, int]:
    """Keep the audience groups' members: the network is every team member, the public every active user.

    Runs on membership changes (signals) for the users involved, and for everyone in the
    periodic reconciler. Returns how many memberships were added and removed.
    """
    user_model = get_user_model()
    network = audience_group(audience=Audience.NETWORK)
    public = audience_group(audience=Audience.PUBLIC)
    users = user_model.objects.all() if user_ids is None else user_model.objects.filter(pk__in=list(user_ids))
    # django-guardian's stand-in for anonymous visitors has an account row but is nobody.
    users = users.exclude(**{user_model.USERNAME_FIELD: guardian_settings.ANONYMOUS_USER_NAME})
    team_group_ids = list(Team.objects.values_list("group_id", flat=True))
    want_network = set(users.filter(is_active=True, groups__in=team_group_ids).values_list("pk", flat=True))
    want_public = set(users.filter(is_active=True).values_list("pk", flat=True))
    changed = {"added": 0, "removed": 0}
    for group, wanted in ((network, want_network), (public, want_public)):
        has = set(group.user_set.filter(pk__in=users.values("pk")).values_list("pk", flat=True))
        if add := wanted - has:
            group.user_set.add(*add)
            changed["added"] += len(add)
        if remove := has - wanted:
            group.user_set.remove(*remove)
            changed["removed"] += len(remove)
    return changed


def audience_group_ids() -> set[int]:
    return set(AudienceGroup.objects.values_list("group_id", flat=True))
