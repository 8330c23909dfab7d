"""URLs of `observatories` (pages, API, and the simulated network under /sim/), included at the site root."""

from django.urls import URLPattern, URLResolver, include, path

from . import apis, views

app_name = "observatories"

urlpatterns: list[URLPattern | URLResolver] = [
    path("observatories/", views.network_page, name="network"),
    path("observatories/targets/<int:pk>/visibility/", views.target_visibility_page, name="target-visibility"),
    path("api/observatories/sites/", apis.SiteListApi.as_view(), name="api-sites"),
    path("api/observatories/facilities/", apis.FacilityListApi.as_view(), name="api-facilities"),
    path("api/observatories/facilities/<slug:code>/", apis.FacilityDetailApi.as_view(), name="api-facility"),
    path("api/observatories/status/", apis.FacilityStatusFeedApi.as_view(), name="api-status-feed"),
    path("sim/", include("observatories.simnet.urls")),
]
