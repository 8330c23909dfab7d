"""The team candidates page: newest matches, filterable, a light curve, one-click follow-up."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from candidates import selectors, services
from candidates.models import RuleKind, TriggerFiring

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
    for match in rows:
        match.requested = (match.team_id, match.target_id) in requested  # type: ignore[attr-defined]
        scores = match.candidate.classifications or []
        match.top_score = max(scores, key=lambda c: c.get("score", 0)) if scores else None  # type: ignore[attr-defined]
    query = request.GET.copy()
    query.pop("show", None)
    query.pop("page", None)
    return render(request, "candidates/candidates.html", {
        "page": page, "rows": rows, "selected": selected, "plot": plot, "chosen": chosen,
        "teams": request.user.groups.order_by("name"),  # type: ignore[union-attr]
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
