"""Invitations: an organisation admin invites an e-mail address with a role; the invitee opens
the link, chooses a user name and password, and becomes a user of that organisation.

Each write is one transaction. The token is random (256 bits), sent once by e-mail and stored
only as its SHA-256, so it cannot be read back from the database; it works once, until it
expires (settings.CLEARSTEM_INVITATION_DAYS) or is revoked."""
from __future__ import annotations

import hashlib
import logging
import secrets
import smtplib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from sharedcore.errors import Conflict, DomainError, NotFound

from .models import Invitation, User
from .services import new_user, require_admin

log = logging.getLogger(__name__)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def accept_url(token: str) -> str:
    """The absolute link in the e-mail (the web server does not know its public name)."""
    return settings.CLEARSTEM_PUBLIC_URL + reverse("web:invitation-accept", args=[token])


def visible_invitations(user):
    """An admin sees the invitations of their organisation; nobody sees another's."""
    if not user.organisation_id:
        return Invitation.objects.none()
    return Invitation.objects.filter(organisation=user.organisation).select_related("invited_by", "organisation")


def account_exists(email: str) -> bool:
    return User.objects.filter(Q(username__iexact=email) | Q(email__iexact=email)).exists()


@transaction.atomic
def do_invite_user(inviter: User, email: str, role: str = User.Role.MEMBER) -> tuple[Invitation, str]:
    """Create the invitation and send its e-mail; if the e-mail cannot be sent nothing is kept.
    A pending invitation for the same address that has expired is replaced."""
    require_admin(inviter)
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise DomainError("invalid_email", "enter a valid e-mail address") from None
    if role not in User.Role.values:
        raise DomainError("invalid_role", f"unknown role {role!r}; use one of {User.Role.values}")
    if account_exists(email):
        raise Conflict("user_exists", f"{email} already has a ClearStem account")
    org = inviter.organisation
    now = timezone.now()
    current = Invitation.objects.select_for_update().pending().filter(organisation=org, email=email).first()
    if current is not None:
        if current.expires_at > now:
            raise Conflict("invitation_pending",
                           f"{email} already has a pending invitation; revoke it to send a new one")
        current.revoked_at = now
        current.save(update_fields=["revoked_at"])
    token = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            invitation = Invitation.objects.create(
                organisation=org, email=email, role=role, token_hash=token_hash(token), invited_by=inviter,
                created_at=now, expires_at=now + timedelta(days=settings.CLEARSTEM_INVITATION_DAYS))
    except IntegrityError:  # a concurrent invitation of the same address won
        raise Conflict("invitation_pending", f"{email} already has a pending invitation") from None
    _send_invitation(invitation, token)
    return invitation, token


def _send_invitation(invitation: Invitation, token: str) -> None:
    context = {"invitation": invitation, "organisation": invitation.organisation, "url": accept_url(token),
               "inviter": invitation.invited_by, "days": settings.CLEARSTEM_INVITATION_DAYS,
               "role": invitation.get_role_display()}
    subject = f"You are invited to {invitation.organisation.name} on ClearStem"
    body = render_to_string("accounts/invitation_email.txt", context)
    try:
        send_mail(subject, body, None, [invitation.email])
    except (smtplib.SMTPException, OSError):
        log.warning("invitation e-mail to %s could not be sent", invitation.email, exc_info=True)
        raise DomainError("email_failed", "the invitation e-mail could not be sent, so no invitation was "
                                          "made; try again later") from None


def pending_invitation(token: str) -> Invitation:
    """The invitation a token opens, or why it does not (not found, used, revoked, expired)."""
    invitation = Invitation.objects.select_related("organisation").filter(token_hash=token_hash(token or "")).first()
    if invitation is None:
        raise NotFound("invitation_not_found", "this invitation link is not valid; check that the whole link "
                                               "was copied, or ask for a new invitation")
    status = invitation.status
    if status == Invitation.Status.ACCEPTED:
        raise Conflict("invitation_used", "this invitation has already been used; sign in, or reset your "
                                          "password if you forgot it")
    if status == Invitation.Status.REVOKED:
        raise Conflict("invitation_revoked", "this invitation was withdrawn by the organisation; ask its admin "
                                             "for a new one")
    if status == Invitation.Status.EXPIRED:
        expired = timezone.localtime(invitation.expires_at).strftime("%d %b %Y %H:%M %Z")
        raise Conflict("invitation_expired", f"this invitation expired on {expired}; ask the organisation's "
                                             "admin for a new one")
    return invitation


@transaction.atomic
def do_accept_invitation(token: str, password: str, username: str | None = None,
                         with_token: bool = False) -> tuple[User, str | None]:
    """Make the invitee's account in the invitation's organisation with its role, and use up the
    invitation. `username` defaults to the invited e-mail address."""
    invitation = pending_invitation(token)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.status != Invitation.Status.PENDING:  # accepted or revoked meanwhile
        pending_invitation(token)
    username = (username or "").strip() or invitation.email
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        raise DomainError("invalid_username", "a user name may contain only letters, digits and @ . + - _") from None
    if len(username) > User._meta.get_field("username").max_length:
        raise DomainError("invalid_username", "that user name is too long")
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict("username_taken", f"the user name {username!r} is taken; choose another")
    if account_exists(invitation.email):
        raise Conflict("user_exists", f"{invitation.email} already has a ClearStem account; sign in instead")
    try:
        validate_password(password or "", User(username=username, email=invitation.email))
    except ValidationError as exc:
        raise DomainError("invalid_password", " ".join(exc.messages)) from None
    user, api_token = new_user(invitation.organisation, username=username, email=invitation.email,
                               role=invitation.role, password=password, with_token=with_token)
    invitation.accepted_at = timezone.now()
    invitation.accepted_user = user
    invitation.save(update_fields=["accepted_at", "accepted_user"])
    return user, api_token


@transaction.atomic
def do_revoke_invitation(actor: User, invitation_id) -> Invitation:
    """Withdraw a pending invitation of the actor's organisation (its link stops working)."""
    require_admin(actor)
    invitation = Invitation.objects.select_for_update().filter(pk=invitation_id, organisation=actor.organisation).first()
    if invitation is None:
        raise NotFound("not_found", "no such invitation")
    if invitation.accepted_at:
        raise Conflict("invitation_used", "this invitation has already been accepted; it cannot be revoked")
    if invitation.revoked_at:
        raise Conflict("invitation_revoked", "this invitation is already revoked")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    return invitation

