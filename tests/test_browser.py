"""The dashboard in a real browser (Chromium through Playwright): click from the overview to a
cell, an entity and a condition, filter, download, and check the figures on screen against
``reconcile --format json``. Skipped where Chromium or Playwright is missing (docs/serve.md)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from browser import DemoFiles, browser_page, chromium_available, make_workspace, served
from truecount.cli.app import _load_verbs, app
from truecount.web import Dashboard
from truecount.workspace import Workspace

#: Skipped on a developer's machine without Chromium; never in CI, where .ci/run installs it.
pytestmark = pytest.mark.skipif(
    not chromium_available() and not os.environ.get("CI"),
    reason="needs playwright and Debian's chromium (/usr/bin/chromium)",
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoFiles:
    return make_workspace(tmp_path_factory.mktemp("browser") / "demo")


@pytest.fixture(scope="module")
def base_url(demo: DemoFiles) -> Iterator[str]:
    with served(Dashboard(Workspace.open(demo.workspace))) as url:
        yield url


@pytest.fixture(scope="module")
def page(base_url: str) -> Iterator[Any]:
    with browser_page() as p:
        yield p


@pytest.fixture(scope="module")
def recon_json(demo: DemoFiles) -> dict[str, Any]:
    _load_verbs()
    res = CliRunner().invoke(
        app,
        ["reconcile", str(demo.definition), "--invoice", str(demo.invoice), "--terms",
         str(demo.terms), "-w", str(demo.workspace), "--format", "json"],
    )  # fmt: skip
    assert res.exit_code in (0, 1), res.output
    data: dict[str, Any] = json.loads(res.stdout)
    return data


def shown(page: Any) -> dict[str, tuple[str, str]]:
    """The figures as the browser renders them: name -> (data-value, visible text)."""
    pairs = page.eval_on_selector_all(
        "[data-figure]",
        "els => els.map(e => [e.dataset.figure, e.dataset.value, e.innerText.trim()])",
    )
    return {name: (value, text) for name, value, text in pairs}


def test_click_through_overview_cell_entity_condition(
    page: Any, base_url: str, recon_json: dict[str, Any], tmp_path: Path
) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(base_url + "/")
    page.click("a.meter-link")
    page.wait_for_selector("table.periods")
    figures = shown(page)
    t = recon_json["totals"]
    for name in ("vendor_billed", "buyer_counted", "agreed", "vendor_only", "buyer_only"):
        value, text = figures[f"totals.{name}"]
        assert value == str(t[name]) and text.replace(",", "") == str(t[name])
    assert figures["totals.credit"][0] == t["credit"]
    for p in recon_json["periods"]:
        assert figures[f"periods.{p['period']}.vendor_only"][0] == str(p["vendor_only"])

    # overview -> cell
    page.click("table.cells a.cell-link[data-cell='vendor_only']")
    page.wait_for_selector("#entities")
    figures = shown(page)
    assert figures["rows.total"][0] == str(t["vendor_only"])
    rows = page.locator("#entities tbody tr")
    first_id = rows.first.locator("a.entity-link").inner_text()

    # filter: only rows containing the text stay visible, and the counter says how many
    page.fill("#row-filter", first_id)
    visible = page.locator("#entities tbody tr:visible").count()
    assert visible >= 1
    assert page.inner_text("#rows-shown") == f"{visible:,}"
    page.fill("#row-filter", "")

    # cell -> entity; pick one whose condition links to a deciding event
    links = page.eval_on_selector_all("a.entity-link", "els => els.map(e => e.href)")
    for href in links[:40]:
        page.goto(href)
        if page.locator("a.cond-link").count():
            break
    else:
        pytest.fail("no entity with a deciding event among the first rows")
    assert page.locator("[data-figure='entity.cell']").get_attribute("data-value") == "vendor_only"

    # entity -> condition: the deciding event is highlighted
    link = page.locator("a.cond-link").first
    target = link.get_attribute("data-event")
    link.click()
    assert page.locator(f"tr#{target}").get_attribute("class") is not None
    assert "hit" in (page.locator(f"tr#{target}").get_attribute("class") or "")
    assert page.url.endswith(f"#{target}")
    assert errors == []


def test_every_page_and_download(page: Any, base_url: str, recon_json: dict[str, Any]) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(base_url + "/")
    meter = page.locator("a.meter-link").first.get_attribute("href")
    for url in ("/versions", "/watch", meter, f"{meter}/drift", f"{meter}/period/2026-01"):
        response = page.goto(base_url + url)
        assert response is not None and response.status == 200, url
    page.goto(base_url + meter)
    with page.expect_download() as info:
        page.click("a[href$='/download/verdicts.csv']")
    download = info.value
    text = Path(download.path()).read_text(encoding="utf-8")
    assert text.startswith("entity_id,")
    assert download.suggested_filename.endswith("verdicts.csv")
    missing = page.goto(base_url + meter + "/entity/no-such-ticket")
    assert missing is not None and missing.status == 404
    assert [e for e in errors if "404" not in e] == []


def test_the_report_in_the_browser(
    demo: DemoFiles, recon_json: dict[str, Any], page: Any, tmp_path: Path
) -> None:
    """report.html opened from disk, as from an e-mail attachment: the headline figures on
    screen equal the JSON, the disputed table filters and sorts, and no request leaves."""
    from truecount.report.html import render_report

    report = tmp_path / "report.html"
    report.write_text(
        render_report(demo.definition, Workspace.open(demo.workspace), [demo.invoice], demo.terms),
        encoding="utf-8",
    )
    requests: list[str] = []
    # the module's browser page: a second Playwright in this process would clash with it
    p = page

    def seen(r: Any) -> None:
        requests.append(r.url)

    p.on("request", seen)
    try:
        p.goto(report.as_uri())
        head = {
            f: v
            for s, f, v in p.eval_on_selector_all(
                "[data-scope='totals'][data-figure]",
                "els => els.map(e => [e.dataset.scope, e.dataset.figure, e.dataset.value])",
            )
        }
        totals = recon_json["totals"]
        assert float(json.loads(head["credit"])) == pytest.approx(float(totals["credit"]))
        assert json.loads(head["vendor_billed"]) == totals["vendor_billed"]
        assert json.loads(head["buyer_counted"]) == totals["buyer_counted"]
        rows = p.locator("#disputed tbody tr")
        total = rows.count()
        assert total > 10
        first_id = rows.nth(0).locator("td").nth(0).inner_text().strip()
        p.fill("#disputed-filter", first_id)
        visible = p.locator("#disputed tbody tr:not([hidden])")
        assert 1 <= visible.count() < total
        assert first_id in visible.nth(0).inner_text()
        p.fill("#disputed-filter", "")
        p.click("#disputed thead th:nth-child(1)")
        ids = p.eval_on_selector_all(
            "#disputed tbody tr", "rs => rs.map(r => r.cells[0].innerText.trim())"
        )
        assert ids == sorted(ids, key=str)
        p.screenshot(path=str(tmp_path / "report.png"), full_page=False)
    finally:
        p.remove_listener("request", seen)
    assert all(u.startswith("file:") or u.startswith("data:") for u in requests), requests


#: The printable width of each paper size in CSS pixels: the sheet less the 12 mm side margins
#: that report.css's ``@page`` rule sets (96 px to the inch), and the sheet's size in points.
PAPER = {
    "A4": ((210 - 24) * 96 / 25.4, (595.92, 842.88)),
    "Letter": ((215.9 - 24) * 96 / 25.4, (612.0, 792.0)),
}

#: In print media: the text of every visible table row's cells, the headings of every visible
#: section, every chart's visible labels (the renderer
#: hides overlapping ones) with its caption, and anything that reaches past the right edge.
PRINT_LAYOUT_JS = """() => {
  const shown = el => el.getClientRects().length > 0;
  const width = document.documentElement.clientWidth;
  const rows = [...document.querySelectorAll('table tr')].filter(shown).map(tr => ({
    table: tr.closest('table').id || '',
    head: tr.parentElement.tagName === 'THEAD',
    cells: [...tr.cells].map(c => c.innerText.trim()).filter(t => t !== ''),
  }));
  const headings = [...document.querySelectorAll('h2')].filter(shown).map(h => h.innerText);
  const figures = [...document.querySelectorAll('figure')].filter(shown).map(f =>
    [...f.querySelectorAll('svg text')].filter(t => getComputedStyle(t).opacity !== '0').map(t => t.textContent.trim()).filter(t => t !== '')
      .concat([f.querySelector('figcaption').innerText]));
  const wide = [...document.querySelectorAll('body *')].filter(shown)
    .filter(el => el.getBoundingClientRect().right > width + 0.5)
    .map(el => `${el.tagName}#${el.id}.${el.className} right=${el.getBoundingClientRect().right}`);
  const sql = [...document.querySelectorAll('#appendix pre')].map(p => p.innerText).pop();
  return {width, scroll: document.documentElement.scrollWidth, rows, headings, figures, wide, sql};
}"""


def squeeze(text: str) -> str:
    """Text without white space and case: a PDF's text layer breaks lines where the page wrapped
    them and keeps the case CSS gave them, neither of which is the content."""
    return "".join(text.split()).casefold()


@pytest.mark.parametrize("paper", sorted(PAPER))
def test_the_report_prints_to_pdf(demo: DemoFiles, page: Any, tmp_path: Path, paper: str) -> None:
    """report.html printed by Chromium on A4 and Letter: every section is in the PDF, no table
    row or chart is split across two pages, table headers repeat, the appendix starts a page,
    and nothing reaches past the right margin.

    The PDF's own text layer (read with pypdf) is the judge of where things landed: the page
    layout of print exists only inside Chromium's print pipeline, so the DOM cannot say where a
    page breaks. A row lies on one page when one page's text holds every one of its cells whole
    (a cell wrapped over a page break is whole on neither). The width check runs in print media
    emulation at the paper's printable width, where the DOM does describe the layout."""
    pypdf = pytest.importorskip("pypdf")
    from truecount.report.html import render_report

    report = tmp_path / "report.html"
    report.write_text(
        render_report(demo.definition, Workspace.open(demo.workspace), [demo.invoice], demo.terms),
        encoding="utf-8",
    )
    printable, (sheet_w, sheet_h) = PAPER[paper]
    page.goto(report.as_uri())
    page.emulate_media(media="print")
    page.set_viewport_size({"width": int(printable), "height": 1000})
    try:
        layout = page.evaluate(PRINT_LAYOUT_JS)
        pdf = tmp_path / f"report-{paper}.pdf"
        page.pdf(path=str(pdf), format=paper)
    finally:
        page.emulate_media(media="screen")
        page.set_viewport_size({"width": 1280, "height": 800})

    # nothing clipped at the right margin
    assert layout["wide"] == [] and layout["scroll"] <= layout["width"], layout["wide"][:5]

    reader = pypdf.PdfReader(str(pdf))
    box = reader.pages[0].mediabox
    assert abs(float(box.width) - sheet_w) < 2 and abs(float(box.height) - sheet_h) < 2
    pages = [squeeze(p.extract_text()) for p in reader.pages]
    assert len(pages) >= 3

    # every section, in order; the appendix opens its page
    where = [
        next((i for i, t in enumerate(pages) if squeeze(h) in t), -1) for h in layout["headings"]
    ]
    assert -1 not in where, [h for h, i in zip(layout["headings"], where, strict=True) if i < 0]
    assert where == sorted(where)
    assert len(layout["headings"]) >= 7
    appendix = next(h for h in layout["headings"] if h.startswith("Appendix"))
    assert any(t.startswith(squeeze(appendix)) for t in pages)

    def one_page(parts: list[str]) -> int | None:
        wanted = [squeeze(p) for p in parts]
        return next((i for i, t in enumerate(pages) if all(w in t for w in wanted)), None)

    # the detector sees a split: the compiled SQL is one block that runs over a page break
    assert one_page([layout["sql"]]) is None

    # no table row split over two pages
    body = [r for r in layout["rows"] if not r["head"] and r["cells"]]
    assert len(body) > 100
    split = [r["cells"] for r in body if one_page(r["cells"]) is None]
    assert split == [], split[:3]

    # no chart split: its labels and its caption on one page
    assert len(layout["figures"]) >= 3
    assert all(one_page(f) is not None for f in layout["figures"])

    # the disputed table runs over several pages, each headed by the column names
    head = next(r["cells"] for r in layout["rows"] if r["head"] and r["table"] == "disputed")
    on = {one_page(r["cells"]) for r in body if r["table"] == "disputed"}
    assert len(on) >= 2
    assert all(squeeze("".join(head)) in pages[i] for i in on if i is not None)
