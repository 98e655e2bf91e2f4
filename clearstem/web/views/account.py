"""Account pages: one's own account and password, the team page where an organisation's admins
invite people and revoke invitations, accepting an invitation, and password reset by e-mail
(Django's auth views with the site's templates)."""
from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.password_validation import password_validators_help_texts
from django.core.cache import cache
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token

from clearstem.accounts import invitations
from clearstem.accounts.models import User
from clearstem.accounts.services import is_admin
from clearstem.api.accounts import InvitationCreateSerializer
from sharedcore.errors import DomainError

from ..forms import bind

#: Service error codes that belong to one field of the invitation and accept forms.
INVITE_FIELD = {"invalid_email": "email", "user_exists": "email", "invitation_pending": "email", "invalid_role": "role"}
ACCEPT_FIELD = {"invalid_username": "username", "username_taken": "username", "invalid_password": "password1"}


@login_required
def account(request):
    return render(request, "web/account/account.html", {"is_admin": is_admin(request.user)})


@login_required
def team(request):
    if not is_admin(request.user):
        return render(request, "web/account/not_admin.html", status=403)
    values, errors, status = {"role": User.Role.MEMBER}, {}, 200
    if request.method == "POST":
        values = {"email": request.POST.get("email", "").strip(), "role": request.POST.get("role", "")}
        data, errors = bind(InvitationCreateSerializer, values)
        if not errors:
            try:
                invitation, _ = invitations.do_invite_user(request.user, **data)
            except DomainError as exc:
                errors = {INVITE_FIELD.get(exc.code, "__all__"): str(exc.detail)}
            else:
                messages.success(request, f"Invitation sent to {invitation.email}.")
                return redirect("web:team")
        status = 400
    org = request.user.organisation
    context = {
        "members": org.users.order_by("username"),
        "pending": invitations.visible_invitations(request.user).pending(),
        "roles": User.Role.choices, "values": values, "errors": errors,
        "days": settings.CLEARSTEM_INVITATION_DAYS,
    }
    return render(request, "web/account/team.html", context, status=status)


@login_required
@require_POST
def invitation_revoke(request, invitation_id):
    try:
        invitation = invitations.do_revoke_invitation(request.user, invitation_id)
    except DomainError as exc:
        messages.error(request, str(exc.detail))
    else:
        messages.success(request, f"Invitation to {invitation.email} revoked: its link no longer works.")
    return redirect("web:team")


def invitation_accept(request, token):
    """The link in the e-mail: choose a user name and password, then land signed in. A link that
    cannot be used (unknown, used, revoked, expired) gets a page saying why, and no form."""
    try:
        invitation = invitations.pending_invitation(token)
    except DomainError as exc:
        return render(request, "web/account/invitation_invalid.html", {"reason": exc.detail, "code": exc.code},
                      status=404 if exc.code == "invitation_not_found" else 410)
    values, errors, status = {"username": invitation.email}, {}, 200
    if request.method == "POST":
        values = {"username": request.POST.get("username", "").strip()}
        password, again = request.POST.get("password1", ""), request.POST.get("password2", "")
        if not password:
            errors["password1"] = "Choose a password."
        elif password != again:
            errors["password2"] = "The two passwords differ."
        if not errors:
            try:
                user, _ = invitations.do_accept_invitation(token, password, values["username"])
            except DomainError as exc:
                if exc.code not in ACCEPT_FIELD and exc.code != "user_exists":  # the link went bad meanwhile
                    return render(request, "web/account/invitation_invalid.html",
                                  {"reason": exc.detail, "code": exc.code}, status=410)
                errors = {ACCEPT_FIELD.get(exc.code, "__all__"): str(exc.detail)}
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                messages.success(request, f"Welcome to {user.organisation.name}: you are signed in as "
                                          f"{user.username} ({user.get_role_display().lower()}).")
                return redirect("web:home")
        status = 400
    return render(request, "web/account/invitation_accept.html",
                  {"invitation": invitation, "values": values, "errors": errors,
                   "password_rules": " ".join(password_validators_help_texts())}, status=status)


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "web/account/password_change.html"
    success_url = reverse_lazy("web:account")

    def form_valid(self, form):
        response = super().form_valid(form)
        revoked = revoke_api_tokens(form.user)
        messages.success(self.request, "Your password was changed." + (
            " Your API token was revoked with the old password." if revoked else ""))
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """Always the same answer, whether or not the address has an account (no enumeration)."""

    template_name = "web/account/password_reset.html"
    email_template_name = "web/account/password_reset_email.txt"
    subject_template_name = "web/account/password_reset_subject.txt"
    success_url = reverse_lazy("web:password-reset-sent")

    def form_valid(self, form):
        """One e-mail per address per CLEARSTEM_PASSWORD_RESET_EVERY_S, so the form cannot be used
        to flood someone's mailbox; the page says the same either way."""
        every = settings.CLEARSTEM_PASSWORD_RESET_EVERY_S
        if every > 0 and not cache.add(reset_throttle_key(form.cleaned_data["email"]), 1, timeout=every):
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)

    @property
    def extra_email_context(self):
        """Absolute links from CLEARSTEM_PUBLIC_URL, read when sending (not the request's host)."""
        return {"public_url": settings.CLEARSTEM_PUBLIC_URL}


def reset_throttle_key(email: str) -> str:
    return "password-reset:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


class PasswordResetSentView(auth_views.PasswordResetDoneView):
    template_name = "web/account/password_reset_sent.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "web/account/password_reset_confirm.html"
    success_url = reverse_lazy("web:password-reset-complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        revoke_api_tokens(form.user)
        return response


def revoke_api_tokens(user) -> int:
    """A new password ends the old credentials: the API token (DRF's, which would otherwise
    outlive a reset done because the account was taken over) is deleted with it. How many were."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "web/account/password_reset_complete.html"

