"""Under /api/ every answer is JSON `{"code", "detail"}` with a request id, whatever fails: a bug
(500 with the id, also in the log), the database going away (503 with Retry-After), unknown
URLs, numbers too large for the database, control characters in any text."""
from __future__ import annotations

import json
import logging
import socket
from urllib.parse import urlencode

import pytest
from django.core.exceptions import SuspiciousOperation
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.http import Http404
from django.urls import include, path
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from clearstem.api.pagination import BoundedLimitOffsetPagination
from licensing.models import Recording
from tests.conftest import grant_body

BIGINT_OVERFLOW = str(2**63)  # 9223372036854775808


class BuggyView(APIView):
    """Test-only (this module's urlconf): a view with a bug."""

    permission_classes = []
    authentication_classes = []

    def get(self, request):
        raise RuntimeError("a bug in a view")


def buggy_django_view(request):
    raise KeyError("a bug outside DRF")


def refusing_django_view(request, kind):
    raise {"missing": Http404("no such thing"), "suspicious": SuspiciousOperation("odd request")}[kind]


urlpatterns = [
    path("api/v1/test-only/bug/", BuggyView.as_view()),
    path("api/v1/test-only/django-bug/", buggy_django_view),
    path("api/v1/test-only/refuse/<str:kind>/", refusing_django_view),
    path("", include("clearstem.urls")),
]


def assert_json_error(r, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.content[:300])
    assert r["Content-Type"].startswith("application/json"), r["Content-Type"]
    body = r.json()
    assert body["code"] == code and body["detail"], body
    assert r["X-Request-ID"]
    return body


@pytest.mark.urls(__name__)
@pytest.mark.parametrize("url", ["/api/v1/test-only/bug/", "/api/v1/test-only/django-bug/"])
def test_an_unexpected_error_is_a_json_500_with_the_request_id_in_the_log(client, caplog, url):
    with caplog.at_level(logging.ERROR, logger="clearstem.api"):
        r = client.get(url)
    body = assert_json_error(r, 500, "server_error")
    assert body["request_id"] == r["X-Request-ID"] and body["request_id"] in body["detail"]
    (record,) = [rec for rec in caplog.records if rec.name == "clearstem.api"]
    assert body["request_id"] in record.getMessage() and record.exc_info
    assert b"bug" not in r.content  # no internals in the answer


@pytest.mark.urls(__name__)
def test_a_sane_client_request_id_is_kept(client):
    r = client.get("/api/v1/test-only/bug/", HTTP_X_REQUEST_ID="trace-0123456789")
    assert r["X-Request-ID"] == "trace-0123456789" and r.json()["request_id"] == "trace-0123456789"
    r = client.get("/api/v1/ledger/keys/", HTTP_X_REQUEST_ID="bad id\nwith a line break")
    assert r.status_code == 200 and len(r["X-Request-ID"]) == 32  # replaced by our own


@pytest.mark.urls(__name__)
def test_django_refusals_outside_drf_are_json_too(client):
    assert_json_error(client.get("/api/v1/test-only/refuse/missing/"), 404, "not_found")
    assert_json_error(client.get("/api/v1/test-only/refuse/suspicious/"), 400, "bad_request")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_the_database_being_unreachable_is_a_json_503_with_retry_after(clients):
    assert clients["producer"].get("/api/v1/jobs/").status_code == 200
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))  # PostgreSQL "goes away"
    try:
        r = clients["producer"].get("/api/v1/jobs/")
        public = clients["anonymous"].get("/api/v1/ledger/tree-head/")
    finally:
        connection.close()
        connection.settings_dict.update(saved)
    body = assert_json_error(r, 503, "unavailable")
    assert int(r["Retry-After"]) > 0 and body["request_id"] == r["X-Request-ID"]
    assert_json_error(public, 503, "unavailable")
    assert clients["producer"].get("/api/v1/jobs/").status_code == 200  # and back


def test_no_html_under_api(clients):
    assert_json_error(clients["producer"].get("/api/v1/no-such-thing/"), 404, "not_found")
    assert_json_error(clients["anonymous"].get("/api/v2/"), 404, "not_found")
    assert_json_error(clients["producer"].delete("/api/v1/jobs/"), 405, "method_not_allowed")
    assert_json_error(clients["anonymous"].post("/api/v1/ledger/keys/"), 405, "method_not_allowed")
    assert_json_error(clients["anonymous"].get("/api/v1/jobs/"), 401, "not_authenticated")
    r = clients["producer"].get("/api/v1/jobs/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert r.status_code == 200 and r["Content-Type"] == "application/json"  # a browser: no browsable API
    assert_json_error(clients["producer"].get("/api/v1/jobs/", HTTP_ACCEPT="text/html"), 406, "not_acceptable")
    r = clients["producer"].post("/api/v1/jobs/", data="{not json", content_type="application/json")
    assert_json_error(r, 400, "parse_error")
    r = clients["producer"].post("/api/v1/jobs/", data="<x/>", content_type="application/xml")
    assert_json_error(r, 415, "unsupported_media_type")
    # outside /api/ Django's own pages stay as they are
    assert clients["anonymous"].get("/no-such-page/")["Content-Type"].startswith("text/html")


LISTS = ["/api/v1/recordings/", "/api/v1/licenses/", "/api/v1/license-requests/", "/api/v1/jobs/", "/api/v1/uploads/"]


@pytest.mark.parametrize("query", [f"limit={BIGINT_OVERFLOW}", f"offset={BIGINT_OVERFLOW}", "limit=abc&offset=-3",
                                   f"limit={BIGINT_OVERFLOW}&offset={BIGINT_OVERFLOW}", "limit=0", "limit=1e3"])
def test_page_parameters_never_fail(clients, catalog, query):
    for url in LISTS:
        for role in ("label", "producer"):
            r = clients[role].get(f"{url}?{query}")
            assert r.status_code == 200, (role, url, query, r.content[:200])
            assert len(r.json()["results"]) <= 200
    assert len(clients["label"].get(f"/api/v1/recordings/?limit={BIGINT_OVERFLOW}").json()["results"]) == 2


def test_page_size_clamps_to_the_maximum():
    paginator = BoundedLimitOffsetPagination()
    for raw, limit in (("1000", 200), (BIGINT_OVERFLOW, 200), ("7", 7), ("x", 50), ("-1", 50)):
        request = Request(APIRequestFactory().get("/", {"limit": raw}))
        assert paginator.get_limit(request) == limit, raw


@pytest.mark.parametrize("url", [
    f"/api/v1/ledger/consistency/?first=0&second={BIGINT_OVERFLOW}",
    f"/api/v1/ledger/consistency/?first={BIGINT_OVERFLOW}&second=1",
    "/api/v1/ledger/consistency/?first=1",
    f"/api/v1/ledger/inclusion/?index={BIGINT_OVERFLOW}",
    f"/api/v1/ledger/inclusion/?index=0&size={BIGINT_OVERFLOW}",
    "/api/v1/ledger/inclusion/?index=-1",
    "/api/v1/ledger/inclusion/",
    "/api/v1/ledger/inclusion/?index=one",
    f"/api/v1/ledger/entries/?start={BIGINT_OVERFLOW}",
    f"/api/v1/ledger/entries/?end={BIGINT_OVERFLOW}",
    "/api/v1/ledger/entries/?start=5&end=2",
])
def test_ledger_integers_out_of_range_are_400(clients, catalog, url):
    assert_json_error(clients["platform"].get(url), 400, "invalid_range")


def test_ledger_entries_past_the_end_are_an_empty_page(clients, catalog):
    top = str(2**63 - 1)
    for query in (f"start={top}", f"start=1&end={top}", f"start={top}&end={top}"):
        r = clients["platform"].get(f"/api/v1/ledger/entries/?{query}")
        assert r.status_code == 200, r.content
        assert r.json()["end"] <= max(r.json()["size"], r.json()["start"])
    assert clients["platform"].get(f"/api/v1/ledger/entries/?start=0&end={top}").json()["entries"]


def _bad(r, field: str):
    body = assert_json_error(r, 400, "invalid")
    assert field in body["detail"], body


def test_control_characters_are_refused_in_every_text_field(clients, catalog, users, audio_dir):
    label, producer = clients["label"], clients["producer"]
    rec_id = catalog["recordings"][11]["id"]
    # the NUL in licensee_user that used to reach PostgreSQL (500)
    _bad(label.post("/api/v1/licenses/", grant_body([rec_id], licensee_user="\x00"), format="json"), "licensee_user")
    _bad(label.post("/api/v1/licenses/", grant_body([rec_id], licensee_user="producer@example.test\n"),
                    format="json"), "licensee_user")
    _bad(label.post("/api/v1/licenses/", grant_body([rec_id], licensee="producer-a\x00"), format="json"), "licensee")
    _bad(label.post("/api/v1/licenses/", grant_body([rec_id], stems=["vocals\x00"]), format="json"), "stems")
    _bad(label.post("/api/v1/licenses/", grant_body([rec_id], attribution="Song\x07"), format="json"), "attribution")
    _bad(label.post("/api/v1/licenses/", {**grant_body([rec_id]), "\x00": 1}, format="json"), "\\x00")
    # free text keeps tabs and line breaks
    ok = label.post("/api/v1/licenses/", grant_body([rec_id], attribution="Song\tArtist\r\nLabel A"), format="json")
    assert ok.status_code == 201 and ok.json()["attribution"] == "Song\tArtist\r\nLabel A"

    request = {"recordings": [catalog["recordings"][12]["id"]], "stems": ["vocals"], "purpose": "remix",
               "territory": "GB"}
    Recording.objects.filter(pk=catalog["recordings"][12]["id"]).update(open_for_requests=True)
    _bad(producer.post("/api/v1/license-requests/", {**request, "message": "hi\x00"}, format="json"), "message")
    _bad(producer.post("/api/v1/license-requests/", {**request, "message": "next\u0085line"}, format="json"), "message")
    raw = json.dumps({**request, "message": "x"}).replace('"x"', '"\\ud800"')  # a lone surrogate
    _bad(producer.post("/api/v1/license-requests/", raw, content_type="application/json"), "message")
    _bad(producer.post("/api/v1/license-requests/", {**request, "purpose": "remix\x1b"}, format="json"), "purpose")
    ok = producer.post("/api/v1/license-requests/", {**request, "message": "Dear label,\n\tmay we?"}, format="json")
    assert ok.status_code == 201, ok.content
    (req,) = ok.json()
    _bad(label.post(f"/api/v1/license-requests/{req['id']}/deny/", {"reason": "no\x00"}, format="json"), "reason")

    # form-encoded and multipart bodies, file names, query strings
    form = urlencode({"upload": rec_id, "requested_stems": "vocals", "purpose": "remix", "territory": "G\x00"})
    _bad(producer.post("/api/v1/jobs/", form, content_type="application/x-www-form-urlencoded"), "territory")
    with open(audio_dir / "song13.wav", "rb") as fh:
        _bad(label.post("/api/v1/recordings/", {"file": fh, "title": "\x1b[31mred"}, format="multipart"), "title")
    named = SimpleUploadedFile("song\x0113.wav", (audio_dir / "song13.wav").read_bytes(), content_type="audio/wav")
    r = label.post("/api/v1/recordings/", {"file": named}, format="multipart")  # Django drops unprintables
    assert r.status_code == 201 and r.json()["title"] == "song13.wav", r.content
    _bad(label.get("/api/v1/licenses/?current=%00"), "current")
    _bad(label.get("/api/v1/licenses/?cur%01rent=1"), "cur")
    _bad(clients["anonymous"].get("/api/v1/ledger/inclusion/?index=%00"), "index")
