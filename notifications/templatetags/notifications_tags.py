"""Template tags of `notifications`: the navbar's unread count."""

from __future__ import annotations

from typing import Any

from django import template

from ..selectors import inbox_unread_count

register = template.Library()


@register.simple_tag(takes_context=True)
def inbox_unread(context: dict[str, Any]) -> int:
    """Unread notifications in the signed-in person's inbox (0 for anonymous visitors)."""
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    return inbox_unread_count(user=user) if user is not None else 0
