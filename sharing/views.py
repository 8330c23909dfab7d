"""The team's sharing page: destinations, the outbox and what failed (admins only)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views import View

from policies.views import _team, _team_context

from . import selectors, services
from .forms import DestinationForm
from .models import OutboxStatus
from .serializers import DestinationWriteSerializer


class SharingView(LoginRequiredMixin, View):
    """Destinations with their outbox counts, the latest outbox rows, a form to add a destination."""

    def _page(self, request: HttpRequest, slug: str, form: DestinationForm | None = None, status: int = 200) -> HttpResponse:
        team = _team(slug)
        context = _team_context(request, team)
        if not context["is_admin"]:
            raise PermissionDenied("only the team's admins manage its sharing")
        return render(request, "sharing/team_sharing.html", {
            **context, "destinations": selectors.destinations_of(team=team),
            "outbox": selectors.outbox_of(team=team)[:100],
            "failed": selectors.outbox_of(team=team, status=OutboxStatus.FAILED).count(),
            "form": form or DestinationForm(),
        }, status=status)

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        return self._page(request, slug)

    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        team = _team(slug)
        if request.POST.get("action") == "retry-failed":
            ids = list(selectors.outbox_of(team=team, status=OutboxStatus.FAILED).values_list("pk", flat=True))
            try:
                count = services.outbox_retry(team=team, by=request.user, item_ids=ids)
            except services.PolicyForbidden as exc:
                raise PermissionDenied(str(exc)) from exc
            messages.success(request, f"{count} failed item(s) queued again.")
            return redirect("sharing:team-sharing", slug=slug)
        form = DestinationForm(request.POST)
        if form.is_valid():
            data = {k: v for k, v in form.cleaned_data.items() if v not in ("", None)}
            serializer = DestinationWriteSerializer(data=data)
            if serializer.is_valid():
                try:
                    services.destination_create(team=team, by=request.user, data=dict(serializer.validated_data))
                except services.PolicyForbidden as exc:
                    raise PermissionDenied(str(exc)) from exc
                except services.PolicyInvalid as exc:
                    form.add_error("name", str(exc))
                else:
                    messages.success(request, f"Destination {data['name']} added; name it in the policy to use it.")
                    return redirect("sharing:team-sharing", slug=slug)
            else:
                for field, errors in serializer.errors.items():
                    form.add_error(field if field in form.fields else None, [str(e) for e in errors])
        return self._page(request, slug, form=form, status=400)
