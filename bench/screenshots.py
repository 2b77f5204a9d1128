#!/usr/bin/env python
"""Screenshots of the report and the dashboard for the README (1280x800), in Debian's Chromium.

The demo's quarter is built in a scratch folder (as ``bench/serve_bench.py`` builds it); its
report.html is opened from disk, as a reader opens the attachment, and the dashboard is served on
127.0.0.1 on a free port; Playwright saves the pages named below.

Usage::

    .venv/bin/python bench/screenshots.py            # into docs/img/
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from serve_bench import _build
from truecount.report.html import render_report
from truecount.web import Dashboard, create_app

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--tickets", type=int, default=41_600)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="truecount-shots-") as tmp:
        folder = Path(tmp) / "demo"
        ws = _build(folder, args.tickets)
        report = folder / "report.html"
        report.write_text(
            render_report(
                folder / "resolved_ticket.yaml",
                ws,
                [folder / "invoice.csv"],
                folder / "terms.yaml",
            ),
            encoding="utf-8",
        )
        board = Dashboard(ws)
        key = board.meters()[0]
        board.meter(key)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        server = uvicorn.Server(
            uvicorn.Config(create_app(board), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(report.as_uri())
                page.screenshot(path=str(args.out / "report.png"))
                page.goto(base + key.path)
                page.screenshot(path=str(args.out / "dashboard-overview.png"))
                page.goto(base + key.path + "/cell/vendor_only")
                links = page.eval_on_selector_all("a.entity-link", "els => els.map(e => e.href)")
                for href in links[:60]:
                    page.goto(href)
                    if page.locator("li.cond.fail a.cond-link").count():
                        break
                page.locator("li.cond.fail a.cond-link").first.click()
                page.evaluate("window.scrollTo(0, 0)")
                page.screenshot(path=str(args.out / "dashboard-entity.png"))
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    names = ("report.png", "dashboard-overview.png", "dashboard-entity.png")
    print("wrote " + ", ".join(str(args.out / n) for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
