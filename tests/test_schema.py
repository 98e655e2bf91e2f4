"""The OpenAPI schema is the contract: schemathesis fuzzes every operation of a live server, as a
label and as a producer, and fails on any 5xx and any response the schema does not describe
(status, content type, headers, body).

Short and deterministic: Hypothesis is derandomized (a fixed seed per operation, role and
mode), examples are few, nothing is stored between runs. Real objects exist (recordings, a grant,
an upload, a finished job with stems, a license request) and half the cases that name an object
name a real one, so responses with bodies are checked too, not only 404s. No operation is
left out: the two multipart uploads are fuzzed like the rest (random bytes are refused as
`not_audio`/`corrupt_audio`, which the schema documents). Throttles are off here (a fuzzer is a
burst by design); tests/test_limits.py checks them."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import grant_body
from tests.test_e2e import Client as Api

# schemathesis draws from `random` inside its strategies (seeded by Hypothesis)
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
#: Cases per operation, role and mode. To explore deeper locally: CLEARSTEM_FUZZ_SCALE=10 (about
#: ten times longer) and CLEARSTEM_FUZZ_SEED=N for other cases than the suite's fixed ones.
SCALE = int(os.environ.get("CLEARSTEM_FUZZ_SCALE", "1"))
SEED = os.environ.get("CLEARSTEM_FUZZ_SEED")
EXAMPLES = {GenerationMode.POSITIVE: 8 * SCALE, GenerationMode.NEGATIVE: 5 * SCALE}
#: Which real object an operation's {id} names, by the path's first segment.
RESOURCE_BY_PREFIX = {"uploads": "upload", "jobs": "job", "stems": "stem", "recordings": "recording",
                      "licenses": "grant", "license-requests": "request"}


def test_the_schema_says_what_the_api_does(clients):
    """The mismatches the fuzzer and a reading found, one by one."""
    doc = clients["label"].get("/api/v1/schema/?format=json").json()
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    ref = "#/components/schemas/"

    create_requests = paths["/api/v1/license-requests/"]["post"]
    assert create_requests["responses"]["201"]["content"]["application/json"]["schema"] == {
        "type": "array", "items": {"$ref": ref + "LicenseRequest"}}  # a plain array, not a page
    assert "parameters" not in create_requests  # no limit/offset on a create
    provenance = paths["/api/v1/stems/{id}/provenance/"]["get"]["responses"]["200"]["content"]["application/json"]
    assert provenance["schema"] == {"$ref": ref + "ProvenanceBundle"}
    assert schemas["RecordingCreateRequest"]["properties"]["file"] == {"type": "string", "format": "binary"}
    assert set(schemas["LicenseGrantStatusEnum"]["enum"]) == {
        "draft", "active", "suspended", "revoked", "superseded", "expired", "scheduled"}
    assert schemas["LicenseGrantRequest"]["properties"]["status"]["allOf"] == [{"$ref": ref + "LicenseGrantInitialStatusEnum"}]
    assert schemas["LicenseGrantInitialStatusEnum"]["enum"] == ["draft", "active"]
    assert "201" in paths["/api/v1/licenses/{id}/amend/"]["post"]["responses"]
    assert "200" not in paths["/api/v1/licenses/{id}/amend/"]["post"]["responses"]
    for path, required in (("/api/v1/ledger/inclusion/", {"index": True, "size": False}),
                           ("/api/v1/ledger/consistency/", {"first": True, "second": True}),
                           ("/api/v1/ledger/entries/", {"start": False, "end": False})):
        params = paths[path]["get"]["parameters"]
        assert {p["name"]: p.get("required", False) for p in params} == required, path
        assert all(p["schema"]["type"] == "integer" for p in params)
    assert schemas["Job"]["properties"]["decision"]["allOf"] == [{"$ref": ref + "Decision"}]
    assert {"allowed", "basis", "reasons", "grants"} <= set(schemas["Decision"]["required"])
    assert schemas["LicenseRequest"]["properties"]["requester"]["description"] == "the producer user who asked (their e-mail)"
    assert schemas["LicenseGrant"]["properties"]["licensee_org"]["nullable"] is True

    # the error shape, and the 4xx of every operation
    assert set(schemas["Error"]["required"]) == {"code", "detail"}
    error = {"application/json": {"schema": {"$ref": ref + "Error"}}}
    for path, operations in paths.items():
        for method, op in operations.items():
            responses = op["responses"]
            assert responses["400"]["content"] == error, (method, path)
            if op.get("security") and {} not in op["security"]:
                assert {"401", "403"} <= set(responses), (method, path)
            if "{id}" in path:
                assert "404" in responses, (method, path)
    for path in ("/api/v1/uploads/", "/api/v1/jobs/", "/api/v1/license-requests/", "/api/v1/recordings/"):
        assert "429" in paths[path]["post"]["responses"], path
    assert {"413", "415", "422"} <= set(paths["/api/v1/uploads/"]["post"]["responses"])


@pytest.fixture
def world(live_server, worker, users, audio_dir):
    """One of everything, reached through the API: recordings 11 and 12, a grant on 11, an
    upload of an excerpt of 11, its finished job (stems, provenance), a license request for 12."""
    label, producer = Api(live_server.url, users["label"][1]), Api(live_server.url, users["producer"][1])
    recs = {}
    for seed in (11, 12):
        with open(audio_dir / f"song{seed}.wav", "rb") as fh:
            r = label.post("/api/v1/recordings/", files={"file": fh}, data={"title": f"Song {seed}"})
        assert r.status_code == 201, r.text
        recs[seed] = r.json()["id"]
    grant = label.post("/api/v1/licenses/", json=grant_body([recs[11]]))
    assert grant.status_code == 201, grant.text
    with open(audio_dir / "excerpt11.flac", "rb") as fh:
        upload = producer.post("/api/v1/uploads/", files={"file": fh}).json()
    job = producer.post("/api/v1/jobs/", json={"upload": upload["id"], "requested_stems": ["vocals"], "purpose": "remix",
                                               "territory": "GB"}).json()
    deadline = time.monotonic() + 120
    while job["state"] not in ("done", "denied", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = producer.get(f"/api/v1/jobs/{job['id']}/").json()
    assert job["state"] == "done", job
    offer = label.post("/api/v1/recordings/offer/", json={"open": True, "recordings": [recs[12]], "stems": ["vocals"],
                                                           "purposes": ["remix"], "territories": ["GB"]})
    assert offer.status_code == 200, offer.text
    (req,) = producer.post("/api/v1/license-requests/", json={
        "recordings": [recs[12]], "stems": ["vocals"], "purpose": "remix", "territory": "GB"}).json()
    return {"recording": recs[11], "grant": grant.json()["id"], "upload": upload["id"], "job": job["id"],
            "stem": job["files"][0]["id"], "request": req["id"],
            "references": {"upload": upload["id"], "job": job["id"], "recordings": [recs[11]],
                           "licensee": "producer-a", "licensee_user": users["producer"][0].username}}


@dataclass
class Tally:
    operations: set = field(default_factory=set)
    cases: int = 0
    statuses: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)


def _fuzz(operation, mode, role, token, base_url, world, tally):
    resource = RESOURCE_BY_PREFIX.get(operation.path.split("/")[3])
    strategy = operation.as_strategy(generation_mode=mode)
    session = requests.Session()

    @hypothesis.settings(max_examples=EXAMPLES[mode], derandomize=SEED is None, database=None, deadline=None,
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @hypothesis.given(data=st.data())
    def run(data):
        case = data.draw(strategy)
        if "id" in (case.path_parameters or {}) and resource and data.draw(st.booleans(), label="real object"):
            case.path_parameters["id"] = world[resource]
        if isinstance(case.body, dict) and data.draw(st.booleans(), label="real references"):
            # a body that names real objects gets past the 404s and 400s to the service
            for key, value in world["references"].items():
                if key in case.body:
                    case.body[key] = value
        tally.cases += 1
        response = case.call(base_url=base_url, session=session, headers={"Authorization": f"Token {token}"},
                             timeout=60)
        tally.statuses[response.status_code] = tally.statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS)

    if SEED is not None:
        run = hypothesis.seed(int(SEED))(run)
    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        assert mode == GenerationMode.NEGATIVE  # nothing to get wrong: no parameters, no body
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup is a BaseExceptionGroup
        # every operation runs; the failures are listed at the end
        tally.failures.append(f"{role} {mode.value} {operation.label}:\n{exc}")


@pytest.mark.slow
def test_every_operation_conforms_to_the_schema(live_server, world, users, settings):
    settings.CLEARSTEM_THROTTLE_RATES = {}
    label_token, producer_token = users["label"][1], users["producer"][1]
    served = requests.get(live_server.url + "/api/v1/schema/?format=json", timeout=60,
                          headers={"Authorization": f"Token {label_token}"})
    assert served.status_code == 200, served.text
    schema = schemathesis.openapi.from_dict(served.json())
    operations = [result.ok() for result in schema.get_all_operations()]

    tally, started = Tally(), time.monotonic()
    for role, token in (("label", label_token), ("producer", producer_token)):
        for operation in operations:
            tally.operations.add(operation.label)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(operation, mode, role, token, live_server.url, world, tally)
    elapsed = time.monotonic() - started
    print(f"\nschemathesis: {len(tally.operations)} operations x 2 roles, {tally.cases} cases in {elapsed:.0f} s, "
          f"statuses {dict(sorted(tally.statuses.items()))}, {len(tally.failures)} failures")
    assert len(tally.operations) == len(operations) >= 30
    assert not tally.failures, "\n\n".join(tally.failures)
