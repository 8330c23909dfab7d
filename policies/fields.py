"""Strict DRF fields: JSON types as the OpenAPI schema states them, and text PostgreSQL can store."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

NO_NUL = RegexValidator(r"^[^\x00]*$", "text may not contain NUL characters")  # PostgreSQL cannot store them


class StrictCharField(serializers.CharField):
    """A CharField that takes only JSON strings (DRF would turn 0 into "0")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    """A FloatField that takes only JSON numbers (DRF would take false as 0.0 and "1" as 1.0)."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictSlugField(StrictCharField, serializers.SlugField):
    """A SlugField that takes only JSON strings."""


class StrictBooleanField(serializers.BooleanField):
    """A BooleanField that takes only JSON true/false (DRF would take 0, 1, "yes", "off", ...)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


def text(**kwargs: Any) -> serializers.CharField:
    """A text field whose schema says what PostgreSQL can store (no NUL characters)."""
    return StrictCharField(validators=[NO_NUL], **kwargs)


MAX_ID = 2**63 - 1  # PostgreSQL bigint (targets, claims): a larger id matches nothing, and the database would refuse it
MAX_INT_ID = 2**31 - 1  # PostgreSQL integer: auth's users and groups, policy version numbers


def object_id(*, max_value: int = MAX_ID, **kwargs: Any) -> serializers.IntegerField:
    """An id in a request body, bounded as the database's keys are (so its schema says so)."""
    return serializers.IntegerField(min_value=1, max_value=max_value, **kwargs)


class BoundedIdConverter:
    """A URL converter for bigint ids (up to 18 digits): a longer one is a 404, never a database error."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


class SmallIdConverter(BoundedIdConverter):
    """A URL converter for integer ids (users, version numbers): up to 9 digits."""

    regex = "[0-9]{1,9}"
