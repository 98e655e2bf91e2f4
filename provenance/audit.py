"""An auditor's view of one stem: its whole chain, each link checked now.

The checks are the offline verifier's (`provenance.verify`), run against the stored file and
the platform's current keys and signed tree head, plus the links only the database can show
(the job's license version and the upload's identification evidence)."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from sharedcore.hashing import file_sha256
from clearstem.storage import local_path

from .checkpoint import checkpoint_body, verify_note, verify_tree_head
from .keys import verification_keys
from .merkle import ProofError, leaf_hash, verify_inclusion
from .models import LedgerVerification
from .signing import SignatureError, load_public_pem, verify_envelope


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Chain:
    stem: object
    record: dict | None
    bundle: dict
    checks: list[Check] = field(default_factory=list)
    grants: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def stem_chain(stem) -> Chain:
    """Build and check the chain of `stem` (which must have its provenance record)."""
    from licensing.models import LicenseGrant

    from .services import stem_bundle

    bundle = stem_bundle(stem)
    keys = {kid: load_public_pem(pem) for kid, pem in verification_keys().items()}
    chain = Chain(stem=stem, record=None, bundle=bundle)
    checks = chain.checks
    try:
        record, kid = verify_envelope(bundle["envelope"], keys)
        chain.record = record
        checks.append(Check("Record signature", True, f"Ed25519 signature by platform key {kid} verifies"))
    except (SignatureError, KeyError) as exc:
        checks.append(Check("Record signature", False, str(exc)))
        record = json.loads(base64.b64decode(bundle["envelope"]["payload"]))
        chain.record = record
    with local_path(stem.file.name) as path:
        actual = file_sha256(Path(path))
    checks.append(Check("Stem file", actual == record["stem"]["sha256"] == stem.sha256,
                        f"stored file SHA-256 {actual[:16]}… {'matches' if actual == record['stem']['sha256'] else 'differs from'} the signed record"))
    led = bundle["ledger"]
    body = base64.b64decode(led["entry"])
    entry = json.loads(body)
    carries = entry.get("envelope") == bundle["envelope"] and entry.get("index") == led["index"]
    checks.append(Check("Ledger entry", carries, f"entry {led['index']} {'carries' if carries else 'does not carry'} this signed record"))
    head = led["tree_head"]
    try:
        verify_tree_head(head, keys)
        text = verify_note(head["checkpoint"], head["origin"], keys[head["key_id"]])
        same = text == checkpoint_body(head["origin"], head["size"], bytes.fromhex(head["root_hash"]))
        checks.append(Check("Signed tree head", same, f"size {head['size']}, signed by {head['key_id']}; "
                            f"checkpoint {'matches' if same else 'does not match'}"))
    except (SignatureError, KeyError) as exc:
        checks.append(Check("Signed tree head", False, str(exc)))
    try:
        verify_inclusion(led["index"], head["size"], leaf_hash(body), [bytes.fromhex(p) for p in led["inclusion_proof"]],
                         bytes.fromhex(head["root_hash"]))
        checks.append(Check("Inclusion proof", True, f"{len(led['inclusion_proof'])} hashes lead from entry "
                            f"{led['index']} to root {head['root_hash'][:16]}… of the current tree ({head['size']} entries)"))
    except ProofError as exc:
        checks.append(Check("Inclusion proof", False, str(exc)))
    job = stem.job
    for g in (job.decision or {}).get("grants", []):
        grant = LicenseGrant.objects.filter(id=g["grant"]).select_related("licensor", "licensee_org").first()
        digest_now = grant.terms().digest() if grant else None
        chain.grants.append({**g, "obj": grant, "digest_matches": digest_now == g.get("terms_digest")})
        checks.append(Check(f"License terms v{g['version']}", digest_now == g.get("terms_digest"),
                            "the license version's terms still hash to the digest the job recorded"
                            if digest_now == g.get("terms_digest") else "the stored terms no longer match the recorded digest"))
    if job.attestation:
        try:
            verify_envelope(job.attestation["envelope"], keys)
            checks.append(Check("Ownership attestation", True, "the uploader's statement is signed by the platform"))
        except (SignatureError, KeyError, TypeError) as exc:
            checks.append(Check("Ownership attestation", False, str(exc)))
    return chain


def do_verify_ledger(requested_by: str = "") -> LedgerVerification:
    """Verify the whole ledger and keep the verdict (for the ledger health page)."""
    from .ledger import verify_ledger

    run = LedgerVerification.objects.create(requested_by=requested_by[:150])
    try:
        report = verify_ledger()
    except Exception as exc:  # a crash is a verdict too: record it, then re-raise
        LedgerVerification.objects.filter(pk=run.pk).update(finished_at=timezone.now(), ok=False,
                                                            problem=f"verification crashed: {exc}")
        raise
    with transaction.atomic():
        run.finished_at, run.ok, run.size = timezone.now(), report.ok, report.size
        run.heads_checked, run.first_bad_index = report.heads_checked, report.first_bad_index
        run.problem, run.elapsed_s = report.problem, report.elapsed_s
        run.save()
    return run
