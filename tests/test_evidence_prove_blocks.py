"""Inclusion proofs of packs of format 4, whose leaves are blocks of 64 CSV rows or of the
events of 64 entities: genuine proofs verify (middle, first and last rows, an entity absent
from a tree), forged ones do not, and the CSV row split agrees with Python's CSV reader.
"""

from __future__ import annotations

import copy
import csv
import io
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from truecount.cli.demo_cmds import package_text
from truecount.demo.generate import SupportScenario, generate
from truecount.evidence import (
    Verification,
    build_pack,
    generate_key,
    load_public_key,
    make_proof,
    merkle,
    verify_proof,
)
from truecount.evidence.blocks import (
    BLOCK_ROWS,
    CSV_BLOCK_FORMAT,
    EVENT_BLOCK_FORMAT,
    csv_block_hashes,
    csv_block_texts,
    csv_row_starts,
)
from truecount.evidence.prove import _csv_rows

#: Billed ids the export does not know, with a comma, a quoted line feed, a quote and a
#: formula start: their cells of entities.csv are quoted (and neutralized) when written.
ODD_IDS = ('T0000100,"x\ny', "=1+1")


@dataclass
class Pack:
    folder: Path
    events: Path
    key: Ed25519PublicKey

    def rows(self, file: str) -> list[dict[str, str]]:
        with (self.folder / file).open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Pack:
    root = tmp_path_factory.mktemp("blocks")
    data = generate(SupportScenario(tickets=500, seed=11))
    pq.write_table(data.events, root / "events.parquet")
    last = data.invoice.slice(data.invoice.num_rows - 1).to_pylist()[0]
    odd = [{**last, "line_id": f"LX{i}", "entity_id": e} for i, e in enumerate(ODD_IDS)]
    invoice = pa.concat_tables([data.invoice, pa.Table.from_pylist(odd, data.invoice.schema)])
    pacsv.write_csv(invoice, root / "invoice.csv")
    (root / "def.yaml").write_text(package_text("resolved_ticket.yaml"))
    keys = generate_key(root / "signer.key")
    built = build_pack(
        root / "def.yaml", [root / "invoice.csv"], keys.private, root / "pack",
        events=[root / "events.parquet"], terms=None,
    )  # fmt: skip
    statement = json.loads((built.folder / "statement.json").read_bytes())
    pred = statement["predicate"]
    assert pred["truecount_evidence"] == 4
    assert pred["events"]["leaf_format"] == EVENT_BLOCK_FORMAT
    assert pred["entities"]["leaf_format"] == CSV_BLOCK_FORMAT
    assert pred["verdicts"]["leaf_format"] == CSV_BLOCK_FORMAT
    for name in ("entities", "verdicts", "events"):
        assert pred[name]["tree_size"] >= 3, f"{name} needs several blocks for these tests"
    return Pack(built.folder, root / "events.parquet", load_public_key(keys.public))


def prove(pack: Pack, entity: str) -> dict[str, Any]:
    proof = make_proof(pack.folder, entity, [pack.events])
    out: dict[str, Any] = json.loads(json.dumps(proof))
    return out


def failed(v: Verification) -> set[str]:
    return {c.name for c in v.failed}


def detail(v: Verification, name: str) -> str:
    return "; ".join(c.detail for c in v.failed if c.name == name)


def passes(pack: Pack, proof: dict[str, Any]) -> None:
    v = verify_proof(proof, pack.key)
    assert v.ok, [(c.name, c.detail) for c in v.failed]
    assert {c.name for c in v.checks if c.status == "passed"} >= {
        "signature",
        "entities",
        "verdicts",
        "events",
    }


def own(tree: dict[str, Any]) -> list[dict[str, Any]]:
    return [leaf for leaf in tree["leaves"] if not leaf["neighbour"]]


def disputed(pack: Pack) -> str:
    return next(
        r["entity_id"]
        for r in pack.rows("entities.csv")
        if r["cell"] == "vendor_only" and r["reason"] == "satisfied"
    )


def genuine_blocks(pack: Pack, file: str, blocks: list[int]) -> list[dict[str, Any]]:
    """Leaves of a pack CSV as a proof shows them, made here from the file."""
    starts = csv_row_starts(pack.folder / file)
    _root, paths = merkle.audit_paths(csv_block_hashes(pack.folder / file, starts), blocks)
    texts = csv_block_texts(pack.folder / file, starts, blocks)
    return [
        {"index": k, "neighbour": True, "text": t, "audit_path": [h.hex() for h in paths[k]]}
        for k, t in zip(blocks, texts, strict=True)
    ]


# ----------------------------------------------------------------- genuine proofs
def test_a_billed_entity_is_proved(pack: Pack) -> None:
    entity = disputed(pack)
    proof = prove(pack, entity)
    passes(pack, proof)
    trees = proof["trees"]
    assert trees["entities"]["leaf_format"] == CSV_BLOCK_FORMAT
    assert trees["events"]["leaf_format"] == EVENT_BLOCK_FORMAT
    (mine,) = own(trees["entities"])
    rows = list(csv.reader(io.StringIO(mine["text"], newline="")))
    cols = trees["entities"]["columns"]
    row = next(r for r in rows if r[cols.index("entity_id")] == entity)
    assert dict(zip(cols, row, strict=True))["cell"] == "vendor_only"
    events = [e for leaf in own(trees["events"]) for e in leaf["events"] if e[1] == entity]
    assert events and all(len(e) == 8 for e in events)
    # the order of the leaves in the proof is not what the check relies on
    for tree in proof["trees"].values():
        tree["leaves"].reverse()
    passes(pack, proof)


@pytest.mark.parametrize("where", ["first", "last"])
def test_the_first_and_last_rows_are_proved(pack: Pack, where: str) -> None:
    ids = [r["entity_id"] for r in pack.rows("entities.csv")]
    entity = ids[0] if where == "first" else ids[-1]
    if entity.startswith("'"):
        entity = entity[1:]  # the formula apostrophe is the file's, not the id's
    proof = prove(pack, entity)
    passes(pack, proof)
    leaves = proof["trees"]["entities"]["leaves"]
    size = json.loads((pack.folder / "statement.json").read_bytes())["predicate"]["entities"][
        "tree_size"
    ]
    assert [leaf["index"] for leaf in leaves] == ([0] if where == "first" else [size - 1])


@pytest.mark.parametrize("entity", ODD_IDS)
def test_ids_with_quotes_commas_line_feeds_or_formulas_are_proved(pack: Pack, entity: str) -> None:
    proof = prove(pack, entity)
    passes(pack, proof)
    assert not own(proof["trees"]["verdicts"]) and not own(proof["trees"]["events"])


def test_an_entity_absent_from_a_tree_is_proved_by_the_rows_around_it(pack: Pack) -> None:
    with_verdicts = {r["entity_id"] for r in pack.rows("verdicts.csv")}
    absent = next(
        r["entity_id"]
        for r in pack.rows("entities.csv")
        if r["entity_id"] not in with_verdicts and r["entity_id"].startswith("T")
    )
    proof = prove(pack, absent)
    passes(pack, proof)
    assert not own(proof["trees"]["verdicts"])
    assert 1 <= len(proof["trees"]["verdicts"]["leaves"]) <= 2


def test_an_id_in_no_tree_is_bracketed_everywhere_but_not_proved(pack: Pack) -> None:
    """The proof of a real entity, its id changed to one just after it: every tree shows the
    rows around where that id would sort, so each tree passes, and the proof as a whole fails
    because it shows no row of that id."""
    proof = prove(pack, disputed(pack))
    proof["entity_id"] += "~"
    v = verify_proof(proof, pack.key)
    assert failed(v) == {"entity"}
    assert "no rows of" in next(c.detail for c in v.checks if c.name == "entities")


# ----------------------------------------------------------------- forged proofs
def test_an_edited_block_text_is_not_in_the_tree(pack: Pack) -> None:
    proof = prove(pack, disputed(pack))
    for name in ("entities", "verdicts"):
        forged = copy.deepcopy(proof)
        leaf = own(forged["trees"][name])[0]
        at = leaf["text"].index(",vendor_only,") + 1 if name == "entities" else 1
        leaf["text"] = leaf["text"][:at] + "X" + leaf["text"][at + 1 :]
        v = verify_proof(forged, pack.key)
        assert failed(v) == {name}
        assert "not in the signed tree" in detail(v, name)


def _entity_at_row(pack: Pack, file: str, row: int) -> str:
    entity = pack.rows(file)[row]["entity_id"]
    return entity[1:] if entity.startswith("'") else entity


def test_a_block_dropped_from_the_middle_is_caught(pack: Pack) -> None:
    proof = prove(pack, _entity_at_row(pack, "entities.csv", BLOCK_ROWS + BLOCK_ROWS // 2))
    (mine,) = own(proof["trees"]["entities"])
    k = mine["index"]
    assert k == 1
    # more genuine blocks than needed still verify; a gap among them does not
    wide = copy.deepcopy(proof)
    shown = genuine_blocks(pack, "entities.csv", [k - 1, k, k + 1])
    wide["trees"]["entities"]["leaves"] = shown
    passes(pack, wide)
    wide["trees"]["entities"]["leaves"] = [shown[0], shown[2]]
    v = verify_proof(wide, pack.key)
    assert "entities" in failed(v)
    assert "not consecutive" in detail(v, "entities")


@pytest.mark.parametrize("side", ["before", "after"])
def test_a_neighbour_block_dropped_leaves_the_entity_unbracketed(pack: Pack, side: str) -> None:
    """An entity on the first (last) row of a block: the row before (after) it is in another
    block, and a proof without that block may hide a row of the entity."""
    row = BLOCK_ROWS if side == "before" else 2 * BLOCK_ROWS - 1
    proof = prove(pack, _entity_at_row(pack, "entities.csv", row))
    passes(pack, proof)
    tree = proof["trees"]["entities"]
    assert [leaf["index"] for leaf in tree["leaves"]] == ([0, 1] if side == "before" else [1, 2])
    tree["leaves"] = own(tree)
    v = verify_proof(proof, pack.key)
    assert failed(v) == {"entities"}
    assert f"the row {side} the entity's rows is missing" in detail(v, "entities")


def test_an_event_removed_from_a_block_is_caught(pack: Pack) -> None:
    proof = prove(pack, disputed(pack))
    for pick in (0, -1):
        forged = copy.deepcopy(proof)
        leaf = own(forged["trees"]["events"])[0]
        entity = forged["entity_id"]
        at = [i for i, e in enumerate(leaf["events"]) if e[1] == entity][pick]
        del leaf["events"][at]
        v = verify_proof(forged, pack.key)
        assert failed(v) == {"events"}
        assert "not in the signed tree" in detail(v, "events")


def test_reordered_rows_or_entities_are_caught(pack: Pack) -> None:
    proof = prove(pack, disputed(pack))
    forged = copy.deepcopy(proof)
    leaf = own(forged["trees"]["entities"])[0]
    rows = _csv_rows(leaf["text"])
    rows[0], rows[1] = rows[1], rows[0]
    leaf["text"] = "".join(r + "\n" for r in rows)
    assert failed(verify_proof(forged, pack.key)) == {"entities"}

    forged = copy.deepcopy(proof)
    leaf = own(forged["trees"]["events"])[0]
    first = leaf["events"][0][1]
    head = [e for e in leaf["events"] if e[1] == first]
    leaf["events"] = leaf["events"][len(head) :] + head
    v = verify_proof(forged, pack.key)
    assert failed(v) == {"events"}


def test_genuine_blocks_from_elsewhere_do_not_bracket_the_entity(pack: Pack) -> None:
    proof = prove(pack, disputed(pack))
    k = own(proof["trees"]["entities"])[0]["index"]
    far = 0 if k > 1 else k + 2
    proof["trees"]["entities"]["leaves"] = genuine_blocks(pack, "entities.csv", [far])
    v = verify_proof(proof, pack.key)
    assert failed(v) == {"entities"}
    assert "bracket" in detail(v, "entities")


def test_malformed_or_duplicated_blocks_are_caught(pack: Pack) -> None:
    proof = prove(pack, disputed(pack))
    for bad in (None, 5, "", "no line feed", 'a,"open\n'):
        forged = copy.deepcopy(proof)
        own(forged["trees"]["verdicts"])[0]["text"] = bad
        assert "malformed" in detail(verify_proof(forged, pack.key), "verdicts")
    for bad_events in (None, [], [["x"]], "x", [[None] * 7]):
        forged = copy.deepcopy(proof)
        own(forged["trees"]["events"])[0]["events"] = bad_events
        assert "malformed" in detail(verify_proof(forged, pack.key), "events")
    forged = copy.deepcopy(proof)
    forged["trees"]["events"]["leaves"].append(forged["trees"]["events"]["leaves"][0])
    assert "shown twice" in detail(verify_proof(forged, pack.key), "events")
    forged = copy.deepcopy(proof)
    forged["trees"]["entities"]["leaves"] = []
    assert "no leaf is shown" in detail(verify_proof(forged, pack.key), "entities")


def test_the_proof_format_hint_is_not_what_decides(pack: Pack) -> None:
    """The signed statement names each tree's leaf format; a proof's own field is ignored."""
    proof = prove(pack, disputed(pack))
    for tree in proof["trees"].values():
        tree["leaf_format"] = "truecount.csv-row.v1"
    passes(pack, proof)


@pytest.fixture(scope="module")
def genuine(pack: Pack) -> dict[str, Any]:
    return prove(pack, disputed(pack))


def _edited(data: st.DataObject, text: str) -> str:
    """``text`` with one character changed, put in or taken out."""
    at = data.draw(st.integers(0, len(text)))
    edit = data.draw(st.sampled_from(["put", "take", "change"]))
    char = data.draw(st.sampled_from(['"', ",", "\n", "x", "0", "'", "\u200b"]))
    if edit == "put" or at == len(text):
        return text[:at] + char + text[at:]
    if edit == "take":
        return text[:at] + text[at + 1 :]
    return text[:at] + char + text[at + 1 :]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_any_edit_of_a_shown_block_fails_and_never_raises(
    pack: Pack, genuine: dict[str, Any], data: st.DataObject
) -> None:
    """One character of a block's text, or of an event's field, changed, put in or taken
    out: the check fails with a reason (the data no longer hashes to the leaf, or a number
    is not written as the prover writes it: ``04`` for ``4`` is the same record), never
    raises.
    """
    forged = copy.deepcopy(genuine)
    name = data.draw(st.sampled_from(["entities", "verdicts", "events"]))
    leaf = data.draw(st.sampled_from(forged["trees"][name]["leaves"]))
    if name == "events":
        event = data.draw(st.sampled_from(leaf["events"]))
        j = data.draw(st.sampled_from([i for i, x in enumerate(event) if x is not None]))
        event[j] = _edited(data, event[j])
    else:
        leaf["text"] = _edited(data, leaf["text"])
    if forged == genuine:
        return
    v = verify_proof(forged, pack.key)
    assert not v.ok
    assert name in failed(v) and all(c.detail for c in v.failed)


# ----------------------------------------------------------------- the CSV row split
ODD_CSV = (
    "entity_id,reason\n"
    "a,plain\n"
    '"b,1","x\ny"\n'
    '"c""q",\'=1\n'
    'd,"a,\nb"\n'
    '"",""\n'
    'e,"line\n\nfeeds ""and"" quotes, commas"\n'
)


@pytest.mark.parametrize("tail", ["", "f,last row without a line feed"])
def test_csv_row_starts_agree_with_the_csv_module(tmp_path: Path, tail: str) -> None:
    text = ODD_CSV + tail
    path = tmp_path / "odd.csv"
    path.write_bytes(text.encode("utf-8"))
    starts = [int(s) for s in csv_row_starts(path)]
    expected = list(csv.reader(io.StringIO(text, newline="")))[1:]
    assert len(starts) - 1 == len(expected)
    raw = text.encode("utf-8")
    assert starts[-1] == len(raw)
    assert raw[: starts[0]] == b"entity_id,reason\n"
    for (a, b), row in zip(itertools.pairwise(starts), expected, strict=True):
        piece = raw[a:b].decode("utf-8")
        assert list(csv.reader([piece.removesuffix("\n")])) == [row]
    if not tail:
        assert _csv_rows(raw[starts[0] :].decode("utf-8")) == [
            raw[a : b - 1].decode("utf-8") for a, b in itertools.pairwise(starts)
        ]


def test_csv_row_starts_of_a_header_only_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"entity_id,reason\n")
    assert [int(s) for s in csv_row_starts(path)] == [len(b"entity_id,reason\n")]
