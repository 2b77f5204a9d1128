"""The Typer application, shared options, and the error boundary (exit codes).

Exit codes: 0 fine, 1 a finding (beyond tolerance, alarm, missing data), 2 bad input or usage,
130 stopped by Ctrl-C.

``truecount --help`` lists the verbs under panels in the order of a month's work: start a
workspace, load the data, count, bill, audit, and the contract tools used before signing. Each
verb names its panel where it registers (one of the ``PANEL_*`` constants).
"""

from __future__ import annotations

import enum
import importlib
import importlib.metadata
import re
import sys
from collections.abc import Callable
from typing import Annotated, Any, Final, NoReturn, TypeVar

import duckdb
import typer
from rich.console import Console
from rich.markup import escape

from truecount.cli.help_names import install as _install_help_names
from truecount.cli.terminal import guarded
from truecount.db import resource_error
from truecount.errors import InputError, Location, Problem, TruecountError

EXIT_OK: Final[int] = 0
EXIT_FINDING: Final[int] = 1
EXIT_BAD_INPUT: Final[int] = 2
#: Stopped by Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED: Final[int] = 130

#: The help panels, in the order ``--help`` shows them (the order of a month's work).
PANEL_START: Final[str] = "Start"
PANEL_DATA: Final[str] = "Data"
PANEL_COUNT: Final[str] = "Count"
PANEL_BILL: Final[str] = "Bill"
PANEL_AUDIT: Final[str] = "Audit"
PANEL_CONTRACT: Final[str] = "Contract"
PANELS: Final[tuple[str, ...]] = (
    PANEL_START,
    PANEL_DATA,
    PANEL_COUNT,
    PANEL_BILL,
    PANEL_AUDIT,
    PANEL_CONTRACT,
)

_install_help_names()

app = typer.Typer(
    name="truecount",
    help="The buyer's own meter for outcome-priced AI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Modules that register verbs on ``app`` when imported. Each owns its verbs. The order is the
#: order of the verbs within a help panel: ``demo`` first, as a new user's first command.
_VERB_MODULES: Final[tuple[str, ...]] = (
    "truecount.cli.demo_cmds",
    "truecount.cli.workspace_cmds",
    "truecount.cli.library_cmds",
    "truecount.cli.meter_cmds",
    "truecount.cli.check_cmds",
    "truecount.cli.export_cmds",
    "truecount.cli.reconcile_cmds",
    "truecount.cli.evidence_cmds",
    "truecount.cli.watch_cmds",
    "truecount.cli.replay_cmds",
    "truecount.cli.drift_cmds",
    "truecount.cli.sample_cmds",
    "truecount.cli.contract_cmds",
    "truecount.cli.report_cmds",
    "truecount.cli.serve_cmds",
    "truecount.cli.live_cmds",
)

F = TypeVar("F", bound=Callable[..., Any])


class OutputFormat(enum.StrEnum):
    """``--format`` of the verbs that print a table or JSON (``count`` adds csv: ``CountFormat``).

    Each verb's ``--format`` lists only what it prints, so ``--help`` never offers a format the
    verb would refuse.
    """

    table = "table"
    json = "json"


def _version() -> str:
    try:
        return importlib.metadata.version("truecount")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree never installed
        return "unknown"


def _show_version(value: bool) -> None:
    if value:
        print(f"truecount {_version()}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            help="Print the version and exit.",
            is_eager=True,
            callback=_show_version,
        ),
    ] = False,
) -> None:
    """The buyer's own meter for outcome-priced AI."""


def stdout_console(markup: bool = False) -> Console:
    """Console for results; plain when piped so output stays machine-friendly.

    Markup is off unless asked for (then every quoted value must be escaped), and control
    characters in the data are shown, not obeyed: see :mod:`truecount.cli.terminal`.
    """
    return guarded(
        Console(highlight=False, markup=markup, width=None if sys.stdout.isatty() else 120)
    )


def stderr_console(markup: bool = False) -> Console:
    """Console for notes and errors; the same guards as :func:`stdout_console`."""
    return guarded(Console(stderr=True, highlight=False, markup=markup, soft_wrap=True))


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print a one-line error to stderr and exit."""
    stderr_console().print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    raise typer.Exit(code)


def _load_verbs() -> None:
    for name in _VERB_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a verb module not written yet
            if exc.name != name:
                raise

    # Help lists the panels in the order of their first verb, and a verb module imported on its
    # own before this (a library caller, a test) registers first: sort by panel, then by module.
    def rank(panel: object, module: str) -> tuple[int, int]:
        where = PANELS.index(panel) if panel in PANELS else len(PANELS)
        of = _VERB_MODULES.index(module) if module in _VERB_MODULES else len(_VERB_MODULES)
        return where, of

    app.registered_commands.sort(
        key=lambda c: rank(c.rich_help_panel, getattr(c.callback, "__module__", ""))
    )
    app.registered_groups.sort(key=lambda g: rank(g.rich_help_panel, ""))  # stable within a panel


def main() -> None:
    """Console-script entry point.

    Typer reports usage errors itself (exit 2); truecount errors raised by the library arrive
    here and become one line on stderr with exit code 2, never a traceback.
    """
    try:
        try:
            _load_verbs()
            app()
        except (duckdb.OutOfMemoryException, duckdb.IOException) as exc:
            # out of memory or temporary disk anywhere: one line naming the setting (db.py)
            raise (resource_error(exc, "the command") or exc) from None
        except duckdb.ConversionException as exc:
            # a value of an export read in place (--events) that its canonical type refuses,
            # met only when a query reads that column (attrs that are not JSON, say)
            raise unreadable_value(exc) from None
    except TruecountError as exc:
        err = stderr_console()
        err.print(f"[bold red]error:[/] {escape(exc.first_line)}", markup=True, highlight=False)
        for problem in exc.problems[1:10]:
            err.print(f"       {problem}", markup=False, highlight=False)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit as exc:
        # Typer turns Ctrl-C inside a command into a silent exit 130; say what happened.
        if exc.code == EXIT_INTERRUPTED:
            _interrupted()
        raise


def unreadable_value(exc: duckdb.ConversionException) -> InputError:
    """DuckDB's conversion error as one line: the column and value it names, and the fix."""
    first = str(exc).splitlines()[0].removeprefix("Conversion Error: ")
    column = re.search(r"source column (\w+)", first)
    return InputError(
        Problem(
            f"a value in the events cannot be read as its canonical type: {first}",
            Location(column=column.group(1) if column else None),
            "fix the export, or load it with 'truecount ingest', which sets such rows aside "
            "with their reasons and counts them",
        )
    )


def _interrupted() -> NoReturn:
    """Ctrl-C: one line and exit 130. Store writes are transactions (an ingest commits file by
    file), so what was not committed is rolled back and the store stays as it was."""
    stderr_console().print(
        "[bold red]interrupted:[/] stopped by Ctrl-C; the workspace store keeps only what was "
        "committed (an ingest keeps each file it finished, whole, and nothing of the one in "
        "progress)",
        markup=True,
        highlight=False,
    )
    sys.exit(EXIT_INTERRUPTED)
