"""URLs of `notifications` (pages and API), included at the site root by tomsite/urls.py."""

from django.urls import URLPattern, path

from . import apis, views

app_name = "notifications"

urlpatterns: list[URLPattern] = [
    path("notifications/", views.InboxView.as_view(), name="inbox"),
    path("notifications/preferences/", views.PreferencesView.as_view(), name="preferences"),
    path("notifications/<int:pk>/open/", views.NotificationOpenView.as_view(), name="open"),
    path("api/notifications/", apis.NotificationListApi.as_view(), name="api-list"),
    path("api/notifications/read-all/", apis.NotificationReadAllApi.as_view(), name="api-read-all"),
    path("api/notifications/preferences/", apis.PreferenceApi.as_view(), name="api-preferences"),
    path("api/notifications/outbox/", apis.OutboxApi.as_view(), name="api-outbox"),
    path("api/notifications/<int:pk>/", apis.NotificationDetailApi.as_view(), name="api-detail"),
    path("api/notifications/<int:pk>/read/", apis.NotificationReadApi.as_view(), name="api-read"),
]
