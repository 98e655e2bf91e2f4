"""Organisations (label, producer, platform) and their users.

What a user may see and do follows from the kind of their organisation (labels: catalog and
grants; producers: uploads, jobs, stems; platform: everything, read-mostly) and their role
inside it (viewers only read).
"""
from __future__ import annotations

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models


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
