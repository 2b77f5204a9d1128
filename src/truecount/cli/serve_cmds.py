"""The ``serve`` verb (the local dashboard) and ``invoices add`` (invoices kept for it).

``serve`` starts uvicorn itself: there is no other service to run. It binds 127.0.0.1 unless
told otherwise, and refuses any other address without ``--token`` (docs/serve.md).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated, Final

import typer

from truecount.cli.app import (
    EXIT_OK,
    PANEL_BILL,
    PANEL_DATA,
    app,
    fail,
    stderr_console,
    stdout_console,
)
from truecount.cli.meter_cmds import AsOfOpt, WorkspaceOpt
from truecount.workspace import Workspace

#: A token long enough not to be guessed, in characters that survive a URL and a cookie.
TOKEN_RE: Final = re.compile(r"^[A-Za-z0-9._~-]{16,256}$")

invoices_app = typer.Typer(
    help="Invoices kept in the workspace for the dashboard.", no_args_is_help=True
)
app.add_typer(invoices_app, name="invoices", rich_help_panel=PANEL_DATA)


@app.command("serve", rich_help_panel=PANEL_BILL)
def serve_cmd(
    workspace: WorkspaceOpt = None,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to listen on (loopback unless --token).", metavar="HOST"
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", "-p", help="Port to listen on.", metavar="PORT")
    ] = 8765,
    invoice: Annotated[
        list[Path] | None,
        typer.Option(
            "--invoice",
            "-i",
            help="An invoice to reconcile (CSV, JSON Lines, Parquet); repeat for several "
            "invoices. Invoices kept in WS/invoices/ are shown too.",
            metavar="INVOICE",
        ),
    ] = None,
    terms: Annotated[
        Path | None,
        typer.Option("--terms", "-t", help="Contract terms for --invoice (YAML).", metavar="TERMS"),
    ] = None,
    invoice_mapping: Annotated[
        Path | None,
        typer.Option(
            "--invoice-mapping", help="Invoice mapping (YAML) for --invoice.", metavar="MAPPING"
        ),
    ] = None,
    as_of: AsOfOpt = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="TRUECOUNT_TOKEN",
            help="Require this token on every request (header or ?token=); needed for a "
            "non-loopback --host.",
            metavar="TOKEN",
        ),
    ] = None,
) -> None:
    """Start the read-only dashboard over a workspace: reconciliation, entities, drift, watch."""
    import uvicorn

    from truecount.web import Dashboard, create_app
    from truecount.web.security import is_loopback
    from truecount.web.sources import command_line_invoices

    if not is_loopback(host) and token is None:
        fail(
            f"--host {host} is reachable from other machines; give --token TOKEN (or "
            "TRUECOUNT_TOKEN) so every request must carry it, or keep the default 127.0.0.1"
        )
    if token is not None and not TOKEN_RE.match(token):
        fail("--token must be 16 to 256 characters of letters, digits and . _ ~ -")
    if not 0 < port < 65536:
        fail(f"--port {port} is not a port number")
    ws = Workspace.open(workspace)
    command_line_invoices(list(invoice or []), terms, invoice_mapping)  # missing files fail here
    board = Dashboard(
        ws,
        cli_invoices=tuple(invoice or ()),
        cli_terms=terms,
        cli_mapping=invoice_mapping,
        as_of=as_of,
    )
    err = stderr_console()
    if not board.versions():
        err.print(
            "no definition is stored in this workspace: store one with "
            "'truecount versions add DEF --effective DATE'",
            markup=False,
        )
    # Everything a page shows is computed now, before the server listens, so no reader waits
    # for a count (at millions of tickets, a minute or more): each meter, then the replay table.
    keys = board.meters()
    for i, key in enumerate(keys, start=1):
        shown_key = f"{key.name} v{key.version}"
        if key.invoice:
            shown_key += f", invoice {key.invoice}"
        started = time.perf_counter()
        prepared = board.meter(key)
        # an invoice whose inputs cannot be read is shown with the cause on its own pages;
        # the others, and the server, are not held up by it
        cause = f"; its pages show: {prepared.problem}" if prepared and prepared.problem else ""
        err.print(
            f"prepared {i}/{len(keys)}: {shown_key} ({time.perf_counter() - started:.1f} s){cause}",
            markup=False,
        )
    if board.versions():
        started = time.perf_counter()
        board.replay()
        priced = board.replay_terms()
        unpriced = (
            f"; without amounts, as the terms of invoice {priced.invoice} cannot be read"
            if priced.problem
            else ""
        )
        err.print(
            f"prepared the replay of {len(board.versions())} stored version(s)"
            f" ({time.perf_counter() - started:.1f} s){unpriced}",
            markup=False,
        )
    shown = f"[{host}]" if ":" in host else host
    suffix = f"/?token={token}" if token is not None else "/"
    stdout_console().print(
        f"truecount dashboard on http://{shown}:{port}{suffix} (read-only; Ctrl+C stops it)",
        markup=False,
    )
    uvicorn.run(create_app(board, token), host=host, port=port, log_level="warning")
    raise typer.Exit(EXIT_OK)


@invoices_app.command("add")
def invoices_add_cmd(
    file: Annotated[
        Path, typer.Argument(help="The vendor's invoice file.", show_default=False, metavar="FILE")
    ],
    terms: Annotated[
        Path | None,
        typer.Option("--terms", "-t", help="Its contract terms (YAML).", metavar="TERMS"),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="Name shown by the dashboard (default: file name).", metavar="NAME"
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Keep an invoice (and its terms) in the workspace, for 'truecount serve'."""
    from truecount.web.sources import add_invoice

    ws = Workspace.open(workspace)
    kept = add_invoice(ws.root, file, terms, name)
    where = ", ".join(str(p) for p in kept.files)
    terms_note = f" with terms {kept.terms}" if kept.terms is not None else ""
    stdout_console().print(f"kept invoice '{kept.name}' as {where}{terms_note}", markup=False)
    raise typer.Exit(EXIT_OK)
