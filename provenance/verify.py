"""Offline verifier: `python -m provenance.verify STEM_FILE BUNDLE.json [--pubkey PEM]`.

Needs no database and no Django. It checks, in order: the stem file's SHA-256 and size against
the signed record; the record's Ed25519 signature; that the bundle's ledger entry carries this
very record; the entry's RFC 9162 inclusion proof against the signed tree head; and the tree
head's signature and C2SP checkpoint. With --pubkey the keys are ones you trust (from the
platform's published keys); without it the bundle's embedded keys are used and the verdict
says so.
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sharedcore.hashing import file_sha256

from .checkpoint import checkpoint_body, verify_note, verify_tree_head
from .merkle import ProofError, leaf_hash, verify_inclusion
from .signing import SignatureError, key_id, load_public_pem, verify_envelope


@dataclass
class Verdict:
    ok: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    record: dict | None = None


def verify_bundle(stem_path: Path, bundle: dict, trusted_pems: list[str] | None = None) -> Verdict:
    v = Verdict(ok=False)
    if trusted_pems:
        keys = [load_public_pem(p) for p in trusted_pems]
    else:
        keys = [load_public_pem(p) for p in bundle.get("public_keys", {}).values()]
        v.notes.append("public key taken from the bundle itself: pass --pubkey to check against a key you trust")
    try:
        record, kid = verify_envelope(bundle["envelope"], {key_id(k): k for k in keys})
    except (SignatureError, KeyError) as exc:
        v.problems.append(f"signature: {exc}")
        return v
    v.record = record
    stem = record.get("stem", {})
    actual = file_sha256(stem_path)
    if actual != stem.get("sha256"):
        v.problems.append(f"stem hash mismatch: file {actual}, record {stem.get('sha256')}")
    if stem_path.stat().st_size != stem.get("size"):
        v.problems.append(f"stem size mismatch: file {stem_path.stat().st_size}, record {stem.get('size')}")
    if "ledger" in bundle:
        v.problems.extend(check_ledger(bundle, {key_id(k): k for k in keys}, v))
    else:
        v.problems.append("the bundle carries no ledger inclusion proof")
    v.notes.append(f"record signed by key {kid}")
    v.ok = not v.problems
    return v


def check_ledger(bundle: dict, keys: dict, v: Verdict) -> list[str]:
    try:
        ledger = bundle["ledger"]
        body = base64.b64decode(ledger["entry"], validate=True)
        entry = json.loads(body)
        head = ledger["tree_head"]
        proof = [bytes.fromhex(p) for p in ledger["inclusion_proof"]]
        index, size, root = int(ledger["index"]), int(head["size"]), bytes.fromhex(head["root_hash"])
    except (KeyError, TypeError, ValueError) as exc:
        return [f"ledger: malformed bundle ({exc})"]
    problems = []
    if entry.get("envelope") != bundle["envelope"] or entry.get("index") != index:
        problems.append("ledger: the entry does not carry this record at this index")
    try:
        verify_tree_head(head, keys)
        text = verify_note(head["checkpoint"], head["origin"], keys[head["key_id"]])
        if text != checkpoint_body(head["origin"], size, root):
            problems.append("ledger: the checkpoint does not match the tree head")
    except (SignatureError, KeyError) as exc:
        problems.append(f"ledger: tree head: {exc}")
    try:
        verify_inclusion(index, size, leaf_hash(body), proof, root)
    except ProofError as exc:
        problems.append(f"ledger: {exc}")
    if not problems:
        v.notes.append(f"ledger: entry {index} is included in the signed tree of size {size} "
                       f"(root {root.hex()[:16]}…, {head['origin']})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provenance.verify", description=__doc__.splitlines()[0])
    parser.add_argument("stem_file", type=Path)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--pubkey", type=Path, action="append", help="trusted public key (PEM); repeatable")
    args = parser.parse_args(argv)
    try:
        bundle = json.loads(args.bundle.read_text())
        trusted = [p.read_text() for p in args.pubkey] if args.pubkey else None
        verdict = verify_bundle(args.stem_file, bundle, trusted)
    except (OSError, ValueError, SignatureError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
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
