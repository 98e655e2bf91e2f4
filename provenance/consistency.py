"""Ledger proofs for the auditors' pages: a consistency proof between two tree sizes, and an
entry's inclusion in the current tree head, each checked.

Where a signed tree head exists at a size, its *signed* root is what the proof must reach (and
its signature is checked with the platform's keys): that is what someone holding an old tree head
or checkpoint relies on. A size nobody signed is shown with the root recomputed from the stored
nodes, and the page says so — such a proof only shows the stored tree is self-consistent."""
from __future__ import annotations

from dataclasses import dataclass

from sharedcore.errors import DomainError, NotFound

from .audit import platform_keys
from .checkpoint import verify_tree_head
from .ledger import LedgerCorrupt, consistency, current_tree_head, inclusion_proof, ledger_size, root_at, tree_head_dict
from .merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from .models import LedgerEntry, TreeHead
from .signing import SignatureError


@dataclass(frozen=True)
class Head:
    size: int
    root: bytes
    signed: TreeHead | None  # the signed tree head at this size, if one was signed
    signature_problem: str  # "" when the signature verifies (or there is none to check)


@dataclass(frozen=True)
class ConsistencyCheck:
    first: Head
    second: Head
    proof: list[bytes]
    problem: str  # "" when the proof links the two roots

    @property
    def ok(self) -> bool:
        return not self.problem and not self.first.signature_problem and not self.second.signature_problem


def _head(size: int, keys) -> Head:
    signed = TreeHead.objects.filter(size=size).first()
    if signed is None:
        return Head(size, root_at(size), None, "")
    try:
        verify_tree_head(tree_head_dict(signed), keys)
        problem = ""
    except SignatureError as exc:
        problem = str(exc)
    return Head(size, bytes(signed.root_hash), signed, problem)


def check_consistency(first: int, second: int) -> ConsistencyCheck:
    """The RFC 9162 §2.1.4 proof that the log of `second` entries extends the log of `first`,
    verified against the two heads' roots. Bad sizes are a DomainError (invalid_range)."""
    size = ledger_size()
    if first < 0 or second < 0:
        raise DomainError("invalid_range", "Tree sizes cannot be negative.")
    if first > second:
        raise DomainError("invalid_range", f"The first size ({first}) must not be larger than the second ({second}).")
    if second > size:
        raise DomainError("invalid_range", f"The ledger has {size} entries: no tree of {second} exists yet.")
    keys = platform_keys()
    try:
        heads = _head(first, keys), _head(second, keys)
        proof = consistency(first, second)
    except LedgerCorrupt as exc:
        raise DomainError("ledger_corrupt", f"The ledger's stored nodes are incomplete: {exc}") from exc
    try:
        verify_consistency(first, second, heads[0].root, heads[1].root, proof)
        problem = ""
    except ProofError as exc:
        problem = str(exc)
    return ConsistencyCheck(heads[0], heads[1], proof, problem)


def recent_heads(n: int = 10) -> list[TreeHead]:
    """The latest signed tree heads, newest first: the sizes an auditor usually compares."""
    return list(TreeHead.objects.order_by("-size")[:n])


@dataclass(frozen=True)
class InclusionCheck:
    entry: object  # the LedgerEntry
    head: TreeHead
    proof: list[bytes]
    problem: str  # "" when the entry's leaf hash is in the head's tree

    @property
    def ok(self) -> bool:
        return not self.problem


def check_inclusion(index: int) -> InclusionCheck:
    """Is entry `index` in the current signed tree head's tree (RFC 9162 §2.1.3)? The leaf hash
    is recomputed from the stored body, so a rewritten body fails too."""
    entry = LedgerEntry.objects.filter(index=index).first()
    if entry is None:
        raise NotFound("not_found", f"The ledger has no entry #{index}.")
    head = current_tree_head(covering=index)
    proof: list[bytes] = []
    try:
        proof = inclusion_proof(index, head.size)
        leaf = leaf_hash(bytes(entry.body))
        if leaf != bytes(entry.leaf_hash):
            raise ProofError("the stored leaf hash is not the hash of the stored body")
        verify_inclusion(index, head.size, leaf, proof, bytes(head.root_hash))
        problem = ""
    except (ProofError, LedgerCorrupt) as exc:
        problem = str(exc)
    return InclusionCheck(entry, head, proof, problem)
