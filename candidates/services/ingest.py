"""Store validated alerts: cone-match to targets, light curves, filter and region matches, triggers.

:func:`alerts_ingest` is the one way alerts enter the database, whatever door they came in by
(push, poll, stream). It works on chunks of alerts, one transaction each, with set-based SQL:

0. before any lock: features, the packets' JSON (the chunk's largest Python work), the ids the
   ownership rows need;
1. drop alerts already stored (unique broker + alert id: replays add nothing);
2. advisory locks on the coarse HEALPix pixels (order 6) around the chunk's alerts, so two
   workers never both make a target for the same new object (held to the commit: parallel
   workers in one field queue here, so as little as possible happens under them);
3. cone-match each alert to the nearest ``TargetSky`` row within the match radius, through the
   btree on the order-13 pixel of the alert and its 8 neighbours (cost flat in the number of
   targets); alerts of the chunk with no target are grouped by the same radius and each group
   becomes one new TOM target;
4. insert candidates, light-curve points (own and history, once per broker + source id) and
   TOM ``PhotometryReducedDatum`` rows, in the same statement owned as public survey data
   (``policies.DataOwnership`` with no team, as ``data_record_ownership(team=None)`` records), so
   TOM's own light-curve plot, which reads through the policies' door (``policies.tom_overrides``),
   shows them to whoever may see the target, with no per-datum permission row;
5. evaluate every active filter (numpy over the chunk) and watch region (HEALPix cells,
   searched in memory), write each candidate's ledger row (the snapshot of active filter and
   region versions, each filter's first failing clause, the regions it fell in: see
   :mod:`candidates.ledger`), record matches with the version that matched, record the matched
   Baton teams' interest in the target (``policies.TargetInterest``, with ``change_target`` and
   ``view_target`` for the groups its requests rule shows it to at once, as
   ``target_interests_record`` does), let the matched teams and owners see the target
   (django-guardian, as TOM does; an owner only a target no team follows or holds data on), and fire
   trigger rules. Only Baton teams (``policies.Team``) and users own filters and regions: one owned by
   another Django group (TOM's "Public") matches nothing, so no ingest grant reaches such a group.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from tom_targets.models import Target

from candidates.filtering import AlertFeatures, predicates_first_failure
from candidates.models import HPX_ORDER, RuleKind
from candidates.packets import AlertIn
from candidates.sky import (
    REGION_MAX_ORDER,
    galactic_latitude,
    hpx_index,
    hpx_neighbourhood,
    separation_arcsec,
    uniq_ancestors,
)

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 2000
LOCK_ORDER = 6
LOCK_NAMESPACE = 0x0BA7  # first key of pg_advisory_xact_lock(int, int): "Baton candidates"


def match_radius_arcsec() -> float:
    """The cone-match radius (setting ``BATON_CANDIDATES_MATCH_RADIUS_ARCSEC``, default 1.5)."""
    return float(getattr(settings, "BATON_CANDIDATES_MATCH_RADIUS_ARCSEC", 1.5))


@dataclass
class IngestResult:
    """What :func:`alerts_ingest` did; ids are of rows it created."""

    stored: int = 0
    duplicate: int = 0
    new_targets: int = 0
    matches: int = 0
    points: int = 0
    candidate_ids: list[int] = field(default_factory=list)
    match_ids: list[int] = field(default_factory=list)
    firing_ids: list[int] = field(default_factory=list)

    def add(self, other: IngestResult) -> None:
        self.stored += other.stored
        self.duplicate += other.duplicate
        self.new_targets += other.new_targets
        self.matches += other.matches
        self.points += other.points
        self.candidate_ids += other.candidate_ids
        self.match_ids += other.match_ids
        self.firing_ids += other.firing_ids


def alerts_ingest(
    *,
    alerts: Sequence[AlertIn],
    received_at: datetime,
    batch_id: Any = None,
    now: datetime | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> IngestResult:
    """Store ``alerts`` (validated, see :mod:`candidates.packets`) in chunks of ``chunk_size``.

    Each chunk is one transaction: it is stored whole or not at all. Alerts already stored
    (same broker and alert id) are counted as duplicates and change nothing. ``received_at``
    is when the alerts arrived (the start of the arrival-to-match latency); ``now`` is the
    time recorded on the rows made. Trigger firings and notifications are enqueued when
    each chunk commits.
    """
    result = IngestResult()
    for start in range(0, len(alerts), chunk_size):
        chunk = alerts[start : start + chunk_size]
        with transaction.atomic():
            result.add(_ingest_chunk(chunk, received_at=received_at, batch_id=batch_id, now=now or timezone.now()))
    return result


# --------------------------------------------------------------------------------------
# The chunk


def _ingest_chunk(alerts: Sequence[AlertIn], *, received_at: datetime, batch_id: Any, now: datetime) -> IngestResult:
    result = IngestResult()
    ra = np.fromiter((a.ra for a in alerts), float, len(alerts))
    dec = np.fromiter((a.dec for a in alerts), float, len(alerts))
    pixels = hpx_index(ra, dec, HPX_ORDER)
    neighbourhood = hpx_neighbourhood(pixels, HPX_ORDER)
    features = _features(alerts, ra, dec)
    packets = _packet_columns(alerts)
    survey = _survey_grant()

    with connection.cursor() as cursor:
        # Commit without waiting for the WAL flush: a crash can lose only the last chunks, and then
        # atomically, while their batch is still unfinished (its status is written later, with a
        # synchronous commit that flushes these too), so the reconciler processes it again.
        cursor.execute(
            "SET LOCAL synchronous_commit TO OFF; SET LOCAL jit TO OFF; "
            "SELECT q.i FROM unnest(%s::text[], %s::text[], %s::int[]) AS q(b, a, i) WHERE EXISTS "
            "(SELECT 1 FROM candidates_candidate c WHERE c.broker = q.b AND c.alert_id = q.a OFFSET 0)",
            [[a.broker for a in alerts], [a.alert_id for a in alerts], list(range(len(alerts)))],
        )
        seen = {row[0] for row in cursor.fetchall()}
        keep = np.array([i for i in range(len(alerts)) if i not in seen], dtype=np.int64)
        result.duplicate = len(seen)
        if keep.size == 0:
            return result
        if seen:
            alerts = [alerts[i] for i in keep]
            ra, dec, pixels, neighbourhood = ra[keep], dec[keep], pixels[keep], neighbourhood[keep]
            features = _subset(features, keep)
            packets = ([packets[0][i] for i in keep], [packets[1][i] for i in keep])
        # The sky locks come after the duplicate check (a racing writer of the same alert is caught by the
        # candidates' unique key): only what must be serialised (cone match to commit) is.
        coarse = np.unique(neighbourhood[neighbourhood >= 0] >> (2 * (HPX_ORDER - LOCK_ORDER)))
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(%s, k)) FROM (SELECT unnest(%s::int[]) AS k ORDER BY 1) AS s",
            [LOCK_NAMESPACE, coarse.tolist()],
        )

        target_ids, separations = _cone_match(cursor, ra, dec, neighbourhood)
        unmatched = np.flatnonzero(target_ids < 0)
        if unmatched.size:
            result.new_targets = _make_targets(cursor, alerts, ra, dec, pixels, unmatched, target_ids, separations, now)

        candidate_ids = _insert_candidates(
            cursor, alerts, target_ids, separations, features, packets, received_at=received_at, batch_id=batch_id,
            now=now,
        )
        inserted = np.flatnonzero(candidate_ids >= 0)
        result.duplicate += len(alerts) - inserted.size  # a racing writer got there first
        result.stored = int(inserted.size)
        result.candidate_ids = [int(candidate_ids[i]) for i in inserted]
        if inserted.size == 0:
            return result
        result.points = _insert_points(cursor, [alerts[i] for i in inserted], target_ids[inserted], survey, now)
        cursor.execute(
            "UPDATE tom_targets_basetarget SET modified = %s WHERE id = ANY(%s)",
            [now, sorted({int(t) for t in target_ids[inserted]})],
        )

        sub = _subset(features, inserted)
        filter_hits, verdicts = _evaluate_filters(cursor, sub)
        regions = _region_index()
        region_hits = _evaluate_regions(sub, ra[inserted], dec[inserted], regions)
        _insert_ledger(cursor, candidate_ids[inserted], verdicts, regions, region_hits, now)
        matches = filter_hits + region_hits
        if matches:
            rows = _insert_matches(cursor, matches, candidate_ids[inserted], target_ids[inserted], now)
            result.matches = len(rows)
            result.match_ids = [row["id"] for row in rows]
            _record_interest(cursor, rows, now)
            _grant_view(cursor, rows)
            result.firing_ids = _fire_rules(cursor, rows, now)
    if result.match_ids:
        from candidates import hooks

        match_ids = list(result.match_ids)
        transaction.on_commit(lambda: hooks.matches_recorded(match_ids=match_ids))
    return result


def _cone_match(cursor: Any, ra: np.ndarray, dec: np.ndarray, neighbourhood: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest target within the radius of each alert (-1 if none) and its separation (arcsec)."""
    n = ra.size
    index = np.repeat(np.arange(n, dtype=np.int64), 9)
    flat = neighbourhood.ravel()
    valid = flat >= 0
    # One btree probe per pixel, whatever the planner thinks: a plain join becomes a hash join over
    # the whole table once it is large (linear in the number of targets); LATERAL ... OFFSET 0 cannot
    # be flattened, so the cost stays ~9 index probes per alert at any table size.
    cursor.execute(
        "SELECT q.i, s.target_id, s.ra, s.dec FROM unnest(%s::bigint[], %s::int[]) AS q(hpx, i) "
        "CROSS JOIN LATERAL (SELECT target_id, ra, dec FROM candidates_targetsky t WHERE t.hpx = q.hpx OFFSET 0) s",
        [flat[valid].tolist(), index[valid].tolist()],
    )
    rows = cursor.fetchall()
    target_ids = np.full(n, -1, dtype=np.int64)
    separations = np.zeros(n, dtype=float)
    if not rows:
        return target_ids, separations
    found = np.array(rows, dtype=float)
    alert_i = found[:, 0].astype(np.int64)
    sep = separation_arcsec(ra[alert_i], dec[alert_i], found[:, 2], found[:, 3])
    inside = sep <= match_radius_arcsec()
    alert_i, targets, sep = alert_i[inside], found[inside, 1].astype(np.int64), sep[inside]
    order = np.lexsort((targets, sep, alert_i))  # nearest first; ties go to the oldest target
    alert_i, targets, sep = alert_i[order], targets[order], sep[order]
    first = np.ones(alert_i.size, dtype=bool)
    first[1:] = alert_i[1:] != alert_i[:-1]
    target_ids[alert_i[first]] = targets[first]
    separations[alert_i[first]] = sep[first]
    return target_ids, separations


def _target_name(alert: AlertIn) -> str:
    object_id = alert.object_id.strip()
    # Survey object ids such as ZTF's are names astronomers use; bare numbers (Rubin's
    # diaObjectId) need the broker to mean anything.
    name = object_id if not object_id.isdigit() else f"{alert.broker}:{object_id}"
    return name[:90]


def _make_targets(
    cursor: Any,
    alerts: Sequence[AlertIn],
    ra: np.ndarray,
    dec: np.ndarray,
    pixels: np.ndarray,
    unmatched: np.ndarray,
    target_ids: np.ndarray,
    separations: np.ndarray,
    now: datetime,
) -> int:
    """Group unmatched alerts by the match radius, make one target per group; fills target_ids.

    In chunk order, an alert joins the nearest earlier group head within the radius, or heads a new
    group. Pairs closer than the radius are found with numpy (same or neighbouring order-13 pixel, which
    is wider than the radius); only alerts with such a pair are walked in Python, one by one.
    """
    radius = match_radius_arcsec()
    m = unmatched.size
    own = pixels[unmatched]
    order = np.argsort(own, kind="stable")
    by_pixel = own[order]
    probe = hpx_neighbourhood(own, HPX_ORDER).ravel()
    row = np.repeat(np.arange(m), 9)
    left = np.searchsorted(by_pixel, probe, "left")
    counts = np.where(probe >= 0, np.searchsorted(by_pixel, probe, "right") - left, 0)
    row = np.repeat(row, counts)
    starts = np.repeat(left, counts)
    offsets = np.arange(row.size) - np.repeat(np.cumsum(counts) - counts, counts)
    other = order[starts + offsets]
    earlier = other < row
    row, other = row[earlier], other[earlier]
    i, j = unmatched[row], unmatched[other]
    sep = separation_arcsec(ra[i], dec[i], ra[j], dec[j]) if row.size else np.zeros(0)
    close = sep <= radius
    row, other, sep = row[close], other[close], sep[close]

    head = np.arange(m)  # each unmatched alert's group head (a row number)
    if row.size:
        by_row = np.lexsort((other, sep, row))  # per alert: nearest first, ties to the earliest head
        row, other, sep = row[by_row], other[by_row], sep[by_row]
        for r, o, d in zip(row.tolist(), other.tolist(), sep.tolist(), strict=True):
            if head[r] != r or head[o] != o:
                continue  # r already joined a nearer head, or o is not a head
            head[r] = o
            separations[unmatched[r]] = d
    heads = np.flatnonzero(head == np.arange(m))
    groups: list[list[int]] = [[] for _ in heads]
    number = np.full(m, -1, dtype=np.int64)
    number[heads] = np.arange(heads.size)
    for r, h in enumerate(head.tolist()):
        groups[int(number[h])].append(int(unmatched[r]))

    names = [_target_name(alerts[g[0]]) for g in groups]
    taken: set[str] = set()
    asked: list[str] = names
    while asked:  # rarely more than one round: only when a suffixed name is taken as well
        cursor.execute(
            f"SELECT name FROM {Target._meta.db_table} WHERE name = ANY(%s) "  # noqa: S608 - the model's table
            "UNION SELECT name FROM tom_targets_targetname WHERE name = ANY(%s)",
            [asked, asked],
        )
        found = {row[0] for row in cursor.fetchall()}
        taken |= found
        unique_names: list[str] = []
        used: set[str] = set()
        for name in names:
            unique, n = name, 1
            while unique in taken or unique in used:  # the same object id far away (a mover, another broker)
                n += 1
                unique = f"{name}-{n}"
            used.add(unique)
            unique_names.append(unique)
        asked = [u for u, name in zip(unique_names, names, strict=True) if u != name and u not in taken
                 and u not in set(asked)]
    heads = np.array([g[0] for g in groups], dtype=np.int64)
    defaults = {f: Target._meta.get_field(f).get_default() for f in ("scheme", "permissions", "shared_by", "shared_from")}
    # One statement makes the targets and their index rows (TOM's save() hooks are for targets
    # made one at a time by people; a broker's new objects are made in bulk).
    cursor.execute(
        f"""
        WITH q AS (
            SELECT * FROM unnest(%s::text[], %s::float8[], %s::float8[], %s::bigint[]) AS q(name, ra, dec, hpx)
        ), t AS (
            INSERT INTO {Target._meta.db_table} (name, type, created, modified, scheme, permissions, shared_by,
                                                 shared_from, ra, dec, epoch)
            SELECT name, 'SIDEREAL', %s, %s, %s, %s, %s, %s, ra, dec, 2000.0 FROM q
            RETURNING id, name
        ), s AS (
            INSERT INTO candidates_targetsky (target_id, ra, dec, hpx)
            SELECT t.id, q.ra, q.dec, q.hpx FROM t JOIN q ON q.name = t.name
        )
        SELECT id, name FROM t
        """,  # noqa: S608 - the table name is the model's
        [unique_names, ra[heads].tolist(), dec[heads].tolist(), pixels[heads].tolist(), now, now,
         defaults["scheme"], defaults["permissions"], defaults["shared_by"], defaults["shared_from"]],
    )
    ids = dict((name, pk) for pk, name in cursor.fetchall())
    for members, name in zip(groups, unique_names, strict=True):
        target_ids[members] = ids[name]
    return len(groups)


def _rise_rate(alert: AlertIn) -> float:
    """mag/day over the last earlier point in the alert's band; positive when brightening."""
    if alert.mag is None:
        return math.nan
    best = None
    for point in alert.history:
        if point.band == alert.band and point.mag is not None and point.time < alert.time:
            if best is None or point.time > best.time:
                best = point
    if best is None or best.mag is None:
        return math.nan
    days = (alert.time - best.time).total_seconds() / 86400.0
    return (best.mag - alert.mag) / days if days > 0 else math.nan


def _features(alerts: Sequence[AlertIn], ra: np.ndarray, dec: np.ndarray) -> AlertFeatures:
    def column(values: Any) -> np.ndarray:
        return np.array([math.nan if v is None else v for v in values], dtype=float)

    flux = column(a.flux for a in alerts)
    flux_err = column(a.flux_err for a in alerts)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.abs(flux) / flux_err
    b = galactic_latitude(ra, dec)
    scores: dict[tuple[str, str], np.ndarray] = {}
    for i, alert in enumerate(alerts):
        for c in alert.classifications:
            scores.setdefault((c.classifier, c.label), np.full(len(alerts), np.nan))[i] = c.score
    return AlertFeatures(
        numeric={
            "mag": column(a.mag for a in alerts),
            "mag_err": column(a.mag_err for a in alerts),
            "flux": flux,
            "flux_err": flux_err,
            "snr": snr,
            "ra": ra,
            "dec": dec,
            "galactic_latitude": b,
            "abs_galactic_latitude": np.abs(b),
            "rise_rate": np.array([_rise_rate(a) for a in alerts], dtype=float),
            "n_history": np.array([len(a.history) for a in alerts], dtype=float),
        },
        text={
            "band": np.array([a.band for a in alerts], dtype=str),
            "broker": np.array([a.broker for a in alerts], dtype=str),
        },
        scores=scores,
    )


def _subset(features: AlertFeatures, rows: np.ndarray) -> AlertFeatures:
    return AlertFeatures(
        numeric={k: v[rows] for k, v in features.numeric.items()},
        text={k: v[rows] for k, v in features.text.items()},
        scores={k: v[rows] for k, v in features.scores.items()},
    )


def _without_nulls(value: Any) -> Any:
    """The packet without its null fields (they say nothing the schema does not; ~4x smaller for Rubin).

    Recurses only into containers (a call per scalar was a third of the chunk's Python time).
    """
    if type(value) is dict:
        return {k: (_without_nulls(v) if type(v) is dict or type(v) is list else v)
                for k, v in value.items() if v is not None}
    if type(value) is list:
        return [_without_nulls(v) if type(v) is dict or type(v) is list else v for v in value]
    return value


_dumps = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode


def _packet_columns(alerts: Sequence[AlertIn]) -> tuple[list[str], list[str]]:
    """Each alert's classifications and raw packet (without nulls) as JSON text, for the candidates' insert.

    Made before the chunk takes its sky locks: it is the chunk's largest piece of Python work, and other
    workers' chunks in the same field wait for those locks.
    """
    classifications = [
        _dumps([{"classifier": c.classifier, "version": c.version, "class": c.label, "score": c.score}
                for c in a.classifications]) if a.classifications else "[]"
        for a in alerts
    ]
    return classifications, [_dumps(_without_nulls(a.raw)) for a in alerts]


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(v) else float(v) for v in values.tolist()]


def _insert_candidates(
    cursor: Any,
    alerts: Sequence[AlertIn],
    target_ids: np.ndarray,
    separations: np.ndarray,
    features: AlertFeatures,
    packets: tuple[list[str], list[str]],
    *,
    received_at: datetime,
    batch_id: Any,
    now: datetime,
) -> np.ndarray:
    """Insert the candidates; returns each alert's new candidate id, or -1 if another writer won."""
    cursor.execute(
        """
        INSERT INTO candidates_candidate (broker, alert_id, object_id, target_id, batch_id, time, ra, dec, band,
            mag, mag_err, flux, flux_err, classifications, rise_rate, galactic_lat, separation, schema, raw,
            received_at, created_at)
        SELECT b, a, o, t, %s::uuid, to_timestamp(tm), r, d, bd, m, me, f, fe, cl::jsonb, rr, gb, sep, sc, rw::jsonb, %s, %s
        FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::float8[], %s::float8[], %s::float8[],
                    %s::text[], %s::float8[], %s::float8[], %s::float8[], %s::float8[], %s::text[], %s::float8[],
                    %s::float8[], %s::float8[], %s::text[], %s::text[])
            AS q(b, a, o, t, tm, r, d, bd, m, me, f, fe, cl, rr, gb, sep, sc, rw)
        ON CONFLICT (broker, alert_id) DO NOTHING
        RETURNING id, broker, alert_id
        """,
        [
            str(batch_id) if batch_id else None,
            received_at,
            now,
            [a.broker for a in alerts],
            [a.alert_id for a in alerts],
            [a.object_id for a in alerts],
            target_ids.tolist(),
            [a.time.timestamp() for a in alerts],
            features.numeric["ra"].tolist(),
            features.numeric["dec"].tolist(),
            [a.band for a in alerts],
            [a.mag for a in alerts],
            [a.mag_err for a in alerts],
            [a.flux for a in alerts],
            [a.flux_err for a in alerts],
            packets[0],
            _nan_to_none(features.numeric["rise_rate"]),
            features.numeric["galactic_latitude"].tolist(),
            separations.tolist(),
            [a.schema for a in alerts],
            packets[1],
        ],
    )
    by_key = {(b, a): pk for pk, b, a in cursor.fetchall()}
    return np.array([by_key.get((a.broker, a.alert_id), -1) for a in alerts], dtype=np.int64)


@dataclass(frozen=True)
class _SurveyGrant:
    """The ids the public-survey ownership of a broker's photometry needs (looked up once per chunk)."""

    content_type_id: int  # PhotometryReducedDatum's


def _survey_grant() -> _SurveyGrant:
    from tom_dataproducts.models import PhotometryReducedDatum

    content_type = ContentType.objects.get_for_model(PhotometryReducedDatum)  # cached by Django
    return _SurveyGrant(content_type.pk)


def _insert_points(cursor: Any, alerts: Sequence[AlertIn], target_ids: np.ndarray, survey: _SurveyGrant, now: datetime) -> int:
    """Every point (the alert's own and its history) once per broker and source id, with TOM's datum
    for those with a magnitude, owned as public survey data (shown with the target through the door);
    returns new points."""
    rows: dict[tuple[str, str], tuple[Any, ...]] = {}
    for alert, target in zip(alerts, target_ids.tolist(), strict=True):
        rows.setdefault(
            (alert.broker, alert.alert_id),
            (target, alert.time.timestamp(), alert.band, alert.mag, alert.mag_err, alert.flux, alert.flux_err, False),
        )
        for p in alert.history:
            rows.setdefault(
                (alert.broker, p.source_id), (target, p.time.timestamp(), p.band, p.mag, p.mag_err, p.flux, p.flux_err, p.forced)
            )
    if not rows:
        return 0
    keys = list(rows)
    values = list(rows.values())
    columns = list(zip(*values, strict=True))
    cursor.execute(
        """
        WITH q AS (
            SELECT broker, source_id, target_id, to_timestamp(epoch) AS time, band, mag, mag_err, flux, flux_err, forced
            FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::float8[], %s::text[], %s::float8[],
                        %s::float8[], %s::float8[], %s::float8[], %s::bool[])
                AS q(broker, source_id, target_id, epoch, band, mag, mag_err, flux, flux_err, forced)
        ), new AS (
            INSERT INTO candidates_lightcurvepoint (broker, source_id, target_id, time, band, mag, mag_err, flux,
                                                    flux_err, forced)
            SELECT * FROM q
            ON CONFLICT (broker, source_id) DO NOTHING
            RETURNING *
        ), datums AS (
            INSERT INTO tom_dataproducts_photometryreduceddatum (target_id, timestamp, value, telescope, instrument,
                source_name, source_location, reduction_version, brightness, brightness_error, unit, bandpass)
            SELECT target_id, time, jsonb_build_object('flux', flux, 'flux_error', flux_err, 'flux_unit', 'nJy',
                       'forced', forced), '', '', broker, broker || ':' || source_id, '', mag, mag_err, 'AB mag', band
            FROM new WHERE mag IS NOT NULL
            ON CONFLICT DO NOTHING
            RETURNING id, target_id, timestamp
        ), owned AS (
            -- A broker's photometry is public survey data (policies.services.data_record_ownership with
            -- team=None): shown with its target, to whoever may see the target.
            INSERT INTO policies_dataownership (content_type_id, object_id, target_id, team_id, kind, acquired_at,
                                                recorded_at)
            SELECT %s, id, target_id, NULL, 'photometry', timestamp, %s FROM datums
            ON CONFLICT DO NOTHING
            RETURNING object_id
        )
        -- No per-datum permission row: TOM's photometry tags read through the policies' door
        -- (policies.tom_overrides), which shows public survey data with its target.
        SELECT count(*) FROM new
        """,
        [[k[0] for k in keys], [k[1] for k in keys], *[list(c) for c in columns], survey.content_type_id, now],
    )
    return int(cursor.fetchone()[0])


# --------------------------------------------------------------------------------------
# Filters and watch regions


@dataclass(frozen=True)
class _Hit:
    row: int  # index into the chunk's inserted alerts
    team_id: int | None
    owner_id: int | None
    filter_id: int | None = None
    filter_version_id: int | None = None
    region_id: int | None = None
    region_version: int | None = None


@dataclass
class _FilterVerdicts:
    """Every active filter's verdict on each alert of the chunk: ``first_fail[f, row]`` is -1 when
    alert ``row`` passed filter version ``version_ids[f]``, else its first failing clause."""

    version_ids: list[int]
    first_fail: np.ndarray  # (filters, alerts) int8


def _evaluate_filters(cursor: Any, features: AlertFeatures) -> tuple[list[_Hit], _FilterVerdicts]:
    cursor.execute(
        """
        SELECT DISTINCT ON (v.filter_id) v.id, v.filter_id, v.predicates, f.team_id, f.owner_id
        FROM candidates_streamfilterversion v JOIN candidates_streamfilter f ON f.id = v.filter_id
        WHERE f.active AND (f.team_id IS NULL OR f.team_id IN (SELECT group_id FROM policies_team))
        ORDER BY v.filter_id, v.version DESC
        """
    )
    hits: list[_Hit] = []
    rows = cursor.fetchall()
    first_fail = np.empty((len(rows), features.size), dtype=np.int8)
    for f, (version_id, filter_id, predicates, team_id, owner_id) in enumerate(rows):
        if isinstance(predicates, str):
            predicates = json.loads(predicates)
        first_fail[f] = predicates_first_failure(predicates, features)
        for row in np.flatnonzero(first_fail[f] < 0).tolist():
            hits.append(_Hit(row, team_id, owner_id, filter_id=filter_id, filter_version_id=version_id))
    return hits, _FilterVerdicts([row[0] for row in rows], first_fail)


@dataclass
class _RegionIndex:
    stamp: tuple[Any, ...]
    uniq: np.ndarray  # sorted cell numbers
    region: np.ndarray  # the region of each cell
    info: dict[int, tuple[str, dict[str, Any], int, int | None, int | None]]  # id -> kind, spec, version, team, owner
    versions: list[tuple[int, int]] | None = None  # (region id, version), sorted: the ledger snapshot's part
    cones: dict[int, tuple[float, float, float]] | None = None  # cone region id -> ra, dec, radius (deg)


_region_cache: dict[str, _RegionIndex] = {}
_region_lock = threading.Lock()


def _region_index() -> _RegionIndex:
    """The active regions' cells as sorted arrays, reloaded when any region changes."""
    from candidates.models import WatchRegion, WatchRegionCell

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), max(updated_at), coalesce(sum(version), 0), max(id) FROM candidates_watchregion "
            "WHERE active"
        )
        stamp = tuple(cursor.fetchone())
    from tomsite import sandbox

    box = sandbox.current()  # a drill's schema has regions of its own
    key = f'{connection.settings_dict["NAME"]}:{box.schema if box else ""}'
    with _region_lock:
        cached = _region_cache.get(key)
        if cached is not None and cached.stamp == stamp:
            return cached
        # Only a Baton team (or a user) owns a region: one of another Django group (TOM's "Public") watches nothing.
        owned = Q(team__isnull=True) | Q(team__baton_team__isnull=False)
        info = {
            r.pk: (r.kind, r.spec, r.version, r.team_id, r.owner_id)
            for r in WatchRegion.objects.filter(owned, active=True).only("kind", "spec", "version", "team", "owner")
        }
        cells = np.array(
            list(WatchRegionCell.objects.filter(region__in=WatchRegion.objects.filter(owned, active=True).values("pk"))
                 .values_list("uniq", "region_id")), dtype=np.int64
        ).reshape(-1, 2)
        order = np.argsort(cells[:, 0], kind="stable")
        index = _RegionIndex(stamp, cells[order, 0], cells[order, 1], info)
        _region_cache[key] = index
        return index


def _evaluate_regions(features: AlertFeatures, ra: np.ndarray, dec: np.ndarray, index: _RegionIndex) -> list[_Hit]:
    if index.uniq.size == 0 or ra.size == 0:
        return []
    probes = uniq_ancestors(ra, dec, REGION_MAX_ORDER)  # (N, orders)
    flat = probes.ravel()
    left = np.searchsorted(index.uniq, flat, "left")
    right = np.searchsorted(index.uniq, flat, "right")
    counts = right - left
    found = np.flatnonzero(counts)
    if found.size == 0:
        return []
    rows = np.repeat(found // probes.shape[1], counts[found])
    starts = np.repeat(left[found], counts[found])
    offsets = np.arange(rows.size) - np.repeat(np.cumsum(counts[found]) - counts[found], counts[found])
    regions = index.region[starts + offsets]
    pairs = np.unique(np.stack([rows, regions], axis=1), axis=0)
    if index.cones is None:  # once per loaded index: each cone region's centre and radius (deg)
        index.cones = {r: (spec["ra"], spec["dec"], spec["radius"]) for r, (kind, spec, *_) in index.info.items()
                       if kind == "cone"}
    cone = np.array([index.cones.get(r, (math.nan, math.nan, math.nan)) for r in pairs[:, 1].tolist()],
                    dtype=float).reshape(-1, 3)
    is_cone = ~np.isnan(cone[:, 2])
    inside = np.ones(len(pairs), dtype=bool)
    if is_cone.any():
        rows_c = pairs[is_cone, 0]
        sep = separation_arcsec(ra[rows_c], dec[rows_c], cone[is_cone, 0], cone[is_cone, 1]) / 3600.0
        inside[is_cone] = sep <= cone[is_cone, 2]
    hits: list[_Hit] = []
    for row, region_id in pairs[inside].tolist():
        _, _, version, team_id, owner_id = index.info[region_id]
        hits.append(_Hit(row, team_id, owner_id, region_id=region_id, region_version=version))
    return hits


def _insert_ledger(
    cursor: Any, candidate_ids: np.ndarray, verdicts: _FilterVerdicts, index: _RegionIndex, region_hits: list[_Hit],
    now: datetime,
) -> None:
    """One ledger row per inserted candidate: the snapshot of active filter and region versions,
    each filter's first failing clause (one byte per filter) and the regions the alert fell in."""
    if index.versions is None:  # once per loaded index, not per chunk
        index.versions = sorted((region_id, info[2]) for region_id, info in index.info.items())
    regions = index.versions
    contents = json.dumps([verdicts.version_ids, regions], separators=(",", ":"))
    digest = hashlib.sha256(contents.encode()).hexdigest()
    cursor.execute(
        """
        WITH new AS (
            INSERT INTO candidates_ledgersnapshot (digest, filter_versions, regions, region_versions, created_at)
            VALUES (%s, %s::bigint[], %s::bigint[], %s::int[], %s) ON CONFLICT (digest) DO NOTHING RETURNING id
        )
        SELECT id FROM new UNION ALL SELECT id FROM candidates_ledgersnapshot WHERE digest = %s
        """,
        [digest, verdicts.version_ids, [r[0] for r in regions], [r[1] for r in regions], now, digest],
    )
    found = cursor.fetchone()
    if found is None:  # another writer inserted it after this statement's snapshot was taken
        cursor.execute("SELECT id FROM candidates_ledgersnapshot WHERE digest = %s", [digest])
        found = cursor.fetchone()
    snapshot_id = found[0]
    k = len(verdicts.version_ids)
    # Row-major (alerts, filters) bytes: alert i's verdicts are bytes [i*k, (i+1)*k).
    packed = np.ascontiguousarray(verdicts.first_fail.T).tobytes()
    hit_rows = [h.row + 1 for h in region_hits]
    cursor.execute(
        """
        INSERT INTO candidates_ledgerentry (candidate_id, ingested_at, snapshot_id, filter_fail, region_hits)
        SELECT q.c, %s, %s, substring(%s::bytea FROM ((q.i - 1) * %s + 1)::int FOR %s::int), coalesce(h.hits, '{}')
        FROM unnest(%s::bigint[]) WITH ORDINALITY AS q(c, i)
        LEFT JOIN (
            SELECT r, array_agg(g ORDER BY g) AS hits FROM unnest(%s::bigint[], %s::bigint[]) AS h(r, g) GROUP BY r
        ) h ON h.r = q.i
        """,
        [now, snapshot_id, packed, k, k, candidate_ids.tolist(), hit_rows, [h.region_id for h in region_hits]],
    )


def _insert_matches(
    cursor: Any, hits: list[_Hit], candidate_ids: np.ndarray, target_ids: np.ndarray, now: datetime
) -> list[dict[str, Any]]:
    cursor.execute(
        """
        INSERT INTO candidates_match (candidate_id, target_id, team_id, owner_id, filter_id, filter_version_id,
                                      region_id, region_version, matched_at)
        SELECT c, t, tm, ow, f, fv, r, rv, %s
        FROM unnest(%s::bigint[], %s::bigint[], %s::int[], %s::int[], %s::bigint[], %s::bigint[], %s::bigint[],
                    %s::int[]) AS q(c, t, tm, ow, f, fv, r, rv)
        ON CONFLICT DO NOTHING
        RETURNING id, candidate_id, target_id, team_id, owner_id, filter_id, region_id
        """,
        [
            now,
            [int(candidate_ids[h.row]) for h in hits],
            [int(target_ids[h.row]) for h in hits],
            [h.team_id for h in hits],
            [h.owner_id for h in hits],
            [h.filter_id for h in hits],
            [h.filter_version_id for h in hits],
            [h.region_id for h in hits],
            [h.region_version for h in hits],
        ],
    )
    names = ("id", "candidate_id", "target_id", "team_id", "owner_id", "filter_id", "region_id")
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _record_interest(cursor: Any, matches: list[dict[str, Any]], now: datetime) -> None:
    """Matched Baton teams follow the target (``policies.TargetInterest``, source "filter"/"region"), as
    :func:`policies.services.target_interests_record` records it, in one statement: the new interests, the
    team's ``change_target``, and ``view_target`` for the other groups that see a team's target at once
    (partners, an audience: recorded in ``PolicyTargetGrant``, so that a policy change can withdraw them)."""
    from policies.services.ownership import interest_viewer_groups

    pairs = sorted({(m["target_id"], m["team_id"], "filter" if m["filter_id"] else "region")
                    for m in matches if m["team_id"]})
    viewers = interest_viewer_groups(team_ids={p[1] for p in pairs})
    pairs = [p for p in pairs if p[1] in viewers]
    if not pairs:
        return
    content_type = ContentType.objects.get_for_model(Target)
    # The team's own view_target is granted by _grant_view, as to any matched group, and never withdrawn
    # while it follows the target: only partners' and audiences' grants are the projection's to record
    # (a PolicyTargetGrant row and its foreign-key checks per match would cost ~15 us an alert).
    audience = [(team, group) for team, groups in viewers.items() for group in groups if group != team]
    cursor.execute(
        """
        WITH q AS (
            SELECT DISTINCT ON (t, g) t, g, s FROM unnest(%s::bigint[], %s::int[], %s::text[]) AS q(t, g, s) ORDER BY t, g, s
        ), new AS (
            INSERT INTO policies_targetinterest (target_id, team_id, since, source)
            SELECT t, g, %s, s FROM q ON CONFLICT DO NOTHING
            RETURNING target_id, team_id
        ), change AS (
            INSERT INTO guardian_groupobjectpermission (group_id, permission_id, content_type_id, object_pk)
            SELECT team_id, p.id, p.content_type_id, target_id::text FROM new
            JOIN auth_permission p ON p.content_type_id = %s AND p.codename = 'change_target'
            ON CONFLICT DO NOTHING
        ), seen AS (
            INSERT INTO guardian_groupobjectpermission (group_id, permission_id, content_type_id, object_pk)
            SELECT a.g, p.id, p.content_type_id, new.target_id::text FROM new
            JOIN auth_permission p ON p.content_type_id = %s AND p.codename = 'view_target'
            JOIN unnest(%s::int[], %s::int[]) AS a(team, g) ON a.team = new.team_id
            ON CONFLICT DO NOTHING
            RETURNING object_pk, group_id
        )
        INSERT INTO policies_policytargetgrant (target_id, group_id)
        SELECT object_pk::bigint, group_id FROM seen ON CONFLICT DO NOTHING
        """,
        [[p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs], now, content_type.pk, content_type.pk,
         [a[0] for a in audience], [a[1] for a in audience]],
    )


# A target a team follows (an interest) or holds data on is the teams' to show, through the door: a user's own
# filter or region that matches it is no reason to see it.
_NO_TEAMS_TARGET = (
    "NOT EXISTS (SELECT 1 FROM policies_targetinterest i WHERE i.target_id = o::bigint) "
    "AND NOT EXISTS (SELECT 1 FROM policies_dataownership d WHERE d.target_id = o::bigint AND d.team_id IS NOT NULL)"
)


def _grant_view(cursor: Any, matches: list[dict[str, Any]]) -> None:
    """Matched teams may see the target, as TOM's guardian permissions express it (the door's rule: a team sees
    what it follows, and only Baton teams own filters and regions); a matched owner sees it only if no team
    follows it or holds data on it."""
    permission = Permission.objects.get_by_natural_key("view_target", "tom_targets", "basetarget")
    content_type = ContentType.objects.get_for_model(Target)
    teams = sorted({(m["team_id"], str(m["target_id"])) for m in matches if m["team_id"]})
    owners = sorted({(m["owner_id"], str(m["target_id"])) for m in matches if m["owner_id"]})
    for table, who, pairs, where in (
        ("guardian_groupobjectpermission", "group_id", teams, "w IN (SELECT group_id FROM policies_team)"),
        ("guardian_userobjectpermission", "user_id", owners, _NO_TEAMS_TARGET),
    ):
        if pairs:
            cursor.execute(
                f"INSERT INTO {table} ({who}, object_pk, content_type_id, permission_id) "  # noqa: S608 - fixed names
                f"SELECT w, o, %s, %s FROM unnest(%s::int[], %s::text[]) AS q(w, o) WHERE {where} ON CONFLICT DO NOTHING",
                [content_type.pk, permission.pk, [p[0] for p in pairs], [p[1] for p in pairs]],
            )


def _fire_rules(cursor: Any, matches: list[dict[str, Any]], now: datetime) -> list[int]:
    """Fire the active rules of the matched filters and regions; returns the new firings' ids."""
    from candidates.models import TriggerRule

    filter_ids = {m["filter_id"] for m in matches if m["filter_id"]}
    region_ids = {m["region_id"] for m in matches if m["region_id"]}
    rules = list(
        TriggerRule.objects.filter(active=True, kind__in=[RuleKind.MATCH, RuleKind.MICROLENSING])
        .filter(Q(filter_id__in=sorted(filter_ids)) | Q(region_id__in=sorted(region_ids)))
        .select_related("team__request_defaults")
    )
    if not rules:
        return []
    from candidates.services.triggers import request_params_for, triggers_evaluate_enqueue

    plain: list[tuple[int, int, int, int, str]] = []
    microlensing: dict[int, set[int]] = {}
    for rule in rules:
        for m in matches:
            if (rule.filter_id and m["filter_id"] == rule.filter_id) or (
                rule.region_id and m["region_id"] == rule.region_id
            ):
                if rule.kind == RuleKind.MICROLENSING:
                    microlensing.setdefault(rule.pk, set()).add(m["target_id"])
                else:
                    params = json.dumps(request_params_for(rule=rule))
                    plain.append((rule.pk, m["target_id"], m["candidate_id"], m["id"], params))
    firing_ids: list[int] = []
    if plain:
        cursor.execute(
            """
            INSERT INTO candidates_triggerfiring (rule_id, target_id, candidate_id, match_id, created_at,
                fit, request_params, status, request_ref, error)
            SELECT r, t, c, m, %s, '{}'::jsonb, p::jsonb, 'pending', '', ''
            FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::text[]) AS q(r, t, c, m, p)
            ON CONFLICT DO NOTHING
            RETURNING id
            """,
            [now, *[list(col) for col in zip(*plain, strict=True)]],
        )
        firing_ids = [row[0] for row in cursor.fetchall()]
        if firing_ids:
            from candidates.tasks import trigger_fire_task

            for firing_id in firing_ids:
                trigger_fire_task.delay_on_commit(firing_id)  # type: ignore[attr-defined]  # celery-types predates Celery 5.4
    if microlensing:
        triggers_evaluate_enqueue(targets_by_rule=microlensing)
    return firing_ids

