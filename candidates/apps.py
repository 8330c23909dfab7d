"""Django app configuration for `candidates`: the cone-match index kept in step, checks, navbar."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class CandidatesConfig(AppConfig):
    name = "candidates"
    verbose_name = "Candidates"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_save
        from tom_targets.models import Target

        from candidates import checks  # noqa: F401  (registers the system checks)

        post_save.connect(_target_saved, sender=Target, dispatch_uid="candidates.target_sky")

    def nav_items(self) -> list[dict[str, Any]]:
        """TOM's navbar integration point: the team candidates page."""
        return [{"partial": "candidates/partials/navbar_candidates.html"}]


def _target_saved(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """A target made or moved through TOM (a form, the API, a broker class) is cone-matchable at once."""
    if raw:
        return
    from candidates.services import target_sky_update

    target_sky_update(target=instance)
