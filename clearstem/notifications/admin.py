"""Read-only views for operators: which webhooks exist and how their deliveries went. Changes
go through the services (and the organisation's own page); the signing secret is never shown."""
from django.contrib import admin

from clearstem.readonly_admin import ReadOnlyInline, ReadOnlyModelAdmin

from .models import DeliveryAttempt, NotificationEvent, WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyModelAdmin):
    list_display = ("url", "organisation", "active", "created_at")
    list_filter = ("active",)
    search_fields = ("url", "organisation__slug")
    fields = readonly_fields = ("id", "organisation", "url", "description", "events", "active", "created_by",
                                "created_at")


class AttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    readonly_fields = ("number", "at", "status_code", "duration_ms", "error", "response_excerpt")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "endpoint", "event", "status", "attempts", "created_at")
    list_filter = ("status",)
    readonly_fields = ("id", "endpoint", "event", "resend_of", "status", "attempts", "next_attempt_at", "created_at",
                       "finished_at")
    inlines = [AttemptInline]


@admin.register(NotificationEvent)
class NotificationEventAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "type", "organisation", "summary", "created_at", "emailed_at")
    list_filter = ("type",)
    readonly_fields = ("id", "organisation", "type", "summary", "data", "created_at", "emailed_at")
