"""The meter's secrets and tokens, from a file or the environment; never printed.

A secrets file (YAML, readable by its owner only, like a private key)::

    zendesk: {secret: "..."}        # the Zendesk webhook's signing secret
    intercom: {secret: "..."}       # the Intercom app's client secret
    senders:                        # generic /events senders
      buyer-etl: {hmac_sha256: "..."}
      vendor-feed: {ed25519: "<the sender's public key, base64>"}
    readers:                        # bearer tokens for the read endpoints, one per party
      buyer: "..."
      vendor: "..."
      auditor: "..."

The environment can give the same: ``TRUECOUNT_ZENDESK_SECRET``,
``TRUECOUNT_INTERCOM_SECRET``, ``TRUECOUNT_METER_SENDERS`` (``name=hmac-sha256:SECRET`` or
``name=ed25519:BASE64``, comma-separated) and ``TRUECOUNT_METER_READERS``
(``party=TOKEN``, comma-separated). A value in the file wins over the environment.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from truecount.errors import InputError, Location, Problem

from .signatures import GenericSender

MIN_TOKEN: Final[int] = 16
_TOP: Final[tuple[str, ...]] = ("zendesk", "intercom", "senders", "readers")


class SecretsError(InputError):
    """The secrets file or variables are unreadable, malformed or too widely readable."""


@dataclass(frozen=True)
class Secrets:
    """Who may write (signing secrets per endpoint) and who may read (a token per party)."""

    zendesk: bytes | None = field(default=None, repr=False)
    intercom: bytes | None = field(default=None, repr=False)
    senders: dict[str, GenericSender] = field(default_factory=dict, repr=False)
    readers: dict[str, str] = field(default_factory=dict, repr=False)

    def describe(self) -> str:
        """What is configured, without a single secret character."""
        parts = [
            "zendesk" if self.zendesk else "no zendesk",
            "intercom" if self.intercom else "no intercom",
            f"{len(self.senders)} generic sender(s)",
            f"{len(self.readers)} reader(s): {', '.join(sorted(self.readers)) or 'none'}",
        ]
        return "; ".join(parts)


def _fail(
    message: str, where: str, key: str | None = None, hint: str | None = None
) -> SecretsError:
    return SecretsError(Problem(message, Location(file=where, key=key), hint))


def load_secrets(path: Path | None, env: Mapping[str, str] | None = None) -> Secrets:
    """Secrets from ``path`` (if given) over those in the environment."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    where = str(path) if path is not None else "environment"
    if path is not None:
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _fail(f"cannot read the secrets file ({exc})", where) from None
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise _fail(
                f"the secrets file is readable by others (mode {stat.S_IMODE(mode):o})",
                where,
                hint=f"chmod 600 {path}",
            )
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            raise _fail("the secrets file is not YAML", where) from None
        if not isinstance(loaded, dict):
            raise _fail("the secrets file must be a mapping", where, hint=", ".join(_TOP))
        unknown = sorted(str(k) for k in loaded if k not in _TOP)
        if unknown:
            raise _fail(
                f"unknown key '{unknown[0]}'", where, unknown[0], "valid: " + ", ".join(_TOP)
            )
        data = loaded
    zendesk = _vendor(data, "zendesk", where) or _env_bytes(env, "TRUECOUNT_ZENDESK_SECRET")
    intercom = _vendor(data, "intercom", where) or _env_bytes(env, "TRUECOUNT_INTERCOM_SECRET")
    senders = _env_senders(env)
    senders.update(_file_senders(data.get("senders"), where))
    readers = _env_pairs(env, "TRUECOUNT_METER_READERS")
    file_readers = data.get("readers") or {}
    if not isinstance(file_readers, dict):
        raise _fail("'readers' must map a party to its token", where, "readers")
    readers.update({str(k): str(v) for k, v in file_readers.items()})
    for party, token in readers.items():
        if len(token) < MIN_TOKEN:
            raise _fail(
                f"the token of reader '{party}' is shorter than {MIN_TOKEN} characters",
                where,
                f"readers.{party}",
            )
    return Secrets(zendesk, intercom, senders, readers)


def _vendor(data: dict[str, Any], name: str, where: str) -> bytes | None:
    entry = data.get(name)
    if entry is None:
        return None
    secret = entry.get("secret") if isinstance(entry, dict) else None
    if not isinstance(secret, str) or not secret:
        raise _fail(f"'{name}' must be a mapping with a non-empty 'secret'", where, name)
    return secret.encode("utf-8")


def _env_bytes(env: Mapping[str, str], name: str) -> bytes | None:
    value = env.get(name)
    return value.encode("utf-8") if value else None


def _env_pairs(env: Mapping[str, str], name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in (env.get(name) or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise _fail(f"{name} holds an item that is not NAME=VALUE", "environment", name)
        out[key.strip()] = value.strip()
    return out


def _public_key(text: str, where: str, key: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise _fail("an Ed25519 public key is 32 bytes in base64 (44 characters)", where, key)
    return Ed25519PublicKey.from_public_bytes(raw)


def _env_senders(env: Mapping[str, str]) -> dict[str, GenericSender]:
    out: dict[str, GenericSender] = {}
    for name, spec in _env_pairs(env, "TRUECOUNT_METER_SENDERS").items():
        scheme, _, value = spec.partition(":")
        key = f"TRUECOUNT_METER_SENDERS.{name}"
        if scheme == "hmac-sha256" and value:
            out[name] = GenericSender(name, hmac_secret=value.encode("utf-8"))
        elif scheme == "ed25519" and value:
            out[name] = GenericSender(name, public_key=_public_key(value, "environment", key))
        else:
            raise _fail("a sender is hmac-sha256:SECRET or ed25519:BASE64", "environment", key)
    return out


def _file_senders(entries: Any, where: str) -> dict[str, GenericSender]:
    if entries is None:
        return {}
    if not isinstance(entries, dict):
        raise _fail("'senders' must map a sender's name to its key", where, "senders")
    out: dict[str, GenericSender] = {}
    for name, spec in entries.items():
        key = f"senders.{name}"
        if not isinstance(spec, dict) or len(spec) != 1:
            raise _fail("give exactly one of hmac_sha256 or ed25519", where, key)
        if isinstance(spec.get("hmac_sha256"), str) and spec["hmac_sha256"]:
            out[str(name)] = GenericSender(str(name), hmac_secret=spec["hmac_sha256"].encode())
        elif isinstance(spec.get("ed25519"), str):
            out[str(name)] = GenericSender(
                str(name), public_key=_public_key(spec["ed25519"], where, key)
            )
        else:
            raise _fail("give exactly one of hmac_sha256 or ed25519", where, key)
    return out
