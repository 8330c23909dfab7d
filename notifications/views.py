"""Pages of `notifications`: the inbox and the preferences page (thin: a selector or a service each)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View

from . import selectors, services
from .events import title_for
from .forms import PreferenceForm
from .messages import link_for


def _row(n: object) -> dict[str, object]:
    event, payload = getattr(n, "event", ""), getattr(n, "payload", {}) or {}
    return {"n": n, "title": title_for(event, payload), "path": urlsplit(link_for(event, payload)).path}


class InboxView(LoginRequiredMixin, View):
    """Your inbox, and what went out to you by email and Slack (with any failure)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        page = Paginator(selectors.notifications_for(user=request.user), 50).get_page(request.GET.get("page"))
        context = {
            "page": page, "rows": [_row(n) for n in page],
            "deliveries": [_row(n) for n in selectors.deliveries_for(user=request.user, limit=30)],
            "unread": selectors.inbox_unread_count(user=request.user),
        }
        return render(request, "notifications/inbox.html", context)

    def post(self, request: HttpRequest) -> HttpResponse:
        marked = services.notifications_mark_all_read(user=request.user)
        messages.success(request, f"Marked {marked} notification{'s' if marked != 1 else ''} read.")
        return redirect("notifications:inbox")


class NotificationOpenView(LoginRequiredMixin, View):
    """Mark a notification read and go to what it is about."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        row = services.notification_mark_read(user=request.user, notification_id=pk)
        if row is None:
            raise Http404("no such notification")
        return redirect(urlsplit(link_for(row.event, row.payload or {})).path or reverse("notifications:inbox"))


class PreferencesView(LoginRequiredMixin, View):
    """Set your own notification preferences, within your teams' rules (which the page lists)."""

    def _render(self, request: HttpRequest, form: PreferenceForm) -> HttpResponse:
        return render(request, "notifications/preferences.html",
                      {"form": form, "overview": selectors.rules_overview(user=request.user)})

    def get(self, request: HttpRequest) -> HttpResponse:
        preference = selectors.preference_for(user=request.user)
        initial = {name: getattr(preference, name) for name in services.preferences.FIELDS}
        initial["digest_hour"] = preference.digest_hour
        return self._render(request, PreferenceForm(initial=initial))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = PreferenceForm(request.POST)
        if form.is_valid():
            try:
                services.preference_update(user=request.user, changes=form.cleaned_data)
            except services.NotificationInvalid as exc:
                field, _, message = str(exc).partition(": ")
                form.add_error(field if field in form.fields else None, message or str(exc))
            else:
                messages.success(request, "Your notification preferences are saved.")
                return redirect("notifications:preferences")
        return self._render(request, form)
