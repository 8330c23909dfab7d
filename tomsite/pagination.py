"""API pagination that refuses nonsense instead of quietly ignoring it."""

from __future__ import annotations

import re

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination


class StrictLimitOffsetPagination(LimitOffsetPagination):
    """DRF's limit/offset paging, but ``?offset=abc``, ``?limit=-1`` or a limit over the cap is a 400.

    A client that sends a malformed page parameter has a bug; answering with
    the first page hides it (and tells a fuzzer the API accepts anything).
    """

    max_limit = 1000

    def _checked(self, request, name: str) -> None:
        raw = request.query_params.get(name)
        if raw is None:
            return
        # Digits only: int() would also take " 5", "+5", "5_0" and non-ASCII digits.
        if not re.fullmatch(r"-?[0-9]+", raw):
            raise ValidationError({name: f"must be a whole number, not {raw!r}"})
        value = int(raw)
        if name == self.limit_query_param and not (1 <= value <= self.max_limit):
            raise ValidationError({name: f"must be between 1 and {self.max_limit}"})
        if value < 0:
            raise ValidationError({name: "must be >= 0"})

    def paginate_queryset(self, queryset, request, view=None):
        self._checked(request, self.limit_query_param)
        self._checked(request, self.offset_query_param)
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_limit})
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"]["minimum"] = 0
        return parameters
