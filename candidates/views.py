"""The team candidates page (newest matches, a light curve, one-click follow-up and labels) and the
selection-function ledger page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.views.decorators.http import require_POST

from candidates import selectors, services
from candidates.models import Candidate, CandidateLabel, RuleKind, TriggerFiring

PAGE_SIZE = 25
BAND_COLOURS = {"u": "#56b4e9", "g": "#009e73", "r": "#d55e00", "i": "#cc79a7", "z": "#000000", "y": "#e69f00"}


def lightcurve_div(*, title: str, curves: dict[str, list[tuple[Any, float, float | None]]]) -> str:
    """A plotly div of a magnitude light curve (one trace per band, magnitudes growing downwards)."""
    import plotly.graph_objects as go
    from plotly import offline

    fig = go.Figure()
    for band, points in sorted(curves.items()):
        fig.add_trace(go.Scatter(
            x=[p[0] for p in points], y=[p[1] for p in points], mode="markers", name=band,
            marker={"color": BAND_COLOURS.get(band)},
            error_y={"type": "data", "array": [p[2] or 0 for p in points], "visible": True},
        ))  # fmt: skip
    fig.update_layout(
        title=title, height=320, margin={"l": 50, "r": 20, "t": 40, "b": 40}, template="plotly_white",
        yaxis={"autorange": "reversed", "title": "AB mag"}, xaxis={"title": "UTC"},
    )  # fmt: skip
    return offline.plot(fig, output_type="div", show_link=False, include_plotlyjs=True)


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@login_required
def candidates_page(request: HttpRequest) -> HttpResponse:
    """Matches of the user's teams (and own filters/regions), newest first, with filters in the query string."""
    qs = selectors.matches_visible_to(user=request.user)
    chosen = {key: request.GET.get(key, "") for key in ("team", "filter", "region", "band", "broker")}
    for key in ("team", "filter", "region"):
        if (value := _int(chosen[key])) is not None:
            qs = qs.filter(**{f"{key}_id": value})
    if chosen["band"]:
        qs = qs.filter(candidate__band=chosen["band"])
    if chosen["broker"]:
        qs = qs.filter(candidate__broker=chosen["broker"])
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    selected = None
    if (show := _int(request.GET.get("show"))) is not None:
        selected = selectors.matches_visible_to(user=request.user).filter(pk=show).first()
    if selected is None and rows:
        selected = rows[0]
    plot = ""
    if selected is not None:
        curves = selectors.lightcurves_for(target_ids=[selected.target_id]).get(selected.target_id, {})
        plot = lightcurve_div(title=selected.target.name, curves=curves)
    requested = set(
        TriggerFiring.objects.filter(rule__kind=RuleKind.MANUAL, target_id__in=[m.target_id for m in rows])
        .values_list("rule__team_id", "target_id")
    )
    labels: dict[tuple[int, int], CandidateLabel] = {}
    for label in (CandidateLabel.objects.filter(candidate_id__in=[m.candidate_id for m in rows],
                                                team_id__in=[m.team_id for m in rows if m.team_id])
                  .select_related("user").order_by("updated_at", "id")):
        labels[(label.candidate_id, label.team_id)] = label  # the latest wins: the team's current label
    for match in rows:
        match.requested = (match.team_id, match.target_id) in requested  # type: ignore[attr-defined]
        match.label = labels.get((match.candidate_id, match.team_id or 0))  # type: ignore[attr-defined]
        scores = match.candidate.classifications or []
        match.top_score = max(scores, key=lambda c: c.get("score", 0)) if scores else None  # type: ignore[attr-defined]
    query = request.GET.copy()
    query.pop("show", None)
    query.pop("page", None)
    return render(request, "candidates/candidates.html", {
        "page": page, "rows": rows, "selected": selected, "plot": plot, "chosen": chosen,
        "teams": selectors.team_groups_of(user=request.user),
        "filters": selectors.filters_visible_to(user=request.user),
        "regions": selectors.regions_visible_to(user=request.user),
        "query": query.urlencode(),
    })  # fmt: skip


@login_required
@require_POST
def followup_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The one-click "request follow-up" button."""
    match = get_object_or_404(selectors.matches_visible_to(user=request.user), pk=pk)
    if match.team is None:
        messages.error(request, "Follow-up is requested for a team; this match came from a personal filter.")
    else:
        firing, created = services.followup_request(match=match, team=match.team, user=request.user)
        if created:
            messages.success(request, f"Follow-up of {match.target.name} requested for {match.team.name}.")
        else:
            messages.info(request, f"{match.team.name} has already requested follow-up of {match.target.name} "
                          f"({firing.get_status_display()}).")
    back = request.POST.get("next", "")
    return HttpResponseRedirect(reverse("candidates:page") + (f"?{back}" if back and "//" not in back else ""))


# --------------------------------------------------------------------------------------
# Vetting and the ledger page


@login_required
@require_POST
def label_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The one-click label buttons of a candidates-page row: real / bogus, with an optional class and note."""
    candidate = get_object_or_404(Candidate.objects.only("id", "alert_id", "broker"), pk=pk)
    team_id = _int(request.POST.get("team"))
    team = Group.objects.filter(pk=team_id).first() if team_id is not None else None
    if team is None:
        messages.error(request, "Choose the team you label for.")
    else:
        try:
            services.label_set(candidate=candidate, team=team, user=request.user,
                               verdict=request.POST.get("verdict", ""), label_class=request.POST.get("label_class", ""),
                               note=request.POST.get("note", ""))
        except services.LabelRefused as exc:
            return HttpResponseForbidden(str(exc))
        except services.LabelInvalid as exc:
            messages.error(request, f"Label not recorded: {exc}")
        else:
            messages.success(request, f"Labelled {candidate.broker}:{candidate.alert_id} for {team.name}.")
    back = request.POST.get("next", "")
    return HttpResponseRedirect(reverse("candidates:page") + (f"?{back}" if back and "//" not in back else ""))


def _period(request: HttpRequest, now: datetime) -> tuple[datetime, datetime, list[str]]:
    """The page's period from ?start=&end= (ISO dates or times, UTC), by default the last 30 days."""
    errors: list[str] = []
    bounds: dict[str, datetime] = {"start": now - timedelta(days=30), "end": now + timedelta(seconds=1)}
    for key in ("start", "end"):
        raw = request.GET.get(key, "").strip()
        if not raw:
            continue
        try:
            value = parse_datetime(raw)
            day = parse_date(raw) if value is None else None
        except ValueError:
            value = day = None
        if day is not None:
            value = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if value is None:
            errors.append(f"{key}: {raw!r} is not a date or an ISO 8601 time")
            continue
        bounds[key] = value if value.tzinfo else value.replace(tzinfo=UTC)
    if bounds["end"] <= bounds["start"]:
        errors.append("end: must be after start")
    return bounds["start"], bounds["end"], errors


def _fraction_plot(binned: list[tuple[float, int, int, int]], *, title: str, axis: str, width: float) -> str:
    import plotly.graph_objects as go
    from plotly import offline

    fig = go.Figure()
    centres = [b[0] + width / 2 for b in binned]
    for index, name in ((2, "follow-up requested"), (3, "observed")):
        fig.add_trace(go.Scatter(
            x=centres, y=[b[index] / b[1] if b[1] else None for b in binned], mode="lines+markers", name=name,
            customdata=[[b[1], b[index]] for b in binned],
            hovertemplate="%{customdata[1]} of %{customdata[0]}: %{y:.1%}<extra>" + name + "</extra>",
        ))  # fmt: skip
    fig.update_layout(
        title=title, height=320, margin={"l": 50, "r": 20, "t": 40, "b": 40}, template="plotly_white",
        xaxis={"title": axis}, yaxis={"title": "fraction of candidates", "range": [0, 1.05], "tickformat": ".0%"},
    )  # fmt: skip
    return offline.plot(fig, output_type="div", show_link=False, include_plotlyjs=False)


def _efficiency_plot(figures: list[Any]) -> str:
    import plotly.graph_objects as go
    from plotly import offline

    names = [f"{e.kind}: {e.name}" for e in figures]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=names, y=[e.efficiency for e in figures], name="efficiency (selected real / real)"))
    fig.add_trace(go.Bar(x=names, y=[e.purity for e in figures], name="purity (real / selected)"))
    fig.update_layout(
        title="Efficiency and purity over labelled candidates", barmode="group", height=360,
        margin={"l": 50, "r": 20, "t": 40, "b": 100}, template="plotly_white",
        yaxis={"range": [0, 1.05], "tickformat": ".0%"},
    )  # fmt: skip
    return offline.plot(fig, output_type="div", show_link=False, include_plotlyjs=False)


@login_required
def ledger_view(request: HttpRequest) -> HttpResponse:
    """A team's selection function: counts per final reason, the fraction followed against magnitude
    and classifier score, and each filter's and classifier's efficiency and purity over labels."""
    from candidates import ledger

    teams = list(selectors.team_groups_of(user=request.user))
    now = timezone.now()
    start, end, errors = _period(request, now)
    team_id = _int(request.GET.get("team")) or (teams[0].pk if teams else None)
    team = next((t for t in teams if t.pk == team_id), None)
    if request.GET.get("team") and team is None:
        return HttpResponseForbidden("Only the team's members may read its ledger.")
    threshold = 0.5
    try:
        threshold = float(request.GET.get("threshold", "0.5"))
        if not 0.0 <= threshold <= 1.0:
            raise ValueError
    except ValueError:
        errors.append("threshold: a number between 0 and 1")
    context: dict[str, Any] = {"teams": teams, "team": team, "start": start, "end": end, "errors": errors,
                               "threshold": threshold, "reasons": [], "total": 0}
    if team is not None and not errors:
        scope = ledger.Scope(team_id=team.pk)
        counts = ledger.ledger_counts(scope=scope, start=start, end=end)
        total = sum(counts.values())
        context["reasons"] = [(r, n, ledger.REASONS[r], n / total if total else 0.0) for r, n in counts.items()]
        context["total"] = total
        binned = ledger.ledger_followed_by(scope=scope, start=start, end=end)
        context["mag_plot"] = _fraction_plot(binned["mag"], title="Fraction followed against magnitude",
                                             axis="AB mag (0.5 mag bins)", width=0.5) if binned["mag"] else ""
        context["score_plot"] = _fraction_plot(binned["score"], title="Fraction followed against classifier score",
                                               axis="top classifier score (0.1 bins)", width=0.1) if binned["score"] else ""
        labelled, figures = ledger.ledger_efficiency(scope=scope, start=start, end=end, threshold=threshold)
        context["labelled"] = labelled
        context["figures"] = figures
        context["efficiency_plot"] = _efficiency_plot(figures) if figures and labelled else ""
        period = {"team": team.pk, "start": start.isoformat(), "end": end.isoformat()}
        context["export_csv"] = reverse("candidates:api-ledger-export") + "?" + urlencode({**period, "format": "csv"})
        context["export_parquet"] = (reverse("candidates:api-ledger-export") + "?"
                                     + urlencode({**period, "format": "parquet"}))
        context["training_csv"] = reverse("candidates:api-training-set") + "?" + urlencode({"team": team.pk})
        context["training_parquet"] = (reverse("candidates:api-training-set") + "?"
                                       + urlencode({"team": team.pk, "format": "parquet"}))
    if context.get("mag_plot") or context.get("score_plot") or context.get("efficiency_plot"):
        from plotly.offline import get_plotlyjs

        context["plotly_js"] = get_plotlyjs()  # once for the page's plots (inline: no route to a CDN)
    return render(request, "candidates/ledger.html", context, status=400 if errors else 200)
