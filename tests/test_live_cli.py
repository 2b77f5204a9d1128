"""``truecount log verify`` against a running meter, and ``meter serve``'s input errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from typer.testing import CliRunner

from test_live_crash import TOKEN, _port, _post, _start
from truecount.cli.app import _load_verbs, app
from truecount.workspace import Workspace

_load_verbs()
runner = CliRunner()


def _save_head(port: int, path: Path) -> dict[str, object]:
    import httpx

    head = httpx.get(
        f"http://127.0.0.1:{port}/log/head", headers={"authorization": f"Bearer {TOKEN}"}
    ).json()
    path.write_text(json.dumps(head))
    return dict(head)


def test_log_verify_against_a_live_meter(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws").root
    port = _port()
    proc = _start(ws, port)
    try:
        assert _post(port, ["a1", "a2", "a3"]).status_code == 200
        old = _save_head(port, tmp_path / "old.json")
        assert _post(port, ["b1", "b2"]).status_code == 200
        new = _save_head(port, tmp_path / "new.json")
        assert (old["tree_size"], new["tree_size"]) == (3, 5)
        url = f"http://127.0.0.1:{port}"
        pub = str(ws / "live" / "meter.key.pub")
        args = ["log", "verify", str(tmp_path / "old.json"), str(tmp_path / "new.json")]
        ok = runner.invoke(
            app, [*args, "--meter", url, "--token", TOKEN, "--pubkey", pub, "-e", "a2", "-e", "b2"]
        )
        assert ok.exit_code == 0, ok.output
        assert ok.output.count("ok ") == 5
        # a rewritten history: the new head's root is not the log's
        forged = dict(new, root_hash=base64.b64encode(b"\x07" * 32).decode())
        (tmp_path / "forged.json").write_text(json.dumps(forged))
        bad = runner.invoke(
            app,
            [*args[:3], str(tmp_path / "forged.json"), "--meter", url, "--token", TOKEN,
             "--pubkey", pub],
        )  # fmt: skip
        assert bad.exit_code == 1, bad.output
        assert "FAILED" in bad.output
        no_token = runner.invoke(app, [*args, "--meter", url])
        assert no_token.exit_code == 2 and "401" in no_token.output
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_log_verify_an_event_missing_from_the_head_is_a_failed_check(tmp_path: Path) -> None:
    """docs/meter.md: exit 1 when a check failed. An event the log does not hold, or holds
    only after the newer head, is a FAILED line; the other events are still checked."""
    ws = Workspace.init(tmp_path / "ws").root
    port = _port()
    proc = _start(ws, port)
    try:
        assert _post(port, ["a1", "a2"]).status_code == 200
        _save_head(port, tmp_path / "old.json")
        assert _post(port, ["b1"]).status_code == 200
        _save_head(port, tmp_path / "new.json")
        url = f"http://127.0.0.1:{port}"
        pub = str(ws / "live" / "meter.key.pub")
        args = ["log", "verify", str(tmp_path / "old.json"), str(tmp_path / "new.json")]
        opts = ["--meter", url, "--token", TOKEN, "--pubkey", pub]
        missing = runner.invoke(app, [*args, *opts, "-e", "nope", "-e", "a2"])
        assert missing.exit_code == 1, missing.output
        assert "FAILED  event nope is not in new.json: the meter answered 404" in missing.output
        assert "ok      event a2 is leaf 1 of new.json" in missing.output
        # b1 is in the log, but appended after old.json
        later = [*args[:2], str(tmp_path / "old.json"), str(tmp_path / "old.json")]
        after = runner.invoke(app, [*later, *opts, "-e", "b1"])
        assert after.exit_code == 1, after.output
        assert "FAILED  event b1 is not in old.json" in after.output
        empty = runner.invoke(app, [*args, *opts, "-e", ""])
        assert empty.exit_code == 2 and "--event-id is empty" in empty.output
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_log_verify_bad_head_file(tmp_path: Path) -> None:
    (tmp_path / "old.json").write_text("{}")
    (tmp_path / "new.json").write_text("{}")
    result = runner.invoke(
        app, ["log", "verify", str(tmp_path / "old.json"), str(tmp_path / "new.json")]
    )
    assert result.exit_code == 2
    assert "old.json" in result.output and "log" in result.output
    assert "Traceback" not in result.output


def test_meter_serve_needs_a_sender(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws").root
    result = runner.invoke(
        app, ["meter", "serve", "-w", str(ws)], env={"TRUECOUNT_METER_SENDERS": ""}
    )
    assert result.exit_code == 2
    assert "no sender is configured" in result.output


def test_meter_serve_refuses_a_bad_load_interval(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws").root
    for value in ("0", "-1", "7200", "nan"):
        result = runner.invoke(
            app,
            ["meter", "serve", "-w", str(ws), "--load-every", value],
            env={"TRUECOUNT_METER_SENDERS": "etl=hmac-sha256:secret-0123456789"},
        )
        assert result.exit_code == 2, (value, result.output)
        assert "--load-every must be above 0 and at most 3600 seconds" in result.output
        assert "Traceback" not in result.output
