"""An auditor's view of one stem: its chain, each link checked now.

The links a provenance bundle can show are checked by the offline verifier's own checks
(`provenance.verify.check_bundle`), run against the stored stem file with the platform's current
keys and signed tree head. An ownership attestation's signature is checked here too
(`attestation_check`). Links that only other apps can show (the license terms a job relied on)
are the caller's to add: provenance knows nothing of licensing."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import transaction
from django.utils import timezone

from clearstem.storage import local_path

from .keys import verification_keys
from .ledger import verify_ledger
from .models import LedgerVerification
from .services import stem_bundle
from .signing import SignatureError, load_public_pem, verify_envelope
from .verify import STEM_FILE, Check, check_bundle


@dataclass
class Chain:
    stem: object
    record: dict | None  # the stem's record (as the bundle states it, when its signature fails)
    bundle: dict
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def platform_keys() -> dict[str, Ed25519PublicKey]:
    """The platform's current verification keys (key id -> public key)."""
    return {kid: load_public_pem(pem) for kid, pem in verification_keys().items()}


def stem_chain(stem) -> Chain:
    """Build and check the chain of `stem` (which must have its provenance record): the
    verifier's checks against the stored file, plus the database's digest of the stem."""
    bundle = stem_bundle(stem)
    with local_path(stem.file.name) as path:
        verdict = check_bundle(Path(path), bundle, platform_keys())
    record, checks = verdict.claimed_record, verdict.checks
    signed_sha = ((record or {}).get("stem") or {}).get("sha256")
    if stem.sha256 != signed_sha:  # the row the auditors' search goes by must agree as well
        for i, c in enumerate(checks):
            if c.name == STEM_FILE:
                problem = f"the database's SHA-256 {stem.sha256[:16]}… differs from the signed record"
                checks[i] = Check.failed(c.name, f"{c.detail}; {problem}", *c.problems, f"stem: {problem}")
    return Chain(stem=stem, record=record, bundle=bundle, checks=checks)


def attestation_check(attestation: dict, keys: dict[str, Ed25519PublicKey] | None = None) -> Check:
    """An uploader's ownership attestation ({..., "envelope": DSSE}): is it signed by the
    platform (`keys`, by default its current keys)?"""
    name = "Ownership attestation"
    try:
        verify_envelope(attestation["envelope"], platform_keys() if keys is None else keys)
    except (SignatureError, KeyError, TypeError, ValueError) as exc:
        return Check.failed(name, str(exc), f"attestation: {exc}")
    return Check.passed(name, "the uploader's statement is signed by the platform")


def do_verify_ledger(requested_by: str = "") -> LedgerVerification:
    """Verify the whole ledger and keep the verdict (for the ledger health page)."""
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
