from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from clearstem import health
from clearstem.api import accounts as account_views
from clearstem.api import catalog, views, webhooks
from clearstem.api.audit import AuditLookupView

router = DefaultRouter()
router.register("uploads", views.UploadViewSet, basename="upload")
router.register("jobs", views.JobViewSet, basename="job")
router.register("stems", views.StemViewSet, basename="stem")
router.register("recordings", views.RecordingViewSet, basename="recording")
router.register("licenses", views.LicenseViewSet, basename="license")
router.register("license-requests", views.LicenseRequestViewSet, basename="license-request")
router.register("catalog", catalog.CatalogViewSet, basename="catalog")
router.register("reviews", views.ReviewViewSet, basename="review")
router.register("webhooks", webhooks.WebhookViewSet, basename="webhook")
router.register("invitations", account_views.InvitationViewSet, basename="invitation")

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/ledger/keys/", views.LedgerKeysView.as_view(), name="ledger-keys"),
    path("api/v1/audit/find/", views.AuditFindView.as_view(), name="audit-find"),
    path("api/v1/audit/lookup/", AuditLookupView.as_view(), name="audit-lookup"),
    path("api/v1/ledger/content-credentials/", views.ContentCredentialsTrustView.as_view(),
         name="ledger-content-credentials"),
    path("api/v1/ledger/tree-head/", views.LedgerTreeHeadView.as_view(), name="ledger-tree-head"),
    path("api/v1/ledger/checkpoint/", views.LedgerCheckpointView.as_view(), name="ledger-checkpoint"),
    path("api/v1/ledger/consistency/", views.LedgerConsistencyView.as_view(), name="ledger-consistency"),
    path("api/v1/ledger/inclusion/", views.LedgerInclusionView.as_view(), name="ledger-inclusion"),
    path("api/v1/ledger/entries/", views.LedgerEntriesView.as_view(), name="ledger-entries"),
    path("api/v1/", include(router.urls)),
    path("", include("clearstem.web.urls")),
]
