"""Webhook endpoints, the events recorded for an organisation, each delivery of an event to an
endpoint with every attempt, and users' e-mail opt-outs. The database is the source of truth:
a delivery's status says whether it still needs sending; broker messages only wake workers."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from .events import ALL, ALL_TYPES, EVENT_TYPES


class WebhookEndpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.CASCADE, related_name="webhooks")
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    # kept in clear: signing needs it; shown once, when the endpoint is created
    secret = models.CharField(max_length=100, editable=False)
    events = models.JSONField(default=list, blank=True, help_text="event types sent; empty = all")
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(url__startswith="http://") | models.Q(url__startswith="https://"),
                                   name="webhook_url_http"),
        ]

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events

    def __str__(self) -> str:
        return self.url


class NotificationEvent(models.Model):
    """One thing that happened, as one organisation is told: the payload is built once, so every
    delivery and re-send of it carries the same id and body."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=40)
    summary = models.CharField(max_length=300, help_text="one line for people (e-mail subject)")
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    emailed_at = models.DateTimeField(null=True, blank=True, help_text="e-mails sent (or none were due)")

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=models.Q(type__in=ALL_TYPES), name="event_type_valid")]
        # the reconciler's question every pass: which e-mails are still due?
        indexes = [models.Index(fields=["created_at"], condition=models.Q(emailed_at__isnull=True),
                                name="event_email_due")]

    def __str__(self) -> str:
        return f"{self.type} for {self.organisation_id}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(NotificationEvent, on_delete=models.CASCADE, related_name="deliveries")
    resend_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="resends")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=["pending", "succeeded", "failed"]),
                                   name="delivery_status_valid"),
            models.CheckConstraint(condition=models.Q(status="pending") | models.Q(finished_at__isnull=False),
                                   name="delivery_finished_has_time"),
        ]


class DeliveryAttempt(models.Model):
    """One HTTP POST of a delivery: what the receiver answered, or why nothing came back."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="attempt_unique_number")]

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class EmailOptOut(models.Model):
    """A user who does not want e-mail about one event type (or about any: `all`)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_opt_outs")
    event_type = models.CharField(max_length=40)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "event_type"], name="opt_out_unique"),
            models.CheckConstraint(condition=models.Q(event_type__in=[*EVENT_TYPES, ALL]), name="opt_out_type_valid"),
        ]


class EmailReceipt(models.Model):
    """An event's e-mail was sent to this user: a retry after a partial failure skips them."""

    event = models.ForeignKey(NotificationEvent, on_delete=models.CASCADE, related_name="email_receipts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "user"], name="email_receipt_unique")]
