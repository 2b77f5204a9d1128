"""Integrity under faults: a workspace of another format or a damaged store, a key written on
a full disk or into an unwritable folder, and Ctrl-C in the middle of an ingest.

Each names what went wrong in one line (exit 2, or 130 for Ctrl-C) and leaves nothing half
done behind: no 0-byte key, no part of a file in the store.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from truecount.cli import main
from truecount.errors import WorkspaceError
from truecount.evidence import generate_key, load_private_key, load_public_key
from truecount.evidence import sign as sign_module
from truecount.evidence.sign import KeyFileError
from truecount.ingest import load as load_module
from truecount.ingest.load import ProgressUpdate, ingest_files
from truecount.workspace import Workspace

EVENTS = "event_id,entity_id,ts,type,actor\n"


@contextlib.contextmanager
def _in(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def cli(folder: Path, *args: str | Path) -> tuple[int, str]:
    """Run ``truecount ARGS`` in this process: the exit code and stdout + stderr."""
    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["truecount", *map(str, args)]
    code = 0
    try:
        with _in(folder), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return code, out.getvalue() + err.getvalue()


# ----------------------------------------------------------------- workspace format and store
def test_a_truncated_store_is_named_not_a_traceback(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    (tmp_path / "a.csv").write_text(
        EVENTS + "".join(f"e{i},T{i},2026-01-01T00:00:00,created,customer\n" for i in range(3000))
    )
    ingest_files(ws, [tmp_path / "a.csv"])
    data = ws.store_path.read_bytes()
    ws.store_path.write_bytes(data[: len(data) // 3])
    with pytest.raises(WorkspaceError, match="truncated"):
        Workspace.open(ws.root).connect()
    code, said = cli(tmp_path, "quarantine", "-w", "ws")
    assert code == 2 and "Traceback" not in said
    assert "restore it" in said


def test_a_store_from_another_truecount_version(tmp_path: Path) -> None:
    """A store whose events table lacks a column this version reads is refused on open."""
    ws = Workspace.init(tmp_path / "ws")
    with duckdb.connect(str(ws.store_path)) as con:
        con.execute("ALTER TABLE events DROP COLUMN attrs")
    with pytest.raises(WorkspaceError, match="another truecount version"):
        ws.connect()
    code, said = cli(tmp_path, "quarantine", "-w", "ws")
    assert code == 2 and "lacks attrs" in said


def test_init_refuses_a_workspace_of_another_format(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "truecount.yaml").write_text("truecount_workspace: 7\n")
    code, said = cli(tmp_path, "init", "ws")
    assert code == 2 and "format 7" in said
    assert not (tmp_path / "ws" / "truecount.duckdb").exists()


def test_the_current_format_opens(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    assert Workspace.open(ws.root).config()["truecount_workspace"] == 1
    with ws.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events").fetchall() == [(0,)]


# ----------------------------------------------------------------- keygen
def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_keygen_on_a_full_disk_leaves_no_key_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sign_module.os, "fsync", full)
    with pytest.raises(KeyFileError, match="No space left"):
        generate_key(tmp_path / "signer.key")
    assert _listing(tmp_path) == []
    code, said = cli(tmp_path, "keygen", "--out", "signer.key")
    assert code == 2 and "No space left on device" in said and "Traceback" not in said
    assert _listing(tmp_path) == []


def test_keygen_into_an_unwritable_folder_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(sign_module.tempfile, "mkstemp", refused)
    code, said = cli(tmp_path, "keygen", "--out", "signer.key")
    assert code == 2 and "Permission denied" in said
    assert _listing(tmp_path) == []
    code, said = cli(tmp_path, "keygen", "--out", "no/such/folder/signer.key")
    assert code == 2 and "folder for the key does not exist" in said


def test_keygen_failing_at_the_public_key_removes_the_private_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.link

    def link(src: str | Path, dst: str | Path) -> None:
        if str(dst).endswith(".pub"):
            raise OSError(errno.EIO, "Input/output error")
        real(src, dst)

    monkeypatch.setattr(sign_module.os, "link", link)
    with pytest.raises(KeyFileError, match="Input/output error"):
        generate_key(tmp_path / "signer.key")
    assert _listing(tmp_path) == []


def test_keygen_writes_whole_keys_and_never_overwrites(tmp_path: Path) -> None:
    keys = generate_key(tmp_path / "signer.key")
    assert _listing(tmp_path) == ["signer.key", "signer.key.pub"]
    assert (tmp_path / "signer.key").stat().st_mode & 0o777 == 0o600
    load_private_key(keys.private)
    load_public_key(keys.public)
    before = keys.private.read_bytes()
    with pytest.raises(KeyFileError, match="exists"):
        generate_key(tmp_path / "signer.key")
    assert keys.private.read_bytes() == before
    assert _listing(tmp_path) == ["signer.key", "signer.key.pub"]


# ----------------------------------------------------------------- Ctrl-C
def _two_files(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(EVENTS + "a1,T1,2026-01-01T00:00:00,created,customer\n")
    b.write_text(
        EVENTS
        + "b1,T2,2026-01-01T00:00:00,created,customer\n"
        + "b2,T3,not a time,created,customer\n"  # quarantined, inside the same transaction
    )
    return a, b


def _stored(ws: Workspace) -> tuple[list[str], int, int]:
    with ws.connect(read_only=True) as con:
        ids = [str(r[0]) for r in con.execute("SELECT event_id FROM events ORDER BY 1").fetchall()]
        quarantined = con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0]
        logged = con.execute("SELECT count(*) FROM ingest_log").fetchall()[0][0]
    return ids, int(quarantined), int(logged)


@pytest.mark.parametrize("step", ["reading and checking", "quarantining", "loading"])
def test_ctrl_c_mid_ingest_keeps_all_or_none_of_a_file(tmp_path: Path, step: str) -> None:
    ws = Workspace.init(tmp_path / "ws")
    a, b = _two_files(tmp_path)

    def progress(update: ProgressUpdate) -> None:
        if update.file.endswith("b.csv") and update.step == step:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest_files(ws, [a, b], progress=progress)
    assert _stored(ws) == (["a1"], 0, 1)  # a.csv whole, nothing of b.csv
    ingest_files(ws, [b])
    assert _stored(ws) == (["a1", "b1"], 1, 2)


def test_ctrl_c_exits_130_with_one_line_and_the_store_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace.init(tmp_path / "ws")
    a, b = _two_files(tmp_path)
    real = load_module._insert_new
    calls = {"n": 0}

    def interrupted(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(load_module, "_insert_new", interrupted)
    code, said = cli(tmp_path, "ingest", a, b, "-w", "ws")
    assert code == 130
    assert "interrupted" in said and "Traceback" not in said
    assert _stored(ws) == (["a1"], 0, 1)


def test_a_store_another_process_holds_is_called_busy_not_another_version(
    tmp_path: Path,
) -> None:
    """DuckDB's lock message names the holder's program path, which here may hold the word
    'version' (``~/.pyenv/versions/...``): the store is busy, and re-ingesting, the advice
    for a store of another version, would be wrong."""
    ws = Workspace.init(tmp_path / "ws")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "sys.stdin.read()",
            str(ws.store_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(WorkspaceError) as info:
            ws.connect()
        said = str(info.value)
        assert "in use by another process" in said and "another DuckDB version" not in said
        assert "wait for the other truecount command" in said
    finally:
        holder.communicate("")
    # the holder's path as DuckDB names it, with the word in it whatever this machine's is
    held = duckdb.IOException(
        'IO Error: Could not set lock on file "truecount.duckdb": Conflicting lock is held in '
        "/root/.pyenv/versions/3.11.7/bin/python3.11 (PID 4242)"
    )
    assert "in use by another process" in ws._store_problem(held).message


def test_the_public_key_given_as_the_signing_key_is_named_so(tmp_path: Path) -> None:
    """It used to be refused for its mode (a public key is readable on purpose), then, after
    the chmod it asked for, as not a private key."""
    keys = generate_key(tmp_path / "signer.key")
    with pytest.raises(KeyFileError) as info:
        load_private_key(keys.public)
    said = str(info.value)
    assert "this is a public key" in said and str(keys.private) in said
    assert "chmod" not in said
