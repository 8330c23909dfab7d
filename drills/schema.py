"""A drill's PostgreSQL schema: made from the real one's tables, seeded with the team's set-up, dropped whole.

:func:`schema_create` copies the definition of every table of the real schema
(``CREATE TABLE ... (LIKE ... INCLUDING ALL)``: columns, defaults, identity columns, checks
and indexes; no foreign keys, so the seeded rows need not bring their whole graph) and then
copies the rows a rehearsal needs, and only those:

- who: the team's group and members, the audience groups, content types and permissions;
- the team's policy (every version), roles, Slack set-up and members' notification preferences;
- the team's filters (with versions), watch regions (with cells), trigger rules and request defaults;
- the network: every site, the **simulated** facilities only (a real facility does not exist
  in a drill) and their instruments.

Nothing else: no targets, no candidates, no other team, no data-sharing destination. Each
copied identity sequence starts above the real table's ids, so a drill's ids never repeat a
real one in a message. :func:`schema_drop` removes everything the drill made, in one statement.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import Model, Q, QuerySet

from tomsite.sandbox import SCHEMA_RE


def _quoted(name: str) -> str:
    return connection.ops.quote_name(name)


def _seed_querysets(*, team_id: int) -> list[QuerySet[Model]]:
    """The real rows a drill of team ``team_id`` starts from (see module doc), parents first."""
    from django.contrib.auth.models import Group, Permission, User
    from django.contrib.contenttypes.models import ContentType

    from candidates.models import (
        Broker,
        StreamFilter,
        StreamFilterVersion,
        TeamRequestDefaults,
        TriggerRule,
        WatchRegion,
        WatchRegionCell,
    )
    from notifications.models import Preference, TeamSlack
    from observatories.models import Facility, Instrument, Site
    from policies.models import AudienceGroup, PolicyVersion, Team, TeamRole

    members = User.objects.filter(groups=team_id)
    audience_ids = AudienceGroup.objects.values("group_id")
    groups = Group.objects.filter(Q(pk=team_id) | Q(pk__in=audience_ids))
    through_groups = User.groups.through.objects.filter(group_id=team_id)
    group_perms = Group.permissions.through.objects.filter(group_id=team_id)
    filters = StreamFilter.objects.filter(team_id=team_id)
    regions = WatchRegion.objects.filter(team_id=team_id)
    facilities = Facility.objects.filter(simulated=True)
    return [
        ContentType.objects.all(), Permission.objects.all(), members, groups, through_groups, group_perms,
        Team.objects.filter(group_id=team_id), TeamRole.objects.filter(team__group_id=team_id),
        PolicyVersion.objects.filter(team__group_id=team_id), AudienceGroup.objects.all(),
        Preference.objects.filter(user__in=members), TeamSlack.objects.filter(team_id=team_id),
        Broker.objects.all(), filters, StreamFilterVersion.objects.filter(filter__in=filters), regions,
        WatchRegionCell.objects.filter(region__in=regions), TriggerRule.objects.filter(team_id=team_id),
        TeamRequestDefaults.objects.filter(team_id=team_id),
        Site.objects.all(), facilities, Instrument.objects.filter(facility__in=facilities),
    ]


def _real_tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1")
        return [row[0] for row in cursor.fetchall()]


def schema_create(*, schema: str, team_id: int) -> dict[str, int]:
    """Make ``schema`` from the real tables and seed it for team ``team_id``; returns rows copied per table.

    Runs with the real schema on the search path (outside any drill). Atomic: a failure leaves no schema.
    """
    if not SCHEMA_RE.match(schema):
        raise ValueError(f"not a drill schema: {schema!r}")
    copied: dict[str, int] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {_quoted(schema)}")
        for table in _real_tables():
            cursor.execute(f"CREATE TABLE {_quoted(schema)}.{_quoted(table)} (LIKE {_quoted(table)} INCLUDING ALL)")
        for queryset in _seed_querysets(team_id=team_id):
            model = queryset.model
            table = model._meta.db_table
            ids_sql, params = queryset.values("pk").query.sql_with_params()
            cursor.execute(
                f"INSERT INTO {_quoted(schema)}.{_quoted(table)} SELECT * FROM {_quoted(table)} "  # noqa: S608 - model tables
                f"WHERE {_quoted(str(model._meta.pk.column))} IN ({ids_sql})",
                params,
            )
            copied[table] = copied.get(table, 0) + cursor.rowcount
        # Identity sequences of the copies start above the real ids.
        cursor.execute(
            """
            SELECT c.table_name, c.column_name FROM information_schema.columns c
            WHERE c.table_schema = %s AND c.is_identity = 'YES'
            """,
            [schema],
        )
        for table, column in cursor.fetchall():
            real_max = f"SELECT coalesce(max({_quoted(column)}), 0) FROM {_quoted(table)}"  # noqa: S608 - catalogue names
            copy_max = f"SELECT coalesce(max({_quoted(column)}), 0) FROM {_quoted(schema)}.{_quoted(table)}"  # noqa: S608
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, %s), greatest(({real_max}), ({copy_max})) + 1, false)",
                [f"{_quoted(schema)}.{_quoted(table)}", column],
            )
    return copied


def schema_drop(*, schema: str) -> None:
    """Drop the drill's schema and everything in it (nothing if it is gone already)."""
    if not SCHEMA_RE.match(schema):
        raise ValueError(f"not a drill schema: {schema!r}")
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {_quoted(schema)} CASCADE")

