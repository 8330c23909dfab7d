"""Signal receivers (connected in ``PoliciesConfig.ready``): audience groups and data clean-up."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group

from .models import Team


def user_saved(sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    """A new or (de)activated user joins or leaves the audience groups (a login's last_login is skipped)."""
    from .services.teams import audience_members_sync

    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    audience_members_sync(user_ids=[instance.pk])


def groups_changed(sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: set[int] | None, **kwargs: Any) -> None:
    """Someone joined or left a team's group (by Baton, TOM or the admin): keep the network group in step."""
    from .services.teams import audience_members_sync

    if action not in ("post_add", "post_remove", "post_clear"):
        return
    team_groups = set(Team.objects.values_list("group_id", flat=True))
    if isinstance(instance, Group):  # group.user_set.add(...): pk_set holds users
        if instance.pk not in team_groups:
            return  # the audience groups themselves, or a group that is not a team
        audience_members_sync(user_ids=pk_set if pk_set is not None else None)
        return
    if pk_set is not None and not (pk_set & team_groups):
        return
    audience_members_sync(user_ids=[instance.pk])


def datum_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A datum or data product was deleted: forget who owned it and the permissions left on its id."""
    from .services.ownership import data_forget

    data_forget(instance=instance)
