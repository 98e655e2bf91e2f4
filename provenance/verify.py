"""Offline verifier: `python -m provenance.verify STEM_FILE [BUNDLE.json] [--pubkey PEM] [--c2pa-trust PEM]`.

Needs no database and no Django: only the standard library, `cryptography` and `rfc8785` (with
`checkpoint`, `merkle` and `signing` beside it), so it also ships alone as the `clearstem-verify`
distribution (see verifier/). It runs these checks and reports each one (`Check`):

- Record signature: the record's Ed25519 signature (DSSE envelope) by a known key;
- Stem file: the file's SHA-256 and size against the record;
- Ledger entry: the bundle's ledger entry carries this very record at this index;
- Signed tree head: the tree head's signature, and its C2SP checkpoint says the same;
- Inclusion proof: the entry's RFC 9162 inclusion proof leads to the signed root.

Without a bundle, the file's embedded C2PA manifest (`credentials`) is the bundle: the C2PA
signature and hard binding are checked with c2pa-python (`--c2pa-trust`: the certificate roots
you trust; without it a valid signature reads "Valid", not "Trusted"), then the ClearStem
assertion's record and ledger links as above, and that the file is a rendition of that stem. A
file with no manifest (re-encoded or stripped) exits 3: find its stem by its sound instead.

With --pubkey the keys are ones you trust (from the platform's published keys); without it the
bundle's embedded keys are used and the verdict says so. The auditor's page runs the same checks
(`check_bundle`) with the platform's keys against the stored file.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from . import credentials
from .checkpoint import checkpoint_body, verify_note, verify_tree_head
from .merkle import ProofError, leaf_hash, verify_inclusion
from .signing import SignatureError, key_id, load_public_pem, verify_envelope

# the same module runs as `python -m provenance.verify` and as the `clearstem-verify` script
PROG = "python -m provenance.verify" if __package__ == "provenance" else "clearstem-verify"

RECORD, STEM_FILE, LEDGER_ENTRY, TREE_HEAD, INCLUSION = (
    "Record signature", "Stem file", "Ledger entry", "Signed tree head", "Inclusion proof")
CREDENTIALS, BINDING, RENDITION = "Content credentials", "Hard binding", "Rendition of the stem"
#: Exit status when the file carries no content credentials (and no bundle was given).
NO_CREDENTIALS_EXIT = 3


@dataclass
class Check:
    """One link of the chain, checked: `detail` says what was found, for people; `problems`
    are the failure lines the command prints (empty when the check passed)."""
    name: str
    ok: bool
    detail: str
    problems: list[str] = field(default_factory=list)

    @classmethod
    def passed(cls, name: str, detail: str) -> Check:
        return cls(name, True, detail)

    @classmethod
    def failed(cls, name: str, detail: str, *problems: str) -> Check:
        return cls(name, False, detail, list(problems) or [detail])


@dataclass
class Verdict:
    ok: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    record: dict | None = None  # the record, when its signature verified
    checks: list[Check] = field(default_factory=list)
    claimed_record: dict | None = None  # the record as the bundle states it, signed or not
    no_credentials: bool = False  # verify_embedded: the file has no C2PA manifest


def file_sha256(path: Path) -> str:
    # The product hashes files with sharedcore.hashing.file_sha256 (the same streaming SHA-256,
    # hex). This module must not import the product, because it also ships alone; and
    # hashlib.file_digest (3.11+) *is* that streaming loop, so calling it here duplicates
    # nothing, where shipping sharedcore in the wheel would install a top-level `sharedcore`
    # package that clashes with the product's own when both share an environment.
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def verify_bundle(stem_path: Path, bundle: dict, trusted_pems: list[str] | None = None,
                  c2pa_trust_pems: list[str] | None = None) -> Verdict:
    """Check a stem file against its provenance bundle, with the keys you trust (PEMs) or,
    failing those, the keys the bundle carries (the verdict then says so)."""
    if trusted_pems:
        keys, note = [load_public_pem(p) for p in trusted_pems], None
    else:
        keys = [load_public_pem(p) for p in bundle.get("public_keys", {}).values()]
        note = "public key taken from the bundle itself: pass --pubkey to check against a key you trust"
    verdict = check_bundle(Path(stem_path), bundle, {key_id(k): k for k in keys},
                           "\n".join(c2pa_trust_pems) if c2pa_trust_pems else None)
    if note:
        verdict.notes.insert(0, note)
    return verdict


def check_bundle(stem_path: Path, bundle: dict, keys: dict[str, Ed25519PublicKey],
                 c2pa_anchors: str | None = None) -> Verdict:
    """Run every check of `bundle` against the file at `stem_path`, with `keys` (key id ->
    public key) as the only keys trusted for the record and the tree head. The file may be the
    stem itself or a delivered rendition of it (another format, or with content credentials):
    then its C2PA manifest must bind its bytes and name the record's stem."""
    v = Verdict(ok=False)
    _check_chain(v, bundle, keys, lambda record: check_stem_file(stem_path, record, c2pa_anchors))
    return _conclude(v)


def _check_chain(v: Verdict, bundle: dict, keys: dict[str, Ed25519PublicKey], file_check) -> None:
    """The record's signature, the file against it (`file_check(claimed record) -> Check`), and
    the ledger links, appended to `v`."""
    envelope = bundle.get("envelope")
    record_check, v.record, kid = check_record(envelope, keys)
    v.claimed_record = v.record if v.record is not None else unverified_payload(envelope)
    v.checks.append(record_check)
    v.checks.append(file_check(v.claimed_record))
    v.checks.extend(check_ledger(bundle, keys, v.notes))
    if kid:
        v.notes.append(f"record signed by key {kid}")


def _conclude(v: Verdict) -> Verdict:
    v.problems = [p for c in v.checks for p in c.problems]
    v.ok = all(c.ok for c in v.checks)
    return v


def check_record(envelope, keys: dict[str, Ed25519PublicKey]) -> tuple[Check, dict | None, str | None]:
    """The record's signature: (check, record, key id), the last two None when it fails."""
    if envelope is None:
        missing = "the bundle carries no signed record"
        return Check.failed(RECORD, missing, f"signature: {missing}"), None, None
    try:
        record, kid = verify_envelope(envelope, keys)
    except (SignatureError, KeyError, TypeError, ValueError) as exc:
        return Check.failed(RECORD, str(exc), f"signature: {exc}"), None, None
    return Check.passed(RECORD, f"Ed25519 signature by key {kid} verifies"), record, kid


def unverified_payload(envelope) -> dict | None:
    """What the envelope claims, signature unchecked (to go on checking the other links)."""
    try:
        payload = json.loads(base64.b64decode(envelope["payload"], validate=True))
    except (KeyError, TypeError, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def check_stem_file(stem_path: Path, record: dict | None, c2pa_anchors: str | None = None) -> Check:
    """The file's SHA-256 and size against the record, or, for a delivered rendition, its
    content credentials (an unreadable file raises OSError)."""
    if record is None:
        return Check.failed(STEM_FILE, "the bundle has no readable record to compare the file with",
                            "stem: the bundle has no readable record to compare the file with")
    stem = record.get("stem") or {}
    actual, size = file_sha256(stem_path), stem_path.stat().st_size
    problems = []
    if actual != stem.get("sha256"):
        problems.append(f"stem hash mismatch: file {actual}, record {stem.get('sha256')}")
    if size != stem.get("size"):
        problems.append(f"stem size mismatch: file {size}, record {stem.get('size')}")
    if problems and (rendition := _rendition_by_credentials(stem_path, record, c2pa_anchors)):
        return rendition
    if problems and credentials.c2pa is None and credentials.has_jumbf(stem_path):
        problems.append("a delivered stem carries content credentials, so its hash differs from the record's: "
                        "install c2pa-python (pip install 'clearstem-verify[c2pa]') to check it by them")
    if problems:
        return Check.failed(STEM_FILE, f"file SHA-256 {actual[:16]}… ({size} bytes) differs from the signed record",
                            *problems)
    return Check.passed(STEM_FILE, f"file SHA-256 {actual[:16]}… and size ({size} bytes) match the signed record")


def check_ledger(bundle: dict, keys: dict[str, Ed25519PublicKey], notes: list[str]) -> list[Check]:
    """The ledger links: the entry carries the record, the tree head is signed, the entry is in
    that tree. A missing or malformed ledger section fails at the first link."""
    if "ledger" not in bundle:
        return [Check.failed(LEDGER_ENTRY, "the bundle carries no ledger entry",
                             "the bundle carries no ledger inclusion proof")]
    try:
        ledger = bundle["ledger"]
        body = base64.b64decode(ledger["entry"], validate=True)
        entry = json.loads(body)
        head = ledger["tree_head"]
        proof = [bytes.fromhex(p) for p in ledger["inclusion_proof"]]
        index, size, root = int(ledger["index"]), int(head["size"]), bytes.fromhex(head["root_hash"])
        if not isinstance(entry, dict):
            raise ValueError("the entry is not a JSON object")
    except (KeyError, TypeError, ValueError) as exc:
        return [Check.failed(LEDGER_ENTRY, f"malformed bundle ({exc})", f"ledger: malformed bundle ({exc})")]
    checks = []
    if entry.get("envelope") == bundle.get("envelope") and entry.get("index") == index:
        checks.append(Check.passed(LEDGER_ENTRY, f"entry {index} carries this signed record"))
    else:
        checks.append(Check.failed(LEDGER_ENTRY, f"entry {index} does not carry this signed record",
                                   "ledger: the entry does not carry this record at this index"))
    try:
        verify_tree_head(head, keys)
        text = verify_note(head["checkpoint"], head["origin"], keys[head["key_id"]])
    except (SignatureError, KeyError, TypeError, ValueError) as exc:
        checks.append(Check.failed(TREE_HEAD, str(exc), f"ledger: tree head: {exc}"))
    else:
        if text == checkpoint_body(head["origin"], size, root):
            checks.append(Check.passed(TREE_HEAD, f"size {size}, signed by {head['key_id']}; checkpoint matches"))
        else:
            checks.append(Check.failed(TREE_HEAD, f"size {size}, signed by {head['key_id']}; checkpoint does not match",
                                       "ledger: the checkpoint does not match the tree head"))
    try:
        verify_inclusion(index, size, leaf_hash(body), proof, root)
        checks.append(Check.passed(INCLUSION, f"{len(proof)} hashes lead from entry {index} to root "
                                              f"{root.hex()[:16]}… of the signed tree ({size} entries)"))
    except ProofError as exc:
        checks.append(Check.failed(INCLUSION, str(exc), f"ledger: {exc}"))
    if all(c.ok for c in checks):
        notes.append(f"ledger: entry {index} is included in the signed tree of size {size} "
                     f"(root {root.hex()[:16]}…, {head['origin']})")
    return checks


def _keys(trusted_pems: list[str] | None, bundle: dict, notes: list[str]) -> dict[str, Ed25519PublicKey]:
    if trusted_pems:
        keys = [load_public_pem(p) for p in trusted_pems]
    else:
        keys = [load_public_pem(p) for p in (bundle.get("public_keys") or {}).values()]
        notes.append("public key taken from the file itself: pass --pubkey to check against a key you trust")
    return {key_id(k): k for k in keys}


def verify_embedded(stem_path: Path, trusted_pems: list[str] | None = None,
                    c2pa_trust_pems: list[str] | None = None) -> Verdict:
    """Check a delivered stem by its embedded C2PA manifest alone (see the module docstring)."""
    creds = credentials.read(stem_path, "\n".join(c2pa_trust_pems) if c2pa_trust_pems else None)
    if not creds.found:
        return Verdict(ok=False, no_credentials=True, problems=[creds.problem or "no content credentials"])
    v = Verdict(ok=False)
    failures = [f for f in creds.failures if "Hash." not in (f.get("code") or "")]
    who = f"{creds.signer.get('common_name') or '?'} (issuer {creds.signer.get('issuer') or '?'})"
    if creds.state == "Trusted":
        v.checks.append(Check.passed(CREDENTIALS, f"C2PA signature valid; signer {who} chains to a trusted root"))
    elif creds.state == "Valid" and not failures:
        v.checks.append(Check.passed(CREDENTIALS, f"C2PA signature valid; signer {who}"))
        v.notes.append("the signer's certificate was not checked against a trust list: pass --c2pa-trust "
                       "(the platform publishes it at /api/v1/ledger/content-credentials/)")
    else:
        codes = ", ".join(f.get("code", "?") for f in failures) or creds.problem or str(creds.state)
        v.checks.append(Check.failed(CREDENTIALS, f"C2PA manifest {creds.state}: {codes}",
                                     *[f"content credentials: {f.get('code')}: {f.get('explanation')}"
                                       for f in failures] or [f"content credentials: {codes}"]))
    if creds.binding_ok:
        v.checks.append(Check.passed(BINDING, "the file's bytes are the ones that were signed (C2PA data hash)"))
    else:
        v.checks.append(Check.failed(BINDING, "the file was changed after it was signed (C2PA data hash mismatch)",
                                     "binding: the file was changed after it was signed"))
    bundle = creds.bundle
    if bundle is None:
        missing = creds.problem or "the manifest has no ClearStem provenance assertion"
        v.checks.append(Check.failed(RECORD, missing, f"provenance: {missing}"))
    else:
        keys = _keys(trusted_pems, bundle, v.notes)
        _check_chain(v, bundle, keys, lambda record: _check_rendition(creds.clearstem or {}, record))
    return _conclude(v)


def _rendition_by_credentials(stem_path: Path, record: dict, c2pa_anchors: str | None) -> Check | None:
    """A passed or failed stem-file check when the file has content credentials; else None."""
    if credentials.c2pa is None:
        return None
    creds = credentials.read(stem_path, c2pa_anchors)
    if not creds.found:
        return None
    signed = creds.state in ("Valid", "Trusted") and not [f for f in creds.failures if "Hash." not in f.get("code", "")]
    rendition = _check_rendition(creds.clearstem or {}, record)
    if signed and creds.binding_ok and rendition.ok:
        return Check.passed(STEM_FILE, f"a rendition of the stem: its C2PA manifest ({creds.state}) binds these "
                                       f"bytes and names this stem, {rendition.detail}")
    why = ("the file was changed after it was signed" if not creds.binding_ok else
           rendition.detail if not rendition.ok else f"its C2PA manifest is {creds.state}")
    return Check.failed(STEM_FILE, f"not the stem of this record: {why}", f"stem: {why}")


def _check_rendition(assertion: dict, record: dict | None) -> Check:
    """The manifest names the stem the signed record is about (the file is a rendition of it)."""
    stem = (record or {}).get("stem") or {}
    claimed = assertion.get("stem") or {}
    if record and claimed.get("id") == stem.get("id") and claimed.get("master_sha256") == stem.get("sha256"):
        return Check.passed(RENDITION, f"stem {stem.get('name')!r} ({stem.get('id')}) delivered as "
                                       f"{claimed.get('delivered_format')}")
    return Check.failed(RENDITION, "the manifest and the signed record name different stems",
                        "provenance: the manifest and the signed record name different stems")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Check, offline, a ClearStem stem file against its "
                                     "signed provenance record and the record's place in the ledger.")
    parser.add_argument("stem_file", type=Path, help="the stem (e.g. vocals.wav)")
    parser.add_argument("bundle", type=Path, nargs="?",
                        help="its provenance bundle (e.g. vocals.provenance.json); omit it to use the "
                             "content credentials embedded in the file")
    parser.add_argument("--pubkey", type=Path, action="append", help="trusted public key (PEM); repeatable")
    parser.add_argument("--c2pa-trust", type=Path, action="append",
                        help="trusted root certificate(s) for content credentials (PEM); repeatable")
    parser.add_argument("-v", "--verbose", action="store_true", help="also list every check and what it found")
    args = parser.parse_args(argv)
    try:
        trusted = [p.read_text() for p in args.pubkey] if args.pubkey else None
        if args.bundle is None:
            anchors = [p.read_text() for p in args.c2pa_trust] if args.c2pa_trust else None
            verdict = verify_embedded(args.stem_file, trusted, anchors)
        else:
            bundle = json.loads(args.bundle.read_text())
            if not isinstance(bundle, dict):
                raise ValueError(f"{args.bundle} is not a provenance bundle (a JSON object)")
            verdict = verify_bundle(args.stem_file, bundle, trusted)
    except (OSError, ValueError, SignatureError, credentials.CredentialsUnavailable) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    if verdict.no_credentials:
        print(f"NO CONTENT CREDENTIALS: {args.stem_file.name}: {verdict.problems[0]}. A re-encoded or stripped "
              "copy loses them; an auditor can find its stem by its sound (the audit page's Find by file, or "
              "POST /api/v1/audit/find/).")
        return NO_CREDENTIALS_EXIT
    if args.verbose:
        for check in verdict.checks:
            print(f"check: {check.name}: {'ok' if check.ok else 'FAILED'} ({check.detail})")
    for note in verdict.notes:
        print(f"note: {note}")
    if verdict.ok:
        rec = verdict.record
        print(f"VERIFIED: {args.stem_file.name} is stem {rec['stem']['name']!r} of job {rec['job']['id']} "
              f"(model {rec['model']['name']}, basis {rec['rights']['basis']})")
        return 0
    for problem in verdict.problems:
        print(f"FAIL: {problem}")
    print("NOT VERIFIED")
    return 1


if __name__ == "__main__":
    sys.exit(main())
