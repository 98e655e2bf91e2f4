from django.urls import path

from .views import account, audit, common, label, producer, reviews
from .views import notifications as notification_views

app_name = "web"

urlpatterns = [
    path("", common.home, name="home"),
    path("signin/", common.SignInView.as_view(), name="signin"),
    path("signout/", common.SignOutView.as_view(), name="signout"),
    # every organisation: webhooks and e-mail notifications
    path("settings/notifications/", notification_views.notifications, name="notifications"),
    path("settings/notifications/email/", notification_views.email_preferences, name="notifications-email"),
    path("settings/notifications/webhooks/", notification_views.webhook_create, name="webhook-create"),
    path("settings/notifications/webhooks/<uuid:webhook_id>/deliveries/<uuid:delivery_id>/resend/",
         notification_views.delivery_resend, name="delivery-resend"),
    path("settings/notifications/webhooks/<uuid:webhook_id>/<slug:action>/", notification_views.webhook_action,
         name="webhook-action"),
    # accounts: one's own, the organisation's team (admins), invitations, password reset
    path("account/", account.account, name="account"),
    path("account/password/", account.PasswordChangeView.as_view(), name="password-change"),
    path("account/team/", account.team, name="team"),
    path("account/team/invitations/<uuid:invitation_id>/revoke/", account.invitation_revoke, name="invitation-revoke"),
    path("invitations/<str:token>/", account.invitation_accept, name="invitation-accept"),
    path("password-reset/", account.PasswordResetView.as_view(), name="password-reset"),
    path("password-reset/sent/", account.PasswordResetSentView.as_view(), name="password-reset-sent"),
    path("password-reset/done/", account.PasswordResetCompleteView.as_view(), name="password-reset-complete"),
    path("password-reset/<uidb64>/<token>/", account.PasswordResetConfirmView.as_view(), name="password-reset-confirm"),
    # producers
    path("studio/", producer.studio, name="studio"),
    path("studio/upload/", producer.upload, name="studio-upload"),
    path("studio/uploads/<uuid:upload_id>/", producer.upload_detail, name="upload"),
    path("studio/uploads/<uuid:upload_id>/identification/", producer.upload_identification, name="upload-identification"),
    path("studio/uploads/<uuid:upload_id>/separate/", producer.separate, name="separate"),
    path("studio/jobs/<uuid:job_id>/", producer.job_detail, name="job"),
    path("studio/jobs/<uuid:job_id>/live/", producer.job_status, name="job-live"),
    path("studio/jobs/<uuid:job_id>/cancel/", producer.job_cancel, name="job-cancel"),
    path("studio/jobs/<uuid:job_id>/request-license/", producer.request_license, name="job-request-license"),
    path("studio/jobs/<uuid:job_id>/export/", producer.job_export, name="job-export"),
    path("studio/stems/<uuid:stem_id>/download/", producer.stem_download, name="stem-download"),
    path("studio/stems/<uuid:stem_id>/listen/", producer.stem_listen, name="stem-listen"),
    path("studio/stems/<uuid:stem_id>/provenance/", producer.stem_provenance, name="stem-provenance"),
    path("studio/licenses/", producer.licenses, name="studio-licenses"),
    path("studio/requests/<uuid:request_id>/withdraw/", producer.withdraw_request, name="request-withdraw"),
    # labels
    path("catalog/", label.catalog, name="catalog"),
    path("catalog/new/", label.recording_create, name="recording-create"),
    path("catalog/<uuid:recording_id>/", label.recording_detail, name="recording"),
    path("catalog/<uuid:recording_id>/remove/", label.recording_remove, name="recording-remove"),
    path("licenses/", label.licenses, name="label-licenses"),
    path("licenses/new/", label.grant_create, name="grant-create"),
    path("licenses/<uuid:grant_id>/", label.grant_detail, name="grant"),
    path("licenses/<uuid:grant_id>/amend/", label.grant_amend, name="grant-amend"),
    path("licenses/<uuid:grant_id>/<slug:action>/", label.grant_action, name="grant-action"),
    path("requests/", label.requests_inbox, name="requests"),
    path("requests/<uuid:request_id>/", label.request_decide, name="request"),
    path("usage/", label.usage, name="usage"),
    path("usage.csv", label.usage_csv, name="usage-csv"),
    # rights holders and platform staff
    path("reviews/", reviews.reviews_inbox, name="reviews"),
    path("reviews/<uuid:review_id>/", reviews.review_decide, name="review"),
    # platform auditors
    path("audit/", audit.find, name="audit"),
    path("audit/stems/<uuid:stem_id>/", audit.stem_detail, name="audit-stem"),
    path("audit/ledger/", audit.ledger_health, name="ledger"),
    path("audit/ledger/verify/", audit.ledger_verify, name="ledger-verify"),
    path("audit/jobs/", audit.job_monitor, name="job-monitor"),
    path("audit/jobs/<uuid:job_id>/", audit.job_detail, name="audit-job"),
    path("audit/uploads/<uuid:upload_id>/", audit.upload_detail, name="audit-upload"),
    path("audit/grants/<uuid:grant_id>/", audit.grant_detail, name="audit-grant"),
    path("audit/ledger/live/", audit.ledger_live, name="ledger-live"),
    path("audit/ledger/entries/<int:index>/", audit.ledger_entry, name="audit-ledger-entry"),
    path("audit/ledger/consistency/", audit.consistency_proof, name="audit-consistency"),
]
