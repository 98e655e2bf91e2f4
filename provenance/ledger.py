"""The append-only provenance ledger on the database.

Every append happens inside the caller's transaction (so an entry commits with the state change
it records, or not at all) and under a row lock on the single LedgerState row, which serialises
appends across processes: concurrent workers never fork the log. Proofs read O(log n) stored
perfect-subtree hashes in one query; nothing loads the whole tree.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .checkpoint import STH_SCHEMA, sign_tree_head, verify_note, verify_tree_head
from .keys import get_signer, verification_keys
from .merkle import Frontier, ProofError, consistency_proof, coords_needed, inclusion_path, leaf_hash, root
from .models import LedgerEntry, LedgerNode, LedgerState, TreeHead
from .publication import publish_on_commit
from .signing import SignatureError, canonical_bytes, load_public_pem, verify_envelope

ENTRY_SCHEMA = 1
NODE_SHIFT = 56
INDEX_MASK = (1 << NODE_SHIFT) - 1


class LedgerCorrupt(Exception):
    pass


def node_key(level: int, index: int) -> int:
    return (level << NODE_SHIFT) | index


def origin() -> str:
    return settings.CLEARSTEM_LEDGER_ORIGIN


# --- appending -------------------------------------------------------------------------------

def do_append_entry(kind: str, subject: str, envelope: dict) -> LedgerEntry:
    """Append a signed record to the log; call inside the transaction that records the change."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger appends must run inside the transaction of the change they record")
    state = _locked_state()
    frontier = Frontier.from_bytes(state.size, bytes(state.frontier))
    now = timezone.now()
    body = canonical_bytes({
        "v": ENTRY_SCHEMA, "index": state.size, "kind": kind, "subject": subject,
        "at": now.isoformat(), "envelope": envelope,
    })
    leaf = leaf_hash(body)
    created = frontier.append(leaf)
    entry = LedgerEntry.objects.create(index=state.size, kind=kind, subject=subject, body=body,
                                       leaf_hash=leaf, created_at=now)
    LedgerNode.objects.bulk_create([LedgerNode(key=node_key(*coord), hash=h) for coord, h in created])
    state.size, state.frontier = frontier.size, frontier.to_bytes()
    state.save(update_fields=["size", "frontier"])
    return entry


def _locked_state() -> LedgerState:
    """The state row, locked for this transaction (created on the log's first append)."""
    state = LedgerState.objects.select_for_update().filter(id=1).first()
    if state is None:
        try:
            with transaction.atomic():
                LedgerState.objects.create(id=1)
        except IntegrityError:  # another process created it first
            pass
        state = LedgerState.objects.select_for_update().get(id=1)
    return state


def do_record_event(kind: str, subject: str, payload: dict) -> LedgerEntry:
    """Sign `payload` and append it (inside the caller's transaction)."""
    return do_append_entry(kind, subject, get_signer().sign_envelope(payload))


# --- reading and proving ---------------------------------------------------------------------

def _stored(coords) -> dict:
    keys = [node_key(*c) for c in coords]
    got = {}
    for key, h in LedgerNode.objects.filter(key__in=keys).values_list("key", "hash"):
        got[(key >> NODE_SHIFT, key & INDEX_MASK)] = bytes(h)
    missing = [c for c in coords if c not in got]
    if missing:
        raise LedgerCorrupt(f"ledger nodes missing: {missing[:3]}")
    return got


def _with_nodes(fn):
    nodes = _stored(coords_needed(fn))
    return fn(nodes.__getitem__)


def ledger_size() -> int:
    state = LedgerState.objects.filter(id=1).first()
    return state.size if state else 0


def inclusion_proof(index: int, size: int) -> list[bytes]:
    return _with_nodes(lambda get: inclusion_path(index, size, get))


def consistency(first: int, second: int) -> list[bytes]:
    return _with_nodes(lambda get: consistency_proof(first, second, get))


def root_at(size: int) -> bytes:
    return _with_nodes(lambda get: root(size, get))


def current_tree_head(covering: int | None = None) -> TreeHead:
    """A signed tree head: for a bundle, the latest one that includes entry `covering`; for
    monitors, one at the current size, re-signed at most every CLEARSTEM_TREE_HEAD_MAX_AGE_S
    seconds while the log grows — so reads never create a head per request."""
    state, _ = LedgerState.objects.get_or_create(id=1)
    latest = TreeHead.objects.order_by("-size").first()
    if latest is not None:
        if latest.size == state.size:
            return latest
        if covering is not None and latest.size > covering:
            return latest
        age_s = time.time() - latest.timestamp / 1000
        if covering is None and age_s < settings.CLEARSTEM_TREE_HEAD_MAX_AGE_S:
            return latest
    frontier = Frontier.from_bytes(state.size, bytes(state.frontier))
    signed = sign_tree_head(get_signer().private_key, origin(), state.size, frontier.root(), int(time.time() * 1000))
    try:
        with transaction.atomic():
            head = TreeHead.objects.create(
                size=state.size, root_hash=frontier.root(), timestamp=signed["timestamp"], key_id=signed["key_id"],
                signature=signed["signature"], checkpoint=signed["checkpoint"],
            )
            publish_on_commit(head)  # witnessed outside the database once it commits
            return head
    except IntegrityError:  # another process signed this size first
        return TreeHead.objects.get(size=state.size)


def tree_head_dict(head: TreeHead) -> dict:
    return {"schema": STH_SCHEMA, "origin": origin(), "size": head.size, "root_hash": bytes(head.root_hash).hex(),
            "timestamp": head.timestamp, "key_id": head.key_id, "signature": head.signature,
            "checkpoint": head.checkpoint}


def entry_dict(entry: LedgerEntry) -> dict:
    return {"index": entry.index, "kind": entry.kind, "subject": entry.subject,
            "leaf_hash": bytes(entry.leaf_hash).hex(), "body": json.loads(bytes(entry.body))}


# --- verification ----------------------------------------------------------------------------

def _nodes_created_by(first: int, end: int) -> dict[int, bytes]:
    """Stored hashes of every node that appending leaves [first, end) completes."""
    keys = []
    for i in range(first, end):
        level = 0
        keys.append(node_key(0, i))
        while (i >> level) & 1:
            level += 1
            keys.append(node_key(level, i >> level))
    return {k: bytes(h) for k, h in LedgerNode.objects.filter(key__in=keys).values_list("key", "hash")}


@dataclass
class LedgerReport:
    ok: bool
    size: int = 0
    checked: int = 0
    heads_checked: int = 0
    first_bad_index: int | None = None
    problem: str = ""
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def verify_ledger(batch: int = 5000, progress=None) -> LedgerReport:
    """Recompute every leaf, node and root, check every signature; stop at the first fault.

    Streams the log in batches: memory stays O(batch + log n) at any size.
    """
    t0 = time.perf_counter()
    keys = {kid: load_public_pem(pem) for kid, pem in verification_keys().items()}
    state = LedgerState.objects.filter(id=1).first()
    size = state.size if state else 0
    heads = {h.size: h for h in TreeHead.objects.all()}
    report = LedgerReport(ok=False, size=size)
    frontier = Frontier()

    def fail(index, problem):
        report.first_bad_index, report.problem = index, problem
        report.elapsed_s = time.perf_counter() - t0
        return report

    def check_head(n: int):
        head = heads.get(n)
        if head is None:
            return None
        if bytes(head.root_hash) != frontier.root():
            return f"signed tree head at size {n} does not match the recomputed root"
        try:
            verify_tree_head(tree_head_dict(head), keys)
            verify_note(head.checkpoint, origin(), keys[head.key_id])
        except (SignatureError, KeyError) as exc:
            return f"tree head at size {n}: {exc}"
        report.heads_checked += 1
        return None

    if (problem := check_head(0)):
        return fail(0, problem)
    start = 0
    while True:
        rows = list(LedgerEntry.objects.filter(index__gte=start).order_by("index")[:batch]
                    .values_list("index", "body", "leaf_hash"))
        if not rows:
            break
        stored = _nodes_created_by(rows[0][0], rows[-1][0] + 1)
        for index, body, stored_leaf in rows:
            if index >= size:
                return fail(index, f"entry {index} lies beyond the log's recorded size {size}")
            if index != frontier.size:
                return fail(frontier.size, f"entry {frontier.size} is missing (next stored index is {index})")
            body = bytes(body)
            leaf = leaf_hash(body)
            if leaf != bytes(stored_leaf):
                return fail(index, "stored leaf hash does not match the entry body")
            try:
                obj = json.loads(body)
            except ValueError:
                return fail(index, "entry body is not JSON")
            if obj.get("index") != index:
                return fail(index, f"entry body says index {obj.get('index')}: rows were reordered")
            try:
                # the signature covers the payload bytes as stored; canonical form was checked at signing
                verify_envelope(obj["envelope"], keys, check_canonical=False)
            except (SignatureError, KeyError, TypeError) as exc:
                return fail(index, f"record signature: {exc}")
            for coord, h in frontier.append(leaf):
                if stored.get(node_key(*coord)) != h:
                    return fail(index, f"stored tree node {coord} does not match the entries")
            if (problem := check_head(frontier.size)):
                return fail(index, problem)
        report.checked = frontier.size
        if progress:
            progress(frontier.size, size)
        start = rows[-1][0] + 1
    if frontier.size != size:
        return fail(frontier.size, f"the log records size {size} but {frontier.size} entries verify")
    if state and bytes(state.frontier) != frontier.to_bytes():
        return fail(size, "the stored frontier does not match the entries")
    beyond = [n for n in heads if n > size]
    if beyond:
        return fail(size, f"a signed tree head claims size {min(beyond)} beyond the log's {size} entries")
    report.ok = True
    report.checked = size
    report.elapsed_s = time.perf_counter() - t0
    return report


def proof_hex(proof: list[bytes]) -> list[str]:
    return [p.hex() for p in proof]


__all__ = ["LedgerCorrupt", "ProofError", "do_append_entry", "do_record_event", "inclusion_proof", "consistency",
           "root_at", "current_tree_head", "verify_ledger", "tree_head_dict", "entry_dict", "ledger_size"]
