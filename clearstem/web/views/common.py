"""Shared view plumbing: who may open a page, and how service refusals reach the user."""
from __future__ import annotations

from functools import wraps
from math import ceil

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from sharedcore.errors import DomainError


def persona(*kinds: str):
    """Pages of one persona (or a few): others get 404, as the API hides other organisations'
    objects."""

    def deco(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.user.org_kind not in kinds:
                raise Http404("not available to your organisation")
            return view(request, *args, **kwargs)

        return wrapper

    return deco


def writer(view):
    """Actions that change something: viewers (read-only members) are told so."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.can_write:
            messages.error(request, "Your role is read-only: ask an admin of your organisation to do this.")
            back = request.META.get("HTTP_REFERER", "")
            safe = url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure())
            return redirect(back if back and safe else "web:home")
        return view(request, *args, **kwargs)

    return wrapper


def refuse(request, exc: DomainError, to, *args):
    """A service said no: show why, go back."""
    messages.error(request, str(exc.detail))
    return redirect(to, *args)


def wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@login_required
def home(request):
    user = request.user
    if user.is_producer:
        return redirect("web:studio")
    if user.is_label:
        return redirect("web:catalog")
    if user.is_platform:
        return redirect("web:audit")
    return render(request, "web/no_organisation.html", status=403)


class SignInView(auth_views.LoginView):
    template_name = "web/signin.html"
    redirect_authenticated_user = True


class SignOutView(auth_views.LogoutView):
    pass


def signin_locked_out(request, response=None, credentials=None):
    """django-axes' lockout answer (settings.AXES_LOCKOUT_CALLABLE): the sign-in page again,
    saying that sign-in is locked and for how long; 429 with Retry-After. The same words for an
    account that exists and one that does not."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    minutes = max(1, ceil(seconds / 60))
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form = AuthenticationForm(request, initial={"username": username})
    locked_out = (f"Too many failed sign-in attempts: signing in to this account (or from your network) is "
                  f"locked for up to {minutes} minute{'s' if minutes != 1 else ''}. Try again later, or ask an "
                  f"admin of your organisation to reset your password.")
    page = render(request, SignInView.template_name,
                  {"form": form, "locked_out": locked_out, "next": request.POST.get("next", "")}, status=429)
    page["Retry-After"] = str(seconds)
    return page
