"""Organisations (label, producer, platform) and their users.

What a user may see and do follows from the kind of their organisation (labels: catalog and
grants; producers: uploads, jobs, stems; platform: everything, read-mostly) and their role
inside it (viewers only read).
"""
from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils import timezone


class Organisation(models.Model):
    class Kind(models.TextChoices):
        LABEL = "label", "Label (rights holder)"
        PRODUCER = "producer", "Producer"
        PLATFORM = "platform", "Platform operator"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    verified = models.BooleanField(
        default=False, help_text="Verified producers may use open remix campaigns."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["label", "producer", "platform"]),
                name="organisation_kind_valid",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class ClearStemUserManager(UserManager):
    def create_user(self, username=None, email=None, password=None, **extra):
        return super().create_user(username or email, email=email, password=password, **extra)


class User(AbstractUser):
    """A person; `username` is the e-mail address used to sign in."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Organisation admin"
        MEMBER = "member", "Member"
        VIEWER = "viewer", "Viewer (read-only)"

    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="users", null=True, blank=True
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    objects = ClearStemUserManager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=["admin", "member", "viewer"]), name="user_role_valid"
            )
        ]

    @property
    def org_kind(self) -> str | None:
        return self.organisation.kind if self.organisation_id else None

    @property
    def is_platform(self) -> bool:
        return self.org_kind == Organisation.Kind.PLATFORM

    @property
    def is_label(self) -> bool:
        return self.org_kind == Organisation.Kind.LABEL

    @property
    def is_producer(self) -> bool:
        return self.org_kind == Organisation.Kind.PRODUCER

    @property
    def can_write(self) -> bool:
        return self.is_active and self.role != self.Role.VIEWER


class InvitationQuerySet(models.QuerySet):
    def pending(self):
        """Neither accepted nor revoked (expired ones included: they still hold the org+email slot
        until revoked or replaced)."""
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True)


class Invitation(models.Model):
    """An organisation admin's invitation of one e-mail address, with a role.

    Only a SHA-256 of the token is stored: the token itself exists in the e-mail alone, so a
    database read does not let anyone join an organisation. One use, an expiry, revocable; at
    most one pending invitation per organisation and address (a database constraint)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(help_text="Lower-cased; the invitee's e-mail and default user name.")
    role = models.CharField(max_length=16, choices=User.Role.choices, default=User.Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 (hex) of the token in the e-mail.")
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="invitations_sent")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_user = models.OneToOneField(User, on_delete=models.SET_NULL, null=True, blank=True,
                                         related_name="invitation")
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "email"],
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_pending_per_org_email",
            ),
            models.CheckConstraint(condition=models.Q(role__in=["admin", "member", "viewer"]),
                                   name="invitation_role_valid"),
            models.CheckConstraint(condition=models.Q(accepted_at__isnull=True) | models.Q(revoked_at__isnull=True),
                                   name="invitation_not_accepted_and_revoked"),
            models.CheckConstraint(condition=models.Q(expires_at__gt=models.F("created_at")),
                                   name="invitation_expires_after_creation"),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.organisation.slug} ({self.role}, {self.status})"

    @property
    def status(self) -> str:
        if self.accepted_at:
            return self.Status.ACCEPTED
        if self.revoked_at:
            return self.Status.REVOKED
        if self.expires_at <= timezone.now():
            return self.Status.EXPIRED
        return self.Status.PENDING
