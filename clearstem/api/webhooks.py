"""Webhooks per organisation: `/api/v1/webhooks/` (CRUD), their deliveries with every attempt,
a test send and re-sends. Everyone in the organisation may read them (the secret is shown only
in the answer to the create); only its admins may change them or send."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from clearstem.accounts.services import require_admin
from clearstem.notifications import services
from clearstem.notifications.events import EVENT_TYPES, TEST_EVENT
from clearstem.notifications.models import DeliveryAttempt, WebhookDelivery, WebhookEndpoint

from .parsers import FormParser, JSONParser

UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=list(EVENT_TYPES)),
                                   help_text="event types sent; empty = all")

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "events", "active", "created_at"]


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="signs every delivery (ClearStem-Signature); shown only now")

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class WebhookWriteSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, help_text="http:// or https:// only")
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    events = serializers.ListField(child=serializers.ChoiceField(choices=list(EVENT_TYPES)), required=False,
                                   help_text="event types to send; empty or absent = all")
    active = serializers.BooleanField(required=False, default=True)


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "at", "status_code", "response_excerpt", "duration_ms", "error"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.UUIDField(source="event.id", read_only=True)
    event_type = serializers.ChoiceField(source="event.type", choices=[*EVENT_TYPES, TEST_EVENT], read_only=True)
    attempt_log = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event_id", "event_type", "status", "attempts", "next_attempt_at", "created_at",
                  "finished_at", "resend_of", "attempt_log"]


class WebhookViewSet(mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.ListModelMixin,
                     mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = WebhookSerializer
    parser_classes = [JSONParser, FormParser]
    lookup_value_regex = UUID_PATTERN
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        user = self.request.user
        if getattr(self, "swagger_fake_view", False) or not user.organisation_id:
            return WebhookEndpoint.objects.none()
        return WebhookEndpoint.objects.filter(organisation_id=user.organisation_id)

    @extend_schema(request=WebhookWriteSerializer, responses={201: WebhookCreatedSerializer})
    def create(self, request, *args, **kwargs):
        require_admin(request.user)
        body = WebhookWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint = services.do_create_webhook(request.user, **body.validated_data)
        return Response(WebhookCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=WebhookWriteSerializer(partial=True), responses={200: WebhookSerializer})
    def partial_update(self, request, *args, **kwargs):
        webhook_id = self.get_object().pk
        body = WebhookWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        endpoint = services.do_update_webhook(request.user, webhook_id, **body.validated_data)
        return Response(WebhookSerializer(endpoint).data)

    def destroy(self, request, *args, **kwargs):
        services.do_delete_webhook(request.user, self.get_object().pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: WebhookDeliverySerializer(many=True)})
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        """Newest first, each with its attempts (status code, response excerpt, duration, error)."""
        qs = self.get_object().deliveries.select_related("event").prefetch_related("attempt_log")
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Send a `webhook.test` event to this webhook now (whatever its filter or active flag)."""
        delivery = services.do_send_test_event(request.user, self.get_object().pk)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"], url_path=rf"deliveries/(?P<delivery_id>{UUID_PATTERN})/resend")
    def resend(self, request, pk=None, delivery_id=None):
        """Deliver the same event again (same event id and body) as a new delivery."""
        delivery = services.do_resend_delivery(request.user, self.get_object().pk, delivery_id)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
