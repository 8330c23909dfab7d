"""Sharing in: a partner TOM's own ``DATA_SHARING`` reaching Baton, and who owns what it sends.

TOM Toolkit's sharing (``tom_dataproducts.sharing.share_data_with_tom``) authenticates with
HTTP basic auth only. Baton accepts basic auth on exactly the two paths it uses
(:data:`SHARING_IN_PATHS`: the target search and the data upload) and, where the site is served
over HTTPS (``SECURE_SSL_REDIRECT``), only over HTTPS; every other API path still takes only a
token or a session. A partner TOM is given a Baton account for this, a member of the team that
receives its data.

:func:`incoming_datum_record` gives a datum such an account uploads an owner, the account's team
(its only team), so the team's members see it as their policy says and other teams do not.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.authentication import BasicAuthentication

from policies.models import DataOwnership
from policies.services import uploaded_datum_record

SHARING_IN_PATHS = ("/api/targets/", "/api/reduceddatums/")


class PartnerBasicAuthentication(BasicAuthentication):
    """HTTP basic auth for a partner TOM's ``DATA_SHARING``: only on :data:`SHARING_IN_PATHS`, only over HTTPS
    when the site redirects to it. Elsewhere it does not authenticate (returns None), so other classes decide."""

    def authenticate(self, request: Any) -> Any:
        if request.path not in SHARING_IN_PATHS:
            return None
        if getattr(settings, "SECURE_SSL_REDIRECT", False) and not request.is_secure():
            return None
        return super().authenticate(request)


def incoming_datum_record(*, datum: Any, user: Any) -> DataOwnership | None:
    """Record the team of ``user`` (who uploaded ``datum`` through TOM's API) as its owner: policies'
    ``uploaded_datum_record``, which TOM's upload API calls itself (``policies.tom_overrides``)."""
    return uploaded_datum_record(datum=datum, user=user)
