"""Ed25519 keys and DSSE envelopes (docs/evidence.md).

The envelope signs ``PAE(payloadType, payload)`` — DSSE's pre-authentication encoding,
``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` with lengths as ASCII decimals of byte
counts — so the signature binds the payload type as well as the bytes and a verifier never
has to parse before it checks.

Keys: the private key is a PKCS#8 PEM file readable by its owner only; the public key is
accepted as a SubjectPublicKeyInfo PEM file, or as the raw 32-byte key in base64 (44
characters, on its own or in a file), which is short enough to print in a contract annex.
A key id is the SHA-256 of the raw public key, in hex.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from truecount.errors import InputError, Location, Problem

from .canonical import sha256_hex

PAYLOAD_TYPE: Final[str] = "application/vnd.in-toto+json"


class KeyFileError(InputError):
    """A key file is missing, unreadable, malformed or too widely readable."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of a payload type and body."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte public key, hex: how envelopes and reports name a key."""
    return sha256_hex(raw_public(key))


def public_base64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(raw_public(key)).decode("ascii")


@dataclass(frozen=True)
class KeyFiles:
    """What :func:`generate_key` wrote."""

    private: Path
    public: Path
    key: Ed25519PublicKey

    @property
    def key_id(self) -> str:
        return key_id(self.key)

    @property
    def base64(self) -> str:
        return public_base64(self.key)


def public_key_path(private: Path) -> Path:
    """Where the public key of a private key file is written: beside it, with ``.pub``."""
    return private.with_name(private.name + ".pub")


def generate_key(out: str | Path) -> KeyFiles:
    """A new Ed25519 key: ``out`` (PKCS#8 PEM, mode 0600) and ``out.pub`` (PEM).

    The private file is created with owner-only permissions from the start (no moment when it
    is readable by others) and never overwrites an existing file. Both files are written whole
    or not at all: a full disk or an unwritable folder leaves no empty or partial key behind,
    which a later ``evidence`` would otherwise fail on, or worse, a lost private key.
    """
    private = Path(out)
    public = public_key_path(private)
    for path in (private, public):
        if path.exists():
            raise KeyFileError(
                Problem("the file exists", Location(file=str(path)), "keys are never overwritten")
            )
    if not private.parent.is_dir():
        raise KeyFileError(
            Problem(
                "the folder for the key does not exist",
                Location(file=str(private)),
                "create it first, or pass --out with a file in an existing folder",
            )
        )
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pub = key.public_key()
    pub_pem = pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        write_new_files([(private, pem, 0o600), (public, pub_pem, 0o644)])
    except FileExistsError as exc:
        raise KeyFileError(
            Problem(
                "the file exists",
                Location(file=str(exc.filename2 or exc.filename)),
                "keys are never overwritten",
            )
        ) from None
    except OSError as exc:
        raise KeyFileError(
            Problem(
                f"cannot write the key: {exc.strerror or exc}",
                Location(file=str(private)),
                "nothing was written; free some space or choose a folder you can write to",
            )
        ) from None
    return KeyFiles(private, public, pub)


def write_new_files(files: list[tuple[Path, bytes, int]]) -> None:
    """Write new files whole or not at all, never over an existing one.

    Each is written to a temporary file in its own folder (created owner-only, so a private
    key is never readable by others), flushed to disk, then linked to its name — a link
    fails rather than replace an existing file. On any error, or Ctrl-C, the files already
    linked are removed again and the temporary files always are.
    """
    temps: list[Path] = []
    linked: list[Path] = []
    try:
        for path, data, mode in files:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            temps.append(Path(tmp))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
        for (path, _data, _mode), tmp_path in zip(files, temps, strict=True):
            _link_new(tmp_path, path)
            linked.append(path)
        for folder in {path.parent for path, _data, _mode in files}:
            fsync_folder(folder)
    except BaseException:
        for path in linked:
            path.unlink(missing_ok=True)
        raise
    finally:
        for tmp_path in temps:
            tmp_path.unlink(missing_ok=True)


def _link_new(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` unless that exists (a hard link where the file system
    has them; else a rename after a check)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if path.exists():
            raise FileExistsError(errno.EEXIST, "the file exists", str(path)) from None
        os.rename(tmp, path)


def fsync_folder(folder: Path) -> None:
    """Make the new names durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # some file systems cannot sync a folder
            os.fsync(fd)
    finally:
        os.close(fd)


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Read an unencrypted PKCS#8 PEM Ed25519 key that only its owner can read."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
        data = p.read_bytes()
    except OSError as exc:
        raise KeyFileError(
            Problem(f"cannot read the key: {exc.strerror}", Location(file=str(p)))
        ) from None
    if b"-----BEGIN PUBLIC KEY-----" in data:
        # the .pub file given where the private key belongs: say so before its mode, which
        # is meant to be readable and would only send the user to chmod it in vain
        private = p.with_suffix("") if p.suffix == ".pub" else None
        raise KeyFileError(
            Problem(
                "this is a public key; signing needs the private key",
                Location(file=str(p)),
                f"give {private}"
                if private is not None and private.is_file()
                else "give the private key file that truecount keygen wrote beside it (no .pub)",
            )
        )
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            Problem(
                f"the private key is readable by others (mode {stat.S_IMODE(mode):o})",
                Location(file=str(p)),
                f"chmod 600 {p}",
            )
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(
            Problem(f"not an unencrypted PEM private key ({exc})", Location(file=str(p)))
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(
            Problem("not an Ed25519 key", Location(file=str(p)), "make one with truecount keygen")
        )
    return key


def load_public_key(spec: str | Path) -> Ed25519PublicKey:
    """A public key from a PEM file, a file holding base64, or base64 text given directly."""
    text: str
    where = str(spec)
    p = Path(spec)
    data: bytes | None = None
    try:
        if p.is_file():
            data = p.read_bytes()
    except OSError:  # a long base64 string is not a path
        data = None
    if data is not None:
        if b"-----BEGIN" in data:
            try:
                key: Any = serialization.load_pem_public_key(data)
            except ValueError as exc:
                raise KeyFileError(
                    Problem(f"not a PEM public key ({exc})", Location(file=where))
                ) from None
            if not isinstance(key, Ed25519PublicKey):
                raise KeyFileError(Problem("not an Ed25519 public key", Location(file=where)))
            return key
        text = data.decode("ascii", errors="replace").strip()
    else:
        text = str(spec).strip()
        where = "--pubkey"
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise KeyFileError(
            Problem(
                "not a public key: expected a PEM file or the 32-byte key in base64",
                Location(file=where),
                "pass the .pub file written by truecount keygen, or the base64 it printed",
            )
        )
    return Ed25519PublicKey.from_public_bytes(raw)


def sign_envelope(payload: bytes, key: Ed25519PrivateKey) -> dict[str, Any]:
    """A DSSE envelope of ``payload`` (an in-toto Statement) with one Ed25519 signature."""
    signature = key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [
            {"keyid": key_id(key.public_key()), "sig": base64.b64encode(signature).decode("ascii")}
        ],
    }


@dataclass(frozen=True)
class EnvelopeCheck:
    """The outcome of checking an envelope: the payload, and why it failed if it did."""

    payload: bytes | None
    ok: bool
    cause: str


def check_envelope(envelope: Any, key: Ed25519PublicKey) -> EnvelopeCheck:
    """Verify a DSSE envelope against one public key (and only that key).

    The payload is returned even when the signature fails, so a verifier can go on to report
    every other check; ``ok`` says whether it may be trusted.
    """
    if not isinstance(envelope, dict):
        return EnvelopeCheck(None, False, "the envelope is not a JSON object")
    try:
        payload = base64.b64decode(str(envelope.get("payload", "")), validate=True)
    except (binascii.Error, ValueError):
        return EnvelopeCheck(None, False, "the envelope's payload is not base64")
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        return EnvelopeCheck(
            payload, False, f"payloadType is {envelope.get('payloadType')!r}, not {PAYLOAD_TYPE}"
        )
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        return EnvelopeCheck(payload, False, "the envelope has no signature")
    expected = key_id(key)
    message = pae(PAYLOAD_TYPE, payload)
    named: list[str] = []
    for entry in signatures:
        if not isinstance(entry, dict):
            continue
        named.append(str(entry.get("keyid", "")))
        try:
            sig = base64.b64decode(str(entry.get("sig", "")), validate=True)
            key.verify(sig, message)
        except (binascii.Error, ValueError, InvalidSignature):
            continue
        return EnvelopeCheck(payload, True, f"Ed25519 signature by key {expected[:16]}…")
    if expected not in named:
        return EnvelopeCheck(
            payload,
            False,
            f"not signed by the given public key (key id {expected[:16]}…; the envelope names "
            + ", ".join(f"{k[:16]}…" for k in named)
            + ")",
        )
    return EnvelopeCheck(
        payload, False, "the signature does not match the payload: the statement was altered"
    )
