"""Shared by the dashboard's tests: a small demo workspace, and the dashboard in a real browser.

``make_workspace`` builds what ``truecount demo`` builds, on a smaller seeded quarter: the
events ingested into a workspace, the buyer's definition stored as a version, an invoice kept in
``invoices/`` with its terms. ``served`` runs the dashboard with uvicorn on 127.0.0.1 on a free
port in a thread; ``browser_page`` opens Debian's Chromium through Playwright (Playwright's own
browser download is not used). Browser tests are skipped where Chromium or Playwright is
missing; ``.ci/run`` installs Chromium, so CI always runs them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from truecount.cli.demo_cmds import package_text
from truecount.demo.generate import SupportScenario, generate
from truecount.history.versions import add_version
from truecount.ingest.load import ingest_files
from truecount.web import Dashboard, create_app
from truecount.workspace import Workspace

CHROMIUM = os.environ.get("TRUECOUNT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass(frozen=True)
class DemoFiles:
    """The files of a small demo: the workspace and the inputs the CLI is given."""

    workspace: Path
    definition: Path
    invoice: Path
    terms: Path


def make_workspace(folder: Path, tickets: int = 1500, seed: int = 7) -> DemoFiles:
    """A workspace with a seeded quarter ingested, the definition stored, an invoice kept."""
    folder.mkdir(parents=True, exist_ok=True)
    data = generate(SupportScenario(seed=seed, tickets=tickets))
    events = folder / "events.parquet"
    pq.write_table(data.events, events)
    invoice = folder / "invoice.csv"
    pacsv.write_csv(data.invoice, invoice)
    definition = folder / "resolved_ticket.yaml"
    definition.write_text(package_text("resolved_ticket.yaml"), encoding="utf-8")
    terms = folder / "terms.yaml"
    terms.write_text(package_text("terms.yaml"), encoding="utf-8")
    ws = Workspace.init(folder / "workspace")
    ingest_files(ws, [events])
    add_version(ws, definition, "2026-01-01")
    kept = ws.root / "invoices"
    kept.mkdir()
    shutil.copyfile(invoice, kept / "2026-q1.csv")
    shutil.copyfile(terms, kept / "terms.yaml")
    return DemoFiles(ws.root, definition, invoice, terms)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def served(board: Dashboard, token: str | None = None) -> Iterator[str]:
    """The dashboard on 127.0.0.1:<free port> in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        create_app(board, token), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def chromium_available() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).is_file()


@contextlib.contextmanager
def browser_page(width: int = 1280, height: int = 800) -> Iterator[Any]:
    """A Playwright page in Debian's Chromium, headless, downloads allowed."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={"width": width, "height": height}, accept_downloads=True
            )
            yield context.new_page()
        finally:
            browser.close()
