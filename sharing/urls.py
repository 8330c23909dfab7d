"""URLs of `sharing` (a page and the API), included at the site root by tomsite/urls.py."""

from django.urls import path

import policies.urls  # noqa: F401 - registers the bounded-id converter used below

from . import apis, views

app_name = "sharing"

urlpatterns = [
    path("teams/<slug:slug>/sharing/", views.SharingView.as_view(), name="team-sharing"),
    path("api/teams/<slug:slug>/destinations/", apis.DestinationListCreateApi.as_view(), name="api-destinations"),
    path("api/teams/<slug:slug>/destinations/<policies_id:pk>/", apis.DestinationDetailApi.as_view(), name="api-destination"),
    path("api/teams/<slug:slug>/outbox/", apis.OutboxApi.as_view(), name="api-outbox"),
    path("api/teams/<slug:slug>/outbox/retry/", apis.OutboxRetryApi.as_view(), name="api-outbox-retry"),
]
