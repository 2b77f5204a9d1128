"""The transparency log against Certificate Transparency's published vectors and against a
plain recursive implementation of RFC 6962 written here, independent of the module."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from truecount.live.log import (
    TransparencyLog,
    TreeHead,
    sign_tree_head,
    verify_consistency,
    verify_inclusion,
    verify_tree_head,
)

# The 8-leaf test tree every CT implementation uses (certificate-transparency-go and
# transparency-dev/merkle carry the same values).
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, audit path)
CT_INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (first size, second size, consistency proof)
CT_CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]


# ------------------------------------------------------------- an independent plain version
def ref_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def ref_mth(hashes: list[bytes]) -> bytes:
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(hashes[:k]) + ref_mth(hashes[k:])).digest()


def ref_path(m: int, hashes: list[bytes]) -> list[bytes]:
    if len(hashes) <= 1:
        return []
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    if m < k:
        return [*ref_path(m, hashes[:k]), ref_mth(hashes[k:])]
    return [*ref_path(m - k, hashes[k:]), ref_mth(hashes[:k])]


def ref_subproof(m: int, hashes: list[bytes], whole: bool) -> list[bytes]:
    n = len(hashes)
    if m == n:
        return [] if whole else [ref_mth(hashes)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, hashes[:k], whole), ref_mth(hashes[k:])]
    return [*ref_subproof(m - k, hashes[k:], False), ref_mth(hashes[:k])]


def ct_log() -> TransparencyLog:
    return TransparencyLog([ref_leaf(d) for d in CT_LEAVES])


# ------------------------------------------------------------------------------- vectors
def test_roots_match_the_ct_vectors_for_every_size() -> None:
    log = ct_log()
    assert [log.root(n).hex() for n in range(9)] == CT_ROOTS


def test_roots_as_the_log_grows_leaf_by_leaf() -> None:
    log = TransparencyLog()
    assert log.root().hex() == CT_ROOTS[0]
    for n, data in enumerate(CT_LEAVES, start=1):
        log.append([ref_leaf(data)])
        assert log.root().hex() == CT_ROOTS[n]


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_inclusion_vectors(index: int, size: int, path: list[str]) -> None:
    log = ct_log()
    got = log.inclusion_proof(index, size)
    assert [p.hex() for p in got] == path
    root = bytes.fromhex(CT_ROOTS[size])
    leaf = ref_leaf(CT_LEAVES[index])
    assert verify_inclusion(leaf, index, size, got, root)
    # every corruption is refused
    assert not verify_inclusion(leaf, index + 1, size, got, root)
    assert not verify_inclusion(leaf, index, size * 2, got, root)
    assert not verify_inclusion(ref_leaf(b"other"), index, size, got, root)
    assert not verify_inclusion(leaf, index, size, [*got, root], root)
    for i in range(len(got)):
        bad = list(got)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        assert not verify_inclusion(leaf, index, size, bad, root)


@pytest.mark.parametrize(("first", "second", "proof"), CT_CONSISTENCY)
def test_consistency_vectors(first: int, second: int, proof: list[str]) -> None:
    log = ct_log()
    got = log.consistency_proof(first, second)
    assert [p.hex() for p in got] == proof
    r1, r2 = bytes.fromhex(CT_ROOTS[first]), bytes.fromhex(CT_ROOTS[second])
    assert verify_consistency(first, second, r1, r2, got)
    if not got:
        return
    assert not verify_consistency(first - 1, second, r1, r2, got)
    assert not verify_consistency(first + 1, second, r1, r2, got)
    assert not verify_consistency(first, second * 2, r1, r2, got)
    assert not verify_consistency(first, second, r2, r1, got)
    assert not verify_consistency(first, second, r1, r2, [])
    assert not verify_consistency(first, second, r1, r2, got[:-1])
    assert not verify_consistency(first, second, r1, r2, [*got, r2])
    for i in range(len(got)):
        bad = list(got)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        assert not verify_consistency(first, second, r1, r2, bad)


def test_trivial_consistency_cases() -> None:
    empty = bytes.fromhex(CT_ROOTS[0])
    some = bytes.fromhex(CT_ROOTS[3])
    assert verify_consistency(0, 0, empty, empty, [])
    assert verify_consistency(0, 3, empty, some, [])
    assert not verify_consistency(3, 3, empty, some, [])
    assert not verify_consistency(2, 1, some, some, [])
    assert not verify_consistency(0, 3, empty, some, [some])


# ------------------------------------------------------------------------------ properties
leaf_lists = st.lists(st.binary(max_size=12), min_size=1, max_size=70)


@settings(max_examples=60, deadline=None)
@given(leaf_lists, st.data())
def test_proofs_equal_the_plain_recursion(datas: list[bytes], data: st.DataObject) -> None:
    hashes = [ref_leaf(d) for d in datas]
    log = TransparencyLog(hashes)
    n = len(hashes)
    size = data.draw(st.integers(1, n))
    index = data.draw(st.integers(0, size - 1))
    first = data.draw(st.integers(1, size))
    assert log.root(size) == ref_mth(hashes[:size])
    path = log.inclusion_proof(index, size)
    assert path == ref_path(index, hashes[:size])
    assert verify_inclusion(hashes[index], index, size, path, ref_mth(hashes[:size]))
    proof = log.consistency_proof(first, size)
    assert proof == ([] if first == size else ref_subproof(first, hashes[:size], True))
    assert verify_consistency(first, size, ref_mth(hashes[:first]), ref_mth(hashes[:size]), proof)


@settings(max_examples=40, deadline=None)
@given(leaf_lists, st.data())
def test_a_rewritten_prefix_is_not_consistent(datas: list[bytes], data: st.DataObject) -> None:
    hashes = [ref_leaf(d) for d in datas]
    n = len(hashes)
    if n < 2:
        return
    first = data.draw(st.integers(1, n - 1))
    changed = data.draw(st.integers(0, first - 1))
    forged = list(hashes)
    forged[changed] = ref_leaf(datas[changed] + b"!")
    proof = TransparencyLog(forged).consistency_proof(first, n)
    assert not verify_consistency(first, n, ref_mth(hashes[:first]), ref_mth(forged), proof)


def test_cached_subtrees_stay_right_as_the_log_grows() -> None:
    hashes = [ref_leaf(bytes([i % 256, i // 256])) for i in range(300)]
    log = TransparencyLog()
    for start in range(0, 300, 37):
        log.append(hashes[start : start + 37])
        n = log.size
        assert log.root() == ref_mth(hashes[:n])
        assert log.inclusion_proof(n - 1) == ref_path(n - 1, hashes[:n])


def test_signed_tree_head_round_trip_and_tamper() -> None:
    key = Ed25519PrivateKey.generate()
    log = ct_log()
    head = sign_tree_head(8, log.root(), 1_700_000_000_000, key)
    again = TreeHead.from_json(head.to_json())
    assert again == head
    assert verify_tree_head(again, key.public_key())
    forged = TreeHead(7, head.root, head.timestamp, head.key_id, head.signature)
    assert not verify_tree_head(forged, key.public_key())
    assert not verify_tree_head(head, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(ValueError, match="tree_size"):
        TreeHead.from_json({**head.to_json(), "tree_size": -1})
