"""RFC 6962 Merkle trees over leaf hashes held in a NumPy array (docs/evidence.md).

The hashes are those of RFC 6962 §2.1 (restated in RFC 9162 §2.1): a leaf is
``SHA-256(0x00 || data)``, an interior node ``SHA-256(0x01 || left || right)``, the tree of no
leaves ``SHA-256("")``, and a tree of ``n`` leaves splits at the largest power of two below
``n``. That recursive split gives the same tree as pairing each level from the left and
carrying a last, unpaired node up unchanged, because every left subtree is complete. So a
tree is built level by level: ``log2 n`` passes over one contiguous array of 32-byte hashes,
with the pairs of a level hashed in one list comprehension, instead of a recursion with a
Python call per node and per level of depth.

Leaf hashes are computed elsewhere (in DuckDB, next to the data); this module only combines
them, proves inclusion and checks proofs. The checker follows RFC 9162 §2.1.3.2 step by step
and shares no code with the builder, so a test can hold one against the other.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Final

import numpy as np
import numpy.typing as npt

HASH_SIZE: Final[int] = 32
LEAF_PREFIX: Final[bytes] = b"\x00"
NODE_PREFIX: Final[bytes] = b"\x01"
#: MTH({}): the root of a tree without leaves.
EMPTY_ROOT: Final[bytes] = hashlib.sha256(b"").digest()

Hashes = npt.NDArray[np.uint8]  # shape (n, 32)


def leaf_hash(data: bytes) -> bytes:
    """The RFC 6962 hash of one leaf's data."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 hash of an interior node."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def as_hashes(values: bytes | Sequence[bytes] | Hashes) -> Hashes:
    """Leaf hashes as an ``(n, 32)`` uint8 array (from concatenated bytes or a list)."""
    if isinstance(values, np.ndarray):
        arr = values
    elif isinstance(values, bytes | bytearray | memoryview):
        arr = np.frombuffer(bytes(values), dtype=np.uint8)
    else:
        arr = np.frombuffer(b"".join(values), dtype=np.uint8)
    if arr.size % HASH_SIZE:
        raise ValueError("leaf hashes must be 32 bytes each")
    return arr.reshape(-1, HASH_SIZE)


#: Pairs hashed per chunk of a level: bounds the temporary Python objects to a few MB.
_CHUNK: Final[int] = 1 << 16


def _next_level(level: Hashes) -> Hashes:
    """Hash adjacent pairs of a level; an unpaired last node moves up unchanged."""
    n = level.shape[0]
    pairs = n // 2
    up = np.empty((pairs + n % 2, HASH_SIZE), dtype=np.uint8)
    sha = hashlib.sha256
    for start in range(0, pairs, _CHUNK):
        stop = min(pairs, start + _CHUNK)
        buf = level[2 * start : 2 * stop].tobytes()
        hashed = b"".join(
            [sha(NODE_PREFIX + buf[i : i + 64]).digest() for i in range(0, len(buf), 64)]
        )
        up[start:stop] = np.frombuffer(hashed, dtype=np.uint8).reshape(-1, HASH_SIZE)
    if n % 2:
        up[pairs] = level[n - 1]
    return up


def root(leaves: Hashes) -> bytes:
    """The Merkle tree hash (MTH) of the leaves, in their order."""
    level = as_hashes(leaves)
    if level.shape[0] == 0:
        return EMPTY_ROOT
    while level.shape[0] > 1:
        level = _next_level(level)
    return bytes(level[0].tobytes())


#: Leaves reduced at once by :class:`RootBuilder`: a perfect subtree of 2**17 leaves (4 MB).
STREAM_BLOCK: Final[int] = 1 << 17


def _perfect_root(block: Hashes) -> bytes:
    """The root of a block whose size is a power of two (one leaf: the leaf itself)."""
    level = block
    while level.shape[0] > 1:
        level = _next_level(level)
    return bytes(level[0].tobytes())


_WORKER: Final[Path] = Path(__file__).with_name("_tree_worker.py")


class BlockPool:
    """Helper processes that reduce full blocks of leaves to their roots, on other cores.

    Interior nodes are hashed by ``hashlib`` one 65-byte message at a time, which holds the
    interpreter lock (it is released only for inputs over 2 KiB), so a thread cannot share
    the work; processes can. Each worker (``_tree_worker.py``, run by path, standard library
    only) takes one block at a time over a pipe; at most one block per worker is in flight,
    so memory stays at one block per worker. Use as a context manager: the workers end when
    it closes.
    """

    def __init__(self, workers: int) -> None:
        self.size = max(1, workers)
        self._procs: list[subprocess.Popen[bytes]] = []

    def _proc(self, index: int) -> subprocess.Popen[bytes]:
        while len(self._procs) <= index:  # started on first use: small trees need none
            self._procs.append(
                subprocess.Popen(  # noqa: S603 - this interpreter and a file of this package
                    [sys.executable, "-I", str(_WORKER)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
            )
        return self._procs[index]

    def send(self, index: int, block: Hashes) -> None:
        """Give worker ``index`` a block (its size a power of two) to reduce."""
        pipe = self._proc(index).stdin
        assert pipe is not None
        pipe.write(int(block.shape[0]).to_bytes(8, "little"))
        pipe.write(block.tobytes())
        pipe.flush()

    def receive(self, index: int) -> bytes:
        """The root of the block worker ``index`` was given last (waits for it)."""
        pipe: IO[bytes] | None = self._procs[index].stdout
        assert pipe is not None
        got = pipe.read(HASH_SIZE)
        if len(got) != HASH_SIZE:
            raise RuntimeError("a Merkle tree worker process ended early")
        return got

    def close(self) -> None:
        for proc in self._procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self._procs:
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self._procs = []

    def __enter__(self) -> BlockPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            for proc in self._procs:
                proc.kill()
        self.close()


class RootBuilder:
    """The Merkle tree hash of leaves fed in order, batch by batch, in bounded memory.

    RFC 6962 splits a tree of ``n`` leaves at the largest power of two below ``n``, so its
    root is the fold from the right of the perfect subtrees that the binary digits of ``n``
    give, largest first: ``H(P1, H(P2, ... Pk))``. The builder fills a block of
    :data:`STREAM_BLOCK` leaves, reduces each full block to its root, and merges equal-sized
    subtree roots on a stack (as a binary counter carries), so it holds one block and
    ``log2 n`` roots, never the ``32 n`` bytes of every leaf hash.
    """

    def __init__(self, block: int | None = None, pool: BlockPool | None = None) -> None:
        block = STREAM_BLOCK if block is None else block
        if block < 1 or block & (block - 1):
            raise ValueError("the block size must be a power of two")
        self._block = np.empty((block, HASH_SIZE), dtype=np.uint8)
        self._fill = 0
        self._stack: list[tuple[int, bytes]] = []  # (leaves, root), sizes strictly decreasing
        self.size = 0
        #: with a pool, full blocks are reduced by its workers; their roots are pushed in the
        #: order the blocks were sent (worker indices of the blocks in flight, oldest first)
        self._pool = pool
        self._in_flight: deque[int] = deque()
        self._sent = 0

    def _full_block(self) -> None:
        capacity = self._block.shape[0]
        if self._pool is None:
            self._push(capacity, _perfect_root(self._block))
            return
        if len(self._in_flight) == self._pool.size:
            self._push(capacity, self._pool.receive(self._in_flight.popleft()))
        index = self._sent % self._pool.size
        self._pool.send(index, self._block)
        self._in_flight.append(index)
        self._sent += 1

    def _drain(self) -> None:
        capacity = self._block.shape[0]
        while self._in_flight:
            assert self._pool is not None
            self._push(capacity, self._pool.receive(self._in_flight.popleft()))

    def _push(self, leaves: int, node: bytes) -> None:
        while self._stack and self._stack[-1][0] == leaves:
            left = self._stack.pop()[1]
            node = node_hash(left, node)
            leaves *= 2
        self._stack.append((leaves, node))

    def add(self, hashes: Hashes) -> None:
        """Append leaf hashes (an ``(m, 32)`` array) after the ones added before."""
        arr = as_hashes(hashes)
        capacity = self._block.shape[0]
        at = 0
        while at < arr.shape[0]:
            take = min(capacity - self._fill, arr.shape[0] - at)
            self._block[self._fill : self._fill + take] = arr[at : at + take]
            self._fill += take
            at += take
            if self._fill == capacity:
                self._full_block()
                self._fill = 0
        self.size += arr.shape[0]

    def root(self) -> bytes:
        """The root of every leaf added so far (the builder can take more afterwards)."""
        if self.size == 0:
            return EMPTY_ROOT
        self._drain()
        pieces = list(self._stack)
        # the partial block: perfect subtrees from its binary digits, largest first; each is
        # smaller than any full block, so they extend the decreasing stack without merging
        start, rest = 0, self._fill
        while rest:
            part = 1 << (rest.bit_length() - 1)
            pieces.append((part, _perfect_root(self._block[start : start + part])))
            start += part
            rest -= part
        node = pieces[-1][1]
        for _, left in reversed(pieces[:-1]):
            node = node_hash(left, node)
        return node


def audit_paths(leaves: Hashes, indices: Iterable[int]) -> tuple[bytes, dict[int, list[bytes]]]:
    """The root and the RFC 6962 audit path of each leaf index, built in one pass up the tree.

    A path lists sibling hashes from the leaf's level upwards; a level where the node is the
    unpaired last one contributes nothing (that is the recursive definition's
    ``PATH(m, D[0:k]) : MTH(D[k:n])`` read from the bottom).
    """
    level = as_hashes(leaves)
    n = level.shape[0]
    wanted = sorted(set(indices))
    for i in wanted:
        if not 0 <= i < n:
            raise IndexError(f"leaf {i} is outside a tree of {n} leaves")
    paths: dict[int, list[bytes]] = {i: [] for i in wanted}
    position = {i: i for i in wanted}
    if n == 0:
        return EMPTY_ROOT, paths
    while level.shape[0] > 1:
        size = level.shape[0]
        for i in wanted:
            pos = position[i]
            sibling = pos ^ 1
            if sibling < size:
                paths[i].append(level[sibling].tobytes())
            position[i] = pos // 2
        level = _next_level(level)
    return level[0].tobytes(), paths


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, path: Sequence[bytes], expected_root: bytes
) -> bool:
    """Check an audit path as RFC 9162 §2.1.3.2 says; True when it leads to ``expected_root``."""
    if index < 0 or index >= tree_size:
        return False
    fn, sn = index, tree_size - 1
    r = leaf
    for p in path:
        if len(p) != HASH_SIZE or sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root
