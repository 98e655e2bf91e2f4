"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing and proofs. No Django.

leaf = SHA-256(0x00 ‖ entry), node = SHA-256(0x01 ‖ left ‖ right); MTH splits at the largest
power of two below n. Proofs are computed from *perfect subtree* hashes — (level, index)
covers leaves [index·2^level, (index+1)·2^level) — fetched through a getter, so a stored tree
answers any proof with O(log n) lookups and never loads the whole tree. A `Frontier` (compact
range) appends in O(log n) and yields the new perfect nodes to store.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

Coord = tuple[int, int]  # (level, index)
Getter = Callable[[Coord], bytes]
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    pass


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_hash(start: int, end: int, get: Getter) -> bytes:
    """MTH(D[start:end]) where `start` is aligned as in the RFC recursion."""
    n = end - start
    if n <= 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0:  # a perfect subtree: stored
        level = n.bit_length() - 1
        return get((level, start >> level))
    k = _split(n)
    return node_hash(subtree_hash(start, start + k, get), subtree_hash(start + k, end, get))


def root(size: int, get: Getter) -> bytes:
    return subtree_hash(0, size, get)


def inclusion_path(index: int, size: int, get: Getter) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is outside a tree of size {size}")

    def path(m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return path(m, start, start + k) + [subtree_hash(start + k, end, get)]
        return path(m - k, start + k, end) + [subtree_hash(start, start + k, get)]

    return path(index, 0, size)


def consistency_proof(first: int, second: int, get: Getter) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 §2.1.4.1."""
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from size {first} to {second}")
    if first == 0 or first == second:
        return []

    def subproof(m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [subtree_hash(start, end, get)]
        k = _split(n)
        if m <= k:
            return subproof(m, start, start + k, complete) + [subtree_hash(start + k, end, get)]
        return subproof(m - k, start + k, end, False) + [subtree_hash(start, start + k, get)]

    return subproof(first, 0, second, True)


def coords_needed(fn: Callable[[Getter], object]) -> list[Coord]:
    """Which perfect subtrees `fn` reads: run it once against a recording getter."""
    seen: list[Coord] = []

    def record(coord: Coord) -> bytes:
        seen.append(coord)
        return b"\x00" * 32

    fn(record)
    return list(dict.fromkeys(seen))


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -------------------------------------------

def root_from_inclusion(index: int, size: int, leaf: bytes, path: Iterable[bytes]) -> bytes:
    if not 0 <= index < size:
        raise ProofError(f"index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if len(p) != 32:
            raise ProofError("proof element is not a SHA-256 hash")
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], expected_root: bytes) -> None:
    if len(leaf) != 32 or len(expected_root) != 32:
        raise ProofError("hashes must be 32 bytes")
    if root_from_inclusion(index, size, leaf, path) != expected_root:
        raise ProofError("inclusion proof does not lead to the tree head's root")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]) -> None:
    if not 0 <= first <= second:
        raise ProofError(f"size {first} cannot precede size {second}")
    if first == second:
        if proof or first_root != second_root:
            raise ProofError("equal sizes need equal roots and an empty proof")
        return
    if first == 0:
        if proof:
            raise ProofError("consistency from the empty tree needs an empty proof")
        return
    if not proof:
        raise ProofError("empty consistency proof")
    if any(len(p) != 32 for p in proof):
        raise ProofError("proof element is not a SHA-256 hash")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != first_root or sr != second_root:
        raise ProofError("consistency proof does not link the two roots")


# --- appending -------------------------------------------------------------------------------

class Frontier:
    """The perfect subtrees covering a tree of `size` leaves, left to right (a compact range).

    ≤ 64 hashes whatever the size, so it is stored beside the log and each append costs
    O(log n) hashing with no reads.
    """

    def __init__(self, size: int = 0, hashes: list[bytes] | None = None):
        self.size = size
        self.hashes = list(hashes or [])
        if len(self.hashes) != bin(size).count("1"):
            raise ValueError("frontier does not match the tree size")

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> Frontier:
        return cls(size, [bytes(blob[i:i + 32]) for i in range(0, len(blob), 32)])

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    def append(self, leaf: bytes) -> list[tuple[Coord, bytes]]:
        """Add a leaf hash; return every perfect node it completes, the leaf (level 0) first."""
        index = self.size
        created = [((0, index), leaf)]
        self.hashes.append(leaf)
        level = 0
        while (index >> level) & 1:  # the node at `level` is a right child: merge with its sibling
            right = self.hashes.pop()
            left = self.hashes.pop()
            parent = node_hash(left, right)
            level += 1
            created.append(((level, index >> level), parent))
            self.hashes.append(parent)
        self.size += 1
        return created

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        h = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            h = node_hash(left, h)
        return h
