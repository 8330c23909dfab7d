"""Drill pages: the list with the start form, the report (plots and tables), acknowledge, re-run, remove."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View
from plotly import offline

from observatories.scheduling.views import STATE_COLOURS

from . import services
from .forms import DrillForm
from .models import Drill, DrillState
from .scenarios import ScenarioInvalid


def _admin_teams(user: Any) -> list[tuple[str, str]]:
    from policies.selectors import team_is_admin, teams_of

    return [(t.slug, t.name) for t in teams_of(user=user).select_related("group") if team_is_admin(user=user, team=t)]


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _timeline_plot(report: dict[str, Any]) -> str:
    """One row per facility (each copy from its window start to its end state), alerts and faults marked."""
    fig = go.Figure()
    seen: set[str] = set()
    for d in report.get("dispatches", []):
        start = _when(d["window_start"])
        end = _when(d["finished_at"]) or _when(d["submitted_at"]) or start
        if start is None or end is None:
            continue
        fig.add_trace(go.Bar(
            base=[start], x=[max((end - start).total_seconds(), 600) * 1000], y=[f"{d['facility']} ({d['site']})"],
            orientation="h", marker_color=STATE_COLOURS.get(d["state"], "#999"), name=d["state"], legendgroup=d["state"],
            showlegend=d["state"] not in seen, hovertext=f"request {d['request']}: {d['state']} {d['reason']}",
        ))
        seen.add(d["state"])
    for event in report.get("events", []):
        if event.get("first_alert_at"):
            fig.add_vline(x=_when(event["first_alert_at"]), line_dash="dot", line_color="#0d6efd")
    for fault in report.get("faults", []):
        fig.add_vrect(x0=_when(fault["at"]), x1=_when(fault["end"]), fillcolor="#dc3545", opacity=0.08, line_width=0,
                      annotation_text=fault["kind"] + (f" {fault['site'] or fault['facility']}" if fault["site"] or fault["facility"] else ""),
                      annotation_position="top left")
    rows = len({d["facility"] for d in report.get("dispatches", [])})
    fig.update_layout(title="Copies at each facility (simulated UTC); dotted: first alert; shaded: faults",
                      barmode="overlay", xaxis={"type": "date"}, height=200 + 36 * rows,
                      margin={"l": 10, "r": 10, "t": 50, "b": 30})
    return offline.plot(fig, output_type="div", show_link=False, include_plotlyjs=True)


def _latency_plot(report: dict[str, Any]) -> str:
    latency = report.get("latency_s", {})
    labels = {"alert_to_request": "first request", "alert_to_dispatch": "first dispatch",
              "alert_to_observation": "first observation"}
    names = [labels[k] for k in labels if latency.get(k) is not None]
    hours = [latency[k] / 3600.0 for k in labels if latency.get(k) is not None]
    fig = go.Figure(go.Bar(x=hours, y=names, orientation="h", marker_color="#0d6efd",
                           text=[f"{h:.2f} h" for h in hours], textposition="auto"))
    fig.update_layout(title="Time from the first alert (simulated hours)", height=220, xaxis={"title": "hours"},
                      margin={"l": 10, "r": 10, "t": 40, "b": 30})
    return offline.plot(fig, output_type="div", show_link=False, include_plotlyjs=False)


class DrillListView(LoginRequiredMixin, View):
    def _render(self, request: HttpRequest, form: DrillForm) -> HttpResponse:
        drills = services.drills_visible_to(user=request.user)[:100]
        return render(request, "drills/drill_list.html", {"drills": drills, "form": form,
                                                          "can_start": bool(_admin_teams(request.user))})

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, DrillForm(teams=_admin_teams(request.user)))

    def post(self, request: HttpRequest) -> HttpResponse:
        from policies.models import Team

        form = DrillForm(request.POST, teams=_admin_teams(request.user))
        if not form.is_valid():
            return self._render(request, form)
        data = form.cleaned_data
        when = data.get("scheduled_for")
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        try:
            drill = services.drill_create(
                team=Team.objects.get(slug=data["team"]).group, user=request.user, name=data["name"],
                scenario=data["scenario_document"], seed=data["seed"], speed=data["speed"], scheduled_for=when,
            )
        except (ScenarioInvalid, services.DrillRefused) as exc:
            form.add_error(None, str(exc))
            return self._render(request, form)
        messages.success(request, f"Drill {drill.name!r} {'started' if drill.scheduled_for <= drill.created_at else 'scheduled'}.")
        return redirect("drills:detail", pk=drill.pk)


def _visible(request: HttpRequest, pk: int) -> Drill:
    drill = services.drills_visible_to(user=request.user).filter(pk=pk).first()
    if drill is None:
        raise Http404("no such drill")
    return drill


class DrillDetailView(LoginRequiredMixin, View):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        drill = _visible(request, pk)
        report = services.drill_report(drill=drill) if drill.state != DrillState.SCHEDULED else {}
        admin_of = {slug for slug, _ in _admin_teams(request.user)}
        context: dict[str, Any] = {"drill": drill, "report": report, "running": drill.state == DrillState.RUNNING,
                                   "is_admin": drill.team.baton_team.slug in admin_of}
        if report:
            context["timeline_plot"] = _timeline_plot(report)
            context["latency_plot"] = _latency_plot(report)
            context["my_unacked"] = [n for n in report.get("notifications", [])
                                     if n["recipient"] == request.user.get_username() and not any(
                                         a["user"] == request.user.get_username() for a in n["acks"])]
        return render(request, "drills/drill_detail.html", context)


class DrillRemoveView(LoginRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        drill = _visible(request, pk)
        try:
            services.drill_remove(drill=drill, user=request.user)
        except services.DrillRefused as exc:
            messages.error(request, str(exc))
            return redirect("drills:detail", pk=pk)
        messages.success(request, f"Drill {drill.name!r} and everything it made are removed.")
        return redirect("drills:list")


class DrillRerunView(LoginRequiredMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        drill = _visible(request, pk)
        try:
            again = services.drill_rerun(drill=drill, user=request.user)
        except (services.DrillRefused, ScenarioInvalid) as exc:
            messages.error(request, str(exc))
            return redirect("drills:detail", pk=pk)
        messages.success(request, "Re-running with the same scenario and seed.")
        return redirect("drills:detail", pk=again.pk)


class DrillAckView(LoginRequiredMixin, View):
    """The link in a drill's message: shows the notification; the button acknowledges it."""

    def get(self, request: HttpRequest, pk: int, notification_id: int) -> HttpResponse:
        drill = _visible(request, pk)
        notification = services.drill_notification(drill=drill, notification_id=notification_id)
        if notification is None:
            raise Http404("no such drill notification")
        acked = drill.acks.filter(notification_id=notification_id, user_id=int(request.user.pk or 0)).first()
        return render(request, "drills/drill_ack.html", {"drill": drill, "notification": notification, "acked": acked})

    def post(self, request: HttpRequest, pk: int, notification_id: int) -> HttpResponse:
        drill = _visible(request, pk)
        try:
            services.drill_ack(drill=drill, notification_id=notification_id, user=request.user)
        except services.DrillRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Acknowledged.")
        return redirect("drills:detail", pk=pk)
