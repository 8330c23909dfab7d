"""URLs of `policies` (pages and API), included at the site root by tomsite/urls.py.

It also answers on TOM's ``/api/reduceddatums/`` paths (before TOM's own
URLs, which come later in tomsite/urls.py), so TOM's data API reads through
the door; see :mod:`policies.tom_overrides`; and on TOM's pages that change things or showed other teams'
names (:mod:`policies.tom_views`, :mod:`policies.tom_pages`).
"""

from django.urls import URLPattern, URLResolver, path, re_path, register_converter
from django_comments.views.moderation import approve as comments_approve
from django_comments.views.moderation import delete as comments_delete
from django_comments.views.moderation import flag as comments_flag
from tom_calendar.views import create_event as calendar_create
from tom_calendar.views import update_event as calendar_update
from tom_common.views import CommentDeleteView

from . import apis, tom_pages, views
from .fields import BoundedIdConverter, SmallIdConverter
from .tom_overrides import PolicyReducedDatumViewSet
from .tom_views import (
    PolicyDataProductFeatureView,
    PolicyObservationCancelView,
    PolicyObservationUpdateView,
    PolicyTargetMergeView,
)

# Ids of up to 18 digits: a longer one is a 404 from the resolver, not an out-of-range database query.
register_converter(BoundedIdConverter, "policies_id")
register_converter(SmallIdConverter, "policies_small_id")

app_name = "policies"

_reduced_list = PolicyReducedDatumViewSet.as_view({"get": "list", "post": "create"})
_reduced_detail = PolicyReducedDatumViewSet.as_view({"delete": "destroy"})

urlpatterns: list[URLPattern | URLResolver] = [
    # Pages.
    path("teams/", views.TeamListView.as_view(), name="team-list"),
    path("teams/<slug:slug>/", views.TeamDetailView.as_view(), name="team-detail"),
    path("teams/<slug:slug>/policy/", views.PolicyView.as_view(), name="policy"),
    path("teams/<slug:slug>/policy/edit/", views.PolicyEditView.as_view(), name="policy-edit"),
    path("teams/<slug:slug>/policy/history/", views.PolicyHistoryView.as_view(), name="policy-history"),
    path("teams/<slug:slug>/policy/v<policies_small_id:number>/", views.PolicyVersionView.as_view(), name="policy-version"),
    path("teams/<slug:slug>/ledger/", views.LedgerView.as_view(), name="ledger"),
    path("teams/<slug:slug>/audit/", views.AuditView.as_view(), name="audit"),
    path("claims/", views.ClaimListView.as_view(), name="claim-list"),
    path("claims/new/", views.ClaimCreateView.as_view(), name="claim-create"),
    path("claims/<policies_id:pk>/", views.ClaimDetailView.as_view(), name="claim-detail"),
    path("inbox/", views.InboxView.as_view(), name="inbox"),
    # API.
    path("api/teams/", apis.TeamListCreateApi.as_view(), name="api-team-list"),
    path("api/teams/<slug:slug>/", apis.TeamDetailApi.as_view(), name="api-team-detail"),
    path("api/teams/<slug:slug>/members/", apis.TeamMembersApi.as_view(), name="api-team-members"),
    path("api/teams/<slug:slug>/members/<policies_small_id:user_id>/", apis.TeamMemberApi.as_view(), name="api-team-member"),
    path("api/teams/<slug:slug>/policy/", apis.PolicyApi.as_view(), name="api-policy"),
    path("api/teams/<slug:slug>/policy/versions/", apis.PolicyVersionListApi.as_view(), name="api-policy-versions"),
    path("api/teams/<slug:slug>/policy/versions/<policies_small_id:number>/", apis.PolicyVersionDetailApi.as_view(), name="api-policy-version"),
    path("api/teams/<slug:slug>/usage/", apis.UsageApi.as_view(), name="api-usage"),
    path("api/teams/<slug:slug>/ledger/", apis.LedgerApi.as_view(), name="api-ledger"),
    path("api/teams/<slug:slug>/audit/", apis.AuditApi.as_view(), name="api-audit"),
    path("api/claims/", apis.ClaimListCreateApi.as_view(), name="api-claim-list"),
    path("api/claims/<policies_id:pk>/", apis.ClaimDetailApi.as_view(), name="api-claim-detail"),
    path("api/claims/<policies_id:pk>/release/", apis.ClaimReleaseApi.as_view(), name="api-claim-release"),
    path("api/claims/<policies_id:pk>/consent/", apis.ClaimConsentApi.as_view(), name="api-claim-consent"),
    path("api/claims/<policies_id:pk>/accept-overlap/", apis.ClaimAcceptOverlapApi.as_view(), name="api-claim-accept-overlap"),
    path("api/claims/<policies_id:pk>/contributors/", apis.ClaimContributorsApi.as_view(), name="api-claim-contributors"),
    path("api/publications/", apis.PublicationListCreateApi.as_view(), name="api-publications"),
    path("api/inbox/", apis.InboxApi.as_view(), name="api-inbox"),
    path("api/data/photometry/", apis.PhotometryExportApi.as_view(), name="api-photometry"),
    # TOM's ReducedDatum API, behind the door (with DRF's format-suffix variants TOM's router also serves).
    re_path(r"^api/reduceddatums/?$", _reduced_list, name="tom-reduceddatums"),
    re_path(r"^api/reduceddatums\.(?P<format>[a-z0-9]+)/?$", _reduced_list, name="tom-reduceddatums-format"),
    re_path(r"^api/reduceddatums/(?P<pk>[^/.]+)/?$", _reduced_detail, name="tom-reduceddatum"),
    re_path(r"^api/reduceddatums/(?P<pk>[^/.]+)\.(?P<format>[a-z0-9]+)/?$", _reduced_detail, name="tom-reduceddatum-format"),
    # TOM's pages that change things, behind the door (policies.tom_views), on TOM's own paths.
    path("observations/<int:pk>/cancel/", PolicyObservationCancelView.as_view(), name="tom-observation-cancel"),
    path("observations/<int:pk>/update/", PolicyObservationUpdateView.as_view(), name="tom-observation-update"),
    path("targets/merge/<int:pk1>/<int:pk2>", PolicyTargetMergeView.as_view(), name="tom-target-merge"),
    path("dataproducts/data/<int:pk>/feature/", PolicyDataProductFeatureView.as_view(), name="tom-dataproduct-feature"),
    # TOM's pages that showed other teams' names and text, behind the door (policies.tom_pages).
    path("targets/", tom_pages.PolicyTargetListView.as_view(), name="tom-target-list"),
    path("targets/<int:pk>/share/", tom_pages.PolicyTargetShareView.as_view(), name="tom-target-share"),
    path("targets/targetgrouping/<int:pk>/share/", tom_pages.PolicyTargetGroupingShareView.as_view(),
         name="tom-targetlist-share"),
    path("targets/<int:target_pk>/persistentshare/manage/", tom_pages.PolicyTargetPersistentShareManageFormView.as_view(),
         name="tom-target-persistent-share"),
    path("targets/<int:target_pk>/persistentshare/manage/table", tom_pages.PolicyTargetPersistentShareManageTable.as_view(),
         name="tom-target-persistent-share-table"),
    path("comments/post/", tom_pages.comment_post, name="tom-comment-post"),
    path("comments/flag/<int:comment_id>/", tom_pages.comment_page(comments_flag, "comment_id"), name="tom-comment-flag"),
    path("comments/delete/<int:comment_id>/", tom_pages.comment_page(comments_delete, "comment_id"),
         name="tom-comment-delete"),
    path("comments/approve/<int:comment_id>/", tom_pages.comment_page(comments_approve, "comment_id"),
         name="tom-comment-approve"),
    path("comment/<int:pk>/delete", tom_pages.comment_page(CommentDeleteView.as_view(), "pk"), name="tom-comment-remove"),
    path("dataproducts/data/group/add/", tom_pages.PolicyDataProductGroupDataView.as_view(), name="tom-dataproduct-group-add"),
    path("dataproducts/data/group/<int:pk>/", tom_pages.PolicyDataProductGroupDetailView.as_view(),
         name="tom-dataproduct-group"),
    path("calendar/create/", tom_pages.calendar_page(calendar_create), name="tom-calendar-create"),
    path("calendar/update/<int:event_id>/", tom_pages.calendar_page(calendar_update), name="tom-calendar-update"),
    path("data/<path:path>", tom_pages.media_file, name="tom-media"),
]
