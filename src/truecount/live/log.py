"""The append-only transparency log: leaves in arrival order, signed tree heads, proofs.

It is the log of RFC 6962 §2.1 (restated in RFC 9162 §2.1): leaves are the hashes of
accepted events, in the order the meter accepted them; a tree head is (size, root, time),
signed with the meter's Ed25519 key over the RFC 6962 §3.5 ``TreeHeadSignature`` layout, so
anyone holding the public key can check it with nothing but a SHA-256 and Ed25519. Two proofs
make the log verifiable by parties who do not trust the meter:

* an *inclusion* proof shows that a given event is leaf ``i`` of a tree head;
* a *consistency* proof shows that an older tree head is a prefix of a newer one, so nothing
  acknowledged earlier was dropped or rewritten.

Proofs are produced by the recursive definitions of RFC 6962 §2.1.1 and §2.1.2; the roots
of the subtrees they need are computed by :func:`truecount.evidence.merkle.root` over slices
of one contiguous array, and the roots of complete power-of-two subtrees, which never change
once full, are cached. The checkers follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and
share no code with the producers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Final

import numpy as np

from truecount.evidence import merkle
from truecount.evidence.livelog import (
    LOG_FORMAT,
    TreeHead,
    sign_tree_head,
    tree_head_bytes,
    verify_tree_head,
)

#: Complete subtree roots kept in memory at most (32 bytes each plus the key).
_CACHE_LIMIT: Final[int] = 1 << 20
#: Subtrees this small are hashed again rather than cached (a few microseconds).
_SMALL: Final[int] = 32


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2): RFC 6962's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


class TransparencyLog:
    """Leaf hashes in arrival order, with roots and proofs for any size up to the current one.

    Appends and reads may come from different threads; a lock keeps each one whole.
    """

    def __init__(self, leaves: Sequence[bytes] | merkle.Hashes | None = None) -> None:
        self._leaves = np.empty((1024, merkle.HASH_SIZE), dtype=np.uint8)
        self._size = 0
        self._lock = threading.Lock()
        self._cache: dict[tuple[int, int], bytes] = {}
        if leaves is not None:
            self.append(leaves)

    @property
    def size(self) -> int:
        return self._size

    def append(self, hashes: merkle.Hashes | Sequence[bytes]) -> int:
        """Add leaf hashes after the existing ones; return the new size."""
        arr = merkle.as_hashes(hashes)
        with self._lock:
            need = self._size + int(arr.shape[0])
            if need > self._leaves.shape[0]:
                grown = np.empty((max(need, 2 * self._leaves.shape[0]), merkle.HASH_SIZE), np.uint8)
                grown[: self._size] = self._leaves[: self._size]
                self._leaves = grown
            self._leaves[self._size : need] = arr
            self._size = need
            return need

    def leaf(self, index: int) -> bytes:
        with self._lock:
            if not 0 <= index < self._size:
                raise IndexError(f"leaf {index} is outside a log of {self._size} leaves")
            return bytes(self._leaves[index].tobytes())

    def root(self, size: int | None = None) -> bytes:
        """The Merkle tree hash of the first ``size`` leaves (default: all of them)."""
        with self._lock:
            n = self._size if size is None else size
            self._check_size(n)
            return self._mth(0, n)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The audit path of leaf ``index`` in the tree of the first ``size`` leaves."""
        with self._lock:
            n = self._size if size is None else size
            self._check_size(n)
            if not 0 <= index < n:
                raise IndexError(f"leaf {index} is outside a tree of {n} leaves")
            return self._path(index, 0, n)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.2 PROOF(first, D[second]): the older tree is a prefix of the newer."""
        with self._lock:
            n = self._size if second is None else second
            self._check_size(n)
            if not 0 <= first <= n:
                raise IndexError(f"size {first} is not between 0 and {n}")
            if first in (0, n):
                return []
            return self._subproof(first, 0, n, True)

    # ---------------------------------------------------------------- the recursive definitions
    def _check_size(self, n: int) -> None:
        if not 0 <= n <= self._size:
            raise IndexError(f"size {n} is not between 0 and the log's {self._size}")

    def _mth(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]), split as RFC 6962 splits it; the roots of full power-of-two subtrees
        of more than :data:`_SMALL` leaves are cached, since leaves never change, so a root or
        a proof on a grown log hashes only what is new."""
        width = hi - lo
        if width <= _SMALL:
            return merkle.root(self._leaves[lo:hi])
        if not width & (width - 1):
            cached = self._cache.get((lo, width))
            if cached is None:
                cached = merkle.root(self._leaves[lo:hi])
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()
                self._cache[(lo, width)] = cached
            return cached
        k = _split(width)
        return merkle.node_hash(self._mth(lo, lo + k), self._mth(lo + k, hi))

    def _path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, lo, lo + k), self._mth(lo + k, hi)]
        return [*self._path(m - k, lo + k, hi), self._mth(lo, lo + k)]

    def _subproof(self, m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if whole else [self._mth(lo, hi)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, lo, lo + k, whole), self._mth(lo + k, hi)]
        return [*self._subproof(m - k, lo + k, hi, False), self._mth(lo, lo + k)]


# -------------------------------------------------------------------------------- checkers
def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: True when ``proof`` leads from leaf ``index`` to ``root``."""
    return merkle.verify_inclusion(leaf, index, size, proof, root)


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: True when the tree of ``first`` leaves is a prefix of ``second``'s.

    The empty tree is a prefix of every tree (its proof is empty); equal sizes need equal
    roots and an empty proof.
    """
    if first < 0 or second < first:
        return False
    if any(len(p) != merkle.HASH_SIZE for p in proof):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if not first & (first - 1):  # an exact power of two: the old root is the first node
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = merkle.node_hash(c, fr)
            sr = merkle.node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = merkle.node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


# ------------------------------------------------------------------------------ tree heads
# The tree head's format is shared with evidence packs that cite it (evidence.livelog).
__all__ = [
    "LOG_FORMAT",
    "TransparencyLog",
    "TreeHead",
    "sign_tree_head",
    "tree_head_bytes",
    "verify_consistency",
    "verify_inclusion",
    "verify_tree_head",
]
