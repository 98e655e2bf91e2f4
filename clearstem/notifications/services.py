"""Webhooks and e-mail notifications: one service function per write, each in one transaction;
messages to the workers are sent after commit, so a rolled-back change notifies no one."""
from __future__ import annotations

import ipaddress
import json
import logging
import secrets
import socket
import time
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from requests.adapters import HTTPAdapter

from clearstem.accounts.services import require_admin
from clearstem.messaging import send_on_commit
from sharedcore.errors import DomainError, NotFound

from . import signing
from .dispatch import send_deliver_webhook, send_email_event
from .events import ALL, EVENT_TYPES, TEST_EVENT
from .models import DeliveryAttempt, EmailOptOut, EmailReceipt, NotificationEvent, WebhookDelivery, WebhookEndpoint

log = logging.getLogger("clearstem.notifications")
USER_AGENT = "ClearStem-Webhooks/1"
EXCERPT_BYTES = 500
REFUSED_ADDRESS = "refused: the URL resolves to a loopback, private or link-local address"


# --- webhook endpoints ---------------------------------------------------------------------

def clean_url(url: str) -> str:
    """http(s) with a host, nothing else: a webhook POSTs signed events to whatever is named."""
    url = (url or "").strip()
    if not url:
        raise DomainError("invalid_url", "give the URL to send events to")
    if len(url) > 2000 or any(c.isspace() or ord(c) < 32 for c in url):
        raise DomainError("invalid_url", "the URL is too long or contains spaces")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        raise DomainError("invalid_url", "that is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise DomainError("invalid_url", "webhook URLs must start with http:// or https://")
    if not parts.hostname or parts.username or parts.password:
        raise DomainError("invalid_url", "the URL needs a host name (and no user name or password)")
    if _names_refused(parts.hostname):
        raise DomainError("private_address", "webhooks cannot be sent to loopback, private or link-local addresses")
    return url


def _refused(address: str) -> bool:
    """Whether a webhook may not be posted to this IP address. Link-local (169.254.0.0/16: cloud
    metadata; fe80::/10), unspecified (0.0.0.0, ::) and multicast addresses never; loopback and
    private ones only with CLEARSTEM_WEBHOOK_ALLOW_PRIVATE."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_link_local or ip.is_unspecified or ip.is_multicast:
        return True
    return not settings.CLEARSTEM_WEBHOOK_ALLOW_PRIVATE and not ip.is_global


def _names_refused(host: str) -> bool:
    """An address literal `_refused` refuses, or a localhost name (unless private addresses are
    allowed). Names are not resolved here (a slow DNS would hold the request); `_post` checks
    what they resolve to, and connects to the address it checked."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return not settings.CLEARSTEM_WEBHOOK_ALLOW_PRIVATE
    try:
        return _refused(host)
    except ValueError:
        return False


def _resolve(parts) -> tuple[str | None, str]:
    """(the address to connect to, "") or (None, why not). Every address the name resolves to
    must be allowed, so which one a retry gets does not matter."""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None, "could not connect to the receiver (its host name does not resolve)"
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    try:
        if not addresses or any(_refused(a) for a in addresses):
            return None, REFUSED_ADDRESS
    except ValueError:
        return None, REFUSED_ADDRESS
    return addresses[0], ""


def _pinned_url(parts, address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return urlunsplit((parts.scheme, host + (f":{parts.port}" if parts.port else ""), parts.path or "/",
                       parts.query, ""))


class _PinnedTLS(HTTPAdapter):
    """HTTPS to the address that was checked (the URL names it) while TLS still uses the
    webhook's host name: SNI and the certificate check. So a name that resolves elsewhere
    between the check and the connection (DNS rebinding) changes nothing."""

    def __init__(self, hostname: str):
        self.hostname = hostname
        super().__init__()

    def _tls_names(self) -> dict:
        return {"server_hostname": self.hostname, "assert_hostname": self.hostname}

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs, **self._tls_names())

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        return super().proxy_manager_for(proxy, **proxy_kwargs, **self._tls_names())


def clean_events(events) -> list[str]:
    events = list(dict.fromkeys(events or []))
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise DomainError("invalid_events", f"unknown event types: {', '.join(map(str, unknown))}")
    return events


def _endpoint(user, webhook_id, lock: bool = False) -> WebhookEndpoint:
    qs = WebhookEndpoint.objects.filter(organisation_id=user.organisation_id)
    endpoint = (qs.select_for_update() if lock else qs).filter(pk=webhook_id).first()
    if endpoint is None or not user.organisation_id:
        raise NotFound("not_found", "no such webhook")
    return endpoint


@transaction.atomic
def do_create_webhook(user, *, url: str, events=(), description: str = "", active: bool = True) -> WebhookEndpoint:
    """The secret is made here and shown once, to whoever created the endpoint."""
    require_admin(user)
    return WebhookEndpoint.objects.create(
        organisation_id=user.organisation_id, url=clean_url(url), events=clean_events(events),
        description=(description or "").strip()[:200], active=active, created_by=user,
        secret="whsec_" + secrets.token_urlsafe(32))


@transaction.atomic
def do_update_webhook(user, webhook_id, **changes) -> WebhookEndpoint:
    require_admin(user)
    endpoint = _endpoint(user, webhook_id, lock=True)
    if "url" in changes:
        endpoint.url = clean_url(changes["url"])
    if "events" in changes:
        endpoint.events = clean_events(changes["events"])
    if "description" in changes:
        endpoint.description = (changes["description"] or "").strip()[:200]
    if "active" in changes:
        endpoint.active = bool(changes["active"])
    endpoint.save()
    return endpoint


@transaction.atomic
def do_delete_webhook(user, webhook_id) -> None:
    """Its deliveries go with it; pending ones are never sent."""
    require_admin(user)
    _endpoint(user, webhook_id, lock=True).delete()


def _deliver(endpoint: WebhookEndpoint, event: NotificationEvent, resend_of=None) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=event, resend_of=resend_of)
    send_on_commit(send_deliver_webhook, delivery.id)
    return delivery


@transaction.atomic
def do_send_test_event(user, webhook_id) -> WebhookDelivery:
    """A `webhook.test` event to this endpoint only (whatever its filter or active flag says)."""
    require_admin(user)
    endpoint = _endpoint(user, webhook_id)
    event = NotificationEvent.objects.create(
        organisation_id=user.organisation_id, type=TEST_EVENT, summary="Test event", emailed_at=timezone.now(),
        data={"webhook": str(endpoint.id), "message": f"A test sent by {user.username}; nothing happened."})
    return _deliver(endpoint, event)


@transaction.atomic
def do_resend_delivery(user, webhook_id, delivery_id) -> WebhookDelivery:
    """A new delivery of the same event (same event id and body: receivers can de-duplicate)."""
    require_admin(user)
    endpoint = _endpoint(user, webhook_id)
    original = WebhookDelivery.objects.filter(endpoint=endpoint, pk=delivery_id).select_related("event").first()
    if original is None:
        raise NotFound("not_found", "no such delivery")
    return _deliver(endpoint, original.event, resend_of=original)


# --- events --------------------------------------------------------------------------------

def recipients(organisation_id, event_type: str):
    """The organisation's active users with an address who did not opt out of this type."""
    return (get_user_model().objects.filter(organisation_id=organisation_id, is_active=True).exclude(email="")
            .exclude(email_opt_outs__event_type__in=[event_type, ALL]).order_by("email"))


@transaction.atomic
def do_publish_event(event_type: str, organisation_id, summary: str, data: dict) -> NotificationEvent:
    """Record what happened for one organisation, a delivery per webhook that wants it, and
    wake the workers (after commit) to post the deliveries and send the e-mails."""
    if event_type not in EVENT_TYPES:
        raise DomainError("invalid_event", f"unknown event type {event_type}")
    event = NotificationEvent.objects.create(organisation_id=organisation_id, type=event_type,
                                             summary=summary[:300], data=data)
    for endpoint in WebhookEndpoint.objects.filter(organisation_id=organisation_id, active=True):
        if endpoint.wants(event_type):
            _deliver(endpoint, event)
    if recipients(organisation_id, event_type).exists():
        send_on_commit(send_email_event, event.id)
    else:  # nobody to write to: settled now, so the reconciler never looks at it again
        event.emailed_at = event.created_at
        event.save(update_fields=["emailed_at"])
    return event


def do_resend_stale_deliveries() -> dict:
    """Wake the workers again for what a lost message left undone (broker restart, worker
    killed): deliveries pending CLEARSTEM_JOB_RESEND_AFTER_S past their due time, e-mails of the
    last day not sent that long after their event. Run by every reconciler pass; a delivery
    woken twice may be posted twice (receivers de-duplicate by event id), never lost."""
    now = timezone.now()
    overdue = now - timedelta(seconds=settings.CLEARSTEM_JOB_RESEND_AFTER_S)
    deliveries = list(WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).filter(
        Q(attempts=0, created_at__lt=overdue) | Q(next_attempt_at__lt=overdue)).values_list("id", flat=True)[:1000])
    for delivery_id in deliveries:
        send_deliver_webhook(delivery_id)
    events = list(NotificationEvent.objects.filter(
        emailed_at__isnull=True, created_at__lt=overdue, created_at__gt=now - timedelta(days=1)).exclude(
        type=TEST_EVENT).values_list("id", flat=True)[:1000])
    for event_id in events:
        send_email_event(event_id)
    return {"resent_deliveries": len(deliveries), "resent_emails": len(events)}


def payload(event: NotificationEvent) -> dict:
    org = event.organisation
    return {"id": str(event.id), "type": event.type, "created": int(event.created_at.timestamp()),
            "organisation": {"id": org.id, "slug": org.slug, "name": org.name}, "data": event.data}


def body_of(event: NotificationEvent) -> bytes:
    return json.dumps(payload(event), separators=(",", ":"), sort_keys=True).encode()


def backoff_s(attempt: int) -> float:
    """Seconds before attempt n+1: BACKOFF_S, doubling each time, at most MAX_BACKOFF_S."""
    return min(settings.CLEARSTEM_WEBHOOK_BACKOFF_S * 2 ** (attempt - 1), settings.CLEARSTEM_WEBHOOK_MAX_BACKOFF_S)


def _post(endpoint: WebhookEndpoint, event: NotificationEvent, delivery_id) -> dict:
    """One POST; what came back (status, excerpt) or why nothing did. Never raises."""
    body = body_of(event)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "ClearStem-Event": event.type,
               "ClearStem-Delivery": str(delivery_id), signing.HEADER: signing.header_value(endpoint.secret, body)}
    started = time.monotonic()
    out = {"status_code": None, "response_excerpt": "", "error": ""}
    parts = urlsplit(endpoint.url)
    # checked at each attempt (a name may point elsewhere than when the webhook was added), and
    # the POST goes to the address checked, not to what a second lookup would answer
    address, refusal = _resolve(parts)
    if address is None:
        return {**out, "error": refusal, "duration_ms": int((time.monotonic() - started) * 1000)}
    headers["Host"] = parts.netloc
    try:
        with requests.Session() as session:
            if parts.scheme == "https":
                session.mount("https://", _PinnedTLS(parts.hostname))
            # no redirects: a 3xx is an answer to log, not a new address to post signed events to
            with session.post(_pinned_url(parts, address), data=body, headers=headers,
                              timeout=settings.CLEARSTEM_WEBHOOK_TIMEOUT_S, allow_redirects=False,
                              stream=True) as resp:
                out["status_code"] = resp.status_code
                try:
                    raw = resp.raw.read(EXCERPT_BYTES, decode_content=True) or b""
                    out["response_excerpt"] = raw.decode("utf-8", "replace")[:EXCERPT_BYTES]
                except Exception:  # noqa: BLE001 - the status is the answer; a body we cannot read is only noted
                    out["error"] = "the answer's body could not be read"
    except requests.Timeout:
        out["error"] = f"no answer within {settings.CLEARSTEM_WEBHOOK_TIMEOUT_S:g} s"
    except requests.exceptions.SSLError:
        out["error"] = "the receiver's TLS certificate was not accepted"
    except requests.ConnectionError:
        out["error"] = "could not connect to the receiver"
    except requests.RequestException:
        out["error"] = "the request could not be sent (the receiver broke the connection or answered nonsense)"
    out["duration_ms"] = int((time.monotonic() - started) * 1000)
    return out


def do_attempt_delivery(delivery_id) -> float | None:
    """POST one delivery once and log the attempt. Returns the seconds to wait before the next
    attempt, or None when the delivery is settled (2xx, out of attempts, webhook removed or
    disabled). Idempotent by delivery id: a settled delivery is not posted again."""
    delivery = WebhookDelivery.objects.select_related("endpoint", "event", "event__organisation").filter(
        pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return None
    disabled = not delivery.endpoint.active and delivery.event.type != TEST_EVENT
    if disabled:
        result = {"status_code": None, "response_excerpt": "", "error": "the webhook is disabled", "duration_ms": 0}
    else:
        result = _post(delivery.endpoint, delivery.event, delivery.id)  # no transaction held while waiting
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().filter(pk=delivery_id).first()
        if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
            return None
        attempt = DeliveryAttempt.objects.create(delivery=delivery, number=delivery.attempts + 1, **result)
        delivery.attempts = attempt.number
        now = timezone.now()
        wait = None
        if attempt.ok:
            delivery.status, delivery.finished_at, delivery.next_attempt_at = "succeeded", now, None
        elif disabled or attempt.number >= settings.CLEARSTEM_WEBHOOK_MAX_ATTEMPTS:
            delivery.status, delivery.finished_at, delivery.next_attempt_at = "failed", now, None
        else:
            wait = backoff_s(attempt.number)
            delivery.next_attempt_at = now + timedelta(seconds=wait)
        delivery.save(update_fields=["status", "attempts", "finished_at", "next_attempt_at"])
    return wait


# --- e-mail --------------------------------------------------------------------------------

def _email_body(event: NotificationEvent, org_name: str) -> str:
    data = event.data
    link = next((v["url"] for v in data.values() if isinstance(v, dict) and v.get("url")), "")
    lines = [event.summary, ""]
    if data.get("message"):
        lines += [data["message"], ""]
    if link:
        lines += [f"Open it: {link}", ""]
    prefs = settings.CLEARSTEM_PUBLIC_URL + reverse("web:notifications")
    lines += ["-- ", f"ClearStem, for {org_name}. Choose which e-mails you get: {prefs}"]
    return "\n".join(lines)


def email_subject(summary: str) -> str:
    """One header line: a title with a newline in it would make the message unsendable."""
    return " ".join(f"[ClearStem] {summary}".split())[:250]


def do_email_event(event_id) -> int:
    """E-mail the event to its organisation's users (minus opt-outs), once each: every message
    is sent on its own, outside any transaction, and a receipt recorded right after it, so a
    retry (the actor's, or the reconciler's) writes only to those not reached yet. The event
    is stamped `emailed_at` once everyone was; if anyone was not, this raises (so it is
    retried) after trying all the others. At least once per person: a worker dying between a
    send and its receipt sends that one again. Returns the number of messages sent now."""
    event = NotificationEvent.objects.select_related("organisation").filter(pk=event_id).first()
    if event is None or event.emailed_at or event.type == TEST_EVENT:
        return 0
    subject, body = email_subject(event.summary), _email_body(event, event.organisation.name)
    done = set(EmailReceipt.objects.filter(event=event).values_list("user_id", flat=True))
    sent, failed = 0, []
    with mail.get_connection() as connection:  # one SMTP session for all of them
        for user in recipients(event.organisation_id, event.type).exclude(pk__in=done):
            try:
                mail.EmailMessage(subject, body, to=[user.email], connection=connection).send()
            except Exception:  # noqa: BLE001 - one address that fails must not hold back the others
                log.exception("event %s: the e-mail to user %s could not be sent", event.id, user.pk)
                failed.append(user.pk)
                continue
            EmailReceipt.objects.get_or_create(event=event, user=user)
            sent += 1
    if failed:
        raise RuntimeError(f"event {event.id}: {len(failed)} e-mails could not be sent (retried)")
    NotificationEvent.objects.filter(pk=event.pk, emailed_at__isnull=True).update(emailed_at=timezone.now())
    return sent


@transaction.atomic
def do_set_email_opt_outs(user, opted_out) -> list[str]:
    """Replace the user's opt-outs: event types (or `all`) they get no e-mail about."""
    wanted = list(dict.fromkeys(opted_out or []))
    unknown = [t for t in wanted if t not in EVENT_TYPES and t != ALL]
    if unknown:
        raise DomainError("invalid_events", f"unknown event types: {', '.join(map(str, unknown))}")
    EmailOptOut.objects.filter(user=user).exclude(event_type__in=wanted).delete()
    have = set(EmailOptOut.objects.filter(user=user).values_list("event_type", flat=True))
    EmailOptOut.objects.bulk_create([EmailOptOut(user=user, event_type=t) for t in wanted if t not in have])
    return wanted


def email_opt_outs(user) -> set[str]:
    return set(EmailOptOut.objects.filter(user=user).values_list("event_type", flat=True))
