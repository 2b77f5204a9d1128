"""The dashboard (``truecount serve``) through a real HTTP client: every page renders, the figures
shown equal ``reconcile --format json`` and ``drift --format json`` for the same inputs, bad ids
answer 404, the token is enforced, user text is escaped, and the store is never written."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import shutil
import warnings
import zipfile
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from browser import DemoFiles, make_workspace
from truecount.billing.reconcile import CELLS
from truecount.cli.app import _load_verbs, app
from truecount.history.versions import add_version
from truecount.ingest.load import ingest_files
from truecount.watch.store import add_file, ensure_watch_schema
from truecount.web import Dashboard, MeterKey, create_app
from truecount.web.sources import add_invoice, folder_invoices
from truecount.workspace import Workspace

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TOKEN = "s3cret-token-for-tests"


class Figures(HTMLParser):
    """Every ``data-figure`` on a page: name -> (data-value, visible text)."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, tuple[str, str]] = {}
        self._open: list[tuple[str, str, list[str]]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(str(a["href"]))
        if "data-figure" in a:
            self._open.append((str(a["data-figure"]), str(a.get("data-value")), []))

    def handle_data(self, data: str) -> None:
        for _, _, text in self._open:
            text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("span", "a", "strong") and self._open:
            name, value, text = self._open.pop()
            self.figures[name] = (value, "".join(text).strip())


def figures(html: str) -> Figures:
    parser = Figures()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoFiles:
    return make_workspace(tmp_path_factory.mktemp("web") / "demo")


@pytest.fixture(scope="module")
def board(demo: DemoFiles) -> Dashboard:
    return Dashboard(Workspace.open(demo.workspace))


@pytest.fixture(scope="module")
def client(board: Dashboard) -> TestClient:
    return TestClient(create_app(board))


def cli_json(*args: str) -> dict[str, Any]:
    _load_verbs()
    res = CliRunner().invoke(app, [*args, "--format", "json"])
    assert res.exit_code in (0, 1), res.output
    data: dict[str, Any] = json.loads(res.stdout)
    return data


@pytest.fixture(scope="module")
def recon_json(demo: DemoFiles) -> dict[str, Any]:
    return cli_json(
        "reconcile", str(demo.definition), "--invoice", str(demo.invoice), "--terms",
        str(demo.terms), "-w", str(demo.workspace),
    )  # fmt: skip


def meter_path(board: Dashboard) -> str:
    keys = board.meters()
    assert [k.invoice for k in keys] == ["2026-q1"]
    return keys[0].path


def as_value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def test_every_page_renders(client: TestClient, board: Dashboard) -> None:
    path = meter_path(board)
    pages = ["/", "/versions", "/watch", path, f"{path}/period/2026-01", f"{path}/drift"]
    pages += [f"{path}/cell/{c}" for c in CELLS]
    for url in pages:
        r = client.get(url)
        assert r.status_code == 200, url
        assert "Traceback" not in r.text
        assert r.headers["content-security-policy"].startswith("default-src 'none'")
    page = figures(client.get(f"{path}/cell/vendor_only").text)
    entity = next(x for x in page.links if "/entity/" in x)
    r = client.get(entity)
    assert r.status_code == 200 and "<h2>Events</h2>" in r.text
    assert client.get("/static/app.js").status_code == 200


def test_overview_figures_equal_reconcile_json(
    client: TestClient, board: Dashboard, recon_json: dict[str, Any]
) -> None:
    page = figures(client.get(meter_path(board)).text)
    t = recon_json["totals"]
    for name in ("vendor_billed", "buyer_counted", "vendor_lines", *CELLS):
        value, text = page.figures[f"totals.{name}"]
        assert value == str(t[name]) and text.replace(",", "") == str(t[name]), name
    for name in ("amount_billed", "amount_due", "credit"):
        value, text = page.figures[f"totals.{name}"]
        assert value == t[name]
        assert text.split()[0].replace(",", "") == t[name] and text.endswith("USD")
    assert page.figures["beyond_tolerance"][0] == as_value(t["beyond_tolerance"])
    assert [p["period"] for p in recon_json["periods"]] == sorted(
        {k.split(".")[1] for k in page.figures if k.startswith("periods.")}
    )
    for p in recon_json["periods"]:
        for name in ("vendor_billed", "buyer_counted", *CELLS, "amount_due", "credit"):
            assert page.figures[f"periods.{p['period']}.{name}"][0] == as_value(p[name])
    for i, step in enumerate(recon_json["waterfall"]):
        assert page.figures[f"waterfall.{i}.entities"][0] == str(step["entities"])
    # the overview's card says the same
    card = figures(client.get("/").text)
    assert card.figures["totals.credit"][0] == t["credit"]
    assert card.figures["totals.vendor_billed"][0] == str(t["vendor_billed"])


def test_independent_check_of_the_cells(board: Dashboard, recon_json: dict[str, Any]) -> None:
    """The entities behind the cells add up to the JSON's totals (an independent tally)."""
    result = board.meter(MeterKey("resolved_ticket", 1, "2026-q1"))
    assert result is not None and result.entities is not None
    tally: dict[str, int] = {}
    for cell in result.entities.column("cell").to_pylist():
        tally[cell] = tally.get(cell, 0) + 1
    for cell in ("agreed", "vendor_only", "pending", "duplicate", "period_mismatch"):
        assert tally.get(cell, 0) == recon_json["totals"][cell], cell


def test_period_and_cell_pages(
    client: TestClient, board: Dashboard, recon_json: dict[str, Any]
) -> None:
    path = meter_path(board)
    p = recon_json["periods"][0]
    page = figures(client.get(f"{path}/period/{p['period']}").text)
    for name in ("vendor_billed", "buyer_counted", *CELLS):
        assert page.figures[f"period.{name}"][0] == str(p[name])
    cell = figures(client.get(f"{path}/cell/vendor_only").text)
    assert cell.figures["rows.total"][0] == str(recon_json["totals"]["vendor_only"])
    # search narrows down to ids containing the text
    one = next(x for x in cell.links if "/entity/" in x).rsplit("/", 1)[1]
    found = figures(client.get(f"{path}/cell/vendor_only", params={"q": one}).text)
    assert found.figures["rows.total"][0] == "1"
    assert client.get(f"{path}/cell/nonsense").status_code == 404


def test_drift_page_equals_drift_json(
    client: TestClient, board: Dashboard, demo: DemoFiles
) -> None:
    data = cli_json(
        "drift", str(demo.definition), "--invoice", str(demo.invoice), "-w", str(demo.workspace)
    )
    page = figures(client.get(f"{meter_path(board)}/drift").text)
    assert page.figures["drift.alarm"][0] == as_value(data["alarm"])
    assert page.figures["drift.watched"][0] == str(data["watched"]["entities"])
    assert float(page.figures["drift.baseline.rate"][0]) == pytest.approx(
        data["baseline"]["rate"], rel=1e-12
    )
    for row in data["periods"]:
        k = f"drift.periods.{row['period']}."
        assert page.figures[k + "vendor_only"][0] == str(row["vendor_only"])
        assert float(page.figures[k + "vendor_only_rate"][0]) == pytest.approx(
            row["vendor_only_rate"], rel=1e-12
        )


def test_entity_page_is_explain(client: TestClient, board: Dashboard, demo: DemoFiles) -> None:
    path = meter_path(board)
    cell = figures(client.get(f"{path}/cell/vendor_only").text)
    entity = next(x for x in cell.links if "/entity/" in x).rsplit("/", 1)[1]
    _load_verbs()
    res = CliRunner().invoke(
        app,
        ["explain", str(demo.definition), entity, "-w", str(demo.workspace), "--format", "json"],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    html = client.get(f"{path}/entity/{entity}").text
    page = figures(html)
    assert page.figures["entity.cell"][0] == "vendor_only"
    for i, a in enumerate(data["anchors"]):
        assert page.figures[f"anchor.{i}.status"][0] == a["status"]
        for c in a["conditions"]:
            assert f'data-condition="{c["name"]}" data-value="{as_value(c["passed"])}"' in html
    assert html.count('<tr id="ev-') == len(data["events"])


def test_downloads(client: TestClient, board: Dashboard, recon_json: dict[str, Any]) -> None:
    path = meter_path(board)
    r = client.get(f"{path}/download/verdicts.csv")
    assert r.status_code == 200 and r.text.startswith("entity_id,")
    r = client.get(f"{path}/download/verdicts.parquet")
    table = pq.read_table(io.BytesIO(r.content))
    result = board.meter(MeterKey("resolved_ticket", 1, "2026-q1"))
    assert result is not None and table.num_rows == result.count_totals.candidates
    r = client.get(f"{path}/download/dispute.zip")
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        names = set(zf.namelist())
        assert {"dispute/entities.csv", "dispute/reconciliation.json"} <= names
        pack = json.loads(zf.read("dispute/reconciliation.json"))
    assert pack["totals"] == recon_json["totals"]
    assert client.get(f"{path}/download/other.txt").status_code == 404
    if board.report_available():  # truecount report, for the same inputs
        r = client.get(f"{path}/download/report.html")
        assert r.status_code == 200 and "<html" in r.text[:500].lower()
        assert recon_json["totals"]["credit"] in r.text.replace(",", "")


def test_bad_ids_and_paths_are_404(client: TestClient, board: Dashboard) -> None:
    path = meter_path(board)
    for url in (
        "/nope",
        "/d/resolved_ticket/9/2026-q1",
        "/d/nobody/1/-",
        "/d/resolved_ticket/1/no-such-invoice",
        "/d/resolved_ticket/1/..%2F..%2Fetc",
        f"{path}/period/1999-01",
        f"{path}/entity/no-such-ticket",
        f"{path}/entity/%3Cscript%3E",
        "/static/../meters.py",
        "/d/resolved_ticket/x/-",
    ):
        r = client.get(url)
        assert r.status_code == 404, url
        assert "Traceback" not in r.text


def test_token_is_required_on_every_request(board: Dashboard) -> None:
    guarded = TestClient(create_app(board, token=TOKEN))
    assert guarded.get("/").status_code == 401
    assert (
        guarded.get("/", headers={"authorization": "Bearer wrong-token-xxxxxxx"}).status_code == 401
    )
    assert guarded.get("/static/app.css").status_code == 401
    assert guarded.get("/", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert guarded.get("/", headers={"x-truecount-token": TOKEN}).status_code == 200
    r = guarded.get(f"/?token={TOKEN}")
    assert r.status_code == 200 and "truecount_token" in r.headers["set-cookie"]
    # the cookie set by the link lets the pages' own links work
    assert guarded.get("/versions").status_code == 200


def test_non_loopback_host_needs_a_token(demo: DemoFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    started: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append({"app": app, **kw}))
    _load_verbs()
    runner = CliRunner()
    res = runner.invoke(app, ["serve", "-w", str(demo.workspace), "--host", "0.0.0.0"])
    assert res.exit_code == 2 and "--token" in res.output
    res = runner.invoke(
        app, ["serve", "-w", str(demo.workspace), "--host", "0.0.0.0", "--token", "short"]
    )
    assert res.exit_code == 2
    assert started == []
    res = runner.invoke(
        app, ["serve", "-w", str(demo.workspace), "--host", "0.0.0.0", "--token", TOKEN]
    )
    assert res.exit_code == 0, res.output
    assert started[-1]["host"] == "0.0.0.0" and started[-1]["app"].token == TOKEN
    res = runner.invoke(app, ["serve", "-w", str(demo.workspace), "--port", "8123"])
    assert res.exit_code == 0 and "http://127.0.0.1:8123/" in res.stdout
    assert started[-1]["host"] == "127.0.0.1" and started[-1]["app"].token is None


def test_hostile_ids_are_escaped(tmp_path: Path) -> None:
    hostile = '<script>alert("x")</script>&\'"'
    base = dt.datetime(2026, 1, 5, 10)
    rows = [
        ("e1", hostile, base, "created", "customer"),
        ("e2", hostile, base + dt.timedelta(minutes=5), "closed", "ai"),
        ("e3", hostile, base + dt.timedelta(days=1), "rated", "customer"),
        ("e4", "T2", base, "created", "customer"),
    ]
    events = tmp_path / "events.parquet"
    pq.write_table(
        pa.table(
            {
                "event_id": [r[0] for r in rows],
                "entity_id": [r[1] for r in rows],
                "ts": [r[2] for r in rows],
                "type": [r[3] for r in rows],
                "actor": [r[4] for r in rows],
                "value": [None, None, 5.0, None],
            }
        ),
        events,
    )
    ws = Workspace.init(tmp_path / "ws")
    ingest_files(ws, [events])
    from truecount.cli.demo_cmds import package_text

    text = package_text("resolved_ticket.yaml")
    definition = tmp_path / "d.yaml"
    definition.write_text(
        re.sub(r"(?m)^description:.*$", "description: <b>bold</b> & <i>it</i>", text),
        encoding="utf-8",
    )
    add_version(ws, definition, "2026-01-01")
    invoice = tmp_path / "inv.csv"
    invoice.write_text(
        'entity_id,billed_at,amount\n"<script>alert(""x"")</script>&\'""",2026-01-20,5\n',
        encoding="utf-8",
    )
    client = TestClient(create_app(Dashboard(ws, cli_invoices=[invoice])))
    path = MeterKey("resolved_ticket", 1, "inv").path
    for url in ("/", path, f"{path}/cell/agreed", f"{path}/entity/{quote(hostile, safe='')}"):
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[:500])
        assert "<script>alert" not in r.text and "<b>bold</b>" not in r.text
    pages = "".join(client.get(f"{path}/cell/{c}").text for c in CELLS)
    assert "<script>alert" not in pages
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&#39;&#34;</a>" in pages
    assert f"/entity/{quote(hostile, safe='')}" in pages


def test_read_only(demo: DemoFiles, tmp_path: Path) -> None:
    ws = Workspace.open(demo.workspace)
    with ws.connect() as con:
        ensure_watch_schema(con)
        page = tmp_path / "terms.html"
        page.write_text("<p>A resolution is a closed ticket.</p>", encoding="utf-8")
        add_file(con, "vendor-terms", page)
    before = {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(demo.workspace.rglob("*"))
        if p.is_file()
    }
    board = Dashboard(ws)
    client = TestClient(create_app(board))
    path = meter_path(board)
    for url in ("/", "/versions", "/watch", path, f"{path}/drift", f"{path}/download/dispute.zip"):
        assert client.get(url).status_code == 200
    assert "vendor-terms" in client.get("/watch").text
    after = {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(demo.workspace.rglob("*"))
        if p.is_file()
    }
    assert after == before


def test_several_definitions_and_invoices(demo: DemoFiles, tmp_path: Path) -> None:
    """Two versions and two invoices: the latest version meets each invoice, the older one is
    reachable by its link, the replay lays both side by side, and a version stored while the
    dashboard runs shows up on the next request."""
    root = tmp_path / "ws"
    shutil.copytree(demo.workspace, root)
    ws = Workspace.open(root)
    board = Dashboard(ws, cli_invoices=[demo.invoice], cli_terms=demo.terms)
    client = TestClient(create_app(board))
    assert [k.path for k in board.meters()] == [
        "/d/resolved_ticket/1/invoice",
        "/d/resolved_ticket/1/2026-q1",
    ]
    text = demo.definition.read_text(encoding="utf-8")
    v2 = tmp_path / "v2.yaml"
    v2.write_text(
        text.replace("version: 1", "version: 2").replace("within: 14d", "within: 7d"),
        encoding="utf-8",
    )
    add_version(ws, v2, "2026-02-01")
    assert [(k.version, k.invoice) for k in board.meters()] == [(2, "invoice"), (2, "2026-q1")]
    page = figures(client.get("/").text)
    assert sum(1 for x in page.links if x.startswith("/d/resolved_ticket/2/")) == 2
    assert client.get("/d/resolved_ticket/1/invoice").status_code == 200
    versions = client.get("/versions").text
    assert "v1 counted" in versions and "v2 counted" in versions
    replayed = cli_json("replay", "-w", str(root), "--terms", str(demo.terms))
    shown = figures(versions).figures
    for p in replayed["definitions"][0]["periods"]:
        for cell in p["versions"]:
            if cell is not None:
                key = f"replay.resolved_ticket.v{cell['version']}.{p['period']}.counted"
                assert shown[key][0] == str(cell["counted"])


def test_invoices_kept_in_the_workspace(tmp_path: Path, demo: DemoFiles) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    kept = add_invoice(root, demo.invoice, demo.terms, name="march <2026>")
    assert kept.name == "march-2026" and kept.terms is not None
    found = folder_invoices(root)
    assert [(i.name, i.terms) for i in found] == [("march-2026", kept.terms)]
    with pytest.raises(Exception, match="already kept"):
        add_invoice(root, demo.invoice, None, name="march <2026>")


def test_empty_workspace_and_invoices_add(tmp_path: Path, demo: DemoFiles) -> None:
    ws = Workspace.init(tmp_path / "empty")
    client = TestClient(create_app(Dashboard(ws)))
    r = client.get("/")
    assert r.status_code == 200 and "No definition is stored" in r.text
    assert client.get("/versions").status_code == 200
    assert client.get("/watch").status_code == 200
    _load_verbs()
    res = CliRunner().invoke(
        app, ["invoices", "add", str(demo.invoice), "--terms", str(demo.terms), "-w", str(ws.root)]
    )
    assert res.exit_code == 0, res.output
    assert (ws.root / "invoices" / "invoice.csv").is_file()
    assert (ws.root / "invoices" / "invoice.terms.yaml").is_file()
    assert [i.name for i in Dashboard(ws).invoices()] == ["invoice"]


# ------------------------------------------------------------------ the bundled support example
SUPPORT = Path(__file__).resolve().parents[1] / "examples" / "support"
SUPPORT_DEF = SUPPORT.parent / "resolved_ticket.yaml"
LETTER_TERMS = """truecount_terms: 1
currency: USD
unit_price: 0.99
tolerance: 2%
letter:
  buyer: Acme Support Ltd
  vendor: Botco Inc.
  invoice_number: INV-0042
  invoice_date: 2026-04-02
  contract: MSA-17, order form 3
"""


@pytest.fixture(scope="module")
def support(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """examples/support in a workspace, its invoice kept as 'q1' under terms with a letter:
    section. Most of its billed tickets are not outcomes."""
    folder = tmp_path_factory.mktemp("support")
    ws = Workspace.init(folder / "ws")
    ingest_files(ws, [SUPPORT / "events.csv"])
    add_version(ws, SUPPORT_DEF, "2026-01-01")
    terms = folder / "terms.yaml"
    terms.write_text(LETTER_TERMS, encoding="utf-8")
    add_invoice(ws.root, SUPPORT / "invoice.csv", terms, name="q1")
    return ws


def _support_meter(board: Dashboard, invoice: str = "q1") -> str:
    key = next(k for k in board.meters() if k.invoice == invoice)
    return key.path


def test_alarm_without_room_is_a_note_on_the_dashboard(support: Workspace) -> None:
    """1.25 times the baseline's vendor-only rate is above 100%: the meter and drift pages say
    why the alarm cannot run, in words, and the report still downloads with that note."""
    runs = cli_json(
        "drift", str(SUPPORT_DEF), "--invoice", str(SUPPORT / "invoice.csv"),
        "-w", str(support.root), "--shift", "1.05",
    )  # fmt: skip
    b, n = runs["baseline"]["vendor_only"], runs["baseline"]["entities"]
    assert 1.25 * runs["baseline"]["rate"] >= 1.0
    said = f"the drift alarm cannot run on these data: in the baseline {runs['baseline']['from']}"
    board = Dashboard(support)
    client = TestClient(create_app(board))
    path = _support_meter(board)
    for url in (path, f"{path}/drift"):
        r = client.get(url)
        assert r.status_code == 200, (url, r.text[:500])
        assert said in r.text and f"{b} of the {n} entities" in r.text
        assert "&lt;input&gt;" not in r.text and "p0" not in r.text
    r = client.get(f"{path}/download/report.html")
    assert r.status_code == 200, r.text[:500]
    assert f"No drift figures for these inputs: {said}" in r.text


def test_serve_starts_when_one_invoices_terms_do_not_parse(
    support: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kept invoice whose terms do not parse: serve starts, that invoice's pages carry the
    cause, the other invoice's figures are reconcile's, the replay page shows why it has no
    amounts."""
    import uvicorn

    root = tmp_path / "ws"
    shutil.copytree(support.root, root)
    kept = root / "invoices"
    shutil.copyfile(SUPPORT / "invoice.csv", kept / "a-bad.csv")  # sorts first
    (kept / "a-bad.terms.yaml").write_text(
        "truecount_terms: 1\ncurrency: USD\nunit_price: abc\n", encoding="utf-8"
    )
    started: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda asgi, **kw: started.append(asgi))
    _load_verbs()
    res = CliRunner().invoke(app, ["serve", "-w", str(root)])
    assert res.exit_code == 0, res.output
    assert len(started) == 1
    client = TestClient(started[0])
    overview = client.get("/")
    assert overview.status_code == 200
    cause = "key &#39;unit_price&#39;: an amount must be a number, not &#39;abc&#39;"
    assert cause in overview.text
    bad = client.get("/d/resolved_ticket/3/a-bad")
    assert bad.status_code == 200 and cause in bad.text
    good = client.get("/d/resolved_ticket/3/q1")
    assert good.status_code == 200 and cause not in good.text
    recon = cli_json(
        "reconcile", str(SUPPORT_DEF), "--invoice", str(kept / "q1.csv"),
        "--terms", str(kept / "q1.terms.yaml"), "-w", str(root),
    )  # fmt: skip
    shown = figures(good.text).figures
    for name in ("vendor_billed", "buyer_counted", "amount_billed", "amount_due", "credit"):
        assert shown[f"totals.{name}"][0] == as_value(recon["totals"][name]), name
    versions = client.get("/versions")
    assert versions.status_code == 200
    assert "No amounts: the terms of invoice a-bad cannot be read" in versions.text
    assert cause in versions.text


def test_dispute_zip_letter_is_the_clis(support: Workspace, tmp_path: Path) -> None:
    """The dashboard's dispute pack is ``reconcile --out``'s for the same inputs, file for
    file, and its letter carries the terms' letter: section."""
    kept = support.root / "invoices"
    _load_verbs()
    res = CliRunner().invoke(
        app,
        [
            "reconcile", str(SUPPORT_DEF), "--invoice", str(kept / "q1.csv"),
            "--terms", str(kept / "q1.terms.yaml"), "-w", str(support.root),
            "--out", str(tmp_path / "cli"),
        ],
    )  # fmt: skip
    assert res.exit_code in (0, 1), res.output
    board = Dashboard(support)
    r = TestClient(create_app(board)).get(f"{_support_meter(board)}/download/dispute.zip")
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        web = {Path(name).name: zf.read(name) for name in zf.namelist()}
    cli = {p.name: p.read_bytes() for p in (tmp_path / "cli").iterdir()}
    assert sorted(web) == sorted(cli)
    for name, body in cli.items():
        assert web[name] == body, name
    letter = web["letter.md"].decode("utf-8")
    for line in (
        "To: Botco Inc.",
        "From: Acme Support Ltd",
        "Invoice: INV-0042 of 2026-04-02",
        "Contract: MSA-17, order form 3",
    ):
        assert line in letter, line


def _invoice_lines() -> dict[str, list[dict[str, str]]]:
    """examples/support/invoice.csv read with the csv module, by entity."""

    out: dict[str, list[dict[str, str]]] = {}
    with (SUPPORT / "invoice.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["entity_id"], []).append(row)
    return out


class _Rows(HTMLParser):
    """The cell page's entity table: one list of cell texts per row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_not_in_the_export_links_to_a_page_that_exists(support: Workspace) -> None:
    """Every id of the "Not in the export" cell links to a page (not a 404) that says what the
    invoice bills for it and that the export has no record of it; the figures are the
    invoice's own lines, read with the csv module."""

    with (SUPPORT / "events.csv").open(encoding="utf-8", newline="") as fh:
        known = {r["entity_id"] for r in csv.DictReader(fh)}
    billed = _invoice_lines()
    unknown = sorted(set(billed) - known)
    assert unknown
    board = Dashboard(support)
    client = TestClient(create_app(board))
    path = _support_meter(board)
    cell = figures(client.get(f"{path}/cell/unknown").text)
    links = [x for x in cell.links if "/entity/" in x]
    assert sorted(x.rsplit("/", 1)[1] for x in links) == [quote(u, safe="") for u in unknown]
    for link, entity in zip(sorted(links), unknown, strict=True):
        r = client.get(link)
        assert r.status_code == 200, link
        page = figures(r.text)
        lines = billed[entity]
        amount = sum(Decimal(x["amount"]) for x in lines)
        assert page.figures["entity.cell"][0] == "unknown"
        assert page.figures["entity.lines"] == (str(len(lines)), str(len(lines)))
        assert page.figures["entity.billed_period"][0] == lines[0]["period"]
        assert Decimal(page.figures["entity.billed_amount"][0]) == amount
        assert page.figures["entity.billed_amount"][1] == f"{amount:.2f} USD"
        assert "The event export has no record of this ticket" in r.text
    assert client.get(f"{path}/entity/no-such-ticket").status_code == 404


def test_cell_pages_show_money_in_the_currency(support: Workspace) -> None:
    """The amount column of a cell page is money as on the meter page: the currency's minor
    units and its code (0.99 USD, not 0.990000), each the entity's invoice lines summed."""
    billed = _invoice_lines()
    board = Dashboard(support)
    client = TestClient(create_app(board))
    path = _support_meter(board)
    seen = 0
    for cell in ("vendor_only", "unknown", "pending", "agreed"):
        parser = _Rows()
        parser.feed(client.get(f"{path}/cell/{cell}").text)
        for row in parser.rows:
            if not row:
                continue
            entity, amount = row[0], row[4]
            expected = sum(Decimal(x["amount"]) for x in billed[entity])
            assert amount == f"{expected:,.2f} USD", (cell, entity, amount)
            seen += 1
    assert seen >= 10


def test_under_billing_is_said_as_the_letter_says_it(support: Workspace, tmp_path: Path) -> None:
    """An invoice that bills less than is due: the overview and the meter page say "Billed less
    than due" with the amount (no minus sign, no "Credit due to us"), and the meter page the
    letter's sentence; data-value keeps the JSON's negative credit."""
    invoice = tmp_path / "under.csv"
    invoice.write_text(
        "line_id,entity_id,billed_at,period,amount,currency\n"
        "L0,T-1005,2026-03-10T22:14:00Z,2026-03,0.10,USD\n"
        "L1,T-1006,2026-02-20T07:46:00Z,2026-02,0.10,USD\n",
        encoding="utf-8",
    )
    terms = tmp_path / "terms.yaml"
    terms.write_text(LETTER_TERMS, encoding="utf-8")
    recon = cli_json(
        "reconcile", str(SUPPORT_DEF), "--invoice", str(invoice), "--terms", str(terms),
        "-w", str(support.root),
    )  # fmt: skip
    t = recon["totals"]
    # independently: two lines at 0.10 against our count at the contract's 0.99
    assert Decimal(t["amount_billed"]) == Decimal("0.20")
    due = t["buyer_counted"] * Decimal("0.99")
    assert t["billing_source"] == "buyer" and Decimal(t["credit"]) == Decimal("0.20") - due < 0
    short = f"{due - Decimal('0.20'):,} USD"
    board = Dashboard(support, cli_invoices=[invoice], cli_terms=terms)
    client = TestClient(create_app(board))
    key = next(k for k in board.meters() if k.invoice == "under")
    for url in ("/", key.path):
        html = client.get(url).text
        if url == "/":
            html = html[html.index(f'data-meter="{key.path}"') :]
            html = html[: html.index("</section>")]
        page = figures(html)
        assert page.figures["totals.credit"] == (t["credit"], short), url
        assert "<dt>Billed less than due</dt>" in html and "Credit due to us" not in html
    meter = client.get(key.path).text
    assert f"The invoice bills less than is due, by {short}; we ask for no credit." in meter
