"""Pages of the scheduler: requests (list, form, detail with a timeline across sites) and the night plan."""

from __future__ import annotations

from datetime import timedelta

import plotly.graph_objects as go
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views import View
from django.views.generic import FormView, ListView
from plotly import offline

from . import hooks
from .forms import RequestForm
from .models import Dispatch, ObservingRequest
from .selectors import night_plan, requests_visible_to
from .services import IllegalTransition, RequestInvalid, request_cancel, request_submit

STATE_COLOURS = {
    "queued": "#adb5bd", "submitted": "#0d6efd", "pending": "#0d6efd", "in_progress": "#fd7e14",
    "completed": "#198754", "failed_weather": "#6f42c1", "failed_other": "#dc3545", "cancelled": "#dee2e6",
    "expired": "#6c757d",
}


def _timeline(dispatches: list[Dispatch], *, title: str, now) -> str:
    """A Gantt-style plot: one row per facility, one bar per copy, coloured by state."""
    fig = go.Figure()
    seen: set[str] = set()
    for d in dispatches:
        row = f"{d.facility.code} ({d.facility.site.code})"
        fig.add_trace(
            go.Bar(
                base=[d.window_start], x=[(d.window_end - d.window_start).total_seconds() * 1000], y=[row],
                orientation="h", marker_color=STATE_COLOURS.get(d.state, "#999"), name=d.get_state_display(),
                legendgroup=d.state, showlegend=d.state not in seen,
                hovertext=f"{d.request.target.name}: {d.get_state_display()} p={d.p_success:.2f} {d.reason}",
            )
        )
        seen.add(d.state)
    fig.add_vline(x=now, line_dash="dot", line_color="black")
    fig.update_layout(
        title=title, barmode="overlay", xaxis={"type": "date", "title": "UTC"}, height=160 + 40 * len({d.facility_id for d in dispatches}),
        margin={"l": 10, "r": 10, "t": 40, "b": 30},
    )
    return offline.plot(fig, output_type="div", show_link=False, include_plotlyjs=True)


class RequestListView(LoginRequiredMixin, ListView):
    template_name = "scheduling/request_list.html"
    context_object_name = "requests"
    paginate_by = 50

    def get_queryset(self):
        return requests_visible_to(user=self.request.user)


class RequestCreateView(LoginRequiredMixin, FormView):
    template_name = "scheduling/request_form.html"
    form_class = RequestForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.request.user}

    def get_initial(self):
        initial = super().get_initial()
        if "target" in self.request.GET:
            initial["target"] = self.request.GET["target"]
        return initial

    def form_valid(self, form: RequestForm) -> HttpResponse:
        data = form.cleaned_data
        hours = data.get("cadence_period_hours")
        try:
            created = request_submit(
                target=data["target"], team=data["team"], requester=self.request.user,
                telescope_class=data["telescope_class"],
                exposures=[{"filter": data["filter"], "exposure_s": data["exposure_s"], "count": data["count"]}],
                window_start=data["window_start"], window_end=data["window_end"],
                cadence_visits=data["cadence_visits"], cadence_period=timedelta(hours=hours) if hours else None,
                max_airmass=data["max_airmass"], min_moon_separation_deg=data["min_moon_separation_deg"],
                priority=data["priority"], success_probability=data["success_probability"], source="web",
            )
        except RequestInvalid as exc:
            form.add_error(None, str(exc))
            return self.form_invalid(form)
        messages.success(self.request, f"Request {created.pk} submitted: Baton is planning its copies.")
        return redirect("scheduling:request-detail", pk=created.pk)


class RequestDetailView(LoginRequiredMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        found = requests_visible_to(user=request.user).filter(pk=pk).first()
        if found is None:
            raise Http404("no such request")
        dispatches = list(found.dispatches.select_related("facility__site", "request__target"))
        now = timezone.now()
        return render(request, "scheduling/request_detail.html", {
            "obs_request": found, "dispatches": dispatches, "transitions": found.transitions.all(),
            "timeline": _timeline(dispatches, title="Copies across the network", now=now) if dispatches else "",
        })


class RequestCancelView(LoginRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        found = requests_visible_to(user=request.user).filter(pk=pk).first()
        if found is None:
            raise Http404("no such request")
        if not (request.user.is_superuser or hooks.request_act_allowed(user=request.user, team=found.team)):
            raise PermissionDenied("only the team's admins and members may cancel its requests")
        try:
            request_cancel(request_id=found.pk, actor=request.user.get_username())
            messages.success(request, f"Request {pk} cancelled; its copies are being withdrawn.")
        except IllegalTransition:
            messages.error(request, f"Request {pk} has already ended.")
        return redirect("scheduling:request-detail", pk=pk)


class NightPlanView(LoginRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        now = timezone.now()
        start = now - timedelta(hours=6)
        dispatches = list(night_plan(user=request.user, start=start, hours=30))
        return render(request, "scheduling/night_plan.html", {
            "dispatches": dispatches, "start": start,
            "plot": _timeline(dispatches, title="Night plan: planned and observed copies per facility", now=now)
            if dispatches else "",
        })


__all__ = ["NightPlanView", "ObservingRequest", "RequestCancelView", "RequestCreateView", "RequestDetailView", "RequestListView"]
