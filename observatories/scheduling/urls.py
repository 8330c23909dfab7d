"""URLs of the scheduler: request pages, the night plan, and the requests API."""

from django.urls import path

from . import apis, views

app_name = "scheduling"

urlpatterns = [
    path("requests/", views.RequestListView.as_view(), name="request-list"),
    path("requests/new/", views.RequestCreateView.as_view(), name="request-create"),
    path("requests/<int:pk>/", views.RequestDetailView.as_view(), name="request-detail"),
    path("requests/<int:pk>/cancel/", views.RequestCancelView.as_view(), name="request-cancel"),
    path("night-plan/", views.NightPlanView.as_view(), name="night-plan"),
    path("api/requests/", apis.RequestListCreateApi.as_view(), name="api-request-list"),
    path("api/requests/<int:pk>/", apis.RequestDetailApi.as_view(), name="api-request-detail"),
    path("api/requests/<int:pk>/cancel/", apis.RequestCancelApi.as_view(), name="api-request-cancel"),
]
