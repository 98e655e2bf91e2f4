"""Limits: writes are throttled per user (429 `throttled` with Retry-After), and sign-in locks an
account after 5 wrong passwords (and an address after many accounts) until the lockout ends."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import Client

from tests.conftest import upload_file

PASSWORD = "s3cret-passphrase"


def test_writes_are_throttled_per_user_and_scope(clients, settings, audio_dir):
    settings.CLEARSTEM_THROTTLE_RATES = {"license-requests": "3/min", "jobs": "100/min", "uploads": "2/min"}
    producer = clients["producer"]
    for _ in range(3):  # refused or not, every write counts
        assert producer.post("/api/v1/license-requests/", {}, format="json").status_code == 400
    r = producer.post("/api/v1/license-requests/", {}, format="json")
    assert r.status_code == 429 and r["Content-Type"] == "application/json", r.content
    assert r.json()["code"] == "throttled" and 0 < int(r["Retry-After"]) <= 60
    assert producer.get("/api/v1/license-requests/").status_code == 200  # reads are not throttled
    assert producer.post("/api/v1/jobs/", {}, format="json").status_code == 400  # other scopes have their own
    assert clients["producer_b"].post("/api/v1/license-requests/", {}, format="json").status_code == 400

    for _ in range(2):
        assert upload_file(producer, audio_dir / "original.wav").status_code == 201
    r = upload_file(producer, audio_dir / "original.wav")
    assert r.status_code == 429 and r.json()["code"] == "throttled"


def _sign_in(username: str, password: str, address: str):
    return Client(REMOTE_ADDR=address).post("/signin/", {"username": username, "password": password})


def _locked(r) -> bool:
    return r.status_code == 429 and "Too many failed sign-in attempts" in r.content.decode()


LOCKOUT_S = 6  # long enough that the steps below fit inside it on a loaded 2-core machine


@pytest.fixture
def producer_login(users, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=LOCKOUT_S)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast attempts
    user = users["producer"][0]
    user.set_password(PASSWORD)
    user.save()
    return user.username


def test_five_wrong_passwords_lock_the_account_until_the_lockout_ends(producer_login):
    # from five different addresses: the account's count, not the address's
    first_failure = time.monotonic()
    for i in range(4):
        r = _sign_in(producer_login, "wrong", f"10.0.0.{i}")
        assert r.status_code == 200 and "Please enter a correct" in r.content.decode() and not _locked(r)
    r = _sign_in(producer_login, "wrong", "10.0.0.4")  # the 5th: locked from now on, and told so
    assert _locked(r) and int(r["Retry-After"]) == LOCKOUT_S
    assert 'role="alert"' in r.content.decode() and producer_login in r.content.decode()  # the form, refilled

    assert _locked(_sign_in(producer_login, "wrong", "10.0.0.5"))  # the 6th wrong password
    right = _sign_in(producer_login, PASSWORD, "10.0.0.6")  # the right one is refused too
    assert _locked(right) and "sessionid" not in right.cookies
    assert _locked(_sign_in(producer_login, PASSWORD, "10.0.0.0"))

    assert time.monotonic() - first_failure < LOCKOUT_S - 1  # (all of that happened while locked)
    time.sleep(max(0.0, first_failure + LOCKOUT_S + 0.5 - time.monotonic()))
    ok = _sign_in(producer_login, PASSWORD, "10.0.0.7")  # the lockout has ended
    assert ok.status_code == 302 and "sessionid" in ok.cookies


def test_an_address_trying_many_accounts_is_locked(producer_login, users, settings):
    settings.CLEARSTEM_SIGNIN_IP_FAILURE_LIMIT = 4
    for name in ("label@example.test", "platform@example.test", "nobody@example.test"):
        assert not _locked(_sign_in(name, "guess", "192.0.2.7"))
    r = _sign_in("someone-else@example.test", "guess", "192.0.2.7")  # the address's 4th failure
    assert _locked(r)
    assert _locked(_sign_in(producer_login, PASSWORD, "192.0.2.7"))  # no account from there, for now
    assert _sign_in(producer_login, PASSWORD, "192.0.2.8").status_code == 302  # elsewhere: fine
