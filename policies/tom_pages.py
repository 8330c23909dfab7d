"""TOM's pages that showed other teams' names and text, behind the door.

TOM lists and looks objects up without asking who is looking in a few places; Baton
serves these on TOM's own paths (``policies.urls`` comes before TOM's URLs) or narrows
TOM's choices at start-up (:func:`patch_tom_choices`, from ``PoliciesConfig.ready``):

* the target-list choices on ``/targets/`` (the filter and the "add to grouping" form) and the calendar's
  event form, and the target and
  group choices on ``/observations/list/``: only what the viewer may see;
* a target's share and persistent-share pages: 404 unless the viewer sees the target, 403
  unless they act for every team with a stake in it (:func:`policies.tom_views.target_change_access`);
  a target list's share page: 404 unless TOM shows the list to the viewer;
* comments' flag, delete and approve pages, and posting a comment: 404 unless the viewer sees
  what the comment is on;
* the data-product group form and a group's page: only data products the viewer may see;
* ``/data/<path>`` (uploaded files, served by TOM only in DEBUG): a data product's file, to
  those who may see the product; anything else is 404.
"""

from __future__ import annotations

import contextvars
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.static import serve
from guardian.shortcuts import get_objects_for_user
from tom_dataproducts.forms import AddProductToGroupForm
from tom_dataproducts.models import DataProduct, DataProductGroup
from tom_dataproducts.views import DataProductGroupDataView, DataProductGroupDetailView
from tom_observations.models import ObservationGroup, ObservationRecord
from tom_targets.models import Target, TargetList
from tom_targets.views import (
    TargetGroupingShareView,
    TargetListView,
    TargetPersistentShareManageFormView,
    TargetPersistentShareManageTable,
    TargetShareView,
)

from .access import datum_access, reduced_data_visible_to, target_access, targets_visible_to
from .selectors import AnyUser
from .tom_views import target_change_access

_viewer: contextvars.ContextVar[Any] = contextvars.ContextVar("policies_tom_pages_viewer", default=None)


# --- what a viewer may choose from ----------------------------------------------------------------


def target_lists_visible_to(*, user: AnyUser | None) -> QuerySet[TargetList]:
    """Target lists (TOM's groups) a user may see: those TOM shows them (``view_targetlist``), by name."""
    if user is None or not user.is_authenticated or not user.is_active:
        return TargetList.objects.none()
    if user.is_superuser:
        return TargetList.objects.order_by("name")
    return get_objects_for_user(user, "tom_targets.view_targetlist", klass=TargetList).order_by("name")


def _observed_targets(request: HttpRequest | None) -> QuerySet[Target]:
    user = getattr(request, "user", None)
    observed = Target.objects.filter(observationrecord__isnull=False).distinct()
    if user is None:
        return Target.objects.none()
    return targets_visible_to(user=user, queryset=observed).order_by("name")


def _observation_groups(request: HttpRequest | None) -> QuerySet[ObservationGroup]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ObservationGroup.objects.none()
    if user.is_superuser:
        return ObservationGroup.objects.all()
    return get_objects_for_user(user, "tom_observations.view_observationgroup", klass=ObservationGroup)


def _target_lists(request: HttpRequest | None) -> QuerySet[TargetList]:
    return target_lists_visible_to(user=getattr(request, "user", None))


class PolicyTargetListView(TargetListView):
    """TOM's target list page, offering only the target lists the viewer may see (TOM offered them all)."""

    def get_context_data(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(*args, **kwargs)
        context["groupings"] = target_lists_visible_to(user=self.request.user)
        return context


def patch_tom_choices() -> None:
    """Narrow TOM's filter and form choices to what the viewer may see (idempotent)."""
    from tom_calendar import views as calendar_views
    from tom_observations.views import ObservationFilter
    from tom_targets.filters import TargetFilterSet

    TargetFilterSet.base_filters["targetlist__name"].queryset = _target_lists
    ObservationFilter.base_filters["target_id"].queryset = _observed_targets
    ObservationFilter.base_filters["observationgroup"].queryset = _observation_groups
    if getattr(calendar_views.EventForm, "through_the_door", False):
        return
    tom_event_form = calendar_views.EventForm

    class EventForm(tom_event_form):  # type: ignore[misc, valid-type]
        """TOM's calendar event form, offering only the target lists the viewer (set by :func:`calendar_page`) sees."""

        through_the_door = True

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.fields["target_list"].queryset = target_lists_visible_to(user=_viewer.get())

    calendar_views.EventForm = EventForm


def calendar_page(view: Any) -> Any:
    """One of TOM's calendar views, signed in, with its event form seeing who is looking."""

    @login_required
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        token = _viewer.set(request.user)
        try:
            return view(request, *args, **kwargs)
        finally:
            _viewer.reset(token)

    return wrapped


# --- targets' share pages -----------------------------------------------------------------------------


def _changeable_target(*, user: AnyUser, pk: Any) -> Target:
    target = Target.objects.filter(pk=pk).first()
    if target is None or not target_access(user=user, target=target):
        raise Http404
    decision = target_change_access(user=user, targets=[target])
    if not decision:
        raise PermissionDenied(decision.reason)
    return target


class _TargetDoor(LoginRequiredMixin):
    """Signed in, sees the target (else 404) and acts for every team with a stake in it (else 403)."""

    target_kwarg = "pk"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        _changeable_target(user=request.user, pk=kwargs[self.target_kwarg])
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class PolicyTargetShareView(_TargetDoor, TargetShareView):
    """TOM's target share page, behind the door."""


class PolicyTargetPersistentShareManageFormView(_TargetDoor, TargetPersistentShareManageFormView):
    """TOM's persistent-share page of a target, behind the door."""

    target_kwarg = "target_pk"


class PolicyTargetPersistentShareManageTable(_TargetDoor, TargetPersistentShareManageTable):
    """TOM's persistent-share table of a target, behind the door."""

    target_kwarg = "target_pk"


class PolicyTargetGroupingShareView(LoginRequiredMixin, TargetGroupingShareView):
    """TOM's target-list share page, for those TOM shows the list to."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        get_object_or_404(target_lists_visible_to(user=request.user), pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)


# --- comments ---------------------------------------------------------------------------------------


def object_visible_to(*, user: AnyUser, obj: Any) -> bool:
    """Whether a user may see what a comment is on: a target, or an observation record or datum with its target."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    if isinstance(obj, Target):
        return bool(target_access(user=user, target=obj))
    if isinstance(obj, DataProduct):
        return bool(datum_access(user=user, datum=obj))
    if isinstance(obj, ObservationRecord):
        return bool(target_access(user=user, target=obj.target))
    return False


def _comment_visible(*, user: AnyUser, comment_id: Any) -> None:
    import django_comments

    comment = django_comments.get_model().objects.filter(pk=comment_id).first()
    if comment is None or not object_visible_to(user=user, obj=comment.content_object):
        raise Http404


def comment_page(view: Any, id_kwarg: str) -> Any:
    """A comment page (flag, delete, approve) that answers 404 unless the viewer sees what the comment is on."""

    @login_required
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        _comment_visible(user=request.user, comment_id=kwargs[id_kwarg])
        return view(request, *args, **kwargs)

    return wrapped


@login_required
def comment_post(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
    """django-comments' post, only on an object the poster sees (else 404)."""
    from django_comments.views.comments import post_comment

    if request.method == "POST":
        ctype, object_pk = request.POST.get("content_type", ""), request.POST.get("object_pk", "")
        try:
            app_label, model_name = ctype.split(".", 1)
            model = apps.get_model(app_label, model_name)
            obj = model._default_manager.filter(pk=object_pk).first()
        except (LookupError, TypeError, ValueError):
            obj = None  # TOM's view answers these with its own 400
        else:
            if obj is None or not object_visible_to(user=request.user, obj=obj):
                raise Http404
    return post_comment(request, *args, **kwargs)


# --- data products ----------------------------------------------------------------------------------


class PolicyDataProductGroupDataView(DataProductGroupDataView):
    """TOM's "add data products to a group" form, offering only the products the viewer may see."""

    def get_form(self, form_class: Any = None) -> AddProductToGroupForm:
        form = super().get_form(form_class)
        form.fields["products"].queryset = reduced_data_visible_to(user=self.request.user, model=DataProduct)
        return form


class PolicyDataProductGroupDetailView(LoginRequiredMixin, DataProductGroupDetailView):
    """A data-product group's page, listing (and removing) only the products the viewer may see."""

    def visible_products(self) -> QuerySet[DataProduct]:
        return reduced_data_visible_to(user=self.request.user, model=DataProduct,
                                       queryset=self.get_object().dataproduct_set.all())

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "products": self.visible_products()}

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        group: DataProductGroup = self.get_object()
        group.dataproduct_set.remove(*self.visible_products().filter(pk__in=request.POST.getlist("products")))
        return redirect("tom_dataproducts:group-detail", pk=group.pk)


def media_file(request: HttpRequest, path: str) -> HttpResponse | FileResponse:
    """An uploaded file (TOM serves ``MEDIA_URL`` only in DEBUG): a data product's, to those who may see it."""
    if not settings.DEBUG or not request.user.is_authenticated:
        raise Http404
    product = DataProduct.objects.filter(data=path).select_related("target").first()
    if product is None or not datum_access(user=request.user, datum=product):
        raise Http404
    return serve(request, path, document_root=settings.MEDIA_ROOT)
