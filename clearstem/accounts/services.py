"""Onboarding write paths: one function per action, each in one transaction."""
from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from rest_framework.authtoken.models import Token

from sharedcore.errors import Conflict, DomainError, NotFound, PermissionDenied

from .models import Organisation, User


def require_admin(user) -> None:
    """The one check for "an admin of their organisation" (invitations, webhooks, the pages that
    offer them): raises PermissionDenied `admin_required` otherwise."""
    if not is_admin(user):
        raise PermissionDenied("admin_required", "only an admin of your organisation can do this")


def is_admin(user) -> bool:
    return bool(getattr(user, "is_active", False) and getattr(user, "organisation_id", None)
                and user.role == User.Role.ADMIN)


@transaction.atomic
def do_create_org(slug: str, kind: str, name: str | None = None, verified: bool = False) -> Organisation:
    if kind not in Organisation.Kind.values:
        raise DomainError("invalid_kind", f"unknown organisation kind {kind!r}; use one of {Organisation.Kind.values}")
    if Organisation.objects.filter(slug=slug).exists():
        raise Conflict("organisation_exists", f"organisation {slug!r} already exists")
    return Organisation.objects.create(slug=slug, kind=kind, name=name or slug, verified=verified)


@transaction.atomic
def do_create_user(
    email: str, org_slug: str, role: str = User.Role.MEMBER, password: str | None = None,
    with_token: bool = False,
) -> tuple[User, str | None]:
    try:
        org = Organisation.objects.get(slug=org_slug)
    except Organisation.DoesNotExist:
        raise NotFound("no_organisation", f"no organisation {org_slug!r}") from None
    if role not in User.Role.values:
        raise DomainError("invalid_role", f"unknown role {role!r}; use one of {User.Role.values}")
    if User.objects.filter(username=email).exists():
        raise Conflict("user_exists", f"user {email!r} already exists")
    return new_user(org, username=email, email=email, role=role, password=password, with_token=with_token)


def new_user(org: Organisation, *, username: str, email: str, role: str, password: str | None,
             with_token: bool = False) -> tuple[User, str | None]:
    """A user of `org` (inside the caller's transaction): platform users are staff and auditors;
    no password means none can be used until one is set."""
    user = User.objects.create_user(
        username=username, email=email, password=password, organisation=org, role=role,
        is_staff=org.kind == Organisation.Kind.PLATFORM,
    )
    if password is None:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    if org.kind == Organisation.Kind.PLATFORM:
        user.groups.add(auditors_group())
    token = Token.objects.create(user=user).key if with_token else None
    return user, token


#: What platform auditors may read in the Django admin, per app (read-only for everyone there:
#: rights and provenance objects change only through their services).
AUDITOR_VIEW_MODELS = {
    "provenance": ("ledgerentry", "treehead", "provenancerecord", "ledgerverification"),
    "licensing": ("licensegrant", "licenserequest", "recording", "usageevent"),
    "jobs": ("job", "stem"),
    "uploads": ("upload",),
}


def auditors_group():
    """The group every platform user joins: view permissions on rights and provenance objects,
    nothing else (no add, change or delete anywhere)."""
    group, _ = Group.objects.get_or_create(name="platform auditors")
    for app_label, models in AUDITOR_VIEW_MODELS.items():
        perms = Permission.objects.filter(content_type__app_label=app_label, codename__in=[f"view_{m}" for m in models])
        group.permissions.add(*perms)
    return group

