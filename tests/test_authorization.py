"""Who may do what: every role against every endpoint. Objects of other organisations are
invisible (404); visible objects a role may not change are forbidden (403); no token is 401."""
import pytest

from tests.conftest import grant_body, upload_file

ROLES = ["label", "label_viewer", "label_b", "producer", "producer_viewer", "producer_b", "platform", "anonymous"]


@pytest.fixture
def world(clients, catalog, audio_dir):
    """One of everything, owned by label-a and producer-a."""
    up = upload_file(clients["producer"], audio_dir / "excerpt12.flac").json()
    job = clients["producer"].post("/api/v1/jobs/", {"upload": up["id"], "requested_stems": ["vocals"], "purpose": "remix",
                                                    "territory": "GB"}, format="json").json()
    offer = clients["label"].post("/api/v1/recordings/offer/", {  # open to requests before any upload
        "open": True, "recordings": [catalog["recordings"][12]["id"]], "stems": ["vocals"], "purposes": ["remix"],
        "territories": ["GB"]}, format="json")
    assert offer.status_code == 200, offer.content
    (req,) = clients["producer"].post("/api/v1/license-requests/", {
        "recordings": [catalog["recordings"][12]["id"]], "stems": ["vocals"], "purpose": "remix",
        "territory": "GB"}, format="json").json()
    return {"upload": up["id"], "job": job["id"], "grant": catalog["grant"]["id"], "request": req["id"],
            "recording": catalog["recordings"][11]["id"], "rec12": catalog["recordings"][12]["id"]}


#            label label_v label_b prod prod_v prod_b platform anon
MATRIX = [
    ("get", "/api/v1/uploads/{upload}/",          [404, 404, 404, 200, 200, 404, 200, 401]),
    ("get", "/api/v1/jobs/{job}/",                [404, 404, 404, 200, 200, 404, 200, 401]),
    ("post", "/api/v1/jobs/{job}/cancel/",        [404, 404, 404, 200, 403, 404, 403, 401]),
    ("get", "/api/v1/recordings/{recording}/",    [200, 200, 404, 404, 404, 404, 200, 401]),
    ("get", "/api/v1/licenses/{grant}/",          [200, 200, 404, 200, 200, 404, 200, 401]),
    ("get", "/api/v1/licenses/{grant}/odrl/",     [200, 200, 404, 200, 200, 404, 200, 401]),
    ("get", "/api/v1/licenses/{grant}/usage/",    [200, 200, 404, 200, 200, 404, 200, 401]),
    ("post", "/api/v1/licenses/{grant}/suspend/", [200, 403, 404, 403, 403, 404, 403, 401]),
    ("post", "/api/v1/licenses/{grant}/revoke/",  [200, 403, 404, 403, 403, 404, 403, 401]),
    ("post", "/api/v1/licenses/{grant}/amend/",   [201, 403, 404, 403, 403, 404, 403, 401]),
    ("get", "/api/v1/license-requests/{request}/", [200, 200, 404, 200, 200, 404, 200, 401]),
    ("post", "/api/v1/license-requests/{request}/approve/", [200, 403, 404, 403, 403, 404, 403, 401]),
    ("post", "/api/v1/license-requests/{request}/deny/",    [200, 403, 404, 403, 403, 404, 403, 401]),
    ("post", "/api/v1/license-requests/{request}/withdraw/", [403, 403, 404, 200, 403, 404, 403, 401]),
    ("get", "/api/v1/ledger/entries/",            [403, 403, 403, 403, 403, 403, 200, 401]),
    ("get", "/api/v1/ledger/tree-head/",          [200, 200, 200, 200, 200, 200, 200, 200]),
]
BODIES = {"amend": {"max_downloads": 3}, "deny": {"reason": "no"}, "approve": {}}


@pytest.mark.parametrize("method,path,expected", MATRIX, ids=[f"{m} {p}" for m, p, _ in MATRIX])
def test_detail_endpoints(clients, world, method, path, expected):
    url = path.format(**world)
    body = next((b for k, b in BODIES.items() if f"/{k}/" in url), {})
    for role, want in zip(ROLES, expected):
        r = getattr(clients[role], method)(url, body, format="json") if method == "post" else clients[role].get(url)
        assert r.status_code == want, f"{role}: {method.upper()} {url} -> {r.status_code}, expected {want}: {r.content[:200]}"
        if want >= 400:
            assert r.json()["code"], role


#                       label label_v label_b prod prod_v prod_b platform anon
CREATE = [
    ("/api/v1/uploads/",          [403, 403, 403, 201, 403, 201, 403, 401]),
    ("/api/v1/recordings/",       [201, 403, 201, 403, 403, 403, 403, 401]),
    ("/api/v1/licenses/",         [201, 403, 403, 403, 403, 403, 403, 401]),
    ("/api/v1/license-requests/", [403, 403, 403, 201, 403, 201, 403, 401]),
]


@pytest.mark.parametrize("path,expected", CREATE, ids=[p for p, _ in CREATE])
def test_create_endpoints(clients, world, audio_dir, path, expected):
    for role, want in zip(ROLES, expected):
        if path == "/api/v1/uploads/":
            r = upload_file(clients[role], audio_dir / "original.wav")
        elif path == "/api/v1/recordings/":
            with open(audio_dir / "song13.wav", "rb") as fh:
                r = clients[role].post(path, {"file": fh, "title": "13"}, format="multipart")
            if r.status_code == 201:  # the same audio is per label: remove nothing, just move on
                assert r.json()["rights_holder"] in ("label-a", "label-b")
        elif path == "/api/v1/licenses/":
            r = clients[role].post(path, grant_body([world["rec12"]]), format="json")
        else:
            r = clients[role].post(path, {"recordings": [world["rec12"]], "stems": ["drums"], "purpose": "remix",
                                          "territory": "GB"}, format="json")
        assert r.status_code == want, f"{role}: POST {path} -> {r.status_code}, expected {want}: {r.content[:200]}"


def test_lists_are_scoped(clients, world):
    def ids(role, path):
        r = clients[role].get(path)
        assert r.status_code == 200
        return {x["id"] for x in r.json()["results"]}

    assert ids("producer", "/api/v1/jobs/") == {world["job"]} and ids("producer_b", "/api/v1/jobs/") == set()
    assert ids("label", "/api/v1/jobs/") == set() and ids("platform", "/api/v1/jobs/") == {world["job"]}
    assert world["grant"] in ids("producer", "/api/v1/licenses/") and ids("producer_b", "/api/v1/licenses/") == set()
    assert ids("label_b", "/api/v1/recordings/") == set() and world["recording"] in ids("label", "/api/v1/recordings/")
    assert ids("label", "/api/v1/license-requests/") == {world["request"]}
    assert ids("label_b", "/api/v1/license-requests/") == set()
