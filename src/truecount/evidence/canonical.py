"""Canonical JSON (RFC 8785, JCS) and SHA-256 helpers for everything a pack signs or hashes.

DSSE signs bytes, so a signature would verify over any serialisation; canonical bytes are what
let an auditor *regenerate* the same statement from the same inputs and compare it byte for
byte, and they make the pack itself reproducible (the determinism tests rely on it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Final

import rfc8785

_CHUNK: Final[int] = 1 << 20


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON value (no trailing newline: the bytes are the document)."""
    return rfc8785.dumps(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes exactly as stored, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
