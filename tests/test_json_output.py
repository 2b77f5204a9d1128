"""Every ``--format json`` output is strict JSON: no NaN or Infinity, which strict parsers
(``jq``, JavaScript, ``json.loads`` refusing constants) reject."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from truecount import jsonout

ROOT = Path(__file__).resolve().parent.parent
SUPPORT = ROOT / "examples" / "support"
DEFINITION = ROOT / "examples" / "resolved_ticket.yaml"


def strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_floats_become_null_at_any_depth() -> None:
    value = {"a": math.nan, "b": [math.inf, {"c": -math.inf}], "d": (1.5, 2), "e": "NaN"}
    assert strict(jsonout.dumps(value)) == {
        "a": None, "b": [None, {"c": None}], "d": [1.5, 2], "e": "NaN"
    }  # fmt: skip


def test_dumps_refuses_what_finite_cannot_see() -> None:
    class Odd:
        pass

    with pytest.raises(ValueError, match="Out of range float"):
        jsonout.dumps({"x": Odd()}, default=lambda _: math.nan)


def tc(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "truecount", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("json") / "ws"
    assert tc("init", ws).returncode == 0
    return ws


@pytest.mark.parametrize(
    "args",
    [
        ("ingest", SUPPORT / "events.csv", "-w", "{ws}"),
        ("count", DEFINITION, "-w", "{ws}"),
        ("check", DEFINITION, "-w", "{ws}"),
        ("reconcile", DEFINITION, "-w", "{ws}", "-i", SUPPORT / "invoice.csv"),
        ("drift", DEFINITION, "-w", "{ws}", "-i", SUPPORT / "invoice.csv", "--shift", "1.05"),
    ],
    ids=["ingest", "count", "check", "reconcile", "drift"],
)
def test_cli_json_parses_strictly(workspace: Path, args: tuple[Any, ...]) -> None:
    filled = [str(a).replace("{ws}", str(workspace)) for a in args]
    proc = tc(*filled, "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    strict(proc.stdout)
