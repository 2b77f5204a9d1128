"""Fuzzing the inclusion-proof check: a genuine proof, damaged at random, never verifies.

A small signed pack is built with the library, and a genuine proof of one entity with its
events is taken from it. Each example applies one to three damaging edits — a hex digit of an
audit path or a signature changed, a cell or field altered, a leaf dropped or shown twice, an
index moved, the entity renamed, a tree removed, any node replaced by a value of another type —
and the check must then fail with a reason, and never raise. Reordering the leaves changes
nothing a verifier relies on, so that edit alone must still verify.
"""

from __future__ import annotations

import base64
import copy
import json
import math
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import fuzz
from truecount.cli.demo_cmds import package_text
from truecount.demo.generate import SupportScenario, generate
from truecount.evidence import build_pack, generate_key, load_public_key, make_proof, verify_proof

HEX = "0123456789abcdef"
JUNK: list[Any] = [
    None,
    0,
    -1,
    2**70,
    1e308,
    float("nan"),
    float("inf"),
    "",
    "zz",
    [],
    {},
    True,
    [None],
]


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Ed25519PublicKey]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("proof")
    data = generate(SupportScenario(tickets=40, seed=5))
    pq.write_table(data.events, root / "events.parquet")
    pacsv.write_csv(data.invoice, root / "invoice.csv")
    (root / "def.yaml").write_text(package_text("resolved_ticket.yaml"))
    keys = generate_key(root / "signer.key")
    pack = build_pack(
        root / "def.yaml", [root / "invoice.csv"], keys.private, root / "pack",
        events=[root / "events.parquet"],
    )  # fmt: skip
    ids = sorted(set(data.invoice.column("entity_id").to_pylist()))
    entity = ids[len(ids) // 2]  # one with neighbours on both sides
    proof = make_proof(pack.folder, entity, [root / "events.parquet"])
    proof = json.loads(json.dumps(proof))
    key = load_public_key(keys.public)
    assert verify_proof(proof, key).ok
    return proof, key


def _leaves(proof: dict[str, Any]) -> list[tuple[str, int]]:
    return [(t, i) for t in proof["trees"] for i in range(len(proof["trees"][t]["leaves"]))]


def _other_hex(draw: st.DrawFn, c: str) -> str:
    return draw(st.sampled_from([h for h in HEX if h != c.lower()]))


def _nodes(doc: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into the JSON document, for the 'replace with junk' edit."""
    found = [at] if at else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            found += _nodes(v, (*at, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found += _nodes(v, (*at, i))
    return found


def _get(doc: Any, at: tuple[Any, ...]) -> Any:
    for part in at:
        doc = doc[part]
    return doc


@st.composite
def damage(draw: st.DrawFn, proof: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A damaged copy of ``proof`` and the edits made."""
    out = copy.deepcopy(proof)
    edits: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        leaves = _leaves(out)
        kind = draw(
            st.sampled_from(
                ["hash", "cell", "drop", "twice", "index", "entity", "tree", "junk", "envelope"]
            )
        )
        if kind in {"hash", "cell", "drop", "twice", "index"} and not leaves:
            kind = "entity"
        if kind in {"hash", "cell", "drop", "twice", "index"}:
            tree, i = draw(st.sampled_from(leaves))
            group = out["trees"][tree]["leaves"]
            leaf = group[i]
            if kind == "hash" and leaf.get("audit_path"):
                j = draw(st.integers(0, len(leaf["audit_path"]) - 1))
                h = leaf["audit_path"][j]
                k = draw(st.integers(0, len(h) - 1))
                leaf["audit_path"][j] = h[:k] + _other_hex(draw, h[k]) + h[k + 1 :]
            elif kind in {"hash", "cell"} and "text" in leaf:  # a block of CSV rows
                text = leaf["text"]
                k = draw(st.integers(0, len(text)))
                leaf["text"] = (
                    text[:k] + draw(st.sampled_from(["x", " ", "0", ",", "\n"])) + text[k:]
                )
                kind = "cell"
            elif kind in {"hash", "cell"}:
                if "events" in leaf:  # a leaf of an entity's events (pack format 3)
                    values = draw(st.sampled_from(leaf["events"]))
                else:
                    values = leaf["fields"] if "fields" in leaf else leaf["cells"]
                j = draw(st.integers(0, len(values) - 1))
                values[j] = (values[j] or "") + draw(st.sampled_from(["x", " ", "0", "\u200b"]))
                kind = "cell"
            elif kind == "drop":
                del group[i]
            elif kind == "twice":
                group.insert(i, copy.deepcopy(leaf))
            else:
                leaf["index"] = draw(
                    st.sampled_from(
                        [leaf["index"] + d for d in (-3, -2, -1, 1, 2, 3)] + [-1, 10**9]
                    )
                )
        elif kind == "entity":
            out["entity_id"] = draw(
                st.sampled_from([out["entity_id"] + "x", out["entity_id"][:-1], "T", "zzz", "0"])
            )
        elif kind == "tree":
            name = draw(st.sampled_from(["entities", "verdicts"]))
            out["trees"].pop(name, None)
        elif kind == "junk":
            at = draw(st.sampled_from(_nodes(out)))
            new = draw(st.sampled_from(JUNK))
            old = _get(out, at)
            if type(new) is type(old) and new == old:
                new = "junk"
            _get(out, at[:-1])[at[-1]] = new
            if at[-1] in {"neighbour", "keyid", "leaf_format"} or at == ("trees", "events"):
                # the neighbour flag, key id and a proof's leaf format are hints only (the
                # signed statement names the format); dropping events is allowed
                kind = "neutral-junk"
        else:
            # one bit of the payload or of a signature, re-encoded (the key id is a hint and
            # base64's spare bits carry nothing, so those are not edits of what is signed)
            env = out["envelope"]
            holder, field = (
                (env, "payload")
                if draw(st.booleans()) or not env.get("signatures")
                else (env["signatures"][0], "sig")
            )
            raw = bytearray(base64.b64decode(holder[field]))
            k = draw(st.integers(0, len(raw) - 1))
            raw[k] ^= 1 << draw(st.integers(0, 7))
            holder[field] = base64.b64encode(bytes(raw)).decode("ascii")
        edits.append(f"junk at {at}: {new!r}" if kind == "junk" else kind)
        if "junk" in kind:
            break  # the document's shape may be gone: no further edit can find its way
    return out, edits


@fuzz(200)
@given(st.data())
def test_a_damaged_proof_never_verifies(
    genuine: tuple[dict[str, Any], Ed25519PublicKey], data: st.DataObject
) -> None:
    proof, key = genuine
    forged, edits = data.draw(damage(proof))
    v = verify_proof(forged, key)  # must not raise
    if edits == ["neutral-junk"] or forged == proof:
        return
    assert not v.ok, f"{edits} verified"
    assert all(c.detail for c in v.failed), "every failed check says why"


@pytest.mark.parametrize("junk", [math.inf, -math.inf, math.nan, 1e300])
def test_a_leaf_index_that_is_no_whole_number_fails_without_a_crash(
    genuine: tuple[dict[str, Any], Ed25519PublicKey], junk: float
) -> None:
    proof, key = genuine
    for name in proof["trees"]:
        forged = copy.deepcopy(proof)
        forged["trees"][name]["leaves"][0]["index"] = junk  # int(inf) raises OverflowError
        v = verify_proof(forged, key)
        assert not v.ok and all(c.detail for c in v.failed)


@fuzz(40)
@given(st.data())
def test_reordering_leaves_changes_nothing(
    genuine: tuple[dict[str, Any], Ed25519PublicKey], data: st.DataObject
) -> None:
    proof, key = genuine
    shuffled = copy.deepcopy(proof)
    for tree in shuffled["trees"].values():
        tree["leaves"] = data.draw(st.permutations(tree["leaves"]))
        # (a block leaf's events and rows are hashed in the order shown: they stay put)
    assert verify_proof(shuffled, key).ok


def test_swapped_column_names_do_not_verify(
    genuine: tuple[dict[str, Any], Ed25519PublicKey],
) -> None:
    proof, key = genuine
    forged = copy.deepcopy(proof)
    cols = forged["trees"]["entities"]["columns"]
    a, b = cols.index("cell"), cols.index("reason")
    cols[a], cols[b] = cols[b], cols[a]
    assert not verify_proof(forged, key).ok
