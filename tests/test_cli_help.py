"""The help a user reads: the version, verbs grouped by task, values named in words, and
``--format`` offering only what each verb prints.

The verbs are walked from the Click tree Typer builds, so a verb or option added later is held
to the same rules without editing this file.
"""

from __future__ import annotations

import importlib.metadata
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from test_bad_inputs import run_cli
from truecount.cli.app import PANELS, _load_verbs, app

_load_verbs()
runner = CliRunner()
ROOT = typer.main.get_command(app)

#: The panel each verb belongs to: what a user does with it in a month's work.
EXPECTED_PANEL = {
    "demo": "Start",
    "init": "Start",
    "definitions": "Start",
    "new": "Start",
    "schema": "Start",
    "ingest": "Data",
    "sources": "Data",
    "quarantine": "Data",
    "check": "Data",
    "export": "Data",
    "invoices": "Data",
    "count": "Count",
    "explain": "Count",
    "sql": "Count",
    "reconcile": "Bill",
    "report": "Bill",
    "serve": "Bill",
    "evidence": "Audit",
    "verify": "Audit",
    "prove": "Audit",
    "keygen": "Audit",
    "sample": "Audit",
    "drift": "Audit",
    "watch": "Audit",
    "replay": "Audit",
    "versions": "Audit",
    "meter": "Audit",
    "log": "Audit",
    "clauses": "Contract",
    "price": "Contract",
}

#: What Typer and Click print when a value has no metavar: Python types, not words.
PYTHON_NAMES = re.compile(
    r"<(?:path|str|int|float|bool|file|list\[[^\]]*\]|int range|float range|datetime)>"
    r"|\b(?:PATH|TEXT|INTEGER|FLOAT|BOOLEAN)\b"
)


def _leaves(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every verb and sub-verb (Typer's own Click copy: its classes are duck-typed here)."""
    found: list[tuple[str, ...]] = []
    for name, cmd in group.commands.items():
        found.append((*prefix, name))
        if getattr(cmd, "commands", None):
            found.extend(_leaves(cmd, (*prefix, name)))
    return found


COMMANDS = _leaves(ROOT)


def _help(*words: str) -> str:
    result = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_package_version(flag: str) -> None:
    result = runner.invoke(app, [flag])
    assert result.exit_code == 0
    assert result.output == f"truecount {importlib.metadata.version('truecount')}\n"


def test_every_verb_is_listed_once_under_its_panel() -> None:
    text = _help()
    panel = None
    seen: dict[str, str] = {}
    order: list[str] = []
    for line in text.splitlines():
        header = re.match(r"\s*╭─ (\w+) ─", line)
        if header:
            panel = header.group(1)
            order.append(panel)
            continue
        row = re.match(r"│ (\w[\w-]*)\s{2,}", line)
        if row and panel not in (None, "Options"):
            name = row.group(1)
            assert name not in seen, f"{name} listed twice ({seen[name]}, {panel})"
            assert panel is not None
            seen[name] = panel
    assert seen == EXPECTED_PANEL
    assert [p for p in order if p != "Options"] == list(PANELS)


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_help_names_values_in_words(words: tuple[str, ...]) -> None:
    text = _help(*words)
    found = sorted({m.group(0) for m in PYTHON_NAMES.finditer(text)})
    assert not found, f"truecount {' '.join(words)} --help shows {found}"


def _format_choices(words: tuple[str, ...]) -> list[str] | None:
    cmd: Any = ROOT
    for w in words:
        cmd = cmd.commands[w]
    for p in cmd.params:
        if "--format" in getattr(p, "opts", ()):
            text = _help(*words)
            shown = re.search(r"--format\s+(?:-f\s+)?<([\w|]+)>", text)
            assert shown, text
            return shown.group(1).split("|")
    return None


#: The formats each verb really prints; anything else must not be offered.
ACCEPTED = {
    ("count",): ["table", "json", "csv"],
    ("export",): ["parquet"],
    ("clauses",): ["md", "html", "json"],
    ("watch", "add"): ["text", "json"],
    ("watch", "diff"): ["text", "json"],
}


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_format_offers_only_what_the_verb_prints(words: tuple[str, ...]) -> None:
    choices = _format_choices(words)
    if choices is None:
        return  # this verb has no --format
    assert choices == ACCEPTED.get(words, ["table", "json"])


def test_format_csv_is_refused_by_click_where_not_printed() -> None:
    result = runner.invoke(app, ["quarantine", "--format", "csv"])
    assert result.exit_code == 2
    assert "'csv' is not one of" in result.output or "Invalid value" in result.output


# --------------------------------------------------------------------------- rates
#: Every rate option, with a command that reaches it on the small files of ``rate_folder`` and
#: one rate written as a percentage and as a fraction. ``{out}`` is a file the run writes.
RATE_CASES: dict[tuple[str, str], tuple[list[str], str, str]] = {
    ("check", "--min-coverage"): (["check", "def.yaml", "--events", "ev.csv", "-f", "json"], "50%", "0.5"),
    ("drift", "--baseline-rate"): (["drift", "def.yaml", "-i", "inv.csv", "--events", "ev.csv", "-f", "json"], "2%", "0.02"),
    ("report", "--baseline-rate"): (["report", "def.yaml", "-i", "inv.csv", "--events", "ev.csv", "-o", "{out}"], "2%", "0.02"),
    ("sample", "--tolerable"): (["sample", "pack", "-o", "{out}", "-f", "json"], "7%", "0.07"),
    ("sample", "--confidence"): (["sample", "pack", "-o", "{out}", "-f", "json"], "90%", "0.9"),
    ("sample", "--expected"): (["sample", "pack", "-o", "{out}", "-f", "json"], "2%", "0.02"),
    ("price", "--drift"): (["price", "terms.yaml", "--volume", "9000", "--draws", "200", "-f", "json"], "8%", "0.08"),
    ("price", "--buyer-premium"): (["price", "terms.yaml", "--volume", "9000", "--draws", "200", "-f", "json"], "15%", "0.15"),
    ("price", "--drift-sd"): (["price", "terms.yaml", "--volume", "9000", "--draws", "200", "-f", "json"], "3%", "0.03"),
    ("price", "--volume-sd"): (["price", "terms.yaml", "--volume", "9000", "--draws", "200", "-f", "json"], "30%", "0.3"),
}  # fmt: skip

DEFINITION = """\
truecount: 1
name: closed
version: 1
unit: ticket
period: {every: month, timezone: UTC}
anchor: {type: closed, pick: first}
quantity: 1
"""


def _rate_options() -> set[tuple[str, str]]:
    found = set()
    for words in COMMANDS:
        cmd: Any = ROOT
        for w in words:
            cmd = cmd.commands[w]
        for p in getattr(cmd, "params", []):
            if p.metavar == "RATE":
                found.add((" ".join(words), p.opts[0]))
    return found


@pytest.fixture(scope="module")
def rate_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rates")
    (folder / "def.yaml").write_text(DEFINITION, encoding="utf-8")
    rows = [f"a{i},T-{i},2026-{i:02d}-01T00:00:00,closed,ai" for i in range(1, 5)]
    (folder / "ev.csv").write_text("event_id,entity_id,ts,type,actor\n" + "\n".join(rows) + "\n")
    # T-3 not billed, T-5 billed but not in the export: a small finding in every table
    lines = [f"L{i},T-{i},2026-{m:02d}-01 00:00:00,2026-{m:02d},5.00,USD" for i, m in
             ((1, 1), (2, 2), (4, 4), (5, 3))]  # fmt: skip
    (folder / "inv.csv").write_text(
        "line_id,entity_id,billed_at,period,amount,currency\n" + "\n".join(lines) + "\n"
    )
    (folder / "terms.yaml").write_text("truecount_terms: 1\ncurrency: USD\nunit_price: 5.00\n")
    code, out, err = run_cli(["reconcile", "def.yaml", "-i", "inv.csv", "--events", "ev.csv",
                              "-o", "pack"], folder)  # fmt: skip
    assert code in (0, 1), err or out
    return folder


def test_every_rate_option_is_listed_here() -> None:
    """A new rate option must join RATE_CASES, so that the rule below is proven for it."""
    assert _rate_options() == {(verb, opt) for verb, opt in RATE_CASES}


def _run_rate(folder: Path, case: tuple[str, str], value: str, tag: str) -> tuple[int, str]:
    args, _, _ = RATE_CASES[case]
    out = f"{case[0]}{case[1]}-{tag}.{'html' if case[0] == 'report' else 'csv'}"
    code, said, err = run_cli([*(a.replace("{out}", out) for a in args), case[1], value], folder)
    text = said + err
    if case[0] == "report" and (folder / out).is_file():
        text += (folder / out).read_text(encoding="utf-8")
    return code, text.replace(out, "OUT")


@pytest.mark.parametrize("case", sorted(RATE_CASES), ids=[" ".join(c) for c in sorted(RATE_CASES)])
def test_a_rate_is_a_percentage_or_a_fraction(rate_folder: Path, case: tuple[str, str]) -> None:
    _, percent, fraction = RATE_CASES[case]
    code, as_percent = _run_rate(rate_folder, case, percent, "p")
    assert code in (0, 1), as_percent
    spaced = _run_rate(rate_folder, case, percent.replace("%", " %"), "s")
    assert spaced == (code, as_percent)
    assert _run_rate(rate_folder, case, fraction, "f") == (code, as_percent)
    # a bare number above 1 could be either: refused, naming the option and both forms
    bare = percent.removesuffix("%")
    code, said = _run_rate(rate_folder, case, bare, "b")
    assert code == 2, said
    assert case[1] in said and f"{bare}%" in said and "traceback" not in said.lower()


# --------------------------------------------------------------------------- help text
#: Help that still names a file of the source tree, to be reworded by the verb's module.
SOURCE_TREE_KNOWN: dict[tuple[str, ...], str] = {}


@pytest.mark.parametrize(
    "words",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=SOURCE_TREE_KNOWN[c]))
        if c in SOURCE_TREE_KNOWN
        else c
        for c in [(), *COMMANDS]
    ],
    ids=["truecount", *(" ".join(c) for c in COMMANDS)],
)
def test_help_points_at_no_file_of_the_source_tree(words: tuple[str, ...]) -> None:
    """A pip user has no examples/, docs/, bench/ or tests/ folder: help names none of them."""
    text = _help(*words)
    found = re.findall(r"\b(?:examples|docs|bench|tests)/[\w./-]*", text)
    assert not found, f"truecount {' '.join(words)} --help points at {found}"


# --------------------------------------------------------------------------- dialects
@pytest.mark.parametrize(
    ("verb", "given", "name"),
    [("sql", "SPARK", "spark"), ("sql", "BigQuery", "bigquery"), ("clauses", "Trino", "trino")],
)
def test_dialect_names_ignore_case(rate_folder: Path, verb: str, given: str, name: str) -> None:
    def run(dialect: str) -> tuple[int, str, str]:
        return run_cli([verb, "def.yaml", "--dialect", dialect, "--as-of", "2026-02-01"],
                       rate_folder)  # fmt: skip

    assert run(given) == run(name)
    assert run(given)[0] == 0


@pytest.mark.parametrize(("verb", "typo", "meant"), [("sql", "snowflak", "snowflake"),
                                                    ("clauses", "DuckBD", "duckdb")])  # fmt: skip
def test_a_misspelt_dialect_gets_a_did_you_mean(
    rate_folder: Path, verb: str, typo: str, meant: str
) -> None:
    code, _, err = run_cli([verb, "def.yaml", "--dialect", typo], rate_folder)
    assert code == 2
    assert f"did you mean '{meant}'?" in err and "postgres" in err  # the hint and the list


# --------------------------------------------------------------------------- price
def _price(folder: Path, *extra: str) -> str:
    code, out, err = run_cli(["price", "terms.yaml", "--volume", "9000", "--draws", "300",
                              *extra], folder)  # fmt: skip
    assert code == 0, err or out
    return out


def _break_even(drift: float, months: int) -> float:
    """1 - M / S, S the sum of the monthly growth factors: by plain summation, in percent and
    rounded up to 0.01% as the contract figure is."""
    growth = sum((1 + drift) ** (m / 12) for m in range(months))
    return math.ceil((1 - months / growth) * 10000 - 1e-9) / 100


def test_price_names_one_break_even_discount_with_its_meaning(rate_folder: Path) -> None:
    out = _price(rate_folder, "--drift", "15%", "--cap", "600000", "--platform-fee", "5000")
    words = " ".join(out.split())  # the console wraps long lines
    after_tables = words.split("LogNormal(0, volume-sd)")[-1]
    figures = after_tables.split("note:")[0]
    assert len(re.findall(r"\bdiscount\b", figures)) == 1, figures
    said = re.search(r"drift-adjusted discount \(break-even\): ([\d.]+)% off the vendor-defined "
                     r"unit price keeps the term's cost at its level without drift", figures)  # fmt: skip
    assert said, figures
    assert float(said.group(1)) == _break_even(0.15, 24)
    # the comparison with the buyer-defined option is a price and a share, not a discount
    assert re.search(r"buyer-defined at 5\.50 USD costs [\d.]+% (less|more) than", figures)


def test_price_shows_prices_with_one_number_of_decimals_and_labels(rate_folder: Path) -> None:
    out = _price(rate_folder, "--drift", "15%")
    rows = [
        line.split() for line in out.splitlines() if re.match(r"\s+(vendor|hybrid|buyer)", line)
    ]
    table = rows[:4]  # the exact table; the risk table follows
    prices = [next(w for w in r if re.fullmatch(r"\d+\.\d+", w)) for r in table]
    assert {len(p.split(".")[1]) for p in prices} == {3}, prices  # 4.359 sets the column
    assert [float(p) for p in prices] == [5.0, 4.359, 5.0, 5.5]
    for r in rows:
        money = [w for w in r if re.fullmatch(r"[\d,]+\.\d+", w) and "," in w]
        assert money and all(len(m.split(".")[1]) == 2 for m in money), r
    # options are named by their labels everywhere, never by their JSON keys
    assert not re.search(r"vendor_headline|vendor_discounted|buyer_defined", out)
    assert "cheapest: vendor-defined, discounted" in " ".join(out.split())


def _lines(svg: str) -> tuple[list[tuple[str, str, str, str]], list[str]]:
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    polylines = [
        (p.get("points", ""), p.get("stroke", ""), p.get("stroke-dasharray", ""),
         p.get("stroke-width", ""))
        for p in root.iter(f"{ns}polyline")
    ]  # fmt: skip
    return polylines, [t.text or "" for t in root.iter(f"{ns}text")]


def test_price_chart_hides_no_line_under_another(rate_folder: Path) -> None:
    # no drift, no fee, no cap: three vendor-defined options cost the same every month
    _price(rate_folder, "--chart", "flat.svg")
    polylines, texts = _lines((rate_folder / "flat.svg").read_text(encoding="utf-8"))
    assert len(polylines) == 4
    same = [p for p in polylines if [q[0] for q in polylines].count(p[0]) > 1]
    assert len(same) == 3  # the same points three times ...
    assert len({p[1:] for p in same}) == 3  # ... drawn three different ways
    widths = [float(p[3]) for p in same]
    assert widths == sorted(widths, reverse=True)  # widest first: each stays visible
    legend = [t for t in texts if "USD" in t and ":" in t]
    assert sum("same line as vendor-defined, headline" in t for t in legend) == 2, legend
    # with drift and a fee the lines part, and the legend says nothing of the kind
    _price(rate_folder, "--drift", "15%", "--platform-fee", "5000", "--chart", "apart.svg")
    polylines, texts = _lines((rate_folder / "apart.svg").read_text(encoding="utf-8"))
    assert len({p[0] for p in polylines}) == 4
    assert not any("same line" in t for t in texts)


def test_panels_keep_their_order_when_a_verb_module_was_imported_first() -> None:
    """A library caller (or a test) that imports one verb module before the CLI loads the rest
    registers that verb first; help still lists the panels in their fixed order."""
    import subprocess
    import sys

    code = (
        "import re, truecount.cli.report_cmds, truecount.cli.check_cmds\n"
        "from typer.testing import CliRunner\n"
        "from truecount.cli.app import _load_verbs, app\n"
        "_load_verbs()\n"
        "out = CliRunner().invoke(app, ['--help'], env={'COLUMNS': '200'}).output\n"
        "print(','.join(re.findall(r'╭─ (\\w+) ─', out)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, encoding="utf-8"
    )
    order = [p for p in done.stdout.strip().split(",") if p != "Options"]
    assert order == list(PANELS)
