"""TOM's own pages that change things, behind the door: observation cancel and update, target merge, featuring
a data product.

TOM's views check only that a user is signed in (the merge view not even that), so
any user could withdraw, edit or merge another team's work through them. Baton
serves these classes on TOM's own paths (``policies.urls`` comes before TOM's
URLs), each asking the door first:

* a record or target the user may not see answers 404, as if absent;
* one the user sees but may not change answers 403, and nothing changes;
* cancelling and featuring are POSTs (TOM's were GETs, so any page could trigger them); a copy
  Baton's scheduler made is withdrawn through the scheduler
  (``dispatch_cancel``), which tells the facility durably, never by TOM's direct
  facility call.

Who may act: :func:`observation_record_act_access` and :func:`target_change_access`.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from tom_dataproducts.models import DataProduct
from tom_dataproducts.views import DataProductFeatureView
from tom_observations.models import ObservationRecord
from tom_observations.views import ObservationRecordCancelView, ObservationRecordUpdateView
from tom_targets.models import Target
from tom_targets.views import TargetMergeView

from .access import Decision, datum_access, request_act_allowed, target_access
from .models import DataOwnership, TargetInterest
from .selectors import AnyUser


def observation_record_team_id(*, record: ObservationRecord) -> int | None:
    """The group id of the team that owns a record Baton's scheduler made (``parameters["baton_request"]``), else None."""
    request_id = (record.parameters or {}).get("baton_request") if isinstance(record.parameters, dict) else None
    if request_id is None:
        return None
    observing_request = apps.get_model("scheduling", "ObservingRequest")
    return observing_request.objects.filter(pk=request_id).values_list("team_id", flat=True).first()


def observation_record_act_access(*, user: AnyUser, record: ObservationRecord) -> Decision:
    """Whether a user may cancel or change an observation record, and why.

    A record Baton's scheduler made belongs to its request's team: its admins and members may act
    (an observer only watches, another team never, however widely the request is shared). A record
    submitted by hand through TOM follows TOM: the ``change_observationrecord`` permission on it.
    """
    if not user.is_authenticated or not user.is_active:
        return Decision(False, "not signed in")
    if user.is_superuser:
        return Decision(True, "superuser")
    is_baton_copy = isinstance(record.parameters, dict) and "baton_request" in record.parameters
    if is_baton_copy:
        team_id = observation_record_team_id(record=record)
        if team_id is None:
            return Decision(False, "its request is gone")
        if request_act_allowed(user=user, team_group_id=team_id):
            return Decision(True, "admin or member of the owning team", team_id=team_id)
        return Decision(False, "only the owning team's admins and members may act on its observations", team_id=team_id)
    if user.has_perm("tom_observations.change_observationrecord", record):
        return Decision(True, "granted in TOM")
    return Decision(False, "not granted in TOM")


def target_change_access(*, user: AnyUser, targets: list[Target]) -> Decision:
    """Whether a user may change these targets through TOM's pages (merge them: one is deleted, the other takes
    its data; share them out of Baton), and why.

    Every team with a stake in any of them (an interest, or data on it) must be one the user acts
    for (admin or member); a target no team has a stake in follows TOM (``change_target`` and
    ``delete_target`` on it).
    """
    if not user.is_authenticated or not user.is_active:
        return Decision(False, "not signed in")
    if user.is_superuser:
        return Decision(True, "superuser")
    ids = [t.pk for t in targets]
    stakes = set(TargetInterest.objects.filter(target_id__in=ids).values_list("team_id", flat=True))
    stakes |= set(DataOwnership.objects.filter(target_id__in=ids, team__isnull=False).values_list("team_id", flat=True))
    for group_id in sorted(stakes):
        if not request_act_allowed(user=user, team_group_id=group_id):
            return Decision(False, "another team has a stake in one of these targets", team_id=group_id)
    staked = set(TargetInterest.objects.filter(target_id__in=ids).values_list("target_id", flat=True))
    staked |= set(DataOwnership.objects.filter(target_id__in=ids, team__isnull=False).values_list("target_id", flat=True))
    for target in targets:
        if target.pk in staked:
            continue
        if not (user.has_perm("tom_targets.change_target", target) and user.has_perm("tom_targets.delete_target", target)):
            return Decision(False, "not granted in TOM")
    return Decision(True, "acts for every team with a stake")


def _record_for(*, user: AnyUser, pk: Any) -> ObservationRecord:
    """The record, if the user may see its target (else 404); 403 unless the user may act on it."""
    record = ObservationRecord.objects.select_related("target").filter(pk=pk).first()
    if record is None or not target_access(user=user, target=record.target):
        raise Http404
    decision = observation_record_act_access(user=user, record=record)
    if not decision:
        raise PermissionDenied(decision.reason)
    return record


class PolicyObservationCancelView(ObservationRecordCancelView):
    """TOM's observation cancel, as a POST and behind the door; Baton's copies are withdrawn by the scheduler."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        record = _record_for(user=request.user, pk=kwargs["pk"])
        dispatch_id = (record.parameters or {}).get("baton_dispatch")
        if dispatch_id is None and "baton_request" not in (record.parameters or {}):
            return super().get(request, *args, **kwargs)  # a record submitted by hand: TOM's own cancel
        from observatories.scheduling.services.dispatch import dispatch_cancel

        dispatch_model = apps.get_model("scheduling", "Dispatch")
        dispatch = dispatch_model.objects.filter(pk=dispatch_id).first() if dispatch_id else None
        dispatch = dispatch or dispatch_model.objects.filter(observation_record=record).first()
        if dispatch is None:
            messages.error(request, "This observation's copy is gone; nothing to cancel.")
            return redirect("tom_observations:detail", pk=record.pk)
        dispatch_cancel(dispatch_id=dispatch.pk, reason=f"cancelled by {request.user.get_username()} on its observation page")
        messages.success(request, f"Cancelled observation {record}; the facility is told.")
        # The request's page shows the team its copies (TOM's observation pages show a Baton copy to superusers only).
        return redirect("scheduling:request-detail", pk=dispatch.request_id)


class PolicyObservationUpdateView(ObservationRecordUpdateView):
    """TOM's observation-id update, behind the door (the form too: it shows the id)."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        _record_for(user=request.user, pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)


class PolicyTargetMergeView(LoginRequiredMixin, TargetMergeView):
    """TOM's target merge, signed in and behind the door (TOM's asked nothing, not even a login)."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        pks = {str(kwargs["pk1"]), str(kwargs["pk2"])}
        if len(pks) != 2 or request.GET.get("name_select", str(kwargs["pk1"])) not in pks:
            raise Http404  # a target merged into itself is deleted; the preview shows only these two
        targets = list(Target.objects.filter(pk__in=pks))
        if len(targets) != 2 or not all(
            target_access(user=request.user, target=t) for t in targets
        ):
            raise Http404
        decision = target_change_access(user=request.user, targets=targets)
        if not decision:
            raise PermissionDenied(decision.reason)
        return super().dispatch(request, *args, **kwargs)


class PolicyDataProductFeatureView(LoginRequiredMixin, DataProductFeatureView):
    """TOM's "feature this data product" (it changes the target's page), as a POST, for those who may change the
    target (:func:`target_change_access`) and see the product."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        product = DataProduct.objects.select_related("target").filter(pk=kwargs["pk"]).first()
        if product is None or not datum_access(user=request.user, datum=product):
            raise Http404
        decision = target_change_access(user=request.user, targets=[product.target])
        if not decision:
            raise PermissionDenied(decision.reason)
        query = request.GET.copy()
        query["target_id"] = str(product.target_id)  # TOM's view redirects to the target the query names
        request.GET = query  # type: ignore[assignment]  # django-stubs types request.GET as immutable
        return super().get(request, *args, **kwargs)
