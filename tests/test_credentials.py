"""Content credentials (C2PA) in delivered stems: every format reads back with c2pa.Reader as
Trusted (dev CA as trust anchor) with the assertions the provenance promises; tampering breaks
the binding; a re-encoded copy has none; the ledger records the delivered file's hash."""
import base64
import datetime as dt
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import av
import c2pa
import numpy as np
import pytest
import soundfile as sf
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID

from clearstem.jobs.models import Job, StemRendition
from clearstem.jobs.separation import do_separate_job
from clearstem.jobs.services import do_process_job
from licensing.models import UsageEvent
from provenance import certificates as certs
from provenance import credentials
from provenance.credentials import ASSERTION, TRAINING_MINING, sniff_mime
from provenance.keys import c2pa_credentials, get_signer
from provenance.models import LedgerEntry
from provenance.verify import verify_embedded
from separation.registry import BUILTIN_MODELS
from sharedcore.media import encode_preview
from tests.test_jobs import make_job

ROOT = Path(__file__).resolve().parent.parent
MIME = {"wav": "audio/wav", "wav16": "audio/wav", "wav24": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg"}


@pytest.fixture
def done_stem(clients, catalog, audio_dir):
    job = do_process_job(make_job(clients, audio_dir).pk)
    do_separate_job(job.pk)
    return Job.objects.get(pk=job.pk).stem_files.get()


def _reader(data: bytes, mime: str):
    ctx = c2pa.Context.from_dict({"version": 1, "verify": {"verify_trust": True},
                                  "trust": {"trust_anchors": c2pa_credentials().trust_anchors_pem}})
    return c2pa.Reader(mime, io.BytesIO(data), context=ctx)


def test_every_format_carries_trusted_credentials(clients, catalog, done_stem, tmp_path):
    """One stem downloaded in each format (once a test per format, each separating its own job)."""
    for fmt in ("wav", "wav16", "wav24", "flac", "mp3"):
        _check_delivered_format(clients, catalog, done_stem, fmt, tmp_path)


def _check_delivered_format(clients, catalog, done_stem, fmt, tmp_path):
    r = clients["producer"].get(f"/api/v1/stems/{done_stem.pk}/download/?format={fmt}")
    assert r.status_code == 200, r.content
    data = b"".join(r.streaming_content)
    assert r["Content-Type"] == MIME[fmt] and r["X-Content-SHA256"] == hashlib.sha256(data).hexdigest()
    assert sniff_mime(data) == MIME[fmt]  # a FLAC's manifest sits in an ID3 tag ahead of fLaC
    reader = _reader(data, MIME[fmt])
    assert reader.get_validation_state() == "Trusted", reader.get_validation_results()
    assert not (reader.get_validation_results()["activeManifest"].get("failure"))
    manifest = reader.get_active_manifest()
    labels = {a["label"]: a["data"] for a in manifest["assertions"]}
    actions = labels["c2pa.actions.v2"]["actions"]
    assert [a["action"] for a in actions] == ["c2pa.opened", "c2pa.edited"]
    params = actions[1]["parameters"]
    # the shipped, pinned separator is the default: its hash and training-data manifest travel in the file
    shipped = next(iter(BUILTIN_MODELS))  # the newest shipped model is the default
    assert params["model"] == done_stem.job.model == shipped
    assert params["weights_sha256"] == BUILTIN_MODELS[shipped]
    assert params["weights_licence"] and params["training_data"]
    assert json.loads(params["inference"])["training_data_manifest_sha256"]
    assert actions[1]["softwareAgent"]["name"] == "ClearStem"
    [parent] = manifest["ingredients"]
    assert parent["relationship"] == "parentOf" and parent["title"] == done_stem.job.upload.original_name
    assert parent["instance_id"] == f"urn:sha256:{done_stem.job.upload.sha256}"
    assert parent["description"].startswith("catalog match: ") and "QZ" in parent["description"]
    cs = labels[ASSERTION]
    grant = catalog["grant"]
    assert cs["basis"] == "license" and cs["grants"][0]["grant"] == grant["id"] and cs["grants"][0]["terms_digest"]
    assert cs["stem"] == {"id": str(done_stem.id), "name": "vocals", "master_sha256": done_stem.sha256,
                          "delivered_format": fmt}
    assert cs["upload_sha256"] == done_stem.job.upload.sha256
    assert cs["ledger_index"] == done_stem.provenance.ledger_entry.index
    bundle = json.loads(cs["bundle_json"])
    assert bundle["envelope"] == done_stem.provenance.envelope and bundle["ledger"]["inclusion_proof"] is not None
    # a remix license says nothing of AI training: not allowed
    assert labels[TRAINING_MINING]["entries"]["c2pa.ai_training"] == {"use": "notAllowed"}
    # the delivery's ledger entry records the bytes handed out
    entry = LedgerEntry.objects.filter(kind="download", subject=f"stem:{done_stem.id}").last()
    body = json.loads(base64.b64decode(json.loads(bytes(entry.body))["envelope"]["payload"]))
    assert body["delivered"]["sha256"] == r["X-Content-SHA256"] and body["delivered"]["format"] == fmt
    # decoded audio: the right container and depth
    path = tmp_path / f"stem.{fmt}"
    path.write_bytes(data)
    if fmt != "mp3":
        info = sf.info(str(path))
        want = {"wav16": "PCM_16", "wav24": "PCM_24"}.get(fmt, f"PCM_{done_stem.bits_per_sample}")
        assert info.subtype == want and info.samplerate == done_stem.sample_rate
    else:
        with av.open(str(path)) as c:
            assert c.streams.audio[0].codec_context.name.startswith("mp3") and c.streams.audio[0].bit_rate >= 300_000


def test_rendition_is_made_once_and_reused(clients, catalog, done_stem):
    a = b"".join(clients["producer"].get(f"/api/v1/stems/{done_stem.pk}/download/?format=flac").streaming_content)
    b = b"".join(clients["producer"].get(f"/api/v1/stems/{done_stem.pk}/download/?format=FLAC").streaming_content)
    assert a == b and StemRendition.objects.filter(stem=done_stem, format="flac").count() == 1
    assert UsageEvent.objects.filter(stem_id=done_stem.pk, kind="download").count() == 2


def test_bad_format_is_refused_before_anything_is_spent(clients, catalog, done_stem):
    r = clients["producer"].get(f"/api/v1/stems/{done_stem.pk}/download/?format=ogg")
    assert r.status_code == 400 and r.json()["code"] == "bad_format" and "mp3" in r.json()["detail"]
    assert not UsageEvent.objects.filter(stem_id=done_stem.pk, kind="download").exists()
    assert not StemRendition.objects.exists()
    r = clients["producer"].get(f"/api/v1/jobs/{done_stem.job_id}/export/?format=aiff")
    assert r.status_code == 400 and r.json()["code"] == "bad_format"


def test_refused_delivery_makes_no_rendition(clients, catalog, done_stem):
    clients["label"].post(f"/api/v1/licenses/{catalog['grant']['id']}/revoke/")
    r = clients["producer"].get(f"/api/v1/stems/{done_stem.pk}/download/?format=mp3")
    assert r.status_code == 403 and r.json()["code"] == "revoked"
    assert not StemRendition.objects.exists()


def test_verifier_tampering_and_reencoding(clients, catalog, done_stem, tmp_path):
    data = b"".join(clients["producer"].get(f"/api/v1/stems/{done_stem.pk}/download/?format=wav").streaming_content)
    anchors = [c2pa_credentials().trust_anchors_pem]
    good = tmp_path / "vocals.wav"
    good.write_bytes(data)
    v = verify_embedded(good, c2pa_trust_pems=anchors)
    assert v.ok, v.problems
    assert {c.name for c in v.checks} >= {"Content credentials", "Hard binding", "Record signature",
                                          "Rendition of the stem", "Inclusion proof"}
    # one flipped audio byte (inside the data chunk, well before the manifest chunk at the end)
    bad = bytearray(data)
    bad[len(bad) // 3] ^= 0x01
    tampered = tmp_path / "tampered.wav"
    tampered.write_bytes(bytes(bad))
    v = verify_embedded(tampered, c2pa_trust_pems=anchors)
    assert not v.ok and any("changed after it was signed" in p for p in v.problems)
    # a re-encoded copy carries no manifest: the CLI says so and exits 3
    audio, rate = sf.read(str(good))
    reencoded = tmp_path / "copy.flac"
    sf.write(str(reencoded), audio, rate)
    out = subprocess.run([sys.executable, "-m", "provenance.verify", str(reencoded)], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 3 and "NO CONTENT CREDENTIALS" in out.stdout and "find its stem" in out.stdout
    # not audio at all: a clear error, not a traceback
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    out = subprocess.run([sys.executable, "-m", "provenance.verify", str(junk)], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 3 and "not a WAV, FLAC or MP3 file" in out.stdout and "Traceback" not in out.stderr


def test_untrusted_signer_reads_valid_not_trusted(clients, catalog, done_stem, tmp_path):
    data = b"".join(clients["producer"].get(f"/api/v1/stems/{done_stem.pk}/download/?format=mp3").streaming_content)
    path = tmp_path / "vocals.mp3"
    path.write_bytes(data)
    v = verify_embedded(path)  # no trust anchors given
    assert v.ok and any("--c2pa-trust" in n for n in v.notes)
    other_ca_key = Ed25519PrivateKey.generate()
    other_ca = certs.make_dev_ca(other_ca_key, "someone else's CA")
    v = verify_embedded(path, c2pa_trust_pems=[certs.pem(other_ca)])
    assert not v.ok and any("content credentials" in p for p in v.problems)


def test_public_endpoint_publishes_the_chain(client, db):
    r = client.get("/api/v1/ledger/content-credentials/")
    assert r.status_code == 200
    chain = certs.load_chain(r.json()["chain"])
    assert certs.check_signing_chain(r.json()["chain"], get_signer().public_key) == chain
    assert "BEGIN CERTIFICATE" in r.json()["trust_anchors"]


def test_signing_chain_rules():
    ca_key = Ed25519PrivateKey.generate()
    ca = certs.make_dev_ca(ca_key)
    key = Ed25519PrivateKey.generate()
    leaf = certs.issue_signing_certificate(ca_key, ca, key.public_key())
    chain = certs.pem(leaf) + certs.pem(ca)
    assert len(certs.check_signing_chain(chain, key.public_key())) == 2
    with pytest.raises(certs.CertificateError, match="not for the platform's signing key"):
        certs.check_signing_chain(chain, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(certs.CertificateError, match="CA certificate"):
        certs.check_signing_chain(certs.pem(ca), ca_key.public_key())
    with pytest.raises(certs.CertificateError, match="valid only from"):
        certs.check_signing_chain(chain, key.public_key(), at=dt.datetime.now(dt.UTC) + dt.timedelta(days=4000))
    with pytest.raises(certs.CertificateError, match="out of order"):
        certs.check_signing_chain(certs.pem(leaf) + certs.pem(certs.make_dev_ca(ca_key, "another")), key.public_key())
    with pytest.raises(certs.CertificateError, match="not a PEM"):
        certs.check_signing_chain("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n", key.public_key())
    assert ExtendedKeyUsageOID.EMAIL_PROTECTION in certs.C2PA_EKUS


def test_preview_is_stereo_for_a_stereo_stem(tmp_path):
    src = tmp_path / "stereo.wav"
    t = np.arange(44100 * 2) / 44100
    sf.write(str(src), np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], axis=1) * 0.3, 44100)
    encode_preview(src, tmp_path / "p.mp3")
    with av.open(str(tmp_path / "p.mp3")) as c:
        assert c.streams.audio[0].codec_context.channels == 2 and c.streams.audio[0].bit_rate == 128_000


def test_upload_that_cannot_be_an_ingredient_still_gets_credentials(tmp_path):
    """An Ogg or AIFF upload cannot be a C2PA ingredient: the manifest says `created` and names
    the upload in the ClearStem assertion only."""
    ca_key, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ca = certs.make_dev_ca(ca_key)
    chain = certs.pem(certs.issue_signing_certificate(ca_key, ca, key.public_key())) + certs.pem(ca)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    src = tmp_path / "stem.wav"
    sf.write(str(src), np.zeros((44100, 2)), 44100)
    record = {"stem": {"id": "s", "name": "vocals", "sha256": "0" * 64}, "model": {"name": "dsp"},
              "rights": {"basis": "attestation", "grants": [], "attestation": {"accepted": True}},
              "job": {"purpose": "remix", "stems": ["vocals"]}, "source": {"sha256": "1" * 64}}
    manifest = credentials.manifest_definition({"x": 1}, record, delivered_format="wav", title="stem.wav",
                                               software_version="test", with_parent=False)
    credentials.embed(src, tmp_path / "signed.wav", "audio/wav", manifest, chain, key_pem)
    found = credentials.read(tmp_path / "signed.wav", certs.pem(ca))
    assert found.state == "Trusted" and not found.failures and found.binding_ok
    actions = found.assertions["c2pa.actions.v2"]["actions"]
    assert actions[0]["action"] == "c2pa.created" and found.clearstem["upload_sha256"] == "1" * 64
    assert found.assertions[TRAINING_MINING]["entries"]["c2pa.ai_training"]["use"] == "constrained"
