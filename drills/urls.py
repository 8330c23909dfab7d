"""URLs of drills: pages and the API."""

from django.urls import path

from . import apis, views

app_name = "drills"

urlpatterns = [
    path("drills/", views.DrillListView.as_view(), name="list"),
    path("drills/<int:pk>/", views.DrillDetailView.as_view(), name="detail"),
    path("drills/<int:pk>/remove/", views.DrillRemoveView.as_view(), name="remove"),
    path("drills/<int:pk>/rerun/", views.DrillRerunView.as_view(), name="rerun"),
    path("drills/<int:pk>/ack/<int:notification_id>/", views.DrillAckView.as_view(), name="ack"),
    path("api/drills/", apis.DrillListCreateApi.as_view(), name="api-list"),
    path("api/drills/<int:pk>/", apis.DrillDetailApi.as_view(), name="api-detail"),
    path("api/drills/<int:pk>/report/", apis.DrillReportApi.as_view(), name="api-report"),
    path("api/drills/<int:pk>/rerun/", apis.DrillRerunApi.as_view(), name="api-rerun"),
    path("api/drills/<int:pk>/acks/", apis.DrillAckApi.as_view(), name="api-acks"),
]
