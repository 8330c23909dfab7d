"""Where TOM's own code shows data without asking for permissions, Baton puts the door in front of it.

With ``TARGET_PERMISSIONS_ONLY = False`` TOM checks guardian permissions per
datum almost everywhere. Three places do not, and are covered here:

* the ``recent_photometry`` template tag (the target page's "recent photometry"
  box) reads every point of a target: replaced by a version that reads through
  :func:`policies.access.reduced_data_visible_to`;
* the ``reduceddatum_sparkline`` tag likewise (unused by TOM's templates, but a
  template could use it): it now sees only visible data;
* the photometry table, the photometry plot and the spectroscopy plot ask guardian
  (``get_objects_for_user``) for per-datum view permissions: in TOM's template library that
  call now answers reduced-datum view permissions through the door, so those tags show exactly
  what the door allows (public survey data with its target, with no per-datum grant rows);
* the ``/api/reduceddatums/`` list returns every row of every type when
  ``TARGET_PERMISSIONS_ONLY`` is off, and lets anyone delete any row:
  :class:`PolicyReducedDatumViewSet` answers on the same paths (``policies.urls``
  comes before TOM's URLs), with the same format, through the door.

The tags are replaced in TOM's own template library at start-up
(:func:`patch_tom_template_tags`, called from ``PoliciesConfig.ready``), so
TOM's templates need no copy; a test renders TOM's target page to prove it.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import PermissionDenied
from tom_dataproducts.api_views import ReducedDatumViewSet
from tom_dataproducts.models import REDUCED_DATUM_MODELS, PhotometryReducedDatum

from .access import datum_access, reduced_data_visible_to, target_access
from .models import DataOwnership, Role
from .selectors import team_of, team_role_of


def _user(context: Any) -> Any:
    request = context.get("request")
    return getattr(request, "user", None) or AnonymousUser()


def recent_photometry(context: Any, target: Any, limit: int = 1) -> dict[str, Any]:
    """TOM's ``recent_photometry`` tag, reading only the points the viewer may see."""
    photometry = reduced_data_visible_to(user=_user(context), model=PhotometryReducedDatum, target=target).order_by("-timestamp")[:limit]
    data = []
    for datum in photometry:
        if datum.limit is not None:
            data.append({"timestamp": datum.timestamp, "magnitude": datum.limit, "limit": True})
        else:
            data.append({"timestamp": datum.timestamp, "magnitude": datum.brightness, "limit": False})
    return {"data": data}


class _VisibleData:
    """A stand-in for a target whose photometry set holds only what the viewer may see."""

    def __init__(self, target: Any, visible: Any) -> None:
        self.target = target
        self.photometryreduceddatum_set = visible


def patch_tom_template_tags() -> None:
    """Replace TOM's data-reading template tags that ignore permissions (idempotent)."""
    from tom_dataproducts.templatetags import dataproduct_extras as tom_tags

    register = tom_tags.register
    register.inclusion_tag("tom_dataproducts/partials/recent_photometry.html", takes_context=True,
                           name="recent_photometry")(recent_photometry)
    original_sparkline = tom_tags.reduceddatum_sparkline

    def reduceddatum_sparkline(context: Any, target: Any, height: int, spacing: int = 5, color_map: Any = None,
                               limit_y: bool = True, days: int = 32) -> dict[str, Any]:
        visible = reduced_data_visible_to(user=_user(context), model=PhotometryReducedDatum, target=target)
        return original_sparkline(_VisibleData(target, visible), height, spacing, color_map, limit_y, days)

    register.inclusion_tag("tom_dataproducts/partials/reduceddatum_sparkline.html", takes_context=True,
                           name="reduceddatum_sparkline")(reduceddatum_sparkline)
    if getattr(tom_tags.get_objects_for_user, "through_the_door", False):
        return
    guardian_objects_for_user = tom_tags.get_objects_for_user

    def get_objects_for_user(user: Any, perms: Any, klass: Any = None, *args: Any, **kwargs: Any) -> Any:
        model = getattr(klass, "model", klass)
        if model in REDUCED_DATUM_MODELS and perms == f"{model._meta.app_label}.view_{model._meta.model_name}":
            return reduced_data_visible_to(user=user, model=model, queryset=klass if klass is not model else None)
        return guardian_objects_for_user(user, perms, klass, *args, **kwargs)

    get_objects_for_user.through_the_door = True  # type: ignore[attr-defined]
    tom_tags.get_objects_for_user = get_objects_for_user


def datum_deletable_by(*, user: Any, datum: Any) -> bool:
    """Who may delete a datum: a superuser; an admin or member of the owning team; else TOM's delete permission."""
    if user.is_superuser:
        return True
    ownership = DataOwnership.objects.filter(object_id=datum.pk, content_type__model=type(datum)._meta.model_name,
                                             content_type__app_label=type(datum)._meta.app_label).first()
    if ownership is None:
        return user.has_perm(f"{datum._meta.app_label}.delete_{datum._meta.model_name}", datum)
    team = team_of(group=ownership.team_id) if ownership.team_id else None
    return team is not None and team_role_of(user=user, team=team) in (Role.ADMIN, Role.MEMBER)


@extend_schema(exclude=True)  # TOM's own entry describes these paths; this class only puts the door in front
class PolicyReducedDatumViewSet(ReducedDatumViewSet):
    """TOM's ReducedDatum API (same paths, same format), reading and deleting through the door."""

    def _base_queryset_for_model(self, model: Any) -> Any:
        return reduced_data_visible_to(user=self.request.user, model=model)

    def get_object(self) -> Any:
        pk = self.kwargs.get(self.lookup_field)
        for model in REDUCED_DATUM_MODELS:
            found = model.objects.filter(pk=pk).first() if str(pk).isdigit() else None
            if found is None or not datum_access(user=self.request.user, datum=found):
                continue
            if not datum_deletable_by(user=self.request.user, datum=found):
                raise PermissionDenied("only the owning team's admins and members may delete its data")
            return found
        raise Http404

    def perform_create(self, serializer: Any) -> None:
        target = serializer.validated_data.get("target")
        if target is None or not target_access(user=self.request.user, target=target):
            raise PermissionDenied("you may not add data to that target")
        super().perform_create(serializer)
        from .services import uploaded_datum_record

        # What a team's account uploads (a partner TOM sharing in) is that team's, under its policy.
        uploaded_datum_record(datum=serializer.instance, user=self.request.user)
