"""Invitations through the API: organisation admins invite, list and revoke; the invitee
accepts with the token from the e-mail (no sign-in needed) and gets an API token back."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from clearstem.accounts import invitations
from clearstem.accounts.models import Invitation, User

from .serializers import ErrorSerializer


class InvitationSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=Invitation.Status.choices, read_only=True,
                                     help_text="pending, accepted, revoked or expired (derived from the dates)")
    organisation = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    invited_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "status", "organisation", "invited_by", "created_at", "expires_at",
                  "accepted_at", "revoked_at"]


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=User.Role.choices, default=User.Role.MEMBER)


class InvitationAcceptSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=200, help_text="the token from the invitation link")
    username = serializers.CharField(max_length=150, required=False, allow_blank=True,
                                     help_text="defaults to the invited e-mail address")
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"},
                                     help_text="checked by the site's password rules")


class AcceptedSerializer(serializers.Serializer):
    username = serializers.CharField()
    email = serializers.EmailField()
    organisation = serializers.CharField(help_text="the organisation's slug")
    role = serializers.ChoiceField(choices=User.Role.choices)
    token = serializers.CharField(help_text="an API token for the new user (Authorization: Token …)")


class InvitationViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                        mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Admins of an organisation manage its invitations (others: 403); another organisation's
    invitations are invisible (404). DELETE revokes (the record is kept, its link stops working)."""

    serializer_class = InvitationSerializer
    throttle_scope = "invitations"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Invitation.objects.none()
        invitations.require_admin(self.request.user)
        return invitations.visible_invitations(self.request.user)

    @extend_schema(request=InvitationCreateSerializer, responses={201: InvitationSerializer, 503: ErrorSerializer})
    def create(self, request, *args, **kwargs):
        invitations.require_admin(request.user)
        body = InvitationCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        invitation, _ = invitations.do_invite_user(request.user, **body.validated_data)
        return Response(self.get_serializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, *args, **kwargs):
        invitations.do_revoke_invitation(request.user, self.get_object().pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=InvitationAcceptSerializer, responses={201: AcceptedSerializer})
    @action(detail=False, methods=["post"], permission_classes=[AllowAny], authentication_classes=[],
            throttle_scope="invitations-accept")
    def accept(self, request):
        body = InvitationAcceptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user, token = invitations.do_accept_invitation(**body.validated_data, with_token=True)
        return Response(AcceptedSerializer({"username": user.username, "email": user.email, "role": user.role,
                                            "organisation": user.organisation.slug, "token": token}).data,
                        status=status.HTTP_201_CREATED)
