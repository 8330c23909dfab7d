"""Content negotiation that does not turn an unknown ``?format=`` into a 404."""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation


class UnknownFormatIgnored(DefaultContentNegotiation):
    """DRF answers ``?format=<no such renderer>`` with 404 Not Found, a status no operation documents (the fuzz
    found it on every list). An unknown format is ignored here and the Accept header decides, so the answer is the
    endpoint's own; endpoints that take ``format`` as a real parameter (CSV or Parquet exports) check it themselves
    and answer 400."""

    def filter_renderers(self, renderers: list[Any], format: str) -> list[Any]:  # noqa: A002 - DRF's signature
        matching = [renderer for renderer in renderers if renderer.format == format]
        return matching or list(renderers)
