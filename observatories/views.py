"""Pages of the facility network: the network page and a target's visibility over the network tonight."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from tom_targets.models import Target

from observatories.selectors import network_overview, target_network_visibility, tonight_start

# The altitude of airmass 2, the default limit drawn on the plot.
AIRMASS_2_ALT_DEG = 30.0


@login_required
def network_page(request: HttpRequest) -> HttpResponse:
    """Sites with their facilities' current state (available / weather / downtime / unknown) and day or night."""
    now = timezone.now()
    return render(request, "observatories/network.html", {"rows": network_overview(now=now), "now": now})


def visibility_plot_html(*, target: Target, now: datetime) -> str:
    """A plotly div: the target's altitude at every site over the next 24 h, drawn only while it is night there.

    Night is the Sun below -12 deg (nautical twilight), the simulator's limit;
    the dashed line is airmass 2 (altitude 30 deg).
    """
    import plotly.graph_objects as go
    from plotly import offline
    from plotly.colors import qualitative

    if target.ra is None or target.dec is None:
        return ""
    vis = target_network_visibility(ra_deg=target.ra, dec_deg=target.dec, start=tonight_start(now=now))
    fig = go.Figure()
    for index, site in enumerate(vis.sites):
        altitude = np.where(vis.sun_altitude_deg[index] <= -12.0, vis.altitude_deg[index], np.nan)
        altitude = np.where(altitude > 0.0, altitude, np.nan)
        fig.add_trace(
            go.Scatter(
                x=vis.times,
                y=np.round(altitude, 2),
                mode="lines",
                name=f"{site.code} ({site.continent})",
                connectgaps=False,
                hovertemplate=f"{site.code}: %{{y:.1f}}°<br>%{{x}} UTC<extra></extra>",
            )
        )
    fig.add_hline(y=AIRMASS_2_ALT_DEG, line_dash="dash", line_color="grey", annotation_text="airmass 2")
    fig.add_vline(x=now, line_color="black", line_width=1)
    fig.update_layout(
        colorway=qualitative.Dark24,  # more sites than plotly's default ten colours
        title=f"{target.name}: altitude at each site during its night (Sun below -12°), next 24 h",
        xaxis_title="time (UTC)",
        yaxis_title="altitude (deg)",
        yaxis_range=[0, 90],
        height=450,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
        template="plotly_white",
    )
    return offline.plot(fig, output_type="div", show_link=False, include_plotlyjs=True)


def target_visibility_tab_context(context: dict[str, Any]) -> dict[str, Any]:
    """Context of the "Network visibility" tab on TOM's target page (TOM's ``target_detail_tabs`` hook)."""
    target = context.get("object") or context.get("target")
    if not isinstance(target, Target):
        return {"target": None, "plot": ""}
    return {"target": target, "plot": visibility_plot_html(target=target, now=timezone.now())}


@login_required
def target_visibility_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The target's visibility over the network tonight, for a target the user may see (404 otherwise)."""
    from policies.access import targets_visible_to  # the one door for access decisions

    target = targets_visible_to(user=request.user, queryset=Target.objects.filter(pk=pk)).first()
    if target is None:
        raise Http404("no such target")
    return render(
        request,
        "observatories/target_visibility.html",
        {"target": target, "plot": visibility_plot_html(target=target, now=timezone.now())},
    )
