"""URLs of `candidates` (pages and API), included at the site root by tomsite/urls.py."""

from django.urls import path

from candidates import apis, ledger_apis, views

app_name = "candidates"

urlpatterns = [
    path("candidates/", views.candidates_page, name="page"),
    path("candidates/matches/<str:pk>/followup/", views.followup_view, name="followup"),
    path("candidates/ledger/", views.ledger_view, name="ledger"),
    path("candidates/<int:pk>/label/", views.label_view, name="label"),
    path("api/candidates/batches/", apis.AlertBatchPushApi.as_view(), name="api-batches"),
    path("api/candidates/batches/<str:pk>/", apis.AlertBatchApi.as_view(), name="api-batch"),
    path("api/candidates/filters/", apis.StreamFilterListApi.as_view(), name="api-filters"),
    path("api/candidates/filters/<str:pk>/", apis.StreamFilterApi.as_view(), name="api-filter"),
    path("api/candidates/regions/", apis.WatchRegionListApi.as_view(), name="api-regions"),
    path("api/candidates/regions/<str:pk>/", apis.WatchRegionApi.as_view(), name="api-region"),
    path("api/candidates/matches/", apis.MatchListApi.as_view(), name="api-matches"),
    path("api/candidates/matches/<str:pk>/followup/", apis.FollowupApi.as_view(), name="api-followup"),
    path("api/candidates/ledger/", ledger_apis.LedgerApi.as_view(), name="api-ledger"),
    path("api/candidates/ledger/summary/", ledger_apis.LedgerSummaryApi.as_view(), name="api-ledger-summary"),
    path("api/candidates/ledger/export/", ledger_apis.LedgerExportApi.as_view(), name="api-ledger-export"),
    path("api/candidates/labels/", ledger_apis.LabelApi.as_view(), name="api-labels"),
    path("api/candidates/labels/training-set/", ledger_apis.TrainingSetExportApi.as_view(), name="api-training-set"),
]
