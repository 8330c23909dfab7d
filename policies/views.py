"""Pages of `policies`: teams and members, the policy (view, edit, history), ledger, audit, claims, inbox.

Views are thin: every read goes through :mod:`policies.access`, every change
through one service; a refusal shows as 403 and something invisible as 404.
"""

from __future__ import annotations

import difflib
import json
from datetime import UTC
from typing import Any

import plotly.graph_objs as go
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views import View
from plotly import offline
from tom_targets.models import Target

from . import access, selectors, services
from .documents import PolicyDocument
from .forms import ClaimForm, MemberForm, PolicyEditor
from .models import ClaimState, DataKind, InboxNotification, PolicyDecision, Role, Team


def _team(slug: str) -> Team:
    team = Team.objects.select_related("group").filter(slug=slug).first()
    if team is None:
        raise Http404("no such team")
    return team


def _team_context(request: HttpRequest, team: Team) -> dict[str, Any]:
    role = selectors.team_role_of(user=request.user, team=team)
    return {"team": team, "my_role": role, "is_admin": role == Role.ADMIN,
            "is_member": role is not None or request.user.is_superuser}


class TeamListView(LoginRequiredMixin, View):
    """Every team of the network, with the viewer's role."""

    def get(self, request: HttpRequest) -> HttpResponse:
        rows = [(team, selectors.team_role_of(user=request.user, team=team), team.group.user_set.count())
                for team in Team.objects.select_related("group")]
        return render(request, "policies/team_list.html", {"rows": rows})


class TeamDetailView(LoginRequiredMixin, View):
    """A team: its members and roles (members see them; admins manage them)."""

    def get(self, request: HttpRequest, slug: str, form: MemberForm | None = None) -> HttpResponse:
        team = _team(slug)
        context = _team_context(request, team)
        if context["is_member"]:
            context["members"] = selectors.team_members(team=team)
        context["form"] = form or MemberForm()
        context["roles"] = Role.choices
        return render(request, "policies/team_detail.html", context)

    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        team = _team(slug)
        user_model = get_user_model()
        try:
            if "remove" in request.POST:
                user = user_model.objects.filter(pk=int(request.POST.get("remove") or 0)).first()
                if user is None:
                    raise services.PolicyInvalid("no such user")
                services.team_member_remove(team=team, user=user, by=request.user)
                messages.success(request, f"{user.get_username()} removed from {team}.")
            else:
                form = MemberForm(request.POST)
                if not form.is_valid():
                    return self.get(request, slug, form=form)
                user = user_model.objects.filter(username=form.cleaned_data["username"]).first()
                if user is None:
                    raise services.PolicyInvalid(f"no user named {form.cleaned_data['username']!r}")
                services.team_member_set(team=team, user=user, role=form.cleaned_data["role"], by=request.user)
                messages.success(request, f"{user.get_username()} is now {form.cleaned_data['role']} of {team}.")
        except services.PolicyForbidden as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.PolicyInvalid as exc:
            messages.error(request, str(exc))
        return redirect("policies:team-detail", slug=team.slug)


def _readable(request: HttpRequest, team: Team, document: dict[str, Any]) -> tuple[list[str], PolicyDocument]:
    parts = access.policy_parts_readable(user=request.user, team_group_id=team.group_id)
    shown = {k: v for k, v in document.items() if k in parts or k == "schema"}
    return parts, PolicyDocument.from_json(shown)


class PolicyView(LoginRequiredMixin, View):
    """The team's policy in force, in words (the parts the viewer may read)."""

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        team = _team(slug)
        version = selectors.policy_version_current(team=team)
        if version is None:
            raise Http404("the team has no policy yet")
        parts, document = _readable(request, team, version.document)
        return render(request, "policies/policy.html", {
            **_team_context(request, team), "version": version, "parts": parts, "document": document,
            "sharing": [(DataKind(k).label, document.rule(k)) for k in DataKind.values],
            "usage": selectors.usage_summary(team=team) if "time" in parts else [],
        })


class PolicyEditView(LoginRequiredMixin, View):
    """The policy editor (the team's admins only): saving makes a new version."""

    def _check(self, request: HttpRequest, team: Team) -> None:
        if not selectors.team_is_admin(user=request.user, team=team):
            raise PermissionDenied("only the team's admins may change its policy")

    def _render(self, request: HttpRequest, team: Team, editor: PolicyEditor, errors: list[str] | None = None) -> HttpResponse:
        return render(request, "policies/policy_edit.html", {**_team_context(request, team), "editor": editor,
                                                            "errors": errors or [], "comment": request.POST.get("comment", "")})

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        team = _team(slug)
        self._check(request, team)
        document = selectors.policy_in_force(team=team).document
        return self._render(request, team, PolicyEditor(team=team, document=document))

    def post(self, request: HttpRequest, slug: str) -> HttpResponse:
        team = _team(slug)
        self._check(request, team)
        editor = PolicyEditor(team=team, document=selectors.policy_in_force(team=team).document, data=request.POST)
        if not editor.is_valid():
            return self._render(request, team, editor, ["Please correct the fields marked below."])
        try:
            version = services.policy_update(team=team, by=request.user, document=editor.document(),
                                             comment=request.POST.get("comment", ""))
        except services.PolicyInvalid as exc:
            return self._render(request, team, editor, [str(exc)])
        messages.success(request, f"Saved as version {version.number}.")
        return redirect("policies:policy", slug=team.slug)


class PolicyHistoryView(LoginRequiredMixin, View):
    """Every version of the team's policy: who changed it, when, why."""

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        team = _team(slug)
        versions = team.policy_versions.select_related("created_by").order_by("-number")
        return render(request, "policies/policy_history.html", {**_team_context(request, team), "versions": versions})


class PolicyVersionView(LoginRequiredMixin, View):
    """One old version, with what changed since the version before it."""

    def get(self, request: HttpRequest, slug: str, number: int) -> HttpResponse:
        team = _team(slug)
        version = team.policy_versions.select_related("created_by").filter(number=number).first()
        if version is None:
            raise Http404("no such version")
        parts, document = _readable(request, team, version.document)
        previous = team.policy_versions.filter(number__lt=number).order_by("-number").first()
        diff: list[str] = []
        if previous is not None:
            before = json.dumps({k: v for k, v in previous.document.items() if k in parts}, indent=2, sort_keys=True).splitlines()
            after = json.dumps({k: v for k, v in version.document.items() if k in parts}, indent=2, sort_keys=True).splitlines()
            diff = list(difflib.unified_diff(before, after, f"v{previous.number}", f"v{version.number}", lineterm=""))
        return render(request, "policies/policy_version.html", {
            **_team_context(request, team), "version": version, "previous": previous, "diff": diff,
            "document_json": json.dumps({k: v for k, v in version.document.items() if k in parts}, indent=2, sort_keys=True),
        })


class LedgerView(LoginRequiredMixin, View):
    """The team's contribution ledger (network members): balance over time, factor, entries, usage."""

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        team = _team(slug)
        if not (request.user.is_superuser or selectors.team_group_ids_of(user=request.user)):
            raise PermissionDenied("the ledger is open to the network's teams")
        series = selectors.ledger_series(team=team.group)
        plot = ""
        if series:
            figure = go.Figure(
                data=[go.Scatter(x=[at for at, _ in series], y=[v for _, v in series], mode="lines+markers", line_shape="hv")],
                layout=go.Layout(height=300, margin={"t": 20, "b": 40}, yaxis={"title": "balance (credits = telescope hours)"}),
            )
            # plotly.js inline, as TOM's own plots do: the page works without the internet.
            plot = offline.plot(figure, output_type="div", show_link=False, include_plotlyjs=True)
        context = _team_context(request, team)
        return render(request, "policies/ledger.html", {
            **context, "totals": selectors.ledger_totals(team=team.group), "plot": plot,
            "factor": services.team_priority_factor(team=team.group),
            "entries": team.group.baton_ledger.select_related("policy_version").order_by("-at", "-pk")[:100],
            "usage": selectors.usage_summary(team=team) if context["is_member"] else None,
        })


class AuditView(LoginRequiredMixin, View):
    """The decisions the team's policy made, each with its version (the team's admins)."""

    def get(self, request: HttpRequest, slug: str) -> HttpResponse:
        team = _team(slug)
        if not (request.user.is_superuser or selectors.team_is_admin(user=request.user, team=team)):
            raise PermissionDenied("only the team's admins may read its audit trail")
        action = request.GET.get("action") or None
        if action and action not in PolicyDecision.Action.values:
            action = None
        page = Paginator(selectors.decisions_for(team=team, action=action), 50).get_page(request.GET.get("page"))
        return render(request, "policies/audit.html", {**_team_context(request, team), "page": page, "action": action,
                                                       "actions": PolicyDecision.Action.choices})


class ClaimListView(LoginRequiredMixin, View):
    """Claims the viewer may see."""

    def get(self, request: HttpRequest) -> HttpResponse:
        claims = list(access.claims_visible_to(user=request.user).order_by("-created_at")[:500])
        visible = set(access.targets_visible_to(user=request.user).filter(pk__in={c.target_id for c in claims if c.target_id})
                      .values_list("pk", flat=True))
        return render(request, "policies/claim_list.html", {
            "claims": claims, "visible_targets": visible, "can_claim": selectors.teams_of(user=request.user).exists()})


def _claiming_teams(request: HttpRequest) -> list[Team]:
    return [t for t in selectors.teams_of(user=request.user)
            if selectors.team_role_of(user=request.user, team=t) in (Role.ADMIN, Role.MEMBER)]


class ClaimCreateView(LoginRequiredMixin, View):
    """Propose a claim for one of the viewer's teams."""

    def get(self, request: HttpRequest) -> HttpResponse:
        initial = {"target": request.GET.get("target")} if request.GET.get("target") else {}
        form = ClaimForm(teams=_claiming_teams(request), initial=initial)
        return render(request, "policies/claim_form.html", {"form": form})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ClaimForm(request.POST, teams=_claiming_teams(request))
        if not form.is_valid():
            return render(request, "policies/claim_form.html", {"form": form})
        data = dict(form.cleaned_data)
        team = _team(data.pop("team"))
        target_id = data.pop("target")
        target = Target.objects.filter(pk=target_id).first() if target_id else None
        if target_id and (target is None or not access.target_visible_to(user=request.user, target=target)):
            form.add_error("target", "no such target")
            return render(request, "policies/claim_form.html", {"form": form})
        for key in ("exclusive_until", "expires_at"):
            if timezone.is_naive(data[key]):
                data[key] = data[key].replace(tzinfo=UTC)
        try:
            claim = services.claim_propose(team=team.group, by=request.user, target=target, **data)
        except services.PolicyForbidden as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.PolicyInvalid as exc:
            form.add_error(None, str(exc))
            return render(request, "policies/claim_form.html", {"form": form})
        messages.success(request, f"Claim {claim.pk} is {claim.state}.")
        return redirect("policies:claim-detail", pk=claim.pk)


class ClaimDetailView(LoginRequiredMixin, View):
    """One claim: agreements, conflicts, history, contributors; actions for those who may act."""

    def _claim(self, request: HttpRequest, pk: int) -> Any:
        claim = access.claims_visible_to(user=request.user).filter(pk=pk).first()
        if claim is None:
            raise Http404("no such claim")
        return claim

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        from .serializers import ClaimDetailSerializer

        claim = self._claim(request, pk)
        target_visible = claim.target_id is not None and access.target_visible_to(user=request.user, target=claim.target, audit=False)
        my_groups = selectors.team_group_ids_of(user=request.user)
        admin_of = {t.group_id for t in selectors.teams_of(user=request.user) if selectors.team_is_admin(user=request.user, team=t)}
        detail = ClaimDetailSerializer(claim, context={"visible_target_ids": {claim.target_id} if target_visible else set()}).data
        return render(request, "policies/claim_detail.html", {
            "claim": claim, "detail": detail, "target_visible": target_visible,
            "contributors": services.claim_contributors(claim=claim),
            "can_release": claim.state in (ClaimState.PROPOSED, ClaimState.ACTIVE, ClaimState.CONTESTED) and claim.team_id in my_groups,
            "consents_to_answer": [c for c in claim.consents.select_related("team") if c.team_id in admin_of and c.decision == "pending"],
            "open_conflicts": [c for c in detail["conflicts"] if c["resolved_at"] is None],
        })

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        claim = self._claim(request, pk)
        action = request.POST.get("action")
        try:
            if action == "release":
                services.claim_release(claim=claim, by=request.user, reason=request.POST.get("reason", ""))
            elif action in ("agree", "decline"):
                team = _team(request.POST.get("team", ""))
                services.claim_consent(claim=claim, team=team.group, by=request.user, agree=action == "agree")
            elif action == "accept-overlap":
                other = access.claims_visible_to(user=request.user).filter(pk=request.POST.get("other") or 0).first()
                if other is None:
                    raise services.PolicyInvalid("no such claim")
                services.claim_conflict_resolve(claim=claim, other=other, by=request.user)
            else:
                raise services.PolicyInvalid("unknown action")
        except services.PolicyForbidden as exc:
            raise PermissionDenied(str(exc)) from exc
        except services.PolicyInvalid as exc:
            messages.error(request, str(exc))
        return redirect("policies:claim-detail", pk=claim.pk)


class InboxView(LoginRequiredMixin, View):
    """The viewer's policy notifications (policies' own inbox; the notifications app's inbox when it delivers them)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        if selectors.policies_setting("NOTIFY", ""):
            return redirect("notifications:inbox")
        mine = InboxNotification.objects.filter(recipient_id=request.user.pk).select_related("team")
        page = Paginator(mine, 50).get_page(request.GET.get("page"))
        return render(request, "policies/inbox.html", {"page": page})


def target_tab_context(context: Any) -> dict[str, Any]:
    """The "Policy & claims" tab on TOM's target page: who owns what here, claims, and the viewer's share."""
    request = context.get("request")
    target = context.get("object") or context.get("target")
    if request is None or target is None:
        return {}
    user = request.user
    claims = list(access.claims_visible_to(user=user).filter(target=target))
    ownership = []
    policies = selectors.policies_in_force()
    for row in (target.baton_data_ownership.filter(team__isnull=False).values("team_id", "kind")
                .order_by("team_id", "kind").distinct()):
        policy = policies.get(row["team_id"])
        if policy is None:
            continue
        rule = policy.document.rule(row["kind"])
        ownership.append({"team": policy.slug, "kind": row["kind"], "rule": rule})
    return {"target": target, "claims": claims, "ownership": ownership,
            "claim_url": reverse("policies:claim-create") + f"?target={target.pk}"}
