"""Baton's URLs: TOM Toolkit's pages and API, the API schema and docs, the health probe."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import apis, views

urlpatterns = [
    path("health/", views.health, name="health"),
    path("api/status/", apis.SystemStatusApi.as_view(), name="api-status"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # Baton's apps choose their own paths (pages, /api/..., /sim/...).
    path("", include("observatories.urls")),
    path("", include("observatories.scheduling.urls", namespace="scheduling")),
    path("", include("candidates.urls")),
    path("", include("policies.urls")),
    path("", include("notifications.urls")),
    path("", include("sharing.urls")),
    path("", include("drills.urls", namespace="drills")),
    path("alerts/", include("tom_alerts.urls", namespace="alerts")),  # TOM's broker queries
    path("", include("tom_common.urls")),
]
