"""The selection-function ledger, read side: why each candidate was or was not followed, per team.

Ingest writes one :class:`~candidates.models.LedgerEntry` per candidate (each active filter's
first failing clause, the watch regions it fell in, against a snapshot of the active filter and
region versions). Everything later is joined here at read time: the trigger firing of the
candidate (:class:`~candidates.models.TriggerFiring`), its observing request's planner outcome
and state (``scheduling``), and the team's vetting label. A team's ledger covers every
candidate ingested in the period (the selection function is over all alerts), judged against
that team's filters, regions and rules; a personal ledger against the user's own filters and
regions (no rules: they belong to teams).

Each candidate gets exactly one final reason (:data:`REASONS`, a partition), so the counts per
reason add up to the candidates ingested in the period. Rows come in candidate-id order from a
server-side cursor (flat memory), for the CSV/Parquet exports and the keyset-paginated API.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from django.apps import apps
from django.db import connection, transaction

from candidates.filtering import predicate_text

# reason -> what it means. Ordered as a candidate moves down the pipeline.
REASONS: dict[str, str] = {
    "filtered_out": "passed none of the scope's filters and fell in none of its watch regions",
    "passed_not_triggered": "passed, but no trigger rule fired for it (no rule, or the rule declined)",
    "already_triggered": "passed; a rule had already fired for its target (rules fire once per target)",
    "trigger_pending": "a rule fired; its request is not made yet",
    "trigger_recorded": "a rule fired and was recorded (no request factory configured)",
    "trigger_refused": "a rule fired; the scheduler refused the request (invalid: see trigger_error)",
    "trigger_failed": "a rule fired; making the request failed (see trigger_error)",
    "over_allocation": "the request was refused or queued by the team's time allocation",
    "request_pending": "requested; not planned yet",
    "never_visible": "requested; the planner found it never visible in its window",
    "no_proposal": "requested; the team has no proposal at any facility that could observe it",
    "window_too_short": "requested; visible, but no chance long enough in the window",
    "outranked": "requested; visible, but the time went to higher-priority requests",
    "planned_pending": "requested and planned; not observed yet",
    "observed": "requested and observed (the request completed)",
    "not_observed": "requested and planned; expired, failed or cancelled without being observed",
}
REQUESTED_REASONS = frozenset(
    {"request_pending", "never_visible", "no_proposal", "window_too_short", "outranked", "planned_pending", "observed",
     "not_observed"}
)

COLUMNS: tuple[str, ...] = (
    "candidate_id", "broker", "alert_id", "object_id", "target_id", "target", "time", "ingested_at", "ra", "dec",
    "band", "mag", "mag_err", "top_classifier", "top_class", "top_score", "classifications", "filters",
    "filters_passed", "regions", "regions_inside", "trigger", "trigger_rule", "trigger_error", "request_id",
    "planner_outcome", "observation", "visits_completed", "label", "label_class", "label_note", "labelled_by",
    "labelled_at", "n_labels", "reason",
)  # fmt: skip
"""Columns of a ledger row. ``filters`` and ``regions`` are JSON lists (the scope's filters with
version, pass/fail and the first failing clause; its regions with version and inside/outside);
``classifications`` is the broker's list as JSON; ``trigger`` is ``fired``, ``pending``,
``refused``, ``failed``, ``already_triggered``, ``not_triggered`` or empty (filtered out);
``observation`` is the request's state; ``label*`` the team's current label."""

MAX_PAGE = 5000
_MEMO_LIMIT = 50_000


class LedgerInvalid(ValueError):
    """A bad ledger query (scope, period, page); the message names the parameter."""


@dataclass(frozen=True)
class Scope:
    """Whose ledger: a team's (an ``auth.Group`` id) or one user's own filters and regions."""

    team_id: int | None = None
    owner_id: int | None = None

    def __post_init__(self) -> None:
        if (self.team_id is None) == (self.owner_id is None):
            raise LedgerInvalid("scope: give exactly one of a team or a user")


# --------------------------------------------------------------------------------------
# SQL


def _table(label: str, model: str) -> str | None:
    try:
        return str(apps.get_model(label, model)._meta.db_table)
    except LookupError:
        return None


def _requests_sql() -> tuple[str, str]:
    """The request join and the "queued by allocation" test (neutral without the scheduler)."""
    requests = _table("scheduling", "ObservingRequest")
    transitions = _table("scheduling", "RequestTransition")
    if requests is None or transitions is None:
        return ("LEFT JOIN (SELECT NULL::bigint AS id, ''::text AS state, ''::text AS plan_outcome, "
                "0 AS visits_completed) r ON false", "false")
    join = (f"LEFT JOIN {requests} r ON r.id = (CASE WHEN f.status = 'requested' "
            "AND f.request_ref ~ '^[0-9]{1,18}$' THEN f.request_ref::bigint END)")
    # The table names are the models'; nothing here comes from a request.
    queued = (f"EXISTS (SELECT 1 FROM {transitions} rt WHERE rt.request_id = r.id "  # noqa: S608
              "AND rt.from_state = '' AND rt.reason LIKE '%%; queued: %%')")
    return join, queued


def _base_sql(scope: Scope, *, extra: str = "", where: str = "") -> str:
    """The ledger query: one row per ledger entry in the period, with its reason.

    Parameters (by name): team, owner, start, end, lo, hi, after. ``extra`` adds select columns,
    ``where`` conditions (both fixed text, never user input).
    """
    requests_join, queued = _requests_sql()
    owner_col = "team_id" if scope.team_id is not None else "owner_id"
    who = "%(team)s" if scope.team_id is not None else "%(owner)s"
    return f"""
    WITH snap AS (
        SELECT s.id,
            ARRAY(SELECT u.ord::int FROM unnest(s.filter_versions) WITH ORDINALITY AS u(v, ord)
                  JOIN candidates_streamfilterversion fv ON fv.id = u.v
                  JOIN candidates_streamfilter sf ON sf.id = fv.filter_id
                  WHERE sf.{owner_col} = {who}) AS fpos,
            ARRAY(SELECT wr.id FROM candidates_watchregion wr
                  WHERE wr.id = ANY(s.regions) AND wr.{owner_col} = {who}) AS regs
        FROM candidates_ledgersnapshot s
    )
    SELECT c.id, c.broker, c.alert_id, c.object_id, c.target_id, t.name, c.time, l.ingested_at, c.ra, c.dec,
        c.band, c.mag, c.mag_err, c.classifications::text, l.snapshot_id, l.filter_fail, l.region_hits,
        p.passed, f.status, f.rule_id, f.error, r.id, r.plan_outcome, r.state, r.visits_completed,
        lab.verdict, lab.label_class, lab.note, lab.username, lab.updated_at, lab.n,
        CASE
            WHEN f.id IS NOT NULL THEN CASE f.status
                WHEN 'failed' THEN CASE WHEN f.error LIKE 'RequestInvalid:%%' THEN 'refused' ELSE 'failed' END
                WHEN 'pending' THEN 'pending' ELSE 'fired' END
            WHEN prior.id IS NOT NULL THEN 'already_triggered'
            WHEN p.passed THEN 'not_triggered'
            ELSE '' END AS trigger,
        CASE
            WHEN NOT p.passed THEN 'filtered_out'
            WHEN f.id IS NULL THEN CASE WHEN prior.id IS NULL THEN 'passed_not_triggered' ELSE 'already_triggered' END
            WHEN f.status = 'pending' THEN 'trigger_pending'
            WHEN f.status = 'recorded' THEN 'trigger_recorded'
            WHEN f.status = 'failed' THEN CASE
                WHEN f.error LIKE 'RequestInvalid: allocation:%%' THEN 'over_allocation'
                WHEN f.error LIKE 'RequestInvalid:%%' THEN 'trigger_refused'
                ELSE 'trigger_failed' END
            WHEN r.id IS NULL THEN 'trigger_failed'
            WHEN r.state = 'completed' THEN 'observed'
            WHEN r.plan_outcome = 'never visible' THEN 'never_visible'
            WHEN r.plan_outcome = 'no proposal' THEN 'no_proposal'
            WHEN r.plan_outcome = 'window too short' THEN 'window_too_short'
            WHEN r.plan_outcome = 'outranked' THEN 'outranked'
            WHEN r.state IN ('expired', 'failed', 'cancelled') THEN 'not_observed'
            WHEN r.plan_outcome = '' AND {queued} THEN 'over_allocation'
            WHEN r.plan_outcome = '' THEN 'request_pending'
            ELSE 'planned_pending' END AS reason
        {extra}
    FROM candidates_ledgerentry l
    JOIN candidates_candidate c ON c.id = l.candidate_id
    JOIN tom_targets_basetarget t ON t.id = c.target_id
    LEFT JOIN snap ON snap.id = l.snapshot_id
    CROSS JOIN LATERAL (SELECT CASE WHEN l.snapshot_id IS NOT NULL THEN
            EXISTS (SELECT 1 FROM unnest(snap.fpos) AS fp(i) WHERE get_byte(l.filter_fail, fp.i - 1) = 255)
            OR coalesce(l.region_hits && snap.regs, false)
        ELSE  -- ingested before the ledger: its matches say what it passed
            EXISTS (SELECT 1 FROM candidates_match m WHERE m.candidate_id = c.id AND m.filter_id IS NOT NULL
                    AND m.{owner_col} = {who})
            OR EXISTS (SELECT 1 FROM candidates_match m WHERE m.candidate_id = c.id AND m.region_id IS NOT NULL
                       AND m.{owner_col} = {who})
        END AS passed) p
    LEFT JOIN LATERAL (
        SELECT f.id, f.status, f.rule_id, f.error, f.request_ref FROM candidates_triggerfiring f
        JOIN candidates_triggerrule tr ON tr.id = f.rule_id
        WHERE f.candidate_id = c.id AND tr.team_id = %(team)s
        ORDER BY (f.status = 'requested') DESC, f.id LIMIT 1
    ) f ON true
    LEFT JOIN LATERAL (
        SELECT f2.id FROM candidates_triggerfiring f2 JOIN candidates_triggerrule tr ON tr.id = f2.rule_id
        WHERE f.id IS NULL AND p.passed AND f2.target_id = c.target_id AND tr.team_id = %(team)s
            AND f2.created_at <= l.ingested_at
        LIMIT 1
    ) prior ON true
    {requests_join}
    LEFT JOIN LATERAL (
        SELECT lb.verdict, lb.label_class, lb.note, u.username, lb.updated_at, count(*) OVER () AS n
        FROM candidates_candidatelabel lb JOIN auth_user u ON u.id = lb.user_id
        WHERE lb.candidate_id = c.id AND lb.team_id = %(team)s
        ORDER BY lb.updated_at DESC, lb.id DESC LIMIT 1
    ) lab ON true
    WHERE l.candidate_id BETWEEN %(lo)s AND %(hi)s AND l.candidate_id > %(after)s
        AND l.ingested_at >= %(start)s AND l.ingested_at < %(end)s {where}
    """  # noqa: S608 - table and column names are the models', never input


def _params(scope: Scope, start: datetime, end: datetime, *, after: int = 0) -> dict[str, Any] | None:
    """Query parameters, with the period's first and last candidate ids (None: the period is empty)."""
    if end <= start:
        raise LedgerInvalid("end: must be after start")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT min(candidate_id), max(candidate_id) FROM candidates_ledgerentry "
            "WHERE ingested_at >= %s AND ingested_at < %s",
            [start, end],
        )
        lo, hi = cursor.fetchone()
    if lo is None:
        return None
    return {"team": scope.team_id, "owner": scope.owner_id, "start": start, "end": end, "lo": lo, "hi": hi,
            "after": after}


# --------------------------------------------------------------------------------------
# Rows


@dataclass
class _SnapshotView:
    """One snapshot as a scope sees it: positions of its filters, their names and predicates, its regions."""

    positions: list[int]  # 0-based indexes into filter_fail
    filters: list[tuple[int, str, int, list[dict[str, Any]]]]  # filter id, name, version, predicates
    regions: list[tuple[int, str, int]]  # region id, name, version
    filter_memo: dict[bytes, tuple[str, int]] = field(default_factory=dict)
    region_memo: dict[tuple[int, ...], tuple[str, int]] = field(default_factory=dict)


class _Snapshots:
    """Snapshot views loaded on first use (a handful per period)."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.views: dict[int | None, _SnapshotView] = {}

    def get(self, snapshot_id: int | None) -> _SnapshotView:
        view = self.views.get(snapshot_id)
        if view is None:
            view = self.views[snapshot_id] = self._load(snapshot_id)
        return view

    def _owned(self, team_id: int | None, owner_id: int | None) -> bool:
        if self.scope.team_id is not None:
            return team_id == self.scope.team_id
        return owner_id == self.scope.owner_id

    def _load(self, snapshot_id: int | None) -> _SnapshotView:
        from candidates.models import LedgerSnapshot, StreamFilterVersion, WatchRegion

        snapshot = LedgerSnapshot.objects.filter(pk=snapshot_id).first() if snapshot_id is not None else None
        if snapshot is None:
            return _SnapshotView([], [], [])
        versions = {
            v.pk: v for v in StreamFilterVersion.objects.filter(pk__in=snapshot.filter_versions).select_related("filter")
        }
        positions, filters = [], []
        for i, version_id in enumerate(snapshot.filter_versions):
            v = versions.get(version_id)
            if v is not None and self._owned(v.filter.team_id, v.filter.owner_id):
                positions.append(i)
                filters.append((v.filter_id, v.filter.name, v.version, list(v.predicates)))
        names = {r.pk: r for r in WatchRegion.objects.filter(pk__in=snapshot.regions)}
        regions = [
            (region_id, names[region_id].name, version)
            for region_id, version in zip(snapshot.regions, snapshot.region_versions, strict=True)
            if region_id in names and self._owned(names[region_id].team_id, names[region_id].owner_id)
        ]
        return _SnapshotView(positions, filters, regions)


def _filters_json(view: _SnapshotView, filter_fail: bytes) -> tuple[str, int]:
    codes = np.frombuffer(filter_fail, dtype=np.int8)
    mine = bytes(codes[view.positions].tobytes()) if len(codes) else b""
    found = view.filter_memo.get(mine)
    if found is not None:
        return found
    out, passed = [], 0
    for code, (filter_id, name, version, predicates) in zip(np.frombuffer(mine, np.int8).tolist(), view.filters,
                                                              strict=False):
        item: dict[str, Any] = {"filter": filter_id, "name": name, "version": version, "passed": code < 0}
        if code >= 0:
            item["failed_clause"] = code
            item["clause"] = predicate_text(predicates[code]) if code < len(predicates) else ""
        else:
            passed += 1
        out.append(item)
    result = (json.dumps(out, separators=(",", ":")), passed)
    if len(view.filter_memo) < _MEMO_LIMIT:
        view.filter_memo[mine] = result
    return result


def _regions_json(view: _SnapshotView, hits: Sequence[int]) -> tuple[str, int]:
    inside = tuple(sorted(set(hits) & {r[0] for r in view.regions})) if hits else ()
    found = view.region_memo.get(inside)
    if found is not None:
        return found
    out = [{"region": rid, "name": name, "version": version, "inside": rid in inside}
           for rid, name, version in view.regions]
    result = (json.dumps(out, separators=(",", ":")), len(inside))
    if len(view.region_memo) < _MEMO_LIMIT:
        view.region_memo[inside] = result
    return result


def _top(classifications: str | None) -> tuple[str | None, str | None, float | None]:
    if not classifications or classifications == "[]":
        return None, None, None
    best = None
    for c in json.loads(classifications):
        score = c.get("score")
        if isinstance(score, int | float) and math.isfinite(score) and (best is None or score > best["score"]):
            best = c
    if best is None:
        return None, None, None
    return best.get("classifier"), best.get("class"), float(best["score"])


def _row(raw: Sequence[Any], snapshots: _Snapshots) -> tuple[Any, ...]:
    (cid, broker, alert_id, object_id, target_id, target, time, ingested_at, ra, dec, band, mag, mag_err,
     classifications, snapshot_id, filter_fail, region_hits, _passed, _status, rule_id, error, request_id,
     plan_outcome, state, visits, verdict, label_class, note, username, labelled_at, n_labels, trigger,
     reason) = raw[:33]  # fmt: skip
    view = snapshots.get(snapshot_id)
    filters, n_filters = _filters_json(view, bytes(filter_fail or b""))
    regions, n_regions = _regions_json(view, region_hits or ())
    top_classifier, top_class, top_score = _top(classifications)
    return (
        cid, broker, alert_id, object_id, target_id, target, time, ingested_at, ra, dec, band, mag, mag_err,
        top_classifier, top_class, top_score, classifications or "[]", filters, n_filters, regions, n_regions,
        trigger, rule_id, error or "", request_id, plan_outcome or "", state or "", visits, verdict or "",
        label_class or "", note or "", username or "", labelled_at, n_labels or 0, reason,
    )  # fmt: skip


def ledger_rows(
    *, scope: Scope, start: datetime, end: datetime, after: int = 0, limit: int | None = None,
    labelled_only: bool = False, chunk_size: int = 2000,
) -> Iterator[tuple[Any, ...]]:
    """The ledger of ``scope`` for candidates ingested in [start, end), in candidate-id order after
    ``after``, at most ``limit`` rows; tuples in :data:`COLUMNS` order.

    Read through a server-side cursor ``chunk_size`` rows at a time inside one transaction, so
    memory stays flat however long the period is. Raises LedgerInvalid on an empty or reversed
    period.
    """
    params = _params(scope, start, end, after=after)
    if params is None:
        return
    where = ("AND EXISTS (SELECT 1 FROM candidates_candidatelabel lq WHERE lq.candidate_id = c.id "
             "AND lq.team_id = %(team)s AND lq.verdict <> '')") if labelled_only else ""
    sql = _base_sql(scope, where=where) + " ORDER BY l.candidate_id" + (f" LIMIT {int(limit)}" if limit else "")
    snapshots = _Snapshots(scope)
    with transaction.atomic():
        connection.ensure_connection()
        cursor = connection.connection.cursor(name=f"ledger_{uuid.uuid4().hex}")  # server-side
        cursor.itersize = chunk_size
        try:
            cursor.execute(sql, params)
            while True:
                rows = cursor.fetchmany(chunk_size)
                if not rows:
                    break
                for raw in rows:
                    yield _row(raw, snapshots)
        finally:
            cursor.close()


def ledger_page(*, scope: Scope, start: datetime, end: datetime, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    """One keyset page of the ledger as dicts (see :func:`ledger_rows`)."""
    if not 1 <= limit <= MAX_PAGE:
        raise LedgerInvalid(f"limit: must be between 1 and {MAX_PAGE}")
    if after < 0:
        raise LedgerInvalid("after: must be a candidate id (0 or more)")
    return [dict(zip(COLUMNS, row, strict=True)) for row in ledger_rows(scope=scope, start=start, end=end,
                                                                         after=after, limit=limit)]


def ledger_counts(*, scope: Scope, start: datetime, end: datetime) -> dict[str, int]:
    """Candidates ingested in the period per final reason (every reason listed, zeros included)."""
    counts = dict.fromkeys(REASONS, 0)
    params = _params(scope, start, end)
    if params is None:
        return counts
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT reason, count(*) FROM ({_base_sql(scope)}) q GROUP BY reason", params)  # noqa: S608
        for reason, n in cursor.fetchall():
            counts[reason] = n
    return counts


def ledger_followed_by(*, scope: Scope, start: datetime, end: datetime) -> dict[str, list[tuple[float, int, int, int]]]:
    """Fractions followed, binned: ``{"mag": [(bin_start, n, requested, observed)], "score": [...]}``.

    Magnitudes in 0.5 mag bins; the top classifier score in 0.1 bins. Candidates with no
    magnitude (flux-only alerts) or no score are left out of that axis.
    """
    out: dict[str, list[tuple[float, int, int, int]]] = {"mag": [], "score": []}
    params = _params(scope, start, end)
    if params is None:
        return out
    extra = (", (SELECT max((e->>'score')::float8) FROM jsonb_array_elements(c.classifications) e "
             "WHERE jsonb_typeof(e->'score') = 'number') AS top_score")
    requested = ", ".join(f"'{r}'" for r in sorted(REQUESTED_REASONS))
    sql = f"""
        SELECT axis, bin, count(*), count(*) FILTER (WHERE reason IN ({requested})),
            count(*) FILTER (WHERE reason = 'observed')
        FROM ({_base_sql(scope, extra=extra)}) q
        CROSS JOIN LATERAL (VALUES ('mag', floor(q.mag * 2) / 2), ('score',
            CASE WHEN q.top_score IS NOT NULL THEN floor(least(q.top_score, 0.999) * 10) / 10 END))
            AS b(axis, bin)
        WHERE bin IS NOT NULL GROUP BY axis, bin ORDER BY axis, bin
    """  # noqa: S608 - fixed text
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for axis, bin_start, n, req, obs in cursor.fetchall():
            out[axis].append((float(bin_start), n, req, obs))
    return out


@dataclass
class Efficiency:
    """A filter's or classifier's efficiency and purity over labelled candidates."""

    kind: str  # "filter", "classifier" or "followed"
    name: str
    positives: int  # candidates it selected
    true_positives: int  # ... that the team labelled real
    real: int  # labelled real in all

    @property
    def efficiency(self) -> float | None:
        return self.true_positives / self.real if self.real else None

    @property
    def purity(self) -> float | None:
        return self.true_positives / self.positives if self.positives else None


def ledger_efficiency(*, scope: Scope, start: datetime, end: datetime, threshold: float = 0.5) -> tuple[int, list[Efficiency]]:
    """Over the candidates of the period that the team labelled real or bogus: each of its filters'
    (passed), each classifier's (``classifier/class`` score >= ``threshold``) and the team's
    follow-up's (requested) efficiency (selected real / real) and purity (real / selected).
    Returns (labelled candidates, figures)."""
    if scope.team_id is None:
        return 0, []
    figures: dict[tuple[str, str], Efficiency] = {}
    labelled = real_total = 0
    rows = []
    for row in ledger_rows(scope=scope, start=start, end=end, labelled_only=True):
        record = dict(zip(COLUMNS, row, strict=True))
        labelled += 1
        real_total += record["label"] == "real"
        rows.append(record)
    for record in rows:
        is_real = record["label"] == "real"
        selected: list[tuple[str, str]] = []
        for f in json.loads(record["filters"]):
            figures.setdefault(("filter", f"{f['name']} v{f['version']}"), Efficiency("filter", f"{f['name']} v{f['version']}", 0, 0, real_total))
            if f["passed"]:
                selected.append(("filter", f"{f['name']} v{f['version']}"))
        scores: dict[str, float] = {}
        for c in json.loads(record["classifications"]):
            if isinstance(c.get("score"), int | float):
                key = f"{c.get('classifier')}/{c.get('class')}"
                scores[key] = max(scores.get(key, -math.inf), float(c["score"]))
        for key, score in scores.items():
            figures.setdefault(("classifier", key), Efficiency("classifier", key, 0, 0, real_total))
            if score >= threshold:
                selected.append(("classifier", key))
        figures.setdefault(("followed", "follow-up requested"), Efficiency("followed", "follow-up requested", 0, 0,
                                                                            real_total))
        if record["reason"] in REQUESTED_REASONS:
            selected.append(("followed", "follow-up requested"))
        for chosen in selected:
            figures[chosen].positives += 1
            figures[chosen].true_positives += is_real
    order = {"filter": 0, "classifier": 1, "followed": 2}
    return labelled, sorted(figures.values(), key=lambda e: (order[e.kind], e.name))


# --------------------------------------------------------------------------------------
# Training set (vetting labels with the candidate features)

TRAINING_COLUMNS: tuple[str, ...] = (
    "candidate_id", "broker", "alert_id", "object_id", "time", "ra", "dec", "band", "mag", "mag_err", "flux",
    "flux_err", "rise_rate", "galactic_lat", "classifications", "label", "label_class", "label_note", "labelled_by",
    "labelled_at", "n_labels", "n_real", "n_bogus",
)  # fmt: skip
"""One row per candidate the team labelled: its features and the team's current label (its
members' most recent), with how many members labelled it real and bogus (their agreement)."""


def training_rows(*, team_id: int, start: datetime | None = None, end: datetime | None = None,
                  chunk_size: int = 2000) -> Iterator[tuple[Any, ...]]:
    """The team's training set, in candidate-id order, streamed (tuples in :data:`TRAINING_COLUMNS` order)."""
    period = ""
    params: dict[str, Any] = {"team": team_id, "start": start, "end": end}
    if start is not None:
        period += " AND c.created_at >= %(start)s"
    if end is not None:
        period += " AND c.created_at < %(end)s"
    sql = f"""
        SELECT c.id, c.broker, c.alert_id, c.object_id, c.time, c.ra, c.dec, c.band, c.mag, c.mag_err, c.flux,
            c.flux_err, c.rise_rate, c.galactic_lat, c.classifications::text, lab.verdict, lab.label_class,
            lab.note, lab.username, lab.updated_at, agg.n, agg.n_real, agg.n_bogus
        FROM (SELECT candidate_id, count(*) AS n, count(*) FILTER (WHERE verdict = 'real') AS n_real,
                     count(*) FILTER (WHERE verdict = 'bogus') AS n_bogus
              FROM candidates_candidatelabel WHERE team_id = %(team)s GROUP BY candidate_id) agg
        JOIN candidates_candidate c ON c.id = agg.candidate_id
        CROSS JOIN LATERAL (
            SELECT lb.verdict, lb.label_class, lb.note, u.username, lb.updated_at
            FROM candidates_candidatelabel lb JOIN auth_user u ON u.id = lb.user_id
            WHERE lb.candidate_id = c.id AND lb.team_id = %(team)s ORDER BY lb.updated_at DESC, lb.id DESC LIMIT 1
        ) lab
        WHERE true {period}
        ORDER BY c.id
    """  # noqa: S608 - fixed text
    with transaction.atomic():
        connection.ensure_connection()
        cursor = connection.connection.cursor(name=f"training_{uuid.uuid4().hex}")
        cursor.itersize = chunk_size
        try:
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(chunk_size):
                yield from (tuple(r) for r in rows)
        finally:
            cursor.close()
