"""System checks of the facility network (ids ``observatories.E0xx``)."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, register
from django.db import DatabaseError


@register(Tags.database)
def check_facilities(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """observatories.E001: a facility without a site; E002: a facility whose adapter cannot be used.

    Reads the database when it can; before migrations (no tables yet) it says nothing.
    """
    from django.core.exceptions import ImproperlyConfigured

    from observatories.models import Facility
    from observatories.portal.facility import adapter_class

    errors: list[Error] = []
    try:
        facilities = list(Facility.objects.select_related("site").filter(enabled=True))
    except DatabaseError:
        return errors
    for facility in facilities:
        if facility.site_id is None:
            errors.append(Error(f"facility {facility.code} has no site", id="observatories.E001"))
        try:
            adapter_class(facility)
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), hint="set Facility.adapter to a TOM facility class path", id="observatories.E002"))
    return errors
