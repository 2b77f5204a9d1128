"""A worker process for :class:`truecount.evidence.merkle.BlockPool`: perfect subtree roots.

It is run by path with the standard library only (no package import, so it starts in a few
milliseconds) and speaks a minimal protocol on its pipes: it reads a block (an 8-byte
little-endian leaf count, then that many 32-byte leaf hashes; the count a power of two) and
writes the block's 32-byte RFC 6962 root, until its input ends. Hashing interior nodes is
CPU-bound Python that holds the interpreter lock, so only processes can share it between
cores; each block is independent, and the parent folds the roots in order.
"""

from __future__ import annotations

import hashlib
import sys


def block_root(data: bytes) -> bytes:
    """The root of a perfect subtree over ``data`` (concatenated 32-byte leaf hashes)."""
    sha = hashlib.sha256
    level = data
    while len(level) > 32:
        level = b"".join(
            [sha(b"\x01" + level[i : i + 64]).digest() for i in range(0, len(level), 64)]
        )
    return level


def _read(stream: object, size: int) -> bytes:
    parts: list[bytes] = []
    while size:
        chunk = stream.read(size)  # type: ignore[attr-defined]
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def main() -> int:
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = _read(source, 8)
        if len(head) < 8:
            return 0
        size = int.from_bytes(head, "little") * 32
        data = _read(source, size)
        if len(data) != size:
            return 1
        sink.write(block_root(data))
        sink.flush()


if __name__ == "__main__":
    sys.exit(main())
