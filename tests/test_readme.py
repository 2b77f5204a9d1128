"""Every command block of README.md runs as written, and the numbers it states are right.

The README is the first thing a new user runs, so it is tested like code: each ```bash block is
run command by command, in order, in a fresh folder holding a copy of ``examples/`` (as a user
who cloned the repository and follows the README from the top would), each ``truecount``
command through the CLI itself (in this process, with the shell's ``&&``, ``>`` and globs done
here). A command must exit with 0, or with the code its comment states (``# exits 1: ...``). The numbers the README states about the Zendesk
example are recomputed here with pandas and plain Python from the example's raw files, and the
engine's own count and reconciliation of the same files are compared with that computation.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from truecount.cli.app import _load_verbs, app
from truecount.errors import TruecountError

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ZENDESK = ROOT / "examples" / "zendesk"

#: Blocks not run here, by the start of their first command, each with the reason.
SKIPPED = {
    "python3 -m venv .venv && .venv/bin/pip install -q .": (
        "the install commands: they build a virtual environment and run the demo (tested in "
        "tests/test_demo.py) and the whole test suite, which includes this test"
    ),
    "python3 -m venv .venv && .venv/bin/pip install -e '.[test]'": (
        "development commands act on the checkout itself: an editable install, the whole "
        "suite (which includes this test) and rewriting the golden SQL files"
    ),
    ".venv/bin/pip install -e '.[bench]'": (
        "the benchmark installs extra packages and runs on 10 million tickets for hours"
    ),
}


@dataclass(frozen=True)
class Command:
    block: int
    text: str
    expected: int


@dataclass(frozen=True)
class Result:
    command: Command
    returncode: int
    stdout: str
    stderr: str


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)


def commands_of(block: str, index: int) -> list[Command]:
    """The block's commands: continuation lines joined, comment-only lines left out."""
    out: list[Command] = []
    pending = ""
    for line in block.splitlines():
        if pending:
            line = pending + " " + line.strip()
            pending = ""
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1].rstrip()
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        stated = re.search(r"#.*\bexits (\d)\b", line)
        out.append(Command(index, line.strip(), int(stated.group(1)) if stated else 0))
    assert not pending, f"block {index} ends with a continuation line"
    return out


def skip_reason(block: str) -> str | None:
    first = next((ln for ln in block.splitlines() if ln.strip()), "")
    for start, reason in SKIPPED.items():
        if first.startswith(start):
            return reason
    return None


def hand_review(folder: Path) -> None:
    """What the auditor does between `sample` and `sample --evaluate`: review every item (here:
    every one is found in order). The worksheet's ``#`` lines are its frame and are kept."""
    path = folder / "worksheet.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    head = [ln for ln in lines if ln.startswith("#")]
    rows = list(csv.DictReader([ln for ln in lines if not ln.startswith("#")]))
    assert rows and "review_outcome" in rows[0]
    with path.open("w", newline="", encoding="utf-8") as handle:
        handle.writelines(head)
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "review_outcome": "ok"})


runner = CliRunner()
_load_verbs()  # what the console script does before parsing: register every verb


def run_line(text: str, folder: Path) -> tuple[int, str, str]:
    """Run one README line as bash would, for the few shell features the README uses (``&&``,
    ``> FILE``, globs), calling the CLI in this process: a new interpreter per command would
    cost more than the commands themselves."""
    tokens = shlex.split(text, comments=True)
    segments: list[list[str]] = [[]]
    for token in tokens:
        if token == "&&":
            segments.append([])
        else:
            segments[-1].append(token)
    code, out, err = 0, "", ""
    for segment in segments:
        target = None
        if ">" in segment:
            at = segment.index(">")
            segment, target = segment[:at], segment[at + 1]
        args: list[str] = []
        for token in segment:
            matches = sorted(glob.glob(token, root_dir=folder)) if glob.has_magic(token) else []
            args.extend(matches or [token])
        assert args[0] == "truecount", f"the README runs something other than truecount: {text}"
        result = runner.invoke(app, args[1:])
        if isinstance(result.exception, TruecountError):  # what main() makes of it
            return 2, out + result.stdout, err + result.exception.first_line
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            trace = "".join(traceback.format_exception(result.exception))
            return 99, out + result.stdout, err + trace
        code = result.exit_code
        if target is not None:
            (folder / target).write_text(result.stdout, encoding="utf-8")
        else:
            out += result.stdout
        err += result.stderr
        if code != 0:
            break
    return code, out, err


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[Result]]]:
    """Run every block in order in one fresh folder, as a reader following the README would."""
    folder = tmp_path_factory.mktemp("readme")
    shutil.copytree(ROOT / "examples", folder / "examples")
    results: list[Result] = []
    before = Path.cwd()
    os.chdir(folder)
    try:
        for index, block in enumerate(bash_blocks(README.read_text(encoding="utf-8"))):
            if index == 0 or skip_reason(block) is not None:
                continue
            for command in commands_of(block, index):
                if "sample --evaluate" in command.text:
                    hand_review(folder)
                code, out, err = run_line(command.text, folder)
                results.append(Result(command, code, out, err))
    finally:
        os.chdir(before)
    yield folder, results


def test_blocks_are_found_and_skips_are_stated() -> None:
    blocks = bash_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    assert blocks[0].startswith("python3 -m venv .venv")
    skipped = [b for b in blocks[1:] if skip_reason(b) is not None]
    assert len(skipped) == 2, "a block is skipped that was not meant to be"


def test_every_command_exits_as_stated(readme_run: tuple[Path, list[Result]]) -> None:
    _, results = readme_run
    assert len(results) >= 30
    wrong = [
        f"block {r.command.block}: {r.command.text}\n  exit {r.returncode}, "
        f"expected {r.command.expected}\n  {r.stderr.strip()[-600:]}"
        for r in results
        if r.returncode != r.command.expected
    ]
    assert not wrong, "\n".join(wrong)


def test_stated_exit_codes_are_findings_not_errors(readme_run: tuple[Path, list[Result]]) -> None:
    """A command the README says exits 1 must exit 1 for the stated finding, not a crash."""
    _, results = readme_run
    stated = [r for r in results if r.command.expected == 1]
    assert len(stated) >= 2
    for r in stated:
        assert "Traceback" not in r.stderr
        assert not r.stderr.startswith("error:"), r.stderr


def test_files_the_readme_promises_are_written(readme_run: tuple[Path, list[Result]]) -> None:
    folder, _ = readme_run
    for name in ("verdicts.csv", "schedule.md", "price.svg", "signer.key.pub", "mine.yaml"):
        assert (folder / name).is_file(), name
    for name in ("dispute", "zd-dispute", "pack-2026-Q1"):
        assert any((folder / name).iterdir()), name


# ----------------------------------------------------------------- the Zendesk example's numbers


def zendesk_reference() -> dict[str, object]:
    """The strict definition (support_resolution_strict) over the raw Zendesk files, computed
    from the fields as docs/sources/zendesk.md reads them, without the engine or the adapter."""
    tickets = pd.DataFrame(json.loads((ZENDESK / "tickets.json").read_text())["tickets"])
    audits = [json.loads(line) for line in (ZENDESK / "ticket_audits.jsonl").open()]
    ratings = pd.DataFrame(
        json.loads((ZENDESK / "satisfaction_ratings.json").read_text())["satisfaction_ratings"]
    )
    tickets["created"] = pd.to_datetime(tickets["created_at"])
    ratings["ts"] = pd.to_datetime(ratings["updated_at"])
    ratings["value"] = ratings["score"].map({"good": 5, "bad": 1})
    requester = dict(zip(tickets["id"], tickets["requester_id"], strict=True))
    ai_ticket = dict(zip(tickets["id"], tickets["via"].map(lambda v: v["channel"]), strict=True))
    ai_ticket = {t: c == "native_messaging" for t, c in ai_ticket.items()}

    closed_like = {"solved", "closed"}
    first_ai_close: dict[int, pd.Timestamp] = {}
    reopens: list[tuple[int, pd.Timestamp]] = []
    human_messages: list[tuple[int, pd.Timestamp]] = []
    escalated: set[int] = set()
    times = [t for t in tickets["created"]] + list(ratings["ts"])
    for audit in sorted(audits, key=lambda a: (a["created_at"], a["id"])):
        tid, at = audit["ticket_id"], pd.Timestamp(audit["created_at"])
        times.append(at)
        hands_over = any(
            e["type"] == "Change"
            and (e["field_name"] == "group_id" or (e["field_name"] == "assignee_id" and e["value"]))
            for e in audit["events"]
        )
        if ai_ticket[tid] and hands_over:
            escalated.add(tid)

        def actor(author: int, tid: int = tid) -> str:
            if author == requester[tid]:
                return "customer"
            if ai_ticket[tid] and tid not in escalated:
                return "ai"
            return "system" if author == -1 else "human"

        for e in audit["events"]:
            if e["type"] == "Comment" and e["public"] and actor(e["author_id"]) == "human":
                human_messages.append((tid, at))
            if e["type"] != "Change" or e["field_name"] != "status":
                continue
            was, now = e["previous_value"], e["value"]
            ai_close = now in closed_like and was not in closed_like
            if ai_close and actor(audit["author_id"]) == "ai" and tid not in first_ai_close:
                first_ai_close[tid] = at
            if was in closed_like and now in {"new", "open", "pending", "hold"}:
                reopens.append((tid, at))
    followups = tickets.dropna(subset=["via_followup_source_id"])
    as_of = max(times)

    day = timedelta(days=1)
    verdicts: dict[int, str] = {}
    for tid, close in first_ai_close.items():
        if close + 14 * day > as_of:
            verdicts[tid] = "pending"
            continue
        in_14 = [t for k, t in reopens if k == tid and close <= t <= close + 14 * day]
        fu = followups[
            (followups["via_followup_source_id"] == tid)
            & (followups["created"] >= close)
            & (followups["created"] <= close + 14 * day)
        ]
        rated = ratings[
            (ratings["ticket_id"] == tid)
            & (ratings["ts"] >= close)
            & (ratings["ts"] <= close + 7 * day)
        ].sort_values("ts")
        satisfied = not rated.empty and rated["value"].iloc[-1] >= 4
        human = [t for k, t in human_messages if k == tid and close - 365 * day <= t <= close]
        ok = not in_14 and fu.empty and satisfied and not human
        verdicts[tid] = "counted" if ok else "not_counted"

    invoice = pd.read_csv(ZENDESK / "invoice.csv", dtype={"entity_id": str})
    invoice["period"] = pd.to_datetime(invoice["billed_at"]).dt.strftime("%Y-%m")
    counted = pd.Series(
        {t: first_ai_close[t].strftime("%Y-%m") for t, v in verdicts.items() if v == "counted"}
    )
    price = float(invoice["amount"].iloc[0])
    due = 0.0
    for period, lines in invoice.groupby("period"):
        buyer = int((counted == period).sum())
        billed = lines["entity_id"].nunique()
        beyond = buyer == 0 or abs(billed - buyer) / buyer > 0.02
        due += buyer * price if beyond else float(lines["amount"].sum())
    known = {str(t) for t in tickets["id"]}
    return {
        "invoice_lines": len(invoice),
        "billed_entities": invoice["entity_id"].nunique(),
        "billed_twice": int(invoice["entity_id"].duplicated().sum()),
        "not_in_export": int((~invoice["entity_id"].drop_duplicates().isin(known)).sum()),
        "amount_billed": round(float(invoice["amount"].sum()), 2),
        "candidates": len(first_ai_close),
        "counted": sum(v == "counted" for v in verdicts.values()),
        "pending": sum(v == "pending" for v in verdicts.values()),
        "due": round(due, 2),
        "credit": round(float(invoice["amount"].sum()) - due, 2),
        "verdicts": verdicts,
        "tickets": len(tickets),
    }


def money(text: str) -> float:
    return float(text.replace("$", "").replace(",", ""))


def test_readme_numbers_about_the_zendesk_example() -> None:
    text = README.read_text(encoding="utf-8")
    ref = zendesk_reference()
    stated = re.search(
        r"The invoice bills (\d+) tickets on (\d+) lines \(one billed twice, one not in the "
        r"export\): (\$[\d.,]+)\.\s+The strict definition counts (\d+) of the (\d+) tickets the "
        r"AI closed first \((\d+) more are still\s+pending at the end of the export\), so "
        r"(\$[\d.,]+) is due and (\$[\d.,]+) is credited\.",
        text,
    )
    assert stated, "the README's sentence about the Zendesk example changed; update this test"
    billed, lines, amount, counted, candidates, pending, due, credit = stated.groups()
    assert (ref["billed_twice"], ref["not_in_export"]) == (1, 1)
    assert int(billed) == ref["billed_entities"]
    assert int(lines) == ref["invoice_lines"]
    assert money(amount) == ref["amount_billed"]
    assert int(counted) == ref["counted"]
    assert int(candidates) == ref["candidates"]
    assert int(pending) == ref["pending"]
    assert money(due) == ref["due"]
    assert money(credit) == ref["credit"]
    assert f"({ref['tickets']} tickets:" in text


def test_engine_agrees_with_the_reference_on_the_zendesk_example(
    readme_run: tuple[Path, list[Result]],
) -> None:
    """The workspace the README built (zd), counted and reconciled, against the reference."""
    folder, _ = readme_run
    ref = zendesk_reference()
    ws, definition = str(folder / "zd"), str(folder / "mine.yaml")
    out = folder / "zd-verdicts.csv"
    done = runner.invoke(
        app, ["count", definition, "-w", ws, "--format", "json", "--out", str(out)]
    )
    assert done.exit_code == 0, done.stderr
    report = json.loads(done.stdout)
    assert sum(p["counted"] for p in report["periods"]) == ref["counted"]
    assert sum(p["pending"] for p in report["periods"]) == ref["pending"]
    assert sum(p["candidates"] for p in report["periods"]) == ref["candidates"]
    verdicts = pd.read_csv(out, dtype={"entity_id": str})
    engine = dict(zip(verdicts["entity_id"], verdicts["status"], strict=True))
    assert engine == {str(t): v for t, v in ref["verdicts"].items()}  # type: ignore[attr-defined]
    done = runner.invoke(
        app,
        [
            "reconcile",
            definition,
            "-w",
            ws,
            "--invoice",
            str(ZENDESK / "invoice.csv"),
            "--terms",
            str(ZENDESK / "terms.yaml"),
            "--format",
            "json",
        ],
    )
    assert done.exit_code == 1, done.stderr  # beyond tolerance, as the README says
    totals = json.loads(done.stdout)["totals"]
    assert totals["vendor_lines"] == ref["invoice_lines"]
    assert totals["vendor_billed"] == ref["billed_entities"]
    assert (totals["unknown"], totals["duplicate"]) == (1, 1)
    assert float(totals["amount_billed"]) == ref["amount_billed"]
    assert float(totals["amount_due"]) == ref["due"]
    assert float(totals["credit"]) == ref["credit"]


# ----------------------------------------------------------------- the platform examples


@pytest.mark.parametrize("workspace", ["zd", "ic", "sf", "sn"])
def test_platform_examples_load_whole(
    readme_run: tuple[Path, list[Result]], workspace: str
) -> None:
    """Every record of each platform's example is loaded: nothing quarantined, and events from
    that platform's adapter (ServiceNow's surveys come through a mapping)."""
    folder, _ = readme_run
    done = runner.invoke(app, ["quarantine", "-w", str(folder / workspace), "--format", "json"])
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["total"] == 0


@pytest.mark.parametrize("platform", ["zendesk", "intercom", "salesforce", "servicenow"])
def test_examples_match_their_generators(tmp_path: Path, platform: str) -> None:
    """The committed files are exactly what the folder's generate.py writes (it is seeded)."""
    committed = ROOT / "examples" / platform
    shutil.copy(committed / "generate.py", tmp_path / "generate.py")
    done = subprocess.run(
        [sys.executable, str(tmp_path / "generate.py")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    written = {p.name for p in tmp_path.iterdir() if p.name != "generate.py"}
    assert written, "the generator wrote nothing"
    for name in written:
        assert (committed / name).read_bytes() == (tmp_path / name).read_bytes(), name
    hand_written = {p.name for p in committed.iterdir()} - written - {"generate.py"}
    assert hand_written <= {"terms.yaml", "survey_mapping.yaml"}, hand_written
    size = sum(p.stat().st_size for p in committed.iterdir())
    assert size < 300_000, f"examples/{platform} is {size:,} bytes"
