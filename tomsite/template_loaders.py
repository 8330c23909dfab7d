"""Template loading: TOM's templates, with the one asset TOM still fetches from a CDN served by Baton.

TOM Toolkit's base template loads Alpine.js from jsDelivr ("a todo" in TOM's own comment). An
observatory's control room or a laptop on a mountain may have no route to a CDN, and Baton's pages
must work there, so this loader serves TOM's template with that URL pointing at Baton's vendored
copy (``tomsite/static/vendor/alpinejs-*``), as Bootstrap already is (``BOOTSTRAP5`` setting).
Nothing else in TOM's template changes.
"""

from __future__ import annotations

from typing import Any

from django.template.loaders.app_directories import Loader as AppDirectoriesLoader

ALPINE_CDN = "https://cdn.jsdelivr.net/npm/alpinejs@3.x.x/dist/cdn.min.js"
ALPINE_LOCAL = "{% static 'vendor/alpinejs-3.17.5/cdn.min.js' %}"


class OfflineAssetsLoader(AppDirectoriesLoader):
    """The app-directories loader, with TOM's base template's CDN script served locally."""

    def get_contents(self, origin: Any) -> str:
        contents = super().get_contents(origin)
        if origin.template_name == "tom_common/base.html":
            contents = contents.replace(ALPINE_CDN, ALPINE_LOCAL)
        return contents
