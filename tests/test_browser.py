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
