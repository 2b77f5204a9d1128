"""Evidence packs end to end: a demo-like workspace, an auditor with only the pack, the public
key and the export, the tamper cases, chains, proofs and determinism.

The roots are recomputed here from the generator's own tables with hashlib, following
docs/evidence.md (leaf encoding, order, RFC 6962 tree), not by calling the pack's code.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import importlib.util
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from truecount.cli.demo_cmds import package_text
from truecount.demo.generate import SupportData, SupportScenario, generate
from truecount.errors import TruecountError
from truecount.evidence import (
    Pack,
    Verification,
    build_pack,
    generate_key,
    load_private_key,
    load_public_key,
    make_proof,
    verify_pack,
    verify_proof,
)
from truecount.evidence.sign import KeyFiles, sign_envelope
from truecount.ingest.load import ingest_files
from truecount.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------- an independent reference
def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 MTH over leaf *hashes* (recursive, as the RFC defines it)."""
    n = len(hashes)
    if n == 0:
        return H(b"")
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return H(b"\x01" + mth(hashes[:k]) + mth(hashes[k:]))


def net(text: str | None) -> bytes:
    if text is None:
        return b"~"
    raw = text.encode("utf-8")
    return str(len(raw)).encode() + b":" + raw


def event_texts(row: dict[str, Any]) -> list[str | None]:
    """The documented text of each leaf field, from the generator's typed row."""
    value = row["value"]
    return [
        row["event_id"],
        row["entity_id"],
        row["ts"].strftime("%Y-%m-%dT%H:%M:%S.%f"),
        row["type"],
        row["actor"],
        None if value is None else format(value, ".17g"),
        row["attrs"],
        None if row["seq"] is None else str(row["seq"]),
    ]


def csv_root(path: Path) -> tuple[str, int]:
    """The one-leaf-per-row tree of packs of formats 1 to 3 (netstrings of the cells)."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))[1:]
    leaves = [H(b"\x00" + b"".join(net(c) for c in row)) for row in rows]
    return mth(leaves).hex(), len(leaves)


#: A CSV row as bytes: unquoted text or quoted runs (a doubled quote is two runs), then a
#: line feed; written from RFC 4180, independently of the package's row finder.
CSV_ROW = re.compile(rb'(?:[^"\n]|"[^"]*")*\n')


def csv_block_root(path: Path) -> tuple[str, int, int]:
    """The root, leaf count and data rows of pack format 4's CSV tree: the file's own bytes,
    64 data rows per leaf, the header row left out."""
    data = path.read_bytes()
    rows = [m.group(0) for m in CSV_ROW.finditer(data)]
    assert b"".join(rows) == data  # every byte in exactly one row
    body = rows[1:]
    leaves = [H(b"\x00" + b"".join(body[i : i + 64])) for i in range(0, len(body), 64)]
    return mth(leaves).hex(), len(leaves), len(body)


def event_record(row: dict[str, Any]) -> bytes:
    """Pack format 4's binary record of one event, from the generator's typed row."""
    ts_us = (row["ts"] - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    texts = [row[k] for k in ("event_id", "entity_id", "type", "actor", "attrs")]
    fields = [
        row[k] for k in ("event_id", "entity_id", "ts", "type", "actor", "value", "attrs", "seq")
    ]
    flags = sum(1 << i for i, x in enumerate(fields) if x is None)
    value = row["value"]
    bits = 0 if value is None else struct.unpack(">Q", struct.pack(">d", value))[0]
    if value is not None and math.isnan(value):
        bits = 0x7FF8000000000000
    raw = [(t or "").encode() for t in texts]
    return struct.pack(">BqQq5I", flags, ts_us, bits, row["seq"] or 0, *map(len, raw)) + b"".join(
        raw
    )


def event_tree_v4(rows: list[dict[str, Any]]) -> tuple[str, int, int]:
    """Root, leaves and entities of pack format 4's event tree, as documented: events sorted
    by entity, ts, seq, event_id, type, actor, attrs, value (nulls last); 64 entities a leaf."""
    big = (1, "")  # sorts after every present value: nulls last

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        def k(x: Any) -> tuple[Any, ...]:
            return big if x is None else (0, x.encode() if isinstance(x, str) else x)

        v = r["value"]
        sign = None if v is None else math.copysign(1.0, v) < 0
        return (
            r["entity_id"].encode(), r["ts"], k(r["seq"]), k(r["event_id"]), k(r["type"]),
            k(r["actor"]), k(r["attrs"]), k(sign), k(v),
        )  # fmt: skip

    per_entity: dict[bytes, list[bytes]] = {}
    for r in sorted(rows, key=key):
        per_entity.setdefault(r["entity_id"].encode(), []).append(event_record(r))
    ordered = [b"".join(per_entity[k]) for k in sorted(per_entity)]
    leaves = [H(b"\x00" + b"".join(ordered[i : i + 64])) for i in range(0, len(ordered), 64)]
    return mth(leaves).hex(), len(leaves), len(ordered)


# ----------------------------------------------------------------- the scene
@dataclass
class Scene:
    root: Path
    data: SupportData
    vendor: Path  # events.parquet, events.csv, invoice.csv, resolved_ticket.yaml, terms.yaml
    keys: KeyFiles
    workspace: Workspace
    pack: Pack

    @property
    def events(self) -> Path:
        return self.vendor / "events.parquet"

    @property
    def invoice(self) -> Path:
        return self.vendor / "invoice.csv"

    @property
    def definition(self) -> Path:
        return self.vendor / "resolved_ticket.yaml"

    @property
    def terms(self) -> Path:
        return self.vendor / "terms.yaml"


def write_vendor(folder: Path, events: pa.Table, invoice: pa.Table) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(events, folder / "events.parquet")
    pacsv.write_csv(events, folder / "events.csv")
    pacsv.write_csv(invoice, folder / "invoice.csv")
    (folder / "resolved_ticket.yaml").write_text(package_text("resolved_ticket.yaml"))
    (folder / "terms.yaml").write_text(package_text("terms.yaml"))


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    root = tmp_path_factory.mktemp("evidence")
    data = generate(SupportScenario(tickets=500, seed=11))
    vendor = root / "vendor"
    write_vendor(vendor, data.events, data.invoice)
    keys = generate_key(root / "signer.key")
    ws = Workspace.init(root / "workspace")
    ingest_files(ws, [vendor / "events.parquet"])
    pack = build_pack(
        vendor / "resolved_ticket.yaml",
        [vendor / "invoice.csv"],
        keys.private,
        root / "pack",
        events=ws,
        terms=vendor / "terms.yaml",
    )
    return Scene(root, data, vendor, keys, ws, pack)


def verify(scene: Scene, pack: Path, events: Any = None, **kw: Any) -> Verification:
    key = kw.pop("key", None) or load_public_key(scene.keys.public)
    return verify_pack(pack, key, events if events is not None else [scene.events], **kw)


def failed(v: Verification) -> set[str]:
    return {c.name for c in v.failed}


def copy_pack(scene: Scene, tmp_path: Path) -> Path:
    target = tmp_path / "pack"
    shutil.copytree(scene.pack.folder, target)
    return target


def tc(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> Any:
    full = {**os.environ, **(env or {})}
    full["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + full.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "truecount", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full,
    )


# ----------------------------------------------------------------- the pack's contents
def test_layout_and_statement(scene: Scene) -> None:
    folder = scene.pack.folder
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert names == [
        "definition.canonical.json", "definition.yaml", "entities.csv", "envelope.dsse.json",
        "invoice/invoice.csv", "query.sql", "reconciliation.json", "statement.json",
        "terms.yaml", "verdicts.csv",
    ]  # fmt: skip
    raw = (folder / "statement.json").read_bytes()
    statement = json.loads(raw)
    # canonical JSON: for ASCII keys and no floats, sorted keys and no whitespace
    assert (
        raw
        == json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert set(subjects) == set(names) - {"statement.json", "envelope.dsse.json"}
    for name, digest in subjects.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    pred = statement["predicate"]
    assert (
        pred["definition"]["source_sha256"]
        == hashlib.sha256(scene.definition.read_bytes()).hexdigest()
    )
    assert (
        pred["definition"]["sha256"]
        == hashlib.sha256((folder / "definition.canonical.json").read_bytes()).hexdigest()
    )
    files = {(f["role"], f["name"]): f["sha256"] for f in pred["files"]}
    assert files == {
        ("events", "events.parquet"): hashlib.sha256(scene.events.read_bytes()).hexdigest(),
        ("invoice", "invoice.csv"): hashlib.sha256(scene.invoice.read_bytes()).hexdigest(),
    }
    assert pred["previous"] is None
    envelope = json.loads((folder / "envelope.dsse.json").read_bytes())
    import base64

    assert base64.b64decode(envelope["payload"]) == raw
    assert scene.pack.digest == hashlib.sha256(raw).hexdigest()


def covered_events(scene: Scene, pred: dict[str, Any]) -> list[dict[str, Any]]:
    """The covered events, from the generator's tables and docs/evidence.md's rules."""
    data = scene.data
    as_of = pc.max(data.events.column("ts")).as_py()
    assert pred["as_of"] == as_of.isoformat()
    invoice = data.invoice.to_pylist()
    billed_periods = sorted({r["period"] for r in invoice})
    truth = data.truth.to_pylist()
    counted_periods = {r["anchor_period"] for r in truth if r["buyer_counts"]}
    span = [p for p in counted_periods if billed_periods[0] <= p <= billed_periods[-1]]
    covered = sorted(set(billed_periods) | set(span))
    assert pred["period"]["covered"] == covered
    entities = {r["entity_id"] for r in invoice} | {
        r["entity_id"]
        for r in truth
        if r["first_ai_close_ts"] is not None and r["anchor_period"] in covered
    }
    return [r for r in data.events.to_pylist() if r["entity_id"] in entities and r["ts"] <= as_of]


def event_tree_v1(rows: list[dict[str, Any]]) -> tuple[str, int]:
    """The root and size of the one-leaf-per-event tree of packs of formats 1 and 2."""
    leaves = []
    for r in rows:
        h = H(b"\x00" + b"".join(net(t) for t in event_texts(r)))
        seq = r["seq"] if r["seq"] is not None else 2**63
        leaves.append(((r["entity_id"].encode(), r["ts"], seq, r["event_id"].encode(), h), h))
    leaves.sort(key=lambda x: x[0])
    return mth([h for _, h in leaves]).hex(), len(leaves)


def event_tree_v3(rows: list[dict[str, Any]]) -> tuple[str, int]:
    """The root and size of the one-leaf-per-entity tree of pack format 3, as documented:
    each event's data, sorted as bytes, concatenated; the leaves sorted by entity id bytes."""
    per_entity: dict[bytes, list[bytes]] = {}
    for r in rows:
        data = b"".join(net(t) for t in event_texts(r))
        per_entity.setdefault(r["entity_id"].encode(), []).append(data)
    leaves = [H(b"\x00" + b"".join(sorted(per_entity[k]))) for k in sorted(per_entity)]
    return mth(leaves).hex(), len(leaves)


def test_event_root_recomputed_from_the_generator(scene: Scene) -> None:
    """Covered periods, covered entities, their events, the order, the leaves and the tree."""
    pred = json.loads((scene.pack.folder / "statement.json").read_bytes())["predicate"]
    rows = covered_events(scene, pred)
    assert pred["events"]["leaf_format"] == "truecount.event-block.v1"
    assert pred["events"]["leaf_entities"] == 64
    root, size, entities = event_tree_v4(rows)
    assert (pred["events"]["merkle_root"], pred["events"]["tree_size"]) == (root, size)
    assert pred["events"]["entities"] == entities == len({r["entity_id"] for r in rows})
    assert pred["events"]["count"] == len(rows)
    assert size == -(-entities // 64)  # a leaf per 64 entities


def test_result_roots_recomputed_from_the_csv_files(scene: Scene) -> None:
    folder = scene.pack.folder
    pred = json.loads((folder / "statement.json").read_bytes())["predicate"]
    for tree in ("verdicts", "entities"):
        assert pred[tree]["leaf_format"] == "truecount.csv-block.v1"
        root, size, rows = csv_block_root(folder / pred[tree]["file"])
        assert (pred[tree]["merkle_root"], pred[tree]["tree_size"]) == (root, size)
        assert pred[tree]["rows"] == rows and size == -(-rows // 64)
    with (folder / "entities.csv").open(newline="") as fh:
        ids = [r["entity_id"] for r in csv.DictReader(fh)]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    billed = {r["entity_id"] for r in scene.data.invoice.to_pylist()}
    assert billed <= set(ids)
    recon = json.loads((folder / "reconciliation.json").read_bytes())
    truth = scene.data.summary()
    assert recon["totals"]["vendor_billed"] == truth["billed"]
    assert pred["results"]["totals"]["vendor_billed"] == truth["billed"]


def _line_ids_hold(scene: Scene, tmp_path: Path, rows: list[dict[str, str]], name: str) -> int:
    """Write ``rows`` as the invoice CSV ``name`` (under ``tmp_path``), pack it, and check each
    entity's ``lines`` and ``line_ids`` in entities.csv against ids worked out here: a row's
    own ``line_id``, or ``<file name>#<data row from 1>`` when the file has no such column,
    sorted as UTF-8 bytes and joined by ';'; then verify the pack. Returns how many entities
    are billed more than once."""
    invoice = tmp_path / name
    invoice.parent.mkdir(parents=True, exist_ok=True)
    with invoice.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    pack = build_pack(
        scene.definition,
        [invoice],
        scene.keys.private,
        tmp_path / "pack",
        events=scene.workspace,
        terms=scene.terms,
    )
    expected: dict[str, list[str]] = {}
    for n, r in enumerate(rows, start=1):
        expected.setdefault(r["entity_id"], []).append(r.get("line_id", f"{invoice.name}#{n}"))
    with (pack.folder / "entities.csv").open(newline="", encoding="utf-8") as fh:
        got = {r["entity_id"]: (r["lines"], r["line_ids"]) for r in csv.DictReader(fh)}
    for entity, ids in expected.items():
        ordered = sorted(ids, key=lambda x: x.encode("utf-8"))
        assert got[entity] == (str(len(ids)), ";".join(ordered)), entity
    v = verify_pack(pack.folder, load_public_key(scene.keys.public), scene.workspace, [invoice])
    assert v.ok, [(c.name, c.detail) for c in v.failed]
    return sum(len(v) > 1 for v in expected.values())


def test_line_ids_of_entities_billed_more_than_once(scene: Scene, tmp_path: Path) -> None:
    """entities.csv's ``lines`` and ``line_ids`` against the invoice read here with the csv
    module: an entity billed on several lines lists its ids sorted as UTF-8 bytes and joined
    by ';' (ids chosen so that byte order differs from the order of the file and from a
    numeric order), one billed once shows its single id; and the pack verifies."""
    with scene.invoice.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    extra = {0: ["L9", "L10", "Lé"], 1: ["L000000002b"], 5: ["A-first"]}
    for index, ids in extra.items():
        for line_id in ids:
            rows.append({**rows[index], "line_id": line_id})
    assert _line_ids_hold(scene, tmp_path, rows, "invoice.csv") == 3


def test_line_ids_by_position_name_the_file_without_its_folders(
    scene: Scene, tmp_path: Path
) -> None:
    """An invoice without a ``line_id`` column: each line is named ``file#row`` (its data
    row, counted from 1) with the folders dropped, whether the entity was billed once or
    more; the ids against the file read here with the csv module; and the pack verifies."""
    with scene.invoice.open(newline="", encoding="utf-8") as fh:
        rows = [{k: v for k, v in r.items() if k != "line_id"} for r in csv.DictReader(fh)]
    rows += [dict(rows[3]), dict(rows[7])]  # two entities billed twice
    assert _line_ids_hold(scene, tmp_path, rows, "deep/er/bills.csv") == 2


def test_a_run_tells_its_phases_in_order(
    scene: Scene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A progress display set around build_pack and verify_pack is told each phase as it
    starts, in the order the work is done; the CLI's spinner shows them on a terminal and
    is gone (the hook unset) afterwards."""
    from rich.console import Console

    from truecount.cli import evidence_cmds
    from truecount.evidence.run import PHASES

    expected = [
        "counting the events",
        "reconciling the invoice",
        "writing entities.csv",
        "writing verdicts.csv",
        "hashing the events",
    ]
    seen: list[str] = []
    token = PHASES.set(seen.append)
    try:
        pack = build_pack(
            scene.definition,
            [scene.invoice],
            scene.keys.private,
            tmp_path / "pack",
            events=scene.workspace,
            terms=scene.terms,
        )
        assert seen == expected
        seen.clear()
        v = verify_pack(pack.folder, load_public_key(scene.keys.public), scene.workspace)
        assert v.ok and seen == expected
    finally:
        PHASES.reset(token)
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=80)
    monkeypatch.setattr(evidence_cmds, "stderr_console", lambda markup=False: terminal)
    with evidence_cmds.phased("starting…"):
        hook = PHASES.get()
        assert hook is not None
        hook("hashing the events")
    assert PHASES.get() is None
    assert "hashing the events…" in screen.getvalue()


# ----------------------------------------------------------------- verifying
def test_verifies_with_the_workspace_and_with_the_export(scene: Scene) -> None:
    for events in ([scene.events], scene.workspace):
        v = verify(scene, scene.pack.folder, events)
        assert v.ok, [(c.name, c.detail) for c in v.failed]
        names = {c.name for c in v.checks if c.status == "passed"}
        assert {"signature", "pack files", "definition", "terms", "query.sql", "event root",
                "reconciliation.json", "entities.csv", "verdicts.csv", "verdict root",
                "entity root", "export files", "invoice files"} <= names  # fmt: skip


def test_fresh_checkout_with_only_pack_key_and_export(scene: Scene, tmp_path: Path) -> None:
    """The auditor's folder holds the pack, the public key and the export, nothing else."""
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    shutil.copytree(scene.pack.folder, auditor / "pack")
    shutil.copy(scene.keys.public, auditor / "signer.pub")
    shutil.copy(scene.events, auditor / "events.parquet")
    proc = tc("verify", "pack", "--pubkey", "signer.pub", "--events", "events.parquet",
              cwd=auditor, env={"TZ": "Asia/Kolkata"})  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all checks passed" in proc.stdout
    proc = tc("verify", "pack", "-k", scene.keys.base64, "-e", "events.parquet", "-f", "json",
              cwd=auditor)  # fmt: skip
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["ok"] is True
    assert all(c["status"] in ("passed", "note") for c in report["checks"])


# ----------------------------------------------------------------- tamper cases
def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_one_byte_changed_in_the_export(scene: Scene, tmp_path: Path) -> None:
    bad = tmp_path / "events.parquet"
    shutil.copy(scene.events, bad)
    flip_byte(bad, len(bad.read_bytes()) // 2)
    v = verify(scene, scene.pack.folder, [bad])
    assert "export files" in failed(v)
    assert any("events.parquet is not one of the signed files" in c.detail for c in v.failed)


def test_one_character_changed_in_a_csv_export(scene: Scene, tmp_path: Path) -> None:
    pack = build_pack(scene.definition, [scene.invoice], scene.keys.private, tmp_path / "p",
                      events=[scene.vendor / "events.csv"], terms=scene.terms)  # fmt: skip
    assert verify(scene, pack.folder, [scene.vendor / "events.csv"]).ok
    text = (scene.vendor / "events.csv").read_text()
    first = text.index("T0000003-00")  # an event id of a covered ticket
    line_end = text.index("\n", first)
    line = text[first:line_end]
    changed = line.replace('",2026-01-01 ', '",2026-01-02 ', 1)  # one digit of a ts
    assert changed != line
    bad = tmp_path / "x" / "events.csv"
    bad.parent.mkdir()
    bad.write_text(text[:first] + changed + text[line_end:])
    v = verify(scene, pack.folder, [bad])
    assert {"export files", "event root"} <= failed(v)


def test_an_event_removed_or_added(scene: Scene, tmp_path: Path) -> None:
    events = scene.data.events
    covered = pc.equal(events.column("entity_id"), "T0000004")
    drop = int(pc.indices_nonzero(covered)[0].as_py())
    removed = events.take([i for i in range(events.num_rows) if i != drop])
    (tmp_path / "removed").mkdir()
    pq.write_table(removed, tmp_path / "removed" / "events.parquet")
    v = verify(scene, scene.pack.folder, [tmp_path / "removed" / "events.parquet"])
    assert {"export files", "event root"} <= failed(v)
    extra = events.slice(drop, 1).to_pylist()[0]
    extra.update(event_id="T0000004-999", type="reopened", actor="customer", value=None)
    added = pa.concat_tables([events, pa.Table.from_pylist([extra], schema=events.schema)])
    (tmp_path / "added").mkdir()
    pq.write_table(added, tmp_path / "added" / "events.parquet")
    v = verify(scene, scene.pack.folder, [tmp_path / "added" / "events.parquet"])
    assert {"export files", "event root"} <= failed(v)
    detail = next(c.detail for c in v.checks if c.name == "event root")
    assert "the statement says" in detail


def test_definition_edited(scene: Scene, tmp_path: Path) -> None:
    pack = copy_pack(scene, tmp_path)
    path = pack / "definition.yaml"
    path.write_text(path.read_text().replace("14d", "10d"))
    v = verify(scene, pack)
    assert {"pack files", "definition"} <= failed(v)
    assert any("definition.yaml was changed" in c.detail for c in v.failed)


def test_terms_edited(scene: Scene, tmp_path: Path) -> None:
    pack = copy_pack(scene, tmp_path)
    path = pack / "terms.yaml"
    text = path.read_text()
    assert "5.00" in text
    path.write_text(text.replace("5.00", "4.00"))
    v = verify(scene, pack)
    assert {"pack files", "terms"} <= failed(v)


def test_sql_swapped(scene: Scene, tmp_path: Path) -> None:
    pack = copy_pack(scene, tmp_path)
    path = pack / "query.sql"
    path.write_text(path.read_text().replace("INTERVAL", "interval", 1))
    v = verify(scene, pack)
    assert {"pack files", "query.sql"} <= failed(v)
    assert "first difference at line" in next(c.detail for c in v.checks if c.name == "query.sql")


def test_results_edited(scene: Scene, tmp_path: Path) -> None:
    pack = copy_pack(scene, tmp_path)
    path = pack / "verdicts.csv"
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = (
        lines[3].replace("counted", "not_counted", 1) if "counted" in lines[3] else lines[3] + "x"
    )
    path.write_text("".join(lines))
    v = verify(scene, pack)
    assert {"pack files", "verdicts.csv"} <= failed(v)


def test_signature_replaced(scene: Scene, tmp_path: Path) -> None:
    pack = copy_pack(scene, tmp_path)
    forger = generate_key(tmp_path / "forger.key")
    statement = json.loads((pack / "statement.json").read_bytes())
    statement["predicate"]["results"]["totals"]["credit"] = "0.00"
    from truecount.evidence.canonical import canonical_json

    payload = canonical_json(statement)
    (pack / "statement.json").write_bytes(payload)
    envelope = sign_envelope(payload, load_private_key(forger.private))
    (pack / "envelope.dsse.json").write_bytes(canonical_json(envelope))
    v = verify(scene, pack)
    assert "signature" in failed(v)
    assert "not signed by the given public key" in v.failed[0].detail
    assert "totals" in failed(v)  # the forged claim is caught by the replay too


def test_statement_altered_without_signing(scene: Scene, tmp_path: Path) -> None:
    pack = copy_pack(scene, tmp_path)
    envelope = json.loads((pack / "envelope.dsse.json").read_bytes())
    import base64

    payload = base64.b64decode(envelope["payload"]).replace(b'"credit":"', b'"credit":"1', 1)
    envelope["payload"] = base64.b64encode(payload).decode()
    (pack / "envelope.dsse.json").write_text(json.dumps(envelope))
    v = verify(scene, pack)
    assert "signature" in failed(v)
    assert "altered" in next(c.detail for c in v.checks if c.name == "signature")


def test_public_key_replaced(scene: Scene, tmp_path: Path) -> None:
    other = generate_key(tmp_path / "other.key")
    v = verify(scene, scene.pack.folder, key=load_public_key(other.public))
    assert failed(v) == {"signature"}
    assert other.key_id[:16] in v.failed[0].detail


# ----------------------------------------------------------------- chains
@pytest.fixture(scope="module")
def chain(scene: Scene, tmp_path_factory: pytest.TempPathFactory) -> list[Pack]:
    root = tmp_path_factory.mktemp("chain")
    packs: list[Pack] = []
    for month in ("2026-01", "2026-02", "2026-03"):
        folder = root / month
        folder.mkdir()
        part = scene.data.invoice.filter(pc.equal(scene.data.invoice.column("period"), month))
        pacsv.write_csv(part, folder / "invoice.csv")
        packs.append(
            build_pack(
                scene.definition,
                [folder / "invoice.csv"],
                scene.keys.private,
                folder / "pack",
                events=[scene.events],
                terms=scene.terms,
                previous=packs[-1].folder if packs else None,
            )
        )
    return packs


def test_chain_links_each_pack_to_the_one_before(scene: Scene, chain: list[Pack]) -> None:
    a, b, c = chain
    assert a.statement["predicate"]["period"]["covered"] == ["2026-01"]
    assert (
        c.statement["predicate"]["previous"]["sha256"]
        == hashlib.sha256((b.folder / "statement.json").read_bytes()).hexdigest()
    )
    v = verify(scene, c.folder, previous=b.folder)
    assert v.ok, [(x.name, x.detail) for x in v.failed]
    assert any(x.name == "chain" and x.status == "passed" for x in v.checks)
    unchecked = verify(scene, c.folder)
    assert unchecked.ok and any(x.name == "chain" and x.status == "note" for x in unchecked.checks)


def test_a_pack_from_another_period_spliced_in(scene: Scene, chain: list[Pack]) -> None:
    a, b, c = chain
    v = verify(scene, c.folder, previous=a.folder)
    assert failed(v) == {"chain"}
    assert "not the pack this one follows" in v.failed[0].detail
    v = verify(scene, b.folder, previous=c.folder)
    assert failed(v) == {"chain"}
    assert "overlap" in v.failed[0].detail
    v = verify(scene, a.folder, previous=b.folder)
    assert failed(v) == {"chain"} and "names no previous pack" in v.failed[0].detail


def test_evidence_refuses_to_chain_overlapping_periods(
    scene: Scene, chain: list[Pack], tmp_path: Path
) -> None:
    with pytest.raises(TruecountError, match="must not overlap"):
        build_pack(scene.definition, [chain[0].folder / "invoice" / "invoice.csv"],
                   scene.keys.private, tmp_path / "p", events=[scene.events],
                   terms=scene.terms, previous=chain[2].folder)  # fmt: skip
    assert not (tmp_path / "p").exists()


# ----------------------------------------------------------------- proofs
def disputed_entity(scene: Scene) -> str:
    with (scene.pack.folder / "entities.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return next(
        r["entity_id"] for r in rows if r["cell"] == "vendor_only" and r["reason"] == "satisfied"
    )


def test_block_proof_of_a_disputed_entity(scene: Scene) -> None:
    """Pack format 4: the entity's events and rows are inside the blocks shown, complete."""
    entity = disputed_entity(scene)
    proof = make_proof(scene.pack.folder, entity, [scene.events])
    key = load_public_key(scene.keys.base64)
    v = verify_proof(json.loads(json.dumps(proof)), key)
    assert v.ok, [(c.name, c.detail) for c in v.failed]
    events = proof["trees"]["events"]
    assert events["leaf_format"] == "truecount.event-block.v1"
    shown = [e for leaf in _own(events) for e in leaf["events"] if e[1] == entity]
    expected = [event_texts(r) for r in scene.data.events.to_pylist() if r["entity_id"] == entity]
    assert sorted(shown, key=str) == sorted(expected, key=str) and len(expected) > 1
    assert [e[2] for e in shown] == sorted(e[2] for e in shown)  # in time order
    cols = proof["trees"]["entities"]["columns"]
    rows = [
        dict(zip(cols, r, strict=True))
        for leaf in _own(proof["trees"]["entities"])
        for r in csv.reader(io.StringIO(leaf["text"], newline=""))
    ]
    mine = [r for r in rows if r["entity_id"] == entity]
    assert len(mine) == 1 and mine[0]["cell"] == "vendor_only"
    forged = json.loads(json.dumps(proof))
    leaf = _own(forged["trees"]["entities"])[0]
    line = next(x for x in leaf["text"].splitlines(keepends=True) if x.startswith(entity + ","))
    leaf["text"] = leaf["text"].replace(line, line.replace(",vendor_only,", ",agreed,"))
    assert failed(verify_proof(forged, key)) == {"entities"}


def test_proof_of_a_disputed_entity(scene: Scene, pack3: Path, tmp_path: Path) -> None:
    entity = disputed_entity(scene)
    proof = make_proof(pack3, entity, [scene.events])
    key = load_public_key(scene.keys.base64)
    v = verify_proof(json.loads(json.dumps(proof)), key)
    assert v.ok, [(c.name, c.detail) for c in v.failed]
    assert {c.name for c in v.checks if c.status == "passed"} == {
        "signature",
        "entities",
        "verdicts",
        "events",
    }
    own = [leaf for leaf in proof["trees"]["events"]["leaves"] if not leaf["neighbour"]]
    expected = [event_texts(r) for r in scene.data.events.to_pylist() if r["entity_id"] == entity]
    expected.sort(key=lambda f: b"".join(net(t) for t in f))
    assert len(own) == 1 and own[0]["events"] == expected
    row = next(leaf for leaf in proof["trees"]["entities"]["leaves"] if not leaf["neighbour"])
    cols = proof["trees"]["entities"]["columns"]
    assert dict(zip(cols, row["cells"], strict=True))["cell"] == "vendor_only"

    # tampering with the proof
    forged = json.loads(json.dumps(proof))
    cell = next(leaf for leaf in forged["trees"]["entities"]["leaves"] if not leaf["neighbour"])
    cell["cells"][cols.index("cell")] = "agreed"
    assert "entities" in failed(verify_proof(forged, key))
    partial = json.loads(json.dumps(proof))
    last = max(leaf["index"] for leaf in _own(partial["trees"]["verdicts"]))
    partial["trees"]["verdicts"]["leaves"] = [
        leaf for leaf in partial["trees"]["verdicts"]["leaves"] if leaf["index"] <= last
    ]
    v = verify_proof(partial, key)
    assert "verdicts" in failed(v) and "partial" in next(c.detail for c in v.failed)
    # an event taken out of the entity's leaf: the leaf is no longer the signed one
    dropped = json.loads(json.dumps(proof))
    _own(dropped["trees"]["events"])[0]["events"].pop()
    v = verify_proof(dropped, key)
    assert failed(v) == {"events"} and "not in the signed tree" in _detail(v, "events")
    assert failed(
        verify_proof(proof, load_public_key(generate_key(tmp_path / "o.key").public))
    ) == {"signature"}


def test_proof_without_data_and_the_cli(scene: Scene, tmp_path: Path) -> None:
    entity = disputed_entity(scene)
    proc = tc("prove", scene.pack.folder, entity, "-o", "proof.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "not its events" in proc.stderr
    proc = tc("verify", "proof.json", "--pubkey", scene.keys.public, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no rows" not in proc.stdout
    with pytest.raises(TruecountError, match="not in the pack"):
        make_proof(scene.pack.folder, "NO-SUCH-TICKET")
    proc = tc("prove", scene.pack.folder, entity, "-o", "no/such/proof.json", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "the folder no/such does not exist" in proc.stderr  # said before the work


def test_prove_never_overwrites_a_file_without_force(scene: Scene, tmp_path: Path) -> None:
    """As sample and new: an existing --out file is refused, named, with the way on."""
    entity = disputed_entity(scene)
    (tmp_path / "query.sql").write_text("-- kept\n", encoding="utf-8")
    proc = tc("prove", scene.pack.folder, entity, "-o", "query.sql", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "query.sql already exists" in proc.stderr and "--force" in proc.stderr
    assert (tmp_path / "query.sql").read_text(encoding="utf-8") == "-- kept\n"
    proc = tc("prove", scene.pack.folder, entity, "-o", "query.sql", "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "query.sql").read_text(encoding="utf-8"))["entity_id"] == entity


def test_cli_keygen_evidence_verify_exit_codes(scene: Scene, tmp_path: Path) -> None:
    proc = tc("keygen", "--out", "k", cwd=tmp_path)
    assert proc.returncode == 0
    assert load_public_key(tmp_path / "k.pub") == load_public_key(
        proc.stdout.split("base64:")[1].split()[0]
    )
    assert tc("keygen", "--out", "k", cwd=tmp_path).returncode == 2
    proc = tc("evidence", scene.definition, "-i", scene.invoice, "--key", "k", "-o", "pack",
              "-e", scene.events, "-t", scene.terms, "-f", "json", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 1  # the demo's vendor bills beyond the tolerance
    info = json.loads(proc.stdout)
    assert info["totals"]["beyond_tolerance"] is True
    assert tc("evidence", scene.definition, "-i", scene.invoice, "--key", "k", "-o", "pack",
              "-e", scene.events, cwd=tmp_path).returncode == 2  # never overwritten  # fmt: skip
    assert tc("verify", "pack", "-k", "k.pub", "-e", scene.events, cwd=tmp_path).returncode == 0
    assert (
        tc("verify", "pack", "-k", scene.keys.public, "-e", scene.events, cwd=tmp_path).returncode
        == 1
    )


# ----------------------------------------------------------------- determinism
def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_same_bytes_with_one_or_two_threads(scene: Scene, tmp_path: Path) -> None:
    packs = [
        build_pack(
            scene.definition,
            [scene.invoice],
            scene.keys.private,
            tmp_path / f"t{n}",
            events=[scene.events],
            terms=scene.terms,
            threads=n,
        )
        for n in (1, 2)
    ]
    assert tree_bytes(packs[0].folder) == tree_bytes(packs[1].folder)


def test_same_results_with_shuffled_rows(scene: Scene, tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    events = scene.data.events.take(rng.permutation(scene.data.events.num_rows))
    invoice = scene.data.invoice.take(rng.permutation(scene.data.invoice.num_rows))
    shuffled = tmp_path / "shuffled"
    write_vendor(shuffled, events, invoice)
    assert (shuffled / "events.parquet").read_bytes() != scene.events.read_bytes()
    a = build_pack(scene.definition, [scene.invoice], scene.keys.private, tmp_path / "a",
                   events=[scene.events], terms=scene.terms)  # fmt: skip
    b = build_pack(scene.definition, [shuffled / "invoice.csv"], scene.keys.private,
                   tmp_path / "b", events=[shuffled / "events.parquet"], terms=scene.terms)  # fmt: skip
    ta, tb = tree_bytes(a.folder), tree_bytes(b.folder)
    different = {n for n in ta if ta[n] != tb[n]}
    # only the raw invoice copy and the attestation (which names the raw files' digests) differ
    assert different == {"invoice/invoice.csv", "statement.json", "envelope.dsse.json"}
    pa_, pb = a.statement["predicate"], b.statement["predicate"]
    assert {k: v for k, v in pa_.items() if k != "files"} == {
        k: v for k, v in pb.items() if k != "files"
    }


def test_same_bytes_in_another_folder_and_time_zone(scene: Scene, tmp_path: Path) -> None:
    here = build_pack(scene.definition, [scene.invoice], scene.keys.private, tmp_path / "here",
                      events=[scene.events], terms=scene.terms)  # fmt: skip
    elsewhere = tmp_path / "elsewhere" / "deeper"
    shutil.copytree(scene.vendor, elsewhere)
    shutil.copy(scene.keys.private, tmp_path / "elsewhere" / "signer.key")
    os.chmod(tmp_path / "elsewhere" / "signer.key", 0o600)
    for zone in ("Pacific/Auckland", "America/Los_Angeles"):
        proc = tc("evidence", "resolved_ticket.yaml", "-i", "invoice.csv", "--key",
                  "../signer.key", "-o", f"pack-{zone.replace('/', '-')}", "-e", "events.parquet",
                  "-t", "terms.yaml", cwd=elsewhere, env={"TZ": zone})  # fmt: skip
        assert proc.returncode in (0, 1), proc.stderr
        there = tree_bytes(elsewhere / f"pack-{zone.replace('/', '-')}")
        assert there == tree_bytes(here.folder)


# ----------------------------------------------------------------- forged proofs
def _own(tree: dict[str, Any]) -> list[dict[str, Any]]:
    return [leaf for leaf in tree["leaves"] if not leaf["neighbour"]]


def _detail(v: Verification, name: str) -> str:
    return next(c.detail for c in v.failed if c.name == name)


@pytest.fixture(scope="module")
def pack3(scene: Scene, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scene's pack re-signed as pack format 3 made it (a leaf per entity and per CSV row),
    whose proofs the checker must still hold to the same rules; block proofs (format 4) are
    forged in tests/test_evidence_prove_blocks.py."""
    pack = copy_pack(scene, tmp_path_factory.mktemp("pack3"))
    resign_as_format(scene, pack, 3)
    return pack


@pytest.fixture(scope="module")
def genuine(scene: Scene, pack3: Path) -> dict[str, Any]:
    """A genuine proof with the data, for an entity in the middle of every tree (format 3:
    the leaves these forgeries move are single rows and single entities)."""
    return make_proof(pack3, disputed_entity(scene), [scene.events])


def test_rows_removed_between_kept_neighbours_are_caught(
    scene: Scene, genuine: dict[str, Any]
) -> None:
    key = load_public_key(scene.keys.base64)
    for name in ("entities", "verdicts", "events"):
        forged = json.loads(json.dumps(genuine))
        tree = forged["trees"][name]
        assert _own(tree) and len(tree["leaves"]) > len(_own(tree))
        tree["leaves"] = [leaf for leaf in tree["leaves"] if leaf["neighbour"]]
        v = verify_proof(forged, key)
        assert name in failed(v), name
        assert "not consecutive" in _detail(v, name)


def test_an_emptied_leaf_list_is_caught(scene: Scene, genuine: dict[str, Any]) -> None:
    key = load_public_key(scene.keys.base64)
    for name in ("entities", "verdicts", "events"):
        forged = json.loads(json.dumps(genuine))
        forged["trees"][name]["leaves"] = []
        v = verify_proof(forged, key)
        assert "no leaf is shown" in _detail(v, name)


def test_every_tree_emptied_of_the_entity_is_not_an_inclusion_proof(
    scene: Scene, pack3: Path, genuine: dict[str, Any]
) -> None:
    """Leaves of another entity, genuine and adjacent, shown in place of the entity's own."""
    key = load_public_key(scene.keys.base64)
    entity = genuine["entity_id"]
    other = make_proof(pack3, _other_entity(scene, entity), [scene.events])
    forged = json.loads(json.dumps(genuine))
    for name in ("entities", "verdicts", "events"):
        forged["trees"][name]["leaves"] = other["trees"][name]["leaves"]
    v = verify_proof(forged, key)
    assert {"entities", "verdicts", "events"} <= failed(v)
    assert "bracket" in _detail(v, "entities")


def _other_entity(scene: Scene, entity: str) -> str:
    with (scene.pack.folder / "entities.csv").open(newline="") as fh:
        ids = [r["entity_id"] for r in csv.DictReader(fh)]
    return ids[(ids.index(entity) + len(ids) // 2) % len(ids)]


def test_neighbours_that_do_not_bracket_the_entity_are_caught(
    scene: Scene, genuine: dict[str, Any]
) -> None:
    """The entity's rows dropped and the neighbours' ids faked is caught by the path; a
    genuine pair from elsewhere in the tree is caught by the sorted order."""
    key = load_public_key(scene.keys.base64)
    entity = genuine["entity_id"]
    forged = json.loads(json.dumps(genuine))
    other = make_proof(scene.pack.folder, _other_entity(scene, entity), [scene.events])
    forged["trees"]["verdicts"]["leaves"] = (
        other["trees"]["verdicts"]["leaves"][:1]
        + [leaf for leaf in other["trees"]["verdicts"]["leaves"] if leaf["neighbour"]][-1:]
    )
    v = verify_proof(forged, key)
    assert "verdicts" in failed(v)


def test_shifted_duplicated_or_malformed_leaves_are_caught(
    scene: Scene, genuine: dict[str, Any]
) -> None:
    key = load_public_key(scene.keys.base64)
    twice = json.loads(json.dumps(genuine))
    twice["trees"]["events"]["leaves"].append(twice["trees"]["events"]["leaves"][1])
    assert "shown twice" in _detail(verify_proof(twice, key), "events")
    shifted = json.loads(json.dumps(genuine))
    shifted["trees"]["entities"]["leaves"][0]["index"] -= 1
    assert "entities" in failed(verify_proof(shifted, key))
    own = _own(genuine["trees"]["events"])[0]["events"]
    other = [leaf for leaf in genuine["trees"]["events"]["leaves"] if leaf["neighbour"]]
    for events in ([["x"]], [], "x", [*own, other[0]["events"][0]]):
        short = json.loads(json.dumps(genuine))
        short["trees"]["events"]["leaves"][0]["events"] = events
        assert "malformed" in _detail(verify_proof(short, key), "events")
    for bad in ({**genuine, "trees": []}, {**genuine, "entity_id": None}):
        assert "proof" in failed(verify_proof(bad, key))


def test_an_entity_without_verdicts_or_events_is_proved_by_its_neighbours(
    scene: Scene,
) -> None:
    """A billed id the export does not know has a row in entities.csv only: the proof shows
    the two leaves around where its verdicts and events would sort."""
    with (scene.pack.folder / "verdicts.csv").open(newline="") as fh:
        with_verdicts = {r["entity_id"] for r in csv.DictReader(fh)}
    with (scene.pack.folder / "entities.csv").open(newline="") as fh:
        ids = [r["entity_id"] for r in csv.DictReader(fh)]
    absent = next((e for e in ids if e not in with_verdicts), None)
    assert absent is not None, "the scene bills an id the export does not know"
    proof = make_proof(scene.pack.folder, absent, [scene.events])
    key = load_public_key(scene.keys.base64)
    v = verify_proof(json.loads(json.dumps(proof)), key)
    assert v.ok, [(c.name, c.detail) for c in v.failed]
    assert not _own(proof["trees"]["verdicts"])
    assert len(proof["trees"]["verdicts"]["leaves"]) in (1, 2)
    forged = json.loads(json.dumps(proof))
    forged["trees"]["verdicts"]["leaves"] = forged["trees"]["verdicts"]["leaves"][:1]
    if proof["trees"]["verdicts"]["leaves"][0]["index"] not in (0,):
        assert "verdicts" in failed(verify_proof(forged, key))


# ----------------------------------------------------------------- signed column names
def resign_as_format(scene: Scene, pack: Path, fmt: int, leaf_format: str | None = None) -> None:
    """Rewrite a pack's statement as pack format ``fmt`` (1, 2 or 3) made it and sign it: the
    trees of that format (their roots recomputed here: one CSV leaf per row; one event leaf
    per event for formats 1 and 2, per entity for 3), and for format 1 no column lists."""
    from truecount.evidence.canonical import canonical_json

    statement = json.loads((pack / "statement.json").read_bytes())
    pred = statement["predicate"]
    pred["truecount_evidence"] = fmt
    del pred["events"]["leaf_entities"], pred["events"]["count"]
    if fmt == 3:
        root, size = event_tree_v3(covered_events(scene, pred))
        pred["events"].update(
            merkle_root=root,
            tree_size=size,
            leaf_format=leaf_format or "truecount.entity-events.v1",
            order=["entity_id"],
            leaf_events_order="event_data",
        )
    else:
        root, size = event_tree_v1(covered_events(scene, pred))
        pred["events"].update(
            merkle_root=root,
            tree_size=size,
            leaf_format=leaf_format or "truecount.event.v1",
            order=["entity_id", "ts", "seq", "event_id", "leaf_hash"],
        )
    for tree in ("verdicts", "entities"):
        root, size = csv_root(pack / pred[tree]["file"])
        pred[tree].update(merkle_root=root, tree_size=size, leaf_format="truecount.csv-row.v1")
        del pred[tree]["rows"], pred[tree]["leaf_rows"]
    if fmt == 1:
        for tree in ("verdicts", "entities"):
            del pred[tree]["columns"]
    payload = canonical_json(statement)
    (pack / "statement.json").write_bytes(payload)
    envelope = sign_envelope(payload, load_private_key(scene.keys.private))
    (pack / "envelope.dsse.json").write_bytes(canonical_json(envelope))


def test_statement_signs_each_csv_header(scene: Scene) -> None:
    folder = scene.pack.folder
    pred = json.loads((folder / "statement.json").read_bytes())["predicate"]
    assert pred["truecount_evidence"] == 4
    for tree in ("verdicts", "entities"):
        with (folder / pred[tree]["file"]).open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh))
        assert pred[tree]["columns"] == header
    assert pred["entities"]["columns"][:4] == ["entity_id", "cell", "disputed", "reason"]


def test_swapped_columns_in_a_proof_fail_and_a_swapped_header_is_refused(
    scene: Scene, tmp_path: Path
) -> None:
    key = load_public_key(scene.keys.public)
    entity = sorted({r["entity_id"] for r in scene.data.invoice.to_pylist()})[7]
    proof = json.loads(json.dumps(make_proof(scene.pack.folder, entity, [scene.events])))
    assert verify_proof(proof, key).ok
    for tree, a, b in (("verdicts", "period", "status"), ("events", "type", "actor")):
        forged = json.loads(json.dumps(proof))
        cols = forged["trees"][tree]["columns"]
        i, j = cols.index(a), cols.index(b)
        cols[i], cols[j] = cols[j], cols[i]
        v = verify_proof(forged, key)
        assert failed(v) == {tree}
        assert "not the ones the statement signs" in v.failed[0].detail
    # a pack whose header row was edited: prove refuses it, verify fails it
    pack = copy_pack(scene, tmp_path)
    path = pack / "entities.csv"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("cell,disputed,reason", "reason,disputed,cell", 1))
    with pytest.raises(TruecountError, match="signed column list"):
        make_proof(pack, entity)
    assert {"pack files", "entities.csv"} <= failed(verify(scene, pack))


def test_a_format_1_pack_and_its_proofs_still_verify(scene: Scene, tmp_path: Path) -> None:
    pack = copy_pack(scene, tmp_path)
    resign_as_format(scene, pack, 1)
    v = verify(scene, pack)
    assert v.ok, failed(v)
    notes = {c.name: c.detail for c in v.checks if c.status == "note"}
    assert "pack format 1" in notes["column names"]
    key = load_public_key(scene.keys.public)
    entity = sorted({r["entity_id"] for r in scene.data.invoice.to_pylist()})[7]
    proof = json.loads(json.dumps(make_proof(pack, entity, [scene.events])))
    v = verify_proof(proof, key)
    assert v.ok, failed(v)
    assert {"entities columns", "verdicts columns"} <= {
        c.name for c in v.checks if c.status == "note"
    }
    # the event fields were signed in format 1 already: a swap still fails
    cols = proof["trees"]["events"]["columns"]
    cols[3], cols[4] = cols[4], cols[3]
    assert failed(verify_proof(proof, key)) == {"events"}


def test_a_format_2_pack_with_a_leaf_per_event_and_its_proofs_still_verify(
    scene: Scene, tmp_path: Path
) -> None:
    pack = copy_pack(scene, tmp_path)
    resign_as_format(scene, pack, 2)
    for events in ([scene.events], scene.workspace):
        v = verify(scene, pack, events)
        assert v.ok, [(c.name, c.detail) for c in v.failed]
    key = load_public_key(scene.keys.public)
    entity = disputed_entity(scene)
    proof = json.loads(json.dumps(make_proof(pack, entity, [scene.events])))
    v = verify_proof(proof, key)
    assert v.ok, [(c.name, c.detail) for c in v.failed]
    own = [leaf["fields"] for leaf in _own(proof["trees"]["events"])]
    rows = [r for r in scene.data.events.to_pylist() if r["entity_id"] == entity]
    assert sorted(own) == sorted(event_texts(r) for r in rows) and len(own) > 1
    # the same data under the new format's root does not pass as the old one
    pack3 = copy_pack(scene, tmp_path / "three")
    resign_as_format(scene, pack3, 2, leaf_format="truecount.entity-events.v1")
    assert failed(verify(scene, pack3)) == {"event root"}


def test_a_format_3_pack_with_a_leaf_per_entity_and_per_row_still_verifies(
    scene: Scene, tmp_path: Path
) -> None:
    """Packs made before block leaves (format 3) keep verifying and proving: the replay
    rebuilds a leaf per entity and per CSV row, as their statements name."""
    pack = copy_pack(scene, tmp_path)
    resign_as_format(scene, pack, 3)
    for events in ([scene.events], scene.workspace):
        v = verify(scene, pack, events)
        assert v.ok, [(c.name, c.detail) for c in v.failed]
    key = load_public_key(scene.keys.public)
    entity = disputed_entity(scene)
    proof = json.loads(json.dumps(make_proof(pack, entity, [scene.events])))
    v = verify_proof(proof, key)
    assert v.ok, [(c.name, c.detail) for c in v.failed]
    assert proof["trees"]["events"]["leaf_format"] == "truecount.entity-events.v1"
    # a format 3 statement over block roots (the format 4 trees under old names) fails
    pred = json.loads((scene.pack.folder / "statement.json").read_bytes())["predicate"]
    forged = copy_pack(scene, tmp_path / "forged")
    resign_as_format(scene, forged, 3)
    statement = json.loads((forged / "statement.json").read_bytes())
    statement["predicate"]["verdicts"]["merkle_root"] = pred["verdicts"]["merkle_root"]
    from truecount.evidence.canonical import canonical_json

    payload = canonical_json(statement)
    (forged / "statement.json").write_bytes(payload)
    envelope = sign_envelope(payload, load_private_key(scene.keys.private))
    (forged / "envelope.dsse.json").write_bytes(canonical_json(envelope))
    assert failed(verify(scene, forged)) == {"verdict root"}


def test_an_unknown_event_leaf_format_fails_the_replay(scene: Scene, tmp_path: Path) -> None:
    pack = copy_pack(scene, tmp_path)
    resign_as_format(scene, pack, 2, leaf_format="truecount.event.v9")
    v = verify(scene, pack)
    assert "replay" in failed(v)
    assert "truecount.event.v9" in _detail(v, "replay")


def test_the_event_tree_alone_is_the_packs(scene: Scene, tmp_path: Path) -> None:
    """A proof of events rebuilds the event tree without the files (``files=False``): the same
    root, size and counts as the pack signs, and nothing written."""
    from truecount.evidence.run import RunInputs, run

    pred = json.loads((scene.pack.folder / "statement.json").read_bytes())["predicate"]
    out = tmp_path / "none"
    result = run(
        RunInputs(
            definition_text=scene.definition.read_text(encoding="utf-8"),
            events=scene.workspace,
            invoice=(scene.pack.folder / "invoice" / scene.invoice.name,),
            terms_text=scene.terms.read_text(encoding="utf-8"),
            as_of=pred["as_of"],
        ),
        out,
        files=False,
    )
    ev = pred["events"]
    assert (result.events.root, result.events.size) == (ev["merkle_root"], ev["tree_size"])
    assert (result.event_entities, result.event_count) == (ev["entities"], ev["count"])
    assert not out.exists() and result.entities.size == result.verdicts.size == 0


def test_the_bench_floor_does_the_packs_work_without_its_order(
    scene: Scene, tmp_path: Path
) -> None:
    """bench/evidence_bench.py's floor (the least work of any pack format) must stay the
    pack's own work: the same rows of both files, in another order, and the same events."""
    path = Path(__file__).resolve().parents[1] / "bench" / "evidence_bench.py"
    spec = importlib.util.spec_from_file_location("evidence_bench", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    before = list(sys.path)
    try:
        spec.loader.exec_module(bench)
    finally:
        sys.path[:] = before  # the script puts bench/ on the path for its own imports
    out = tmp_path / "floor"
    read = bench.pack_floor(scene.workspace.root, scene.definition, scene.invoice, scene.terms, out)
    pred = json.loads((scene.pack.folder / "statement.json").read_bytes())["predicate"]
    assert read == pred["events"]["count"] > 0
    for name in ("verdicts.csv", "entities.csv"):
        mine = (out / name).read_text(encoding="utf-8").splitlines()
        packed = (scene.pack.folder / name).read_text(encoding="utf-8").splitlines()
        assert mine[0] == packed[0]
        assert sorted(mine[1:]) == sorted(packed[1:])
        assert len(mine) == len(packed) > 1
