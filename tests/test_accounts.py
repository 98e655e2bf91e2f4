"""Accounts: invitations by e-mail (web and API), password change, password reset by e-mail.
Messages go through Django's test e-mail backend (django.core.mail.outbox); links in them are
absolute (CLEARSTEM_PUBLIC_URL) and are followed as a person would."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.sites import site
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from clearstem.accounts.models import Invitation
from clearstem.web.views.account import reset_throttle_key
from tests.test_web import browser, html

PASSWORD = "a-long-and-unusual-passphrase"
PUBLIC = "https://stems.example.test"
User = get_user_model()


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.CLEARSTEM_PUBLIC_URL = PUBLIC


def link_in(message) -> str:
    """The one absolute link in a message, as a path for the test client."""
    (url,) = re.findall(r"https?://\S+", message.body)
    assert url.startswith(PUBLIC + "/"), url
    return url[len(PUBLIC):]


def signs_in(username: str, password: str) -> bool:
    """Through the sign-in page (django-axes needs the request that Client.login lacks)."""
    r = Client().post("/signin/", {"username": username, "password": password})
    return r.status_code == 302 and "/signin/" not in r["Location"]


def invite_by_api(client, email, role="member"):
    r = client.post("/api/v1/invitations/", {"email": email, "role": role}, format="json")
    assert r.status_code == 201, r.content
    return r.json(), link_in(mail.outbox[-1])


def test_invite_on_the_web_accept_from_the_email_and_land_signed_in(users):
    admin = browser(users["label"][0])
    r = admin.post("/account/team/", {"email": "New.Person@Example.test", "role": "viewer"})
    assert r.status_code == 302 and r["Location"] == "/account/team/"
    (message,) = mail.outbox
    assert message.to == ["new.person@example.test"] and "Label A" in message.subject
    path = link_in(message)
    assert "new.person@example.test" in html(admin.get("/account/team/"))  # listed as pending

    invitee = Client()
    form = invitee.get(path)
    assert form.status_code == 200 and 'value="new.person@example.test"' in html(form)
    differ = invitee.post(path, {"username": "new.person@example.test", "password1": PASSWORD, "password2": "other"})
    assert differ.status_code == 400 and "The two passwords differ." in html(differ)
    weak = invitee.post(path, {"username": "new.person@example.test", "password1": "password", "password2": "password"})
    assert weak.status_code == 400 and "too common" in html(weak)
    assert not User.objects.filter(email="new.person@example.test").exists()

    done = invitee.post(path, {"username": "newbie", "password1": PASSWORD, "password2": PASSWORD}, follow=True)
    assert done.redirect_chain[-1][0] == "/catalog/"  # a label's home page, signed in
    user = User.objects.get(username="newbie")
    assert (user.organisation.slug, user.role, user.email, user.can_write) == ("label-a", "viewer",
                                                                               "new.person@example.test", False)
    assert done.wsgi_request.user == user and "Welcome to Label A" in html(done)
    assert signs_in("newbie", PASSWORD)

    again = Client().get(path)  # one use
    assert again.status_code == 410 and "already been used" in html(again)
    assert "new.person@example.test" not in html(admin.get("/account/team/"))


def test_expired_revoked_and_unknown_links_are_refused_and_make_no_account(users, clients):
    invitation, path = invite_by_api(clients["label"], "late@example.test")
    past = timezone.now() - timedelta(days=8)
    Invitation.objects.filter(pk=invitation["id"]).update(created_at=past, expires_at=past + timedelta(days=7))
    expired = Client().post(path, {"username": "late", "password1": PASSWORD, "password2": PASSWORD})
    assert expired.status_code == 410 and "expired on" in html(expired) and "No account was made" in html(expired)
    api = clients["anonymous"].post("/api/v1/invitations/accept/", {"token": path.split("/")[2], "password": PASSWORD},
                                    format="json")
    assert api.status_code == 409 and api.json()["code"] == "invitation_expired"
    # an expired invitation is replaced by a new one to the same address
    renewed, new_path = invite_by_api(clients["label"], "late@example.test")
    assert Invitation.objects.get(pk=invitation["id"]).status == "revoked"

    assert clients["label"].delete(f"/api/v1/invitations/{renewed['id']}/").status_code == 204
    revoked = Client().get(new_path)
    assert revoked.status_code == 410 and "withdrawn" in html(revoked)
    again = clients["label"].delete(f"/api/v1/invitations/{renewed['id']}/")
    assert again.status_code == 409 and again.json()["code"] == "invitation_revoked"

    unknown = Client().get("/invitations/not-a-real-token/")
    assert unknown.status_code == 404 and "not valid" in html(unknown)
    assert not User.objects.filter(email="late@example.test").exists()


def test_api_invite_accept_and_refusals(users, clients):
    invitation, path = invite_by_api(clients["producer"], "collab@example.test", role="admin")
    assert invitation["status"] == "pending" and invitation["organisation"] == "producer-a"
    assert invitation["invited_by"] == "producer@example.test" and "token" not in invitation
    token = path.split("/")[2]
    assert Invitation.objects.get(pk=invitation["id"]).token_hash != token  # only its hash is stored

    dup = clients["producer"].post("/api/v1/invitations/", {"email": "Collab@example.test"}, format="json")
    assert dup.status_code == 409 and dup.json()["code"] == "invitation_pending"
    existing = clients["producer"].post("/api/v1/invitations/", {"email": "label@example.test"}, format="json")
    assert existing.status_code == 409 and existing.json()["code"] == "user_exists"
    for body in ({"email": "not-an-address"}, {"email": "x@example.test", "role": "owner"}, {}):
        bad = clients["producer"].post("/api/v1/invitations/", body, format="json")
        assert bad.status_code == 400 and bad.json()["code"] == "invalid", body
    viewer = clients["producer_viewer"].post("/api/v1/invitations/", {"email": "v@example.test"}, format="json")
    assert viewer.status_code == 403 and viewer.json()["code"] == "admin_required"
    assert clients["producer_viewer"].get("/api/v1/invitations/").status_code == 403
    assert len(mail.outbox) == 1  # nothing refused sent anything

    accept = "/api/v1/invitations/accept/"
    weak = clients["anonymous"].post(accept, {"token": token, "password": "12345678"}, format="json")
    assert weak.status_code == 400 and weak.json()["code"] == "invalid_password"
    taken = clients["anonymous"].post(accept, {"token": token, "username": "label@example.test",
                                               "password": PASSWORD}, format="json")
    assert taken.status_code == 409 and taken.json()["code"] == "username_taken"
    wrong = clients["anonymous"].post(accept, {"token": token + "x", "password": PASSWORD}, format="json")
    assert wrong.status_code == 404 and wrong.json()["code"] == "invitation_not_found"
    ok = clients["anonymous"].post(accept, {"token": token, "password": PASSWORD}, format="json")
    assert ok.status_code == 201, ok.content
    body = ok.json()
    assert (body["username"], body["organisation"], body["role"]) == ("collab@example.test", "producer-a", "admin")
    me = Client()
    me.defaults["HTTP_AUTHORIZATION"] = f"Token {body['token']}"
    assert me.get("/api/v1/invitations/").status_code == 200  # an admin of producer-a now
    reused = clients["anonymous"].post(accept, {"token": token, "password": PASSWORD}, format="json")
    assert reused.status_code == 409 and reused.json()["code"] == "invitation_used"
    assert User.objects.filter(email="collab@example.test").count() == 1
    listed = clients["producer"].get("/api/v1/invitations/").json()["results"]
    assert [(i["email"], i["status"]) for i in listed] == [("collab@example.test", "accepted")]


def test_invitations_of_another_organisation_are_invisible(users, clients):
    invitation, _ = invite_by_api(clients["label"], "mine@example.test")
    url = f"/api/v1/invitations/{invitation['id']}/"
    assert clients["label"].get(url).status_code == 200
    for other in ("label_b", "producer"):
        assert clients[other].get(url).status_code == 404
        assert clients[other].delete(url).status_code == 404
        assert clients[other].get("/api/v1/invitations/").json()["results"] == []
    other_admin = browser(users["label_b"][0])
    r = other_admin.post(f"/account/team/invitations/{invitation['id']}/revoke/", follow=True)
    assert "no such invitation" in html(r)
    assert Invitation.objects.get(pk=invitation["id"]).status == "pending"
    assert "mine@example.test" not in html(other_admin.get("/account/team/"))


def test_only_admins_manage_the_team_on_the_web(users):
    viewer = browser(users["label_viewer"][0])
    assert viewer.get("/account/team/").status_code == 403
    r = viewer.post("/account/team/", {"email": "sneaky@example.test", "role": "admin"})
    assert r.status_code == 403 and not Invitation.objects.exists() and not mail.outbox
    admin = browser(users["label"][0])
    bad = admin.post("/account/team/", {"email": "nope", "role": "member"})
    assert bad.status_code == 400 and 'aria-invalid="true" aria-describedby="err-email"' in html(bad)
    admin.post("/account/team/", {"email": "later@example.test", "role": "member"})
    invitation = Invitation.objects.get()
    r = admin.post(f"/account/team/invitations/{invitation.pk}/revoke/", follow=True)
    assert "revoked: its link no longer works" in html(r)
    assert Invitation.objects.get().status == "revoked"
    assert Client().get(link_in(mail.outbox[0])).status_code == 410


def test_password_reset_by_email_sets_a_new_password(users):
    user = users["producer"][0]
    user.set_password("the-old-passphrase")
    user.save()
    cache.delete(reset_throttle_key(user.email))
    anon = Client()
    assert "Forgot password?" in html(anon.get("/signin/"))
    r = anon.post("/password-reset/", {"email": "nobody@example.test"})
    assert r.status_code == 302 and r["Location"] == "/password-reset/sent/" and not mail.outbox  # same answer
    r = anon.post("/password-reset/", {"email": user.email})
    assert r["Location"] == "/password-reset/sent/"
    again = anon.post("/password-reset/", {"email": user.email.upper()})  # one e-mail a minute per address
    assert again["Location"] == "/password-reset/sent/"
    (message,) = mail.outbox
    path = link_in(message)
    form = anon.get(path, follow=True)
    assert "Choose a new password" in html(form)
    set_url = form.redirect_chain[-1][0]
    weak = anon.post(set_url, {"new_password1": "abc", "new_password2": "abc"})
    assert weak.status_code == 200 and "too short" in html(weak)
    done = anon.post(set_url, {"new_password1": PASSWORD, "new_password2": PASSWORD}, follow=True)
    assert "Password set" in html(done)
    assert signs_in(user.username, PASSWORD)
    assert not signs_in(user.username, "the-old-passphrase")
    used = Client().get(path, follow=True)
    assert "already used or has expired" in html(used)


def test_password_change_when_signed_in(users):
    user = users["label"][0]
    user.set_password("the-old-passphrase")
    user.save()
    web = Client()
    assert web.post("/signin/", {"username": user.username, "password": "the-old-passphrase"}).status_code == 302
    assert 'href="/account/"' in html(web.get("/catalog/"))
    wrong = web.post("/account/password/", {"old_password": "guess", "new_password1": PASSWORD,
                                            "new_password2": PASSWORD})
    assert wrong.status_code == 200 and 'aria-describedby="err-old_password"' in html(wrong)
    ok = web.post("/account/password/", {"old_password": "the-old-passphrase", "new_password1": PASSWORD,
                                         "new_password2": PASSWORD}, follow=True)
    assert ok.redirect_chain[-1][0] == "/account/" and "Your password was changed." in html(ok)
    assert web.get("/catalog/").status_code == 200  # still signed in
    assert signs_in(user.username, PASSWORD)


def test_the_admin_shows_invitations_and_changes_none(admin_user, rf):
    model_admin = site._registry[Invitation]
    request = rf.get("/admin/")
    request.user = admin_user
    assert not (model_admin.has_add_permission(request) or model_admin.has_change_permission(request)
                or model_admin.has_delete_permission(request) or model_admin.get_actions(request))
    assert "token_hash" in model_admin.exclude
