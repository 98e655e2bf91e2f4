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

from .checkpoint import parse_checkpoint, verify_note
from .keys import verification_keys
from .ledger import LedgerCorrupt, consistency, root_at, verify_ledger
from .ledger import origin as ledger_origin
from .merkle import ProofError, verify_consistency
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


def check_against_checkpoint(note: str, size: int) -> str | None:
    """Is the log of `size` entries (already verified in full) an extension of the log that an
    earlier, published checkpoint committed to? The checkpoint's signature must verify with one
    of the platform's keys, and an RFC 9162 consistency proof from its (size, root) to the
    current root must hold: a rewrite of any entry it covers — hashes recomputed, tree heads
    re-signed — cannot satisfy it. Returns the problem, or None."""
    try:
        origin, old_size, old_root = parse_checkpoint(note)
    except SignatureError as exc:
        return str(exc)
    if origin != ledger_origin():
        return f"the checkpoint is for log {origin!r}, not {ledger_origin()!r}"
    problems = []
    for key in platform_keys().values():
        try:
            verify_note(note, origin, key)
            break
        except (SignatureError, ValueError) as exc:
            problems.append(str(exc))
    else:
        return f"the checkpoint's signature does not verify with the platform's keys ({problems[-1]})"
    if old_size > size:
        return f"the checkpoint commits to {old_size} entries but the log has {size}: entries were removed"
    try:
        verify_consistency(old_size, size, old_root, root_at(size), consistency(old_size, size))
    except (ProofError, LedgerCorrupt) as exc:
        return (f"the log is not an extension of the checkpoint at size {old_size}: some of its first {old_size} "
                f"entries were rewritten or removed since it was published ({exc})")
    return None


def do_verify_ledger(requested_by: str = "", checkpoints=()) -> LedgerVerification:
    """Verify the whole ledger and keep the verdict (for the ledger health page); then check it
    against each (source, checkpoint text) in `checkpoints` (`verify_ledger --against`)."""
    run = LedgerVerification.objects.create(requested_by=requested_by[:150])
    try:
        report = verify_ledger()
        if report.ok:
            for source, note in checkpoints:
                if (problem := check_against_checkpoint(note, report.size)):
                    report.ok, report.problem = False, f"against checkpoint {source}: {problem}"
                    break
    except Exception as exc:  # a crash is a verdict too: record it, then re-raise
        LedgerVerification.objects.filter(pk=run.pk).update(finished_at=timezone.now(), ok=False,
                                                            problem=f"verification crashed: {exc}")
        raise
    with transaction.atomic():
        run.finished_at, run.ok, run.size = timezone.now(), report.ok, report.size
        run.heads_checked, run.first_bad_index = report.heads_checked, report.first_bad_index
        run.problem, run.elapsed_s = report.problem, report.elapsed_s
        run.save(update_fields=VERDICT_FIELDS)  # the runtime role may write only these columns
    return run


VERDICT_FIELDS = ["finished_at", "ok", "size", "heads_checked", "first_bad_index", "problem", "elapsed_s"]
