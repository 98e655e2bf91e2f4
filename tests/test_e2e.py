"""The whole pipeline through the HTTP API of a live server, with a real Dramatiq worker on a
real Redis and PostgreSQL: register → license → upload → identify → decide → separate →
download (enforced) → provenance verified offline by the CLI in a subprocess."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from separation.registry import BUILTIN_MODELS, model_info
from tests.conftest import grant_body

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


class Client:
    def __init__(self, base, token):
        self.base, self.s = base, requests.Session()
        self.s.headers["Authorization"] = f"Token {token}"

    def get(self, path, **kw):
        return self.s.get(self.base + path, timeout=60, **kw)

    def post(self, path, **kw):
        return self.s.post(self.base + path, timeout=120, **kw)

    def wait(self, job_id, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/api/v1/jobs/{job_id}/").json()
            if job["state"] in ("done", "denied", "failed", "cancelled"):
                return job
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} stuck in {job['state']}")


def test_pipeline_end_to_end(live_server, worker, users, audio_dir, tmp_path):
    label = Client(live_server.url, users["label"][1])
    producer = Client(live_server.url, users["producer"][1])
    other_producer = Client(live_server.url, users["producer_b"][1])

    recs = {}
    for seed in (11, 12):
        with open(audio_dir / f"song{seed}.wav", "rb") as fh:
            r = label.post("/api/v1/recordings/", files={"file": fh}, data={"title": f"Song {seed}", "isrc": f"QZAAA2600{seed:03d}"})
        assert r.status_code == 201, r.text
        recs[seed] = r.json()
    r = label.post("/api/v1/licenses/", json=grant_body([recs[11]["id"]], max_downloads=3, commercial=True))
    assert r.status_code == 201, r.text

    # 1. licensed excerpt: identified, cleared under the (commercial) grant, separated by the
    #    default model — the shipped, commercial-clean separator — and the stems signed
    with open(audio_dir / "excerpt11.flac", "rb") as fh:
        up = producer.post("/api/v1/uploads/", files={"file": fh}).json()
    job = producer.post("/api/v1/jobs/", json={"upload": up["id"], "requested_stems": ["vocals", "drums"], "purpose": "remix",
                                                "territory": "GB", "commercial": True}).json()
    assert job["state"] == "received"
    job = producer.wait(job["id"])
    assert job["state"] == "done", job
    assert job["decision"]["allowed"] and job["decision"]["basis"] == "license"
    (match,) = job["decision"]["matches"]
    assert match["isrc"] == "QZAAA2600011" and abs(match["ref_start_s"] - 4) < 0.5
    assert {s["name"] for s in job["files"]} == {"vocals", "drums"}
    default = next(iter(BUILTIN_MODELS))  # the newest shipped model is the default
    assert job["model"] == default and job["model_fidelity"] == "high"
    up_after = producer.get(f"/api/v1/uploads/{up['id']}/").json()
    assert up_after["identification_status"] == "done" and up_after["identification"]["matches"]

    stem = job["files"][0]
    audio = producer.get(stem["download_url"].replace("/api", "/api", 1))
    assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    stem_path = tmp_path / "stem.wav"
    stem_path.write_bytes(audio.content)
    bundle_path = tmp_path / "bundle.json"
    bundle_path.write_text(json.dumps(producer.get(stem["provenance_url"]).json()))
    keys = requests.get(live_server.url + "/api/v1/ledger/keys/", timeout=30).json()["keys"]
    pem_path = tmp_path / "key.pem"
    pem_path.write_text(keys[0]["pem"])
    cli = [sys.executable, "-m", "provenance.verify", str(stem_path), str(bundle_path), "--pubkey", str(pem_path)]
    ok = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0 and "VERIFIED" in ok.stdout, ok.stdout + ok.stderr
    record = json.loads(__import__("base64").b64decode(json.loads(bundle_path.read_text())["envelope"]["payload"]))
    assert record["source"]["sha256"] == up["sha256"] and record["rights"]["grants"][0]["terms_digest"]
    shipped = model_info(default)
    assert record["model"]["name"] == default and record["model"]["commercial_use"] is True
    assert record["model"]["weights_sha256"] == shipped.weights_sha256 == BUILTIN_MODELS[default]
    assert record["model"]["training_data"] == shipped.training_data and record["model"]["weights_licence"]
    assert record["model"]["parameters"]["training_data_manifest_sha256"] == shipped.parameters[
        "training_data_manifest_sha256"]
    # a flipped byte in the stem is caught by the offline verifier
    data = bytearray(stem_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    stem_path.write_bytes(bytes(data))
    bad = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 1 and "changed after it was signed" in bad.stdout
    # the delivered file alone (no bundle) verifies by its embedded content credentials
    stem_path.write_bytes(audio.content)
    trust = requests.get(live_server.url + "/api/v1/ledger/content-credentials/", timeout=30).json()
    ca_path = tmp_path / "c2pa-ca.pem"
    ca_path.write_text(trust["trust_anchors"])
    alone = subprocess.run([sys.executable, "-m", "provenance.verify", str(stem_path), "--pubkey", str(pem_path),
                            "--c2pa-trust", str(ca_path), "-v"], cwd=ROOT, capture_output=True, text=True)
    assert alone.returncode == 0 and "VERIFIED" in alone.stdout, alone.stdout + alone.stderr
    assert "chains to a trusted root" in alone.stdout and "delivered as wav" in alone.stdout

    # the offline verifier also rejects a bundle whose signed tree head was altered
    bundle = json.loads(bundle_path.read_text())
    stem_path.write_bytes(audio.content)
    bundle["ledger"]["tree_head"]["size"] += 1
    bundle_path.write_text(json.dumps(bundle))
    forged = subprocess.run(cli, cwd=ROOT, capture_output=True, text=True)
    assert forged.returncode == 1 and "tree head" in forged.stdout

    # the job's zip (stems + bundles) counts against the same cap (3): 1 download + 2 exported stems
    export = producer.get(f"/api/v1/jobs/{job['id']}/export/")
    assert export.status_code == 200 and export.headers["Content-Type"] == "application/zip"
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(export.content)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert {s["name"] for s in manifest["stems"]} == {"vocals", "drums"}
        drums = next(s["file"] for s in manifest["stems"] if s["name"] == "drums")
        zf.extract(drums, tmp_path)
        zf.extract("drums.provenance.json", tmp_path)
    zipped = subprocess.run([sys.executable, "-m", "provenance.verify", str(tmp_path / drums),
                             str(tmp_path / "drums.provenance.json"), "--pubkey", str(pem_path)],
                            cwd=ROOT, capture_output=True, text=True)
    assert zipped.returncode == 0 and "included in the signed tree" in zipped.stdout, zipped.stdout
    refused = producer.get(stem["download_url"])
    assert refused.status_code == 403 and refused.json()["code"] == "download_cap_reached"
    assert producer.get(f"/api/v1/jobs/{job['id']}/export/").json()["code"] == "download_cap_reached"
    # other organisations cannot see the job or its stems
    assert other_producer.get(f"/api/v1/jobs/{job['id']}/").status_code == 404
    assert other_producer.get(stem["download_url"]).status_code == 404

    # 2. unlicensed catalog excerpt: denied before any separation, with the reason
    with open(audio_dir / "excerpt12.flac", "rb") as fh:
        up2 = producer.post("/api/v1/uploads/", files={"file": fh}).json()
    job2 = producer.wait(producer.post("/api/v1/jobs/", json={"upload": up2["id"], "requested_stems": ["vocals"],
                                                             "purpose": "remix", "territory": "GB"}).json()["id"])
    assert job2["state"] == "denied" and job2["error_code"] == "no_license" and job2["files"] == []
    assert job2["decision"]["reasons"][0]["recording"] == recs[12]["id"]
    assert job2["started_at"] is None

    # 3. original audio: needs the attestation, then runs
    with open(audio_dir / "original.wav", "rb") as fh:
        up3 = producer.post("/api/v1/uploads/", files={"file": fh}).json()
    body = {"upload": up3["id"], "requested_stems": ["instrumental"], "purpose": "remix", "territory": "US"}
    deadline = time.monotonic() + 60  # identification runs on the worker after the upload
    while producer.get(f"/api/v1/uploads/{up3['id']}/").json()["identification_status"] != "done":
        assert time.monotonic() < deadline, "upload never identified"
        time.sleep(0.2)
    r = producer.post("/api/v1/jobs/", json=body)  # known to match nothing: refused before a job exists
    assert r.status_code == 400 and r.json()["code"] == "attestation_required", r.text
    job4 = producer.wait(producer.post("/api/v1/jobs/", json={**body, "attestation": {"accepted": True}}).json()["id"])
    assert job4["state"] == "done" and job4["decision"]["basis"] == "attestation"
    assert {s["name"] for s in job4["files"]} == {"drums", "bass", "other"}

    # every stem, license event and delivery is in one ledger that verifies end to end
    from provenance.ledger import verify_ledger
    from provenance.models import LedgerEntry

    kinds = list(LedgerEntry.objects.values_list("kind", flat=True))
    assert kinds.count("stem") == 5 and kinds.count("license_granted") == 1
    assert kinds.count("download") == 1 and kinds.count("export") == 2
    assert verify_ledger().ok
