"""Coverage-guided fuzzing of the inclusion-proof verifier (Atheris; optional, not run in CI).

A small signed pack is built once and a genuine proof of one entity taken from it. The fuzzer
mutates the proof's JSON text: the genuine proof is written into each corpus folder named on
the command line before the run starts. Whatever the bytes, ``verify_proof`` must return a
verdict and never raise, and a proof that verifies must show exactly the genuine proof's
leaves for the genuine entity: a forged proof that passes is a crash that Atheris saves.
See fuzz/README.md.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports():
    from truecount.evidence import verify_proof

from truecount.cli.demo_cmds import package_text
from truecount.demo.generate import SupportScenario, generate
from truecount.evidence import build_pack, generate_key, load_public_key, make_proof


def genuine() -> tuple[dict[str, Any], Any]:
    """A proof of one entity with neighbours on both sides, and the signer's public key."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    root = Path(tempfile.mkdtemp(prefix="proof-fuzz-"))
    data = generate(SupportScenario(tickets=40, seed=5))
    pq.write_table(data.events, root / "events.parquet")
    pacsv.write_csv(data.invoice, root / "invoice.csv")
    (root / "def.yaml").write_text(package_text("resolved_ticket.yaml"), encoding="utf-8")
    keys = generate_key(root / "signer.key")
    pack = build_pack(
        root / "def.yaml", [root / "invoice.csv"], keys.private, root / "pack",
        events=[root / "events.parquet"],
    )  # fmt: skip
    ids = sorted(set(data.invoice.column("entity_id").to_pylist()))
    proof = make_proof(pack.folder, ids[len(ids) // 2], [root / "events.parquet"])
    return json.loads(json.dumps(proof)), load_public_key(keys.public)


def shown(proof: dict[str, Any]) -> dict[str, list[str]]:
    """What a proof asserts: per tree, its leaves as sorted canonical JSON (order is free)."""
    return {
        name: sorted(
            json.dumps({k: v for k, v in leaf.items() if k != "audit_path"}, sort_keys=True)
            for leaf in tree.get("leaves", [])
        )
        for name, tree in proof["trees"].items()
    }


PROOF, KEY = genuine()
SHOWN = shown(PROOF)


def test_one_input(data: bytes) -> None:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return
    result = verify_proof(doc, KEY)
    if result.ok and (doc.get("entity_id") != PROOF["entity_id"] or shown(doc) != SHOWN):
        raise AssertionError("a proof that is not the genuine one verified")


def main() -> None:
    for folder in (Path(a) for a in sys.argv[1:] if not a.startswith("-")):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "genuine.json").write_text(json.dumps(PROOF, indent=1), encoding="utf-8")
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
