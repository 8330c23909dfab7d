"""Django app configuration for `policies`: signals, TOM's template tags behind the door, checks, nav."""

from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "policies"
    verbose_name = "Team policies"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import m2m_changed, post_delete, post_save
        from tom_dataproducts.models import REDUCED_DATUM_MODELS, DataProduct

        from . import checks  # noqa: F401 - registers the system checks
        from .signals import datum_deleted, groups_changed, user_saved
        from .tom_overrides import patch_tom_template_tags
        from .tom_pages import patch_tom_choices

        user_model = get_user_model()
        post_save.connect(user_saved, sender=user_model, dispatch_uid="policies.user_saved")
        m2m_changed.connect(groups_changed, sender=user_model.groups.through, dispatch_uid="policies.groups_changed")
        for model in (*REDUCED_DATUM_MODELS, DataProduct):
            post_delete.connect(datum_deleted, sender=model, dispatch_uid=f"policies.datum_deleted.{model.__name__}")
        patch_tom_template_tags()
        patch_tom_choices()

    def nav_items(self) -> list[dict[str, str]]:
        return [{"partial": "policies/partials/navbar.html"}]

    def target_detail_tabs(self) -> list[dict[str, str]]:
        return [{"partial": "policies/partials/target_tab.html", "context": "policies.views.target_tab_context",
                 "label": "Policy & claims"}]
