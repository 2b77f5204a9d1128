"""Webhook signatures, with vectors computed here from the vendors' documented algorithms."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from truecount.evidence.sign import public_base64
from truecount.live.config import SecretsError, load_secrets
from truecount.live.signatures import (
    GenericSender,
    Refusal,
    ReplayGuard,
    sign_generic,
    verify_generic,
    verify_intercom,
    verify_zendesk,
)

NOW = 1_780_000_000.0
BODY = b'{"ticket": {"id": 42}}'


def zendesk_headers(secret: bytes, stamp: str, body: bytes) -> dict[str, str]:
    # Zendesk: base64(HMAC-SHA256(secret, TIMESTAMP + BODY))
    digest = hmac.new(secret, stamp.encode() + body, hashlib.sha256).digest()
    return {
        "x-zendesk-webhook-signature": base64.b64encode(digest).decode(),
        "x-zendesk-webhook-signature-timestamp": stamp,
    }


def test_zendesk_accepts_the_documented_signature() -> None:
    stamp = "2026-05-28T20:26:40Z"  # NOW in ISO 8601
    headers = zendesk_headers(b"zd-secret", stamp, BODY)
    assert verify_zendesk(b"zd-secret", headers, BODY, NOW, 300)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("body", "bad_signature"),
        ("secret", "bad_signature"),
        ("stale", "stale"),
        ("no_signature", "missing_signature"),
        ("no_timestamp", "missing_signature"),
    ],
)
def test_zendesk_refusals(change: str, code: str) -> None:
    stamp = "2026-05-28T20:26:40Z" if change != "stale" else "2026-05-28T20:10:00Z"
    headers = zendesk_headers(b"other" if change == "secret" else b"zd-secret", stamp, BODY)
    body = BODY + b" " if change == "body" else BODY
    if change == "no_signature":
        del headers["x-zendesk-webhook-signature"]
    if change == "no_timestamp":
        del headers["x-zendesk-webhook-signature-timestamp"]
    with pytest.raises(Refusal) as caught:
        verify_zendesk(b"zd-secret", headers, body, NOW, 300)
    assert caught.value.code == code


def intercom_body(created: float) -> bytes:
    return json.dumps(
        {"type": "notification_event", "id": "notif_1", "created_at": int(created), "data": {}}
    ).encode()


def test_intercom_accepts_the_documented_signature_and_checks_created_at() -> None:
    body = intercom_body(NOW - 10)
    sig = "sha1=" + hmac.new(b"client-secret", body, hashlib.sha1).hexdigest()
    assert verify_intercom(b"client-secret", {"x-hub-signature": sig}, body, NOW, 300)
    with pytest.raises(Refusal, match="does not match"):
        verify_intercom(b"wrong", {"x-hub-signature": sig}, body, NOW, 300)
    old = intercom_body(NOW - 3600)
    old_sig = "sha1=" + hmac.new(b"client-secret", old, hashlib.sha1).hexdigest()
    with pytest.raises(Refusal) as caught:
        verify_intercom(b"client-secret", {"x-hub-signature": old_sig}, old, NOW, 300)
    assert caught.value.code == "stale"


def test_generic_hmac_and_ed25519() -> None:
    key = Ed25519PrivateKey.generate()
    senders = {
        "etl": GenericSender("etl", hmac_secret=b"s3cret"),
        "feed": GenericSender("feed", public_key=key.public_key()),
    }
    stamp = str(int(NOW))
    mac = hmac.new(b"s3cret", stamp.encode() + b"." + BODY, hashlib.sha256).hexdigest()
    headers = {
        "x-truecount-sender": "etl",
        "x-truecount-timestamp": stamp,
        "x-truecount-signature": f"hmac-sha256={mac}",
    }
    assert verify_generic(senders, headers, BODY, NOW, 300)[0] == "etl"
    # the library's signer writes exactly these headers, computed by hand above
    assert sign_generic("etl", b"s3cret", BODY, int(NOW)) == headers
    signed = base64.b64encode(key.sign(stamp.encode() + b"." + BODY)).decode()
    headers2 = {
        **headers,
        "x-truecount-sender": "feed",
        "x-truecount-signature": f"ed25519={signed}",
    }
    assert verify_generic(senders, headers2, BODY, NOW, 300)[0] == "feed"
    with pytest.raises(Refusal, match="Ed25519"):
        verify_generic(senders, headers2, BODY + b"x", NOW, 300)
    with pytest.raises(Refusal) as caught:
        verify_generic(senders, headers, BODY, NOW + 301, 300)
    assert caught.value.code == "stale"
    with pytest.raises(Refusal) as caught:
        verify_generic(senders, {**headers, "x-truecount-sender": "nobody"}, BODY, NOW, 300)
    assert caught.value.code == "unknown_sender"
    with pytest.raises(Refusal, match="signs with hmac-sha256"):
        verify_generic(
            senders, {**headers, "x-truecount-signature": f"ed25519={signed}"}, BODY, NOW, 300
        )


def test_a_signature_is_accepted_once_within_the_window() -> None:
    guard = ReplayGuard(300)
    guard.admit(b"sig-1", NOW)
    guard.admit(b"sig-2", NOW)
    with pytest.raises(Refusal) as caught:
        guard.admit(b"sig-1", NOW + 60)
    assert caught.value.status == 409


def test_the_replay_guard_forgets_only_what_is_older_than_twice_the_window() -> None:
    guard = ReplayGuard(10)
    times = [NOW + i * 0.1 for i in range(1000)]
    for i, t in enumerate(times):
        guard.admit(f"sig-{i}".encode(), t)
    kept = [i for i, t in enumerate(times) if t >= times[-1] - 20]
    assert guard.remembered == len(kept) < 1000
    with pytest.raises(Refusal) as caught:  # still remembered: a replay
        guard.admit(f"sig-{kept[0]}".encode(), times[-1])
    assert caught.value.code == "replay"
    guard.admit(f"sig-{kept[0] - 1}".encode(), times[-1])  # forgotten: stale by now


def test_secrets_file_and_environment(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "meter.yaml"
    path.write_text(
        f"zendesk: {{secret: zd}}\nsenders:\n  feed: {{ed25519: '{public_base64(key.public_key())}'}}\n"
        "readers: {buyer: buyer-token-0123456789}\n"
    )
    path.chmod(0o600)
    env = {"TRUECOUNT_INTERCOM_SECRET": "ic", "TRUECOUNT_METER_READERS": "vendor=v" * 1 + "x" * 20}
    secrets = load_secrets(path, env)
    assert secrets.zendesk == b"zd" and secrets.intercom == b"ic"
    assert set(secrets.readers) == {"buyer", "vendor"}
    assert "zd" not in repr(secrets) and "buyer-token" not in secrets.describe()
    path.chmod(0o644)
    with pytest.raises(SecretsError, match="readable by others"):
        load_secrets(path, {})
    path.chmod(0o600)
    path.write_text("zendesk: {secret: zd}\nwebhooks: 1\n")
    with pytest.raises(SecretsError, match="unknown key 'webhooks'"):
        load_secrets(path, {})
