"""The library verbs: ``definitions`` lists the packaged definitions, ``new`` copies one out.

Starting from a packaged definition is the quickest way to a first count; copying it (rather
than counting with it in place) makes it the buyer's own file, to edit and version.
"""

from __future__ import annotations

import enum
import shlex
from typing import Annotated

import typer
from rich.table import Table

from truecount import jsonout, library
from truecount.cli.app import EXIT_OK, PANEL_START, app, fail, stdout_console


class ListFormat(enum.StrEnum):
    table = "table"
    json = "json"


@app.command("definitions", rich_help_panel=PANEL_START)
def definitions_cmd(
    fmt: Annotated[
        ListFormat, typer.Option("--format", "-f", help="Output format.")
    ] = ListFormat.table,
) -> None:
    """List the packaged outcome definitions to start from (see 'truecount new').

    Example, in the folder that 'truecount demo' writes:
    truecount definitions --format json
    """
    found = library.entries()
    if fmt is ListFormat.json:
        print(jsonout.dumps([e.to_json() for e in found], indent=2))
        raise typer.Exit(EXIT_OK)
    table = Table(
        title="packaged outcome definitions",
        caption="start from one: truecount new NAME DEST",
    )
    table.add_column("name", no_wrap=True)
    table.add_column("version", justify="right")
    table.add_column("category")
    table.add_column("unit")
    table.add_column("what counts")
    for e in found:
        table.add_row(e.name, str(e.version), e.category, e.unit, e.description)
    stdout_console().print(table)
    raise typer.Exit(EXIT_OK)


@app.command("new", rich_help_panel=PANEL_START)
def new_cmd(
    name: Annotated[
        str,
        typer.Argument(
            help="A packaged definition (see 'truecount definitions').",
            show_default=False,
            metavar="NAME",
        ),
    ],
    dest: Annotated[
        str,
        typer.Argument(
            help="The file to write, or a folder (existing, ending in '/', or without an "
            "extension) to write NAME.yaml into.",
            show_default=False,
            metavar="DEST",
        ),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the file if it already exists.")
    ] = False,
) -> None:
    """Copy a packaged definition to DEST as a file of your own to edit and version.

    Example, in the folder that 'truecount demo' writes:
    truecount new support_resolution_strict my-outcome.yaml
    """
    try:
        written = library.copy(name, dest, overwrite=force)
    except library.DestinationExistsError as exc:
        fail(f"{exc.path} already exists; pass --force to overwrite it")
    except library.LibraryError as exc:
        fail(exc.first_line)
    entry = library.find(name)
    path = shlex.quote(str(written))
    con = stdout_console()
    con.print(f"wrote {entry.name} v{entry.version} to {written}", markup=False, soft_wrap=True)
    con.print(
        f"next: truecount check {path}   then: truecount count {path}"
        "   (in a workspace, or add --events FILE)",
        markup=False,
        soft_wrap=True,
    )
    raise typer.Exit(EXIT_OK)
