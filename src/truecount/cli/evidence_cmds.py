"""The evidence verbs: ``keygen``, ``evidence``, ``verify`` and ``prove`` (docs/evidence.md).

``verify`` exits 0 when every check passed and 1 when any failed (a finding, as elsewhere), so
an auditor's script can rely on it; bad input or usage is 2 through the app's error boundary.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from truecount import jsonout
from truecount.cli.app import (
    EXIT_FINDING,
    EXIT_OK,
    PANEL_AUDIT,
    OutputFormat,
    app,
    fail,
    stderr_console,
    stdout_console,
)
from truecount.cli.meter_cmds import AsOfOpt, DefArg, EventsOpt, WorkspaceOpt, events_input
from truecount.cli.reconcile_cmds import (
    BuyerOpt,
    ContractOpt,
    InvoiceDateOpt,
    InvoiceNumberOpt,
    InvoiceOpt,
    VendorOpt,
    letter_options,
)
from truecount.cli.values import output_file
from truecount.engine.source import EventsInput
from truecount.errors import InputError, Location, Problem, WorkspaceError
from truecount.evidence import (
    Verification,
    build_pack,
    generate_key,
    load_public_key,
    make_proof,
    verify_pack,
    verify_proof,
)
from truecount.evidence.run import PHASES
from truecount.workspace import Workspace

PubkeyOpt = Annotated[
    str,
    typer.Option(
        "--pubkey",
        "-k",
        help="The signer's public key: the .pub file keygen wrote, or its base64 text.",
        metavar="KEY",
    ),
]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]

TreeHeadOpt = Annotated[
    Path | None,
    typer.Option(
        "--tree-head",
        help="A signed tree head of the live meter (GET /log/head): the pack proves its events "
        "are exactly the log's first leaves.",
        metavar="HEAD",
    ),
]
JournalOpt = Annotated[
    Path | None,
    typer.Option(
        "--journal",
        help="The meter's journal for --tree-head (default: WS/live/journal.jsonl).",
        metavar="FILE",
    ),
]
MeterKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--meter-key",
        help="The live meter's public key (base64 or .pub file; default for evidence: "
        "WS/live/meter.key.pub).",
        metavar="KEY",
    ),
]

MARKS = {"passed": ("✓", "green"), "failed": ("✗", "bold red"), "note": ("•", "dim")}


def _leaves(n: int) -> str:
    return f"{n:,} leaf" if n == 1 else f"{n:,} leaves"


@app.command("keygen", rich_help_panel=PANEL_AUDIT)
def keygen_cmd(
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Private key file to write (never overwritten).", metavar="FILE"
        ),
    ],
) -> None:
    """Make an Ed25519 key pair for signing evidence packs; print the public key."""
    keys = generate_key(out)
    console = stdout_console()
    console.print(f"private key: {keys.private} (owner-only)", markup=False)
    console.print(f"public key:  {keys.public}", markup=False)
    console.print(f"base64:      {keys.base64}", markup=False)
    console.print(f"key id:      {keys.key_id}", markup=False)
    stderr_console().print(
        "Publish the public key out of band (contract annex, website); keep the private key "
        "off shared drives.",
        markup=False,
        style="dim",
    )


@app.command("evidence", rich_help_panel=PANEL_AUDIT)
def evidence_cmd(
    definition: DefArg,
    invoice: InvoiceOpt,
    key: Annotated[
        Path, typer.Option("--key", help="Private key file (truecount keygen).", metavar="KEY")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="The pack folder to write (new or empty).", metavar="FOLDER"
        ),
    ],
    terms: Annotated[
        Path | None, typer.Option("--terms", "-t", help="Contract terms (YAML).", metavar="TERMS")
    ] = None,
    as_of: AsOfOpt = None,
    previous: Annotated[
        Path | None,
        typer.Option(
            "--previous", help="The pack of the periods just before: chain to it.", metavar="PACK"
        ),
    ] = None,
    events: EventsOpt = None,
    workspace: WorkspaceOpt = None,
    fmt: FormatOpt = OutputFormat.table,
    buyer: BuyerOpt = None,
    vendor: VendorOpt = None,
    invoice_number: InvoiceNumberOpt = None,
    invoice_date: InvoiceDateOpt = None,
    contract: ContractOpt = None,
    tree_head: TreeHeadOpt = None,
    journal: JournalOpt = None,
    meter_key: MeterKeyOpt = None,
) -> None:
    """Reconcile and write a signed evidence pack that anyone can verify offline."""
    letter = letter_options(None, buyer, vendor, invoice_number, invoice_date, contract)
    with phased("counting, reconciling and signing…"):
        pack = build_pack(
            definition,
            invoice,
            key,
            out,
            events=events_input(events, workspace),
            terms=terms,
            as_of=as_of,
            previous=previous,
            letter=letter,
            tree_head=tree_head,
            journal=journal,
            meter_key=meter_key,
        )
    pred = pack.statement["predicate"]
    totals = pred["results"]["totals"]
    if fmt == OutputFormat.json:
        info = {
            "pack": str(pack.folder),
            "digest": pack.digest,
            "as_of": pred["as_of"],
            "periods": pred["period"]["covered"],
            "events": pred["events"],
            "verdicts": pred["verdicts"],
            "entities": pred["entities"],
            "totals": totals,
            "previous": pred["previous"],
        }
        sys.stdout.write(jsonout.dumps(info, indent=2, ensure_ascii=False) + "\n")
    else:
        table = Table(title="evidence pack", show_header=False)
        table.add_column("", style="bold")
        table.add_column("")
        rows = [
            ("pack", str(pack.folder)),
            ("digest (SHA-256 of statement.json)", pack.digest),
            ("as of", str(pred["as_of"])),
            ("periods", ", ".join(pred["period"]["covered"])),
            (
                "events",
                f"{pred['events']['count']:,} events of {pred['events']['entities']:,} entities "
                f"in {_leaves(pred['events']['tree_size'])}, root {pred['events']['merkle_root']}",
            ),
            *(
                (
                    tree,
                    f"{pred[tree]['rows']:,} rows in {_leaves(pred[tree]['tree_size'])}, "
                    f"root {pred[tree]['merkle_root']}",
                )
                for tree in ("verdicts", "entities")
            ),
            (
                "billed / counted",
                f"{totals['vendor_billed']:,} / {totals['buyer_counted']:,}"
                + (f"; credit {totals['credit']} {totals['currency']}" if totals["credit"] else ""),
            ),
            ("previous pack", (pred["previous"] or {}).get("sha256") or "none (starts a chain)"),
        ]
        for name, value in rows:
            table.add_row(name, Text(value))
        stdout_console().print(table)
    raise typer.Exit(EXIT_FINDING if totals["beyond_tolerance"] else EXIT_OK)


def _data(events: list[Path] | None, workspace: Path | None) -> EventsInput:
    return events_input(events, workspace)


def render_checks(v: Verification, fmt: OutputFormat) -> None:
    """The checklist: one line per check with ✓ / ✗ / • and its cause."""
    if fmt == OutputFormat.json:
        sys.stdout.write(jsonout.dumps(v.to_json(), indent=2, ensure_ascii=False) + "\n")
        return
    table = Table(title=Text(f"verify {v.target}"), show_lines=False)
    table.add_column("")
    table.add_column("check")
    table.add_column("result")
    for c in v.checks:
        mark, style = MARKS[c.status]
        table.add_row(Text(mark, style=style), Text(c.name), Text(c.detail))
    console = stdout_console()
    console.print(table)
    if v.ok:
        console.print("all checks passed", style="bold green")
    else:
        console.print(
            Text(f"{len(v.failed)} check(s) failed: " + ", ".join(c.name for c in v.failed)),
            style="bold red",
        )


@app.command("verify", rich_help_panel=PANEL_AUDIT)
def verify_cmd(
    target: Annotated[
        Path,
        typer.Argument(
            help="An evidence pack folder, or a proof file from 'prove'.", metavar="PACK"
        ),
    ],
    pubkey: PubkeyOpt,
    events: EventsOpt = None,
    workspace: WorkspaceOpt = None,
    invoice: Annotated[
        list[Path] | None,
        typer.Option(
            "--invoice",
            "-i",
            help="The invoice as received (default: the pack's signed copy).",
            metavar="INVOICE",
        ),
    ] = None,
    previous: Annotated[
        Path | None,
        typer.Option("--previous", help="The previous pack of the chain.", metavar="PACK"),
    ] = None,
    fmt: FormatOpt = OutputFormat.table,
    meter_key: MeterKeyOpt = None,
) -> None:
    """Check a pack (or a proof) offline: signature, files, definition, SQL, data, results."""
    key = load_public_key(pubkey)
    live_key = load_public_key(meter_key) if meter_key is not None else None
    if target.is_file():
        try:
            proof = json.loads(target.read_bytes())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(
                Problem(f"not a proof file ({exc})", Location(file=str(target)))
            ) from None
        v = verify_proof(proof, key, str(target))
    elif target.is_dir():
        if (
            not (target / "envelope.dsse.json").exists()
            and not (target / "statement.json").exists()
        ):
            raise InputError(
                Problem(
                    "not an evidence pack (no envelope.dsse.json or statement.json)",
                    Location(file=str(target)),
                    "give the folder 'truecount evidence --out' wrote",
                )
            )
        with phased("re-running the count and the reconciliation…"):
            v = verify_pack(
                target, key, _data(events, workspace), invoice or None, previous, meter_key=live_key
            )
    else:
        raise InputError(Problem("no such pack or proof", Location(file=str(target))))
    render_checks(v, fmt)
    raise typer.Exit(EXIT_OK if v.ok else EXIT_FINDING)


@contextlib.contextmanager
def phased(message: str) -> Iterator[None]:
    """A spinner on a terminal whose text follows the phases of the run (evidence.run's
    PHASES); nothing when stderr is piped."""
    err = stderr_console()
    if not err.is_terminal:
        yield
        return
    with err.status(message) as status:
        token = PHASES.set(lambda name: status.update(f"{name}…"))
        try:
            yield
        finally:
            PHASES.reset(token)


@app.command("prove", rich_help_panel=PANEL_AUDIT)
def prove_cmd(
    pack: Annotated[Path, typer.Argument(help="The evidence pack folder.", metavar="PACK")],
    entity_id: Annotated[
        str, typer.Argument(help="The entity to prove, e.g. a ticket id.", metavar="ENTITY")
    ],
    events: EventsOpt = None,
    workspace: WorkspaceOpt = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the proof here (default: stdout).", metavar="FILE"),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the --out file if it already exists.")
    ] = False,
) -> None:
    """An inclusion proof of one entity's row, verdicts and events, checkable on its own."""
    if out is not None:
        output_file(out)  # a folder, a missing folder or no name: said before the work
        if out.exists() and not force:
            fail(f"{out} already exists; choose another --out or pass --force to overwrite it")
    data: EventsInput | None
    if events or workspace is not None:
        data = _data(events, workspace)
    else:
        try:
            data = Workspace.open(None)
        except WorkspaceError:
            data = None
            stderr_console().print(
                "no --events and no workspace here: the proof covers the entity's row and "
                "verdicts, not its events",
                markup=False,
                style="dim",
            )
    with phased("building the proof…"):
        proof = make_proof(pack, entity_id, data)
    text = jsonout.dumps(proof, indent=2, ensure_ascii=False) + "\n"
    if out is not None:
        write_whole(out, text.encode("utf-8"))
        stderr_console().print(f"wrote the proof to {out}", markup=False)
    else:
        sys.stdout.write(text)


def write_whole(path: Path, data: bytes) -> None:
    """Write ``path`` whole or leave it as it was: a temporary file beside it, flushed to
    disk, then renamed over it; a full disk or Ctrl-C leaves no partial proof to be sent."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise InputError(
            Problem(
                f"cannot write the file: {exc.strerror or exc}",
                Location(file=str(path)),
                "choose a folder that exists and that you can write to",
            )
        ) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(
            Problem(
                f"cannot write the file: {exc.strerror or exc}",
                Location(file=str(path)),
                "nothing was written; free some space or choose another folder",
            )
        ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
