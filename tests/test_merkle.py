"""RFC 9162 Merkle hashing and proofs against the published Certificate Transparency vectors.

The leaves, roots, inclusion and consistency proofs below are the RFC 6962 reference vectors
used by CT implementations, as published in transparency-dev/merkle (formerly
google/certificate-transparency-go), file proof/verify_test.go (`leaves`, `roots`,
`inclusionProofs`, `consistencyProofs`; its leaf numbers are 1-based, ours 0-based).
"""
import pytest

from provenance.merkle import (
    EMPTY_ROOT,
    Frontier,
    ProofError,
    consistency_proof,
    inclusion_path,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
ROOTS = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
H = bytes.fromhex
INCLUSION = [  # (0-based leaf index, tree size, path)
    (0, 8, [H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (5, 8, [H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 3, [H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (1, 5, [H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
    (0, 1, []),
]
CONSISTENCY = [  # (size1, size2, proof)
    (1, 1, []),
    (1, 8, [H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (6, 8, [H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 5, [H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
    (6, 7, [H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
]


def build(leaves):
    store, frontier = {}, Frontier()
    for data in leaves:
        for coord, h in frontier.append(leaf_hash(data)):
            store[coord] = h
    return store, frontier


@pytest.fixture(scope="module")
def ct():
    return build(LEAVES)


def test_roots_for_every_size(ct):
    store, _ = ct
    assert root(0, store.__getitem__) == EMPTY_ROOT == H("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    for n in range(1, 9):
        assert root(n, store.__getitem__) == ROOTS[n - 1]
        assert build(LEAVES[:n])[1].root() == ROOTS[n - 1]


@pytest.mark.parametrize("index,size,path", INCLUSION)
def test_inclusion_vectors(ct, index, size, path):
    store, _ = ct
    assert inclusion_path(index, size, store.__getitem__) == path
    verify_inclusion(index, size, leaf_hash(LEAVES[index]), path, ROOTS[size - 1])
    corruptions = [
        (index + 1, size, leaf_hash(LEAVES[index]), path, ROOTS[size - 1]),
        (index, size * 2, leaf_hash(LEAVES[index]), path, ROOTS[size - 1]),
        (index, size, leaf_hash(b"wrong leaf"), path, ROOTS[size - 1]),
        (index, size, leaf_hash(LEAVES[index]), path, EMPTY_ROOT),
        (index, size, leaf_hash(LEAVES[index]), path + [ROOTS[size - 1]], ROOTS[size - 1]),
        (index, size, leaf_hash(LEAVES[index]), [ROOTS[size - 1]] + path, ROOTS[size - 1]),
    ] + [(index, size, leaf_hash(LEAVES[index]), path[:i] + [bytes([path[i][0] ^ 8]) + path[i][1:]] + path[i + 1:],
          ROOTS[size - 1]) for i in range(len(path))]
    for args in corruptions:
        with pytest.raises(ProofError):
            verify_inclusion(*args)


@pytest.mark.parametrize("first,second,proof", CONSISTENCY)
def test_consistency_vectors(ct, first, second, proof):
    store, _ = ct
    assert consistency_proof(first, second, store.__getitem__) == proof
    r1, r2 = ROOTS[first - 1], ROOTS[second - 1]
    verify_consistency(first, second, r1, r2, proof)
    if not proof:
        return
    for bad in ([], proof[:-1], proof + [r1], [proof[0]] + proof,
                [bytes([proof[0][0] ^ 16]) + proof[0][1:]] + proof[1:]):
        with pytest.raises(ProofError):
            verify_consistency(first, second, r1, r2, bad)
    with pytest.raises(ProofError):
        verify_consistency(first, second, r2, r1, proof)


def test_every_proof_round_trips_for_ragged_trees():
    leaves = [f"record-{i}".encode() for i in range(40)]
    store, _ = build(leaves)
    get = store.__getitem__
    for n in range(1, 41):
        r = root(n, get)
        assert r == build(leaves[:n])[1].root()
        for i in range(n):
            verify_inclusion(i, n, leaf_hash(leaves[i]), inclusion_path(i, n, get), r)
        for m in range(0, n + 1):
            verify_consistency(m, n, root(m, get), r, consistency_proof(m, n, get))


def test_frontier_round_trips_through_bytes():
    _, frontier = build([bytes([i]) for i in range(13)])
    again = Frontier.from_bytes(13, frontier.to_bytes())
    assert again.root() == frontier.root() and len(again.hashes) == 3
    with pytest.raises(ValueError):
        Frontier.from_bytes(12, frontier.to_bytes())
