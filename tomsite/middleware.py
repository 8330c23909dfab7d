"""Middleware of Baton's own: TOM's 403-to-login redirect, minus the simulated network's API."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from tom_common.middleware import Raise403Middleware as TomRaise403Middleware


class Raise403Middleware(TomRaise403Middleware):
    """TOM's middleware sends a browser's 403 to the login page, except under ``/api/``. The simulator under
    ``/sim/`` poses as a facility's API, which answers a bad token with a JSON 403 (as LCO's portal does), so its
    answers pass through untouched too."""

    get_response: Callable[[HttpRequest], HttpResponse]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith("/sim/"):
            return self.get_response(request)
        return super().__call__(request)
