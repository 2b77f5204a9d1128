"""Who sent a request: the vendors' webhook signatures and the meter's generic scheme.

* **Zendesk** signs ``timestamp + body`` (no separator) with HMAC-SHA256 under the webhook's
  signing secret and sends the digest in base64 in ``X-Zendesk-Webhook-Signature``, the
  timestamp in ``X-Zendesk-Webhook-Signature-Timestamp``.
* **Intercom** signs the body alone with HMAC-SHA1 under the app's client secret and sends
  ``sha1=<hex>`` in ``X-Hub-Signature``. Its signature carries no time, so the window is
  checked on the notification's own ``created_at`` (inside the signed body).
* **Generic** senders put their name in ``X-Truecount-Sender``, Unix seconds in
  ``X-Truecount-Timestamp`` and, in ``X-Truecount-Signature``, ``hmac-sha256=<hex>`` (a
  shared secret) or ``ed25519=<base64>`` (the sender's own key; the meter holds only the
  public half) over ``timestamp + "." + body``.

Every comparison of a secret value is constant-time. A request outside the time window
(default five minutes either way) is refused as stale; a signature already accepted within
the window is refused as a replay, so a captured request cannot be sent again. A sender that
retries re-signs with a new timestamp, and its event ids make the retry harmless.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

DEFAULT_WINDOW: Final[float] = 300.0

ZENDESK_SIGNATURE: Final[str] = "x-zendesk-webhook-signature"
ZENDESK_TIMESTAMP: Final[str] = "x-zendesk-webhook-signature-timestamp"
INTERCOM_SIGNATURE: Final[str] = "x-hub-signature"
SENDER: Final[str] = "x-truecount-sender"
TIMESTAMP: Final[str] = "x-truecount-timestamp"
SIGNATURE: Final[str] = "x-truecount-signature"


class Refusal(Exception):  # noqa: N818 - a refusal, not an error of the meter
    """A request refused before any event was read: HTTP status, short code, reason."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason


def _missing(header: str) -> Refusal:
    return Refusal(401, "missing_signature", f"the {header} header is missing")


def _bad(what: str) -> Refusal:
    return Refusal(401, "bad_signature", f"the {what} signature does not match the body")


@dataclass(frozen=True)
class GenericSender:
    """A sender of canonical events: a shared HMAC secret or an Ed25519 public key."""

    name: str
    hmac_secret: bytes | None = None
    public_key: Ed25519PublicKey | None = None

    def __repr__(self) -> str:  # never print the secret
        kind = "hmac-sha256" if self.hmac_secret is not None else "ed25519"
        return f"GenericSender({self.name!r}, {kind})"


def parse_time(text: str) -> float:
    """Unix seconds, or an ISO 8601 time (what Zendesk sends), as Unix seconds."""
    value = text.strip()
    try:
        return float(int(value))
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Refusal(401, "bad_timestamp", f"the timestamp {value[:40]!r} is not a time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def check_window(stamp: float, now: float, window: float) -> None:
    if abs(now - stamp) > window:
        raise Refusal(
            401,
            "stale",
            f"the request was signed {abs(now - stamp):.0f} s from the meter's clock; "
            f"the window is {window:.0f} s",
        )


class ReplayGuard:
    """Signatures accepted within the window; a second use is a replay.

    Signatures are forgotten in the order they were admitted, from the front of a queue, once
    they are older than twice the window (a signature that old is refused as stale anyway), so
    each request costs the same however many the window holds: rebuilding the whole table on
    every request, once it had grown, took milliseconds a request at a few thousand entries
    (tens of thousands are normal: 100 requests a second over a ten-minute horizon).
    """

    def __init__(self, window: float = DEFAULT_WINDOW) -> None:
        self.window = window
        self._seen: dict[bytes, float] = {}
        self._order: deque[tuple[float, bytes]] = deque()
        self._lock = threading.Lock()

    def admit(self, key: bytes, now: float) -> None:
        digest = hashlib.sha256(key).digest()
        horizon = now - 2 * self.window
        with self._lock:
            order, seen_at = self._order, self._seen
            while order and order[0][0] < horizon:
                t, old = order.popleft()
                if seen_at.get(old) == t:
                    del seen_at[old]
            seen = seen_at.get(digest)
            if seen is not None and now - seen <= 2 * self.window:
                raise Refusal(409, "replay", "this signed request was already received")
            seen_at[digest] = now
            order.append((now, digest))

    @property
    def remembered(self) -> int:
        """How many signatures are held now (those admitted within twice the window)."""
        return len(self._seen)


def verify_zendesk(
    secret: bytes, headers: Mapping[str, str], body: bytes, now: float, window: float
) -> bytes:
    """Check a Zendesk webhook; return the signature (for the replay guard)."""
    signature = headers.get(ZENDESK_SIGNATURE)
    stamp = headers.get(ZENDESK_TIMESTAMP)
    if not signature:
        raise _missing("X-Zendesk-Webhook-Signature")
    if not stamp:
        raise _missing("X-Zendesk-Webhook-Signature-Timestamp")
    expected = base64.b64encode(
        hmac.new(secret, stamp.encode("utf-8") + body, hashlib.sha256).digest()
    )
    if not hmac.compare_digest(expected, signature.strip().encode("latin-1")):
        raise _bad("Zendesk")
    check_window(parse_time(stamp), now, window)
    return expected


def verify_intercom(
    secret: bytes, headers: Mapping[str, str], body: bytes, now: float, window: float
) -> bytes:
    """Check an Intercom notification; the window applies to its signed ``created_at``."""
    signature = headers.get(INTERCOM_SIGNATURE)
    if not signature:
        raise _missing("X-Hub-Signature")
    expected = b"sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest().encode("ascii")
    if not hmac.compare_digest(expected, signature.strip().lower().encode("latin-1")):
        raise _bad("Intercom")
    try:
        created = json.loads(body).get("created_at")
    except (ValueError, AttributeError):
        created = None
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise Refusal(400, "bad_payload", "the notification has no numeric created_at")
    check_window(float(created), now, window)
    return expected


def sign_generic(
    sender: str, secret: bytes, body: bytes, stamp: int | None = None
) -> dict[str, str]:
    """The headers a generic sender puts on a request under a shared secret: its name, the
    time in Unix seconds (now unless ``stamp`` is given) and ``hmac-sha256=<hex>`` over
    ``timestamp + "." + body``. For a sender written in Python (an ETL job, a bridge) and for
    the meter's own benchmark, so that none of them re-creates the scheme by hand."""
    text = str(int(time.time()) if stamp is None else stamp)
    mac = hmac.new(secret, text.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return {SENDER: sender, TIMESTAMP: text, SIGNATURE: f"hmac-sha256={mac}"}


def verify_generic(
    senders: Mapping[str, GenericSender],
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    window: float,
) -> tuple[str, bytes]:
    """Check a generic request; return the sender's name and the signature."""
    name = headers.get(SENDER)
    if not name:
        raise _missing("X-Truecount-Sender")
    sender = senders.get(name.strip())
    if sender is None:
        raise Refusal(401, "unknown_sender", "the sender named in X-Truecount-Sender is unknown")
    stamp = headers.get(TIMESTAMP)
    if not stamp:
        raise _missing("X-Truecount-Timestamp")
    signature = headers.get(SIGNATURE)
    if not signature:
        raise _missing("X-Truecount-Signature")
    message = stamp.strip().encode("ascii", errors="replace") + b"." + body
    scheme, _, value = signature.strip().partition("=")
    if scheme == "hmac-sha256" and sender.hmac_secret is not None:
        expected = hmac.new(sender.hmac_secret, message, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode("ascii"), value.lower().encode("latin-1")):
            raise _bad("HMAC-SHA256")
    elif scheme == "ed25519" and sender.public_key is not None:
        try:
            sender.public_key.verify(base64.b64decode(value, validate=True), message)
        except (binascii.Error, ValueError, InvalidSignature):
            raise _bad("Ed25519") from None
    else:
        want = "hmac-sha256" if sender.hmac_secret is not None else "ed25519"
        raise Refusal(401, "bad_signature", f"this sender signs with {want}=...")
    try:
        seconds = float(int(stamp.strip()))
    except ValueError:
        raise Refusal(401, "bad_timestamp", "X-Truecount-Timestamp must be Unix seconds") from None
    check_window(seconds, now, window)
    return sender.name, signature.strip().encode("latin-1")
