"""URLs of `candidates` (pages and API), included at the site root by tomsite/urls.py."""

from django.urls import path

from candidates import apis, views

app_name = "candidates"

urlpatterns = [
    path("candidates/", views.candidates_page, name="page"),
    path("candidates/matches/<str:pk>/followup/", views.followup_view, name="followup"),
    path("api/candidates/batches/", apis.AlertBatchPushApi.as_view(), name="api-batches"),
    path("api/candidates/batches/<str:pk>/", apis.AlertBatchApi.as_view(), name="api-batch"),
    path("api/candidates/filters/", apis.StreamFilterListApi.as_view(), name="api-filters"),
    path("api/candidates/filters/<str:pk>/", apis.StreamFilterApi.as_view(), name="api-filter"),
    path("api/candidates/regions/", apis.WatchRegionListApi.as_view(), name="api-regions"),
    path("api/candidates/regions/<str:pk>/", apis.WatchRegionApi.as_view(), name="api-region"),
    path("api/candidates/matches/", apis.MatchListApi.as_view(), name="api-matches"),
    path("api/candidates/matches/<str:pk>/followup/", apis.FollowupApi.as_view(), name="api-followup"),
]
