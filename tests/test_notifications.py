"""Notifications: signed webhooks delivered by the real worker to a real local HTTP receiver
(verified with the README's snippet), retries and their log, re-sends, e-mail with per-user
opt-outs, organisation scoping, bad input."""
from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core import mail
from django.db import transaction
from django.test import Client
from django.utils import timezone

from clearstem.jobs.lifecycle import transition
from clearstem.jobs.models import Job
from clearstem.notifications import services, signing
from clearstem.notifications.models import NotificationEvent, WebhookDelivery, WebhookEndpoint
from clearstem.uploads.models import Upload
from licensing.models import Recording
from tests.chromium import SHOTS, chromium_browser

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_verifier():
    """The verification snippet exactly as the README documents it."""
    text = README.read_text()
    section = text[text.index("### Webhooks"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace["verify_clearstem_signature"]


class Receiver:
    """A real HTTP server on loopback that answers with the next status of `statuses` (the
    last one repeats) and keeps every request it got."""

    def __init__(self, statuses=(200,), delay_s: float = 0.0):
        self.statuses = list(statuses)
        self.delay_s = delay_s
        self.got: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.got.append({"headers": dict(self.headers), "body": body})
                time.sleep(receiver.delay_s)
                code = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                answer = json.dumps({"received": True, "code": code}).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (the slow receiver's timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/clearstem"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def loopback_receivers(settings):
    """The receivers here listen on 127.0.0.1, which production settings refuse."""
    settings.CLEARSTEM_WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def fast_retries(settings):
    settings.CLEARSTEM_WEBHOOK_MAX_ATTEMPTS = 3
    settings.CLEARSTEM_WEBHOOK_BACKOFF_S = 0.05
    settings.CLEARSTEM_WEBHOOK_TIMEOUT_S = 2
    return settings


def wait_for(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := predicate()):
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def add_webhook(client, url, **extra):
    r = client.post("/api/v1/webhooks/", {"url": url, **extra}, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def settled(client, hook_id, n=1):
    def check():
        rows = client.get(f"/api/v1/webhooks/{hook_id}/deliveries/").json()["results"]
        done = [d for d in rows if d["status"] != "pending"]
        return rows if len(done) >= n else None
    return wait_for(check, what=f"{n} settled deliveries")


def recording(org, title="Night Drive", **extra):
    return Recording.objects.create(rights_holder=org, title=title, artist="The Testers", isrc=None,
                                    reference_audio="ref.wav", audio_sha256=uuid.uuid4().hex * 2, duration_s=30,
                                    territories=["WW"], **extra)


def grant_to_producer(clients, rec):
    body = {"licensee": "producer-a", "recordings": [str(rec.id)], "stems": ["vocals", "drums"],
            "purposes": ["remix"], "commercial": False, "territories": ["WW"],
            "valid_from": (timezone.now() - timedelta(days=1)).isoformat(),
            "valid_until": (timezone.now() + timedelta(days=30)).isoformat()}
    r = clients["label"].post("/api/v1/licenses/", body, format="json")
    assert r.status_code == 201, r.content
    return r.json()


# --- signatures ----------------------------------------------------------------------------

def test_signature_verifies_and_refuses_tampering_and_replays():
    verify = readme_verifier()
    body = b'{"id":"x"}'
    header = signing.header_value("whsec_test", body)
    assert verify("whsec_test", header, body) and signing.verify("whsec_test", header, body)
    assert not verify("whsec_test", header, body + b" ")
    assert not verify("whsec_other", header, body)
    old = signing.header_value("whsec_test", body, timestamp=int(time.time()) - 3600)
    assert not verify("whsec_test", old, body) and not signing.verify("whsec_test", old, body)
    assert not verify("whsec_test", "garbage", body)


# --- delivery through the worker -----------------------------------------------------------

def test_test_event_reaches_a_real_receiver_signed(clients, worker, receiver):
    hook = add_webhook(clients["producer"], receiver.url, description="CI")
    assert hook["secret"].startswith("whsec_") and hook["events"] == []
    assert "secret" not in clients["producer"].get(f"/api/v1/webhooks/{hook['id']}/").json()

    r = clients["producer"].post(f"/api/v1/webhooks/{hook['id']}/test/")
    assert r.status_code == 202, r.content
    [delivery] = settled(clients["producer"], hook["id"])
    assert delivery["status"] == "succeeded" and delivery["event_type"] == "webhook.test"
    [attempt] = delivery["attempt_log"]
    assert attempt["status_code"] == 200 and '"received": true' in attempt["response_excerpt"]

    [got] = receiver.got
    headers = {k.lower(): v for k, v in got["headers"].items()}
    assert readme_verifier()(hook["secret"], headers["clearstem-signature"], got["body"])
    event = json.loads(got["body"])
    assert event["type"] == "webhook.test" and event["organisation"]["slug"] == "producer-a"
    assert headers["clearstem-delivery"] == delivery["id"] and headers["clearstem-event"] == "webhook.test"


def test_failing_receiver_is_retried_logged_and_resent(clients, worker, fast_retries):
    failing = Receiver(statuses=(500,))
    try:
        hook = add_webhook(clients["producer"], failing.url)
        clients["producer"].post(f"/api/v1/webhooks/{hook['id']}/test/")
        [delivery] = settled(clients["producer"], hook["id"])
        assert delivery["status"] == "failed" and delivery["attempts"] == 3
        assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 500]
        assert all(a["duration_ms"] >= 0 and '"code": 500' in a["response_excerpt"] for a in delivery["attempt_log"])
        assert len(failing.got) == 3

        failing.statuses = [503, 200]  # down once more, then back
        r = clients["producer"].post(f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery['id']}/resend/")
        assert r.status_code == 202, r.content
        assert r.json()["resend_of"] == delivery["id"]
        rows = settled(clients["producer"], hook["id"], n=2)
        resent = next(d for d in rows if d["id"] == r.json()["id"])
        assert resent["status"] == "succeeded" and [a["status_code"] for a in resent["attempt_log"]] == [503, 200]
        ids = {json.loads(g["body"])["id"] for g in failing.got}
        assert ids == {delivery["event_id"]}  # the same event, so receivers can de-duplicate
    finally:
        failing.close()


def test_unreachable_and_refused_receivers_log_why(clients, worker, fast_retries):
    """No answer: each attempt says why (nothing listening; too slow; in production, a name that
    resolves to loopback is refused when posting, even if it was accepted when added)."""
    gone = Receiver()
    gone.close()  # nothing listens there any more
    hook = add_webhook(clients["producer"], gone.url)
    clients["producer"].post(f"/api/v1/webhooks/{hook['id']}/test/")
    [delivery] = settled(clients["producer"], hook["id"])
    assert delivery["status"] == "failed" and delivery["attempts"] == 3
    assert {a["error"] for a in delivery["attempt_log"]} == {"could not connect to the receiver"}
    assert all(a["status_code"] is None for a in delivery["attempt_log"])

    slow = Receiver(delay_s=1.0)
    fast_retries.CLEARSTEM_WEBHOOK_TIMEOUT_S = 0.3
    try:
        hook = add_webhook(clients["producer"], slow.url)
        clients["producer"].post(f"/api/v1/webhooks/{hook['id']}/test/")
        [delivery] = settled(clients["producer"], hook["id"])
        assert delivery["status"] == "failed" and len(slow.got) == 3
        assert {a["error"] for a in delivery["attempt_log"]} == {"no answer within 0.3 s"}
        assert all(250 <= a["duration_ms"] < 1000 for a in delivery["attempt_log"])
    finally:
        slow.close()

    listening = Receiver()
    try:
        hook = add_webhook(clients["producer"], listening.url.replace("127.0.0.1", "localhost"))
        fast_retries.CLEARSTEM_WEBHOOK_ALLOW_PRIVATE = False
        clients["producer"].post(f"/api/v1/webhooks/{hook['id']}/test/")
        [delivery] = settled(clients["producer"], hook["id"])
        assert delivery["status"] == "failed" and listening.got == []
        assert {a["error"] for a in delivery["attempt_log"]} == {
            "refused: the URL resolves to a loopback, private or link-local address"}
    finally:
        listening.close()


def test_the_reconciler_resends_what_a_lost_message_left_pending(clients, orgs, worker, receiver, monkeypatch):
    """A broker that lost the messages: the delivery stays pending and the e-mail unsent until
    a reconciler pass, once they are overdue, wakes the worker again."""
    from clearstem.jobs.reconciler import reconcile_once
    from clearstem.notifications import services

    hook = add_webhook(clients["producer"], receiver.url)
    with monkeypatch.context() as lost:  # the broker loses both messages on the way
        lost.setattr(services, "send_deliver_webhook", lambda _id: None)
        lost.setattr(services, "send_email_event", lambda _id: None)
        event = services.do_publish_event("job.failed", orgs["producer"].id, "Job failed: lost.wav",
                                          {"message": "lost"})
    delivery = WebhookDelivery.objects.get(event=event)
    reconcile_once()
    time.sleep(0.3)
    assert receiver.got == [] and mail.outbox == []  # not overdue yet: nothing re-sent

    long_ago = timezone.now() - timedelta(minutes=10)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=long_ago)
    NotificationEvent.objects.filter(pk=event.pk).update(created_at=long_ago)
    reconcile_once()
    [row] = settled(clients["producer"], hook["id"])
    assert row["status"] == "succeeded" and json.loads(receiver.got[0]["body"])["id"] == str(event.id)
    wait_for(lambda: len(mail.outbox) == 2, what="the re-sent e-mails")
    assert reconcile_once() is not None and len(mail.outbox) == 2  # settled: never sent twice


def test_license_events_are_posted_and_emailed_with_opt_outs(clients, users, orgs, worker, receiver):
    hook = add_webhook(clients["producer"], receiver.url, events=["license.granted", "license.revoked"])
    label_hook = add_webhook(clients["label"], receiver.url, events=["license_request.created"])
    viewer = users["producer_viewer"][0]
    web = Client()
    web.force_login(viewer)
    # the viewer keeps e-mail on but not about grants
    r = web.post("/settings/notifications/email/", {"all": "on", "email": ["license.revoked", "job.finished"]})
    assert r.status_code == 302

    grant = grant_to_producer(clients, recording(orgs["label"]))
    wait_for(lambda: len(receiver.got) >= 1, what="license.granted delivery")
    granted = json.loads(receiver.got[0]["body"])
    assert granted["type"] == "license.granted" and granted["data"]["license"]["id"] == grant["id"]
    assert granted["data"]["license"]["recordings"][0]["title"] == "Night Drive"
    assert granted["data"]["license"]["api_url"].endswith(f"/api/v1/licenses/{grant['id']}/")
    wait_for(lambda: mail.outbox, what="the grant's e-mail")
    assert [m.to for m in mail.outbox] == [["producer@example.test"]]  # not the opted-out viewer
    assert "Night Drive" in mail.outbox[0].subject and "/settings/notifications/" in mail.outbox[0].body

    assert clients["label"].post(f"/api/v1/licenses/{grant['id']}/revoke/").status_code == 200
    wait_for(lambda: len(receiver.got) >= 2, what="license.revoked delivery")
    assert json.loads(receiver.got[1]["body"])["type"] == "license.revoked"
    wait_for(lambda: len(mail.outbox) >= 3, what="the revocation's e-mails")
    assert sorted(m.to[0] for m in mail.outbox[1:]) == ["producer@example.test", "producer_viewer@example.test"]
    # the label's webhook only wants requests: it got nothing of these
    assert clients["label"].get(f"/api/v1/webhooks/{label_hook['id']}/deliveries/").json()["count"] == 0
    assert clients["producer"].get(f"/api/v1/webhooks/{hook['id']}/deliveries/").json()["count"] == 2


def test_all_opt_out_stops_every_email(clients, users, orgs, worker):
    for key in ("producer", "producer_viewer"):
        web = Client()
        web.force_login(users[key][0])
        assert web.post("/settings/notifications/email/", {"email": ["license.granted"]}).status_code == 302
    grant_to_producer(clients, recording(orgs["label"]))
    event = wait_for(lambda: NotificationEvent.objects.filter(type="license.granted").first(), what="the event")
    time.sleep(0.5)
    assert mail.outbox == [] and event.deliveries.count() == 0


def test_email_subjects_are_one_line_and_a_retry_writes_only_to_whom_was_missed(orgs, users, monkeypatch):
    event = services.do_publish_event("job.failed", orgs["producer"].id, "Job failed:\r\nBcc: all@evil.test\n x",
                                      {"message": "m"})
    real_send = mail.EmailMessage.send

    def flaky(message, *args, **kwargs):
        if message.to == ["producer_viewer@example.test"]:
            raise OSError("the mail server hung up")
        return real_send(message, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(mail.EmailMessage, "send", flaky)
        with pytest.raises(RuntimeError):  # so the actor retries
            services.do_email_event(event.id)
    assert [m.to for m in mail.outbox] == [["producer@example.test"]]  # the failure held back no one else
    assert mail.outbox[0].subject == "[ClearStem] Job failed: Bcc: all@evil.test x"
    event.refresh_from_db()
    assert event.emailed_at is None

    assert services.do_email_event(event.id) == 1  # the retry: only the one missed
    assert [m.to for m in mail.outbox] == [["producer@example.test"], ["producer_viewer@example.test"]]
    event.refresh_from_db()
    assert event.emailed_at is not None
    assert services.do_email_event(event.id) == 0 and len(mail.outbox) == 2


def test_job_events_follow_the_lifecycle_and_only_after_commit(users, orgs, worker, receiver):
    producer = users["producer"][0]
    upload = Upload.objects.create(owner=producer, organisation=orgs["producer"], file="u.wav", original_name="demo.wav",
                                   size=10, sha256="0" * 64, container="wav", codec="pcm_s16le", sample_rate=44100,
                                   channels=2, duration_s=12.0, fingerprint=b"")
    job = Job.objects.create(upload=upload, requested_by=producer, organisation=orgs["producer"], stems=["vocals"],
                             purpose="remix", territory="GB", model="dsp")
    hook = WebhookEndpoint.objects.create(organisation=orgs["producer"], url=receiver.url, secret="whsec_x")
    with pytest.raises(RuntimeError), transaction.atomic():
        transition(Job.objects.select_for_update().get(pk=job.pk), Job.State.FAILED, code="boom", message="rolled back")
        # recorded inside the change's transaction (a crash after its commit loses nothing) ...
        assert NotificationEvent.objects.filter(type="job.failed").count() == 1
        assert WebhookDelivery.objects.filter(endpoint=hook).count() == 1
        raise RuntimeError("the change rolls back")
    time.sleep(0.3)
    # ... so they roll back with it: nobody is told
    assert not NotificationEvent.objects.exists() and not WebhookDelivery.objects.exists()
    assert receiver.got == [] and mail.outbox == []

    with transaction.atomic():
        transition(Job.objects.select_for_update().get(pk=job.pk), Job.State.FAILED, code="worker_lost",
                   message="the worker stopped answering")
    event = NotificationEvent.objects.get()
    wait_for(lambda: receiver.got, what="the job.failed delivery")
    assert json.loads(receiver.got[0]["body"])["id"] == str(event.id)
    assert event.type == "job.failed" and event.organisation_id == orgs["producer"].id
    assert event.data["job"]["id"] == str(job.id) and event.data["job"]["error_code"] == "worker_lost"
    assert event.data["job"]["url"].endswith(f"/studio/jobs/{job.id}/")
    wait_for(lambda: len(mail.outbox) == 2, what="job e-mails")
    assert all("Job failed: demo.wav" in m.subject and "the worker stopped answering" in m.body for m in mail.outbox)


def test_license_requests_notify_the_label_then_the_producer(clients, orgs, worker, receiver):
    hook = add_webhook(clients["label"], receiver.url, events=["license_request.created"])
    rec = recording(orgs["label"], title="Open Song", open_for_requests=True)  # producers may ask for it
    r = clients["producer"].post("/api/v1/license-requests/", {
        "recordings": [str(rec.id)], "stems": ["vocals"], "purpose": "remix", "territory": "GB",
        "commercial": False, "message": "for a bootleg"}, format="json")
    assert r.status_code == 201, r.content
    [delivery] = settled(clients["label"], hook["id"])
    created = json.loads(receiver.got[0]["body"])
    assert created["type"] == "license_request.created" and created["data"]["message"] == "for a bootleg"
    assert created["data"]["license_request"]["recordings"][0]["title"] == "Open Song"
    req_id = r.json()[0]["id"]
    assert clients["label"].post(f"/api/v1/license-requests/{req_id}/deny/", {"reason": "not this one"},
                                 format="json").status_code == 200
    answered = wait_for(lambda: NotificationEvent.objects.filter(type="license_request.answered").first(),
                        what="the answer event")
    assert answered.organisation_id == orgs["producer"].id and answered.data["message"] == "not this one"
    assert delivery["status"] == "succeeded"


# --- who may do what, and bad input --------------------------------------------------------

def test_other_organisations_cannot_see_or_touch_a_webhook(clients, users, receiver):
    hook = add_webhook(clients["producer"], receiver.url)
    hid = hook["id"]
    other = clients["producer_b"]
    assert other.get("/api/v1/webhooks/").json()["count"] == 0
    for method, path in (("get", f"/api/v1/webhooks/{hid}/"), ("patch", f"/api/v1/webhooks/{hid}/"),
                         ("delete", f"/api/v1/webhooks/{hid}/"), ("get", f"/api/v1/webhooks/{hid}/deliveries/"),
                         ("post", f"/api/v1/webhooks/{hid}/test/")):
        r = getattr(other, method)(path, {"active": False} if method == "patch" else None, format="json")
        assert r.status_code == 404 and r.json()["code"] == "not_found", (method, path)
    web = Client()
    web.force_login(users["producer_b"][0])
    assert web.post(f"/settings/notifications/webhooks/{hid}/remove/").status_code == 404
    assert hook["url"] not in web.get("/settings/notifications/").content.decode()
    assert WebhookEndpoint.objects.get(pk=hid).active

    # same organisation: members read, only admins write
    viewer = clients["producer_viewer"]
    assert viewer.get(f"/api/v1/webhooks/{hid}/").status_code == 200
    r = viewer.post(f"/api/v1/webhooks/{hid}/test/")
    assert r.status_code == 403 and r.json()["code"] == "admin_required"
    r = viewer.post("/api/v1/webhooks/", {"url": "https://example.com/x"}, format="json")
    assert r.status_code == 403 and r.json()["code"] == "admin_required"
    assert clients["producer"].patch(f"/api/v1/webhooks/{hid}/", {"active": False}, format="json").json()["active"] is False
    assert clients["producer"].delete(f"/api/v1/webhooks/{hid}/").status_code == 204
    assert not WebhookEndpoint.objects.exists() and not WebhookDelivery.objects.exists()


def test_bad_and_private_urls_are_refused(clients, settings):
    for url in ("ftp://example.com/hook", "javascript:alert(1)", "http://", "example.com/hook", "",
                "https://user:pw@example.com/", "http://example.com:99999/", "file:///etc/passwd"):
        r = clients["producer"].post("/api/v1/webhooks/", {"url": url}, format="json")
        assert r.status_code == 400 and r.json()["code"] in ("invalid_url", "invalid"), (url, r.content)
    settings.CLEARSTEM_WEBHOOK_ALLOW_PRIVATE = False  # the production default
    for url in ("http://127.0.0.1:8000/hook", "http://localhost/hook", "http://10.1.2.3/", "https://[::1]/hook",
                "http://169.254.169.254/latest/meta-data/", "http://api.localhost/"):
        r = clients["producer"].post("/api/v1/webhooks/", {"url": url}, format="json")
        assert r.status_code == 400 and r.json()["code"] == "private_address", (url, r.content)
    assert not WebhookEndpoint.objects.exists()
    assert clients["producer"].post("/api/v1/webhooks/", {"url": "https://hooks.example.com/cs"},
                                    format="json").status_code == 201
    settings.CLEARSTEM_WEBHOOK_ALLOW_PRIVATE = True  # a local receiver: still never these
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/hook", "http://0.0.0.0:8000/",
                "http://[::]/hook", "http://[::ffff:169.254.169.254]/", "http://224.0.0.1/"):
        r = clients["producer"].post("/api/v1/webhooks/", {"url": url}, format="json")
        assert r.status_code == 400 and r.json()["code"] == "private_address", (url, r.content)
    assert clients["producer"].post("/api/v1/webhooks/", {"url": "http://127.0.0.1:8000/hook"},
                                    format="json").status_code == 201


def test_the_private_setting_is_off_unless_set():
    from clearstem import settings as project_settings
    if "CLEARSTEM_WEBHOOK_ALLOW_PRIVATE" not in os.environ:
        assert project_settings.CLEARSTEM_WEBHOOK_ALLOW_PRIVATE is False


def resolving(monkeypatch, answers: dict):
    """getaddrinfo as a DNS that answers `answers[name]` (a list: the next answer each lookup,
    the last one repeating); other names and address literals as usual. Returns the lookups."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def fake(host, port, *args, **kwargs):
        if host in answers:
            asked.append(host)
            queue = answers[host]
            address = queue.pop(0) if len(queue) > 1 else queue[0]
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


def attempt_test_delivery(user, url):
    """A test delivery posted here, once (its broker message waits for a commit that a `db`
    test never makes); the attempt logged."""
    hook = WebhookEndpoint.objects.create(organisation_id=user.organisation_id, url=url, secret="whsec_t")
    delivery = services.do_send_test_event(user, hook.id)
    services.do_attempt_delivery(delivery.id)
    return delivery.attempt_log.get()


def test_the_post_goes_to_the_address_that_was_checked(users, receiver, monkeypatch, settings):
    """DNS rebinding: the name resolves to an allowed address when checked, to the metadata
    service after; the POST still goes to the address checked, with the name as its Host."""
    admin = users["producer"][0]
    port = receiver.server.server_port
    asked = resolving(monkeypatch, {"hooks.rebind.test": ["127.0.0.1", "169.254.169.254"]})
    attempt = attempt_test_delivery(admin, f"http://hooks.rebind.test:{port}/hooks/clearstem")
    assert attempt.status_code == 200 and asked == ["hooks.rebind.test"]
    [got] = receiver.got
    assert {k.lower(): v for k, v in got["headers"].items()}["host"] == f"hooks.rebind.test:{port}"

    # the next attempt looks again, and refuses link-local whatever ALLOW_PRIVATE says
    attempt = attempt_test_delivery(admin, f"http://hooks.rebind.test:{port}/hooks/clearstem")
    assert attempt.status_code is None and attempt.error == services.REFUSED_ADDRESS and len(receiver.got) == 1

    # https goes to the checked address too, TLS naming the host (this receiver speaks no TLS)
    asked = resolving(monkeypatch, {"tls.rebind.test": ["127.0.0.1"]})
    attempt = attempt_test_delivery(admin, f"https://tls.rebind.test:{port}/hooks/clearstem")
    assert attempt.status_code is None and asked == ["tls.rebind.test"], attempt.error
    assert attempt.error in ("the receiver's TLS certificate was not accepted", "could not connect to the receiver",
                             "the request could not be sent (the receiver broke the connection or answered nonsense)")

    settings.CLEARSTEM_WEBHOOK_ALLOW_PRIVATE = False
    resolving(monkeypatch, {"private.rebind.test": ["10.0.0.7"]})
    attempt = attempt_test_delivery(admin, "http://private.rebind.test/hook")
    assert attempt.error == services.REFUSED_ADDRESS


def test_bad_events_and_updates_are_refused(clients, receiver):
    r = clients["producer"].post("/api/v1/webhooks/", {"url": receiver.url, "events": ["job.exploded"]}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "invalid" and "events" in r.json()["errors"]
    hook = add_webhook(clients["producer"], receiver.url)
    r = clients["producer"].patch(f"/api/v1/webhooks/{hook['id']}/", {"url": "gopher://x"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "invalid_url"
    assert WebhookEndpoint.objects.get().url == receiver.url
    r = clients["producer"].post(f"/api/v1/webhooks/{hook['id']}/deliveries/{uuid.uuid4()}/resend/")
    assert r.status_code == 404 and r.json()["code"] == "not_found"


# --- the page --------------------------------------------------------------------------------

def test_page_adds_a_webhook_shows_its_secret_once_and_refuses_bad_urls(users, receiver):
    web = Client()
    web.force_login(users["producer"][0])
    page = web.get("/settings/notifications/")
    assert page.status_code == 200 and b"No webhooks yet." in page.content and b"Job finished" in page.content
    bad = web.post("/settings/notifications/webhooks/", {"url": "ftp://example.com/hook"})
    assert bad.status_code == 400 and b"must start with http:// or https://" in bad.content
    assert not WebhookEndpoint.objects.exists()

    made = web.post("/settings/notifications/webhooks/", {"url": receiver.url, "events": ["job.finished"]})
    assert made.status_code == 201
    hook = WebhookEndpoint.objects.get()
    assert hook.events == ["job.finished"] and hook.secret.encode() in made.content
    again = web.get("/settings/notifications/")
    assert hook.secret.encode() not in again.content and receiver.url.encode() in again.content

    viewer = Client()
    viewer.force_login(users["producer_viewer"][0])
    page = viewer.get("/settings/notifications/").content.decode()
    assert receiver.url in page and "Add a webhook" not in page and "Send test event" not in page
    r = viewer.post(f"/settings/notifications/webhooks/{hook.id}/remove/")
    assert r.status_code == 302 and WebhookEndpoint.objects.exists()


# --- in a browser ----------------------------------------------------------------------------

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def browser_page(live_server, worker):
    with chromium_browser() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
        context.set_default_timeout(20_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        context.close()
        assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.mark.slow
def test_admin_adds_a_webhook_in_the_browser_and_a_test_event_arrives_signed(browser_page, users, receiver):
    page, admin = browser_page, users["producer"][0]
    admin.set_password(PASSWORD)
    admin.save(update_fields=["password"])
    page.goto("/signin/")
    page.fill("input[name=username]", admin.username)
    page.fill("input[name=password]", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/signin/" not in url)

    page.get_by_role("link", name="Notifications").click()
    add = page.get_by_role("form", name="Add a webhook")
    add.get_by_label("URL (http or https)").fill("ftp://example.com/nope")
    add.get_by_role("button", name="Add webhook").click()
    assert "must start with http:// or https://" in page.inner_text("#err-url")
    add.get_by_label("URL (http or https)").fill(receiver.url)
    add.get_by_label("Job finished").check()
    add.get_by_role("button", name="Add webhook").click()
    secret = page.inner_text("#new-secret").strip()
    assert secret.startswith("whsec_")

    page.get_by_role("button", name="Send test event").click()
    wait_for(lambda: receiver.got, what="the test delivery")
    got = receiver.got[0]
    signature = {k.lower(): v for k, v in got["headers"].items()}["clearstem-signature"]
    assert readme_verifier()(secret, signature, got["body"])

    # the worker logs the attempt just after the receiver answers: wait for the log, then look
    wait_for(lambda: WebhookDelivery.objects.filter(status="succeeded").exists(), what="the delivery logged")
    page.reload()
    assert page.locator(".delivery .pill", has_text="succeeded").count() == 1
    page.locator(".delivery summary", has_text="Attempts").click()
    assert "HTTP 200" in page.inner_text(".delivery")

    # e-mail opt-out with the keyboard-usable checkboxes
    email = page.get_by_role("form", name="E-mail to you")
    email.get_by_label("License revoked").uncheck()
    email.get_by_role("button", name="Save e-mail preferences").click()
    assert "E-mail preferences saved." in page.inner_text(".messages")
    assert not email.get_by_label("License revoked").is_checked() and email.get_by_label("License granted").is_checked()

    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "phone-notifications.png"), full_page=True)


def test_operators_read_webhooks_in_the_admin_without_the_secret(admin_client, clients, receiver):
    hook = add_webhook(clients["producer"], receiver.url)
    page = admin_client.get(f"/admin/notifications/webhookendpoint/{hook['id']}/change/")
    assert page.status_code == 200 and receiver.url.encode() in page.content
    assert hook["secret"].encode() not in page.content
    assert admin_client.post(f"/admin/notifications/webhookendpoint/{hook['id']}/delete/").status_code == 403
    assert WebhookEndpoint.objects.filter(pk=hook["id"]).exists()
