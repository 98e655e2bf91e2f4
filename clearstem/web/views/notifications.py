"""The organisation's notifications page: its webhooks with their recent deliveries (add,
remove, enable/disable, test, re-send: admins) and the signed-in user's own e-mail opt-outs."""
from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from clearstem.accounts.services import is_admin
from clearstem.api.webhooks import WebhookWriteSerializer
from clearstem.notifications import services
from clearstem.notifications.events import ALL, EVENT_TYPES, types_for
from clearstem.notifications.models import WebhookEndpoint
from sharedcore.errors import DomainError

from ..forms import bind, form_data
from .common import refuse

RECENT_DELIVERIES = 10


def _org_user(view):
    """Any member of an organisation (every kind has notifications); others get 404."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.organisation_id:
            raise Http404("not available without an organisation")
        return view(request, *args, **kwargs)

    return wrapper


def _page(request, *, status=200, form=None, errors=None, created=None):
    user = request.user
    hooks = list(WebhookEndpoint.objects.filter(organisation_id=user.organisation_id))
    for hook in hooks:  # an organisation has a few webhooks, each many deliveries: the newest only
        hook.recent = list(hook.deliveries.select_related("event").prefetch_related("attempt_log")[:RECENT_DELIVERIES])
    opted_out = services.email_opt_outs(user)
    mine = types_for(user.org_kind)
    return render(request, "web/notifications.html", {
        "hooks": hooks, "event_types": list(EVENT_TYPES.items()), "is_admin": is_admin(user),
        "email_types": [(t, EVENT_TYPES[t], t not in opted_out) for t in mine], "all_off": ALL in opted_out,
        "form": form or {"events": []}, "errors": errors or {}, "created": created,
    }, status=status)


@_org_user
def notifications(request):
    return _page(request)


@_org_user
@require_POST
def email_preferences(request):
    """Checked boxes are what the user wants; everything offered and unchecked is opted out."""
    offered = types_for(request.user.org_kind)
    wanted = set(request.POST.getlist("email"))
    opt_out = [t for t in offered if t not in wanted]
    if request.POST.get("all") != "on":
        opt_out.append(ALL)
    try:
        services.do_set_email_opt_outs(request.user, opt_out)
    except DomainError as exc:
        return refuse(request, exc, "web:notifications")
    messages.success(request, "E-mail preferences saved.")
    return redirect("web:notifications")


@_org_user
@require_POST
def webhook_create(request):
    """On success the page is rendered here, not redirected to: the secret is shown this once."""
    data = form_data(request.POST, lists=("events",), booleans=())
    data["active"] = True
    valid, errors = bind(WebhookWriteSerializer, data)
    if valid:
        try:
            hook = services.do_create_webhook(request.user, **valid)
        except DomainError as exc:
            errors = {"url" if exc.code == "invalid_url" else "__all__": str(exc.detail)}
        else:
            return _page(request, status=201, created=hook)
    return _page(request, status=400, form=data, errors=errors)


ACTIONS = {
    "test": (lambda u, h: services.do_send_test_event(u, h), "Test event sent: it shows below in a moment."),
    "disable": (lambda u, h: services.do_update_webhook(u, h, active=False), "Webhook disabled."),
    "enable": (lambda u, h: services.do_update_webhook(u, h, active=True), "Webhook enabled."),
    "remove": (lambda u, h: services.do_delete_webhook(u, h), "Webhook removed."),
}


@_org_user
@require_POST
def webhook_action(request, webhook_id, action):
    if action not in ACTIONS:
        raise Http404("no such action")
    run, done = ACTIONS[action]
    try:
        run(request.user, webhook_id)
    except DomainError as exc:
        if exc.code == "not_found":
            raise Http404(exc.detail) from None
        return refuse(request, exc, "web:notifications")
    messages.success(request, done)
    return redirect("web:notifications")


@_org_user
@require_POST
def delivery_resend(request, webhook_id, delivery_id):
    try:
        services.do_resend_delivery(request.user, webhook_id, delivery_id)
    except DomainError as exc:
        if exc.code == "not_found":
            raise Http404(exc.detail) from None
        return refuse(request, exc, "web:notifications")
    messages.success(request, "Delivery re-sent: the new attempt shows below in a moment.")
    return redirect("web:notifications")
