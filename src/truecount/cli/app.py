"""The Typer application, shared options, and the error boundary (exit codes).

Exit codes: 0 fine, 1 a finding (beyond tolerance, alarm, missing data), 2 bad input or usage.
"""

from __future__ import annotations

import enum
import importlib
import sys
from collections.abc import Callable
from typing import Any, Final, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from truecount.errors import TruecountError

EXIT_OK: Final[int] = 0
EXIT_FINDING: Final[int] = 1
EXIT_BAD_INPUT: Final[int] = 2

app = typer.Typer(
    name="truecount",
    help="The buyer's own meter for outcome-priced AI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Modules that register verbs on ``app`` when imported. Each owns its verbs.
_VERB_MODULES: Final[tuple[str, ...]] = (
    "truecount.cli.workspace_cmds",
    "truecount.cli.meter_cmds",
    "truecount.cli.reconcile_cmds",
    "truecount.cli.demo_cmds",
    "truecount.cli.check_cmds",
    "truecount.cli.library_cmds",
    "truecount.cli.evidence_cmds",
    "truecount.cli.watch_cmds",
    "truecount.cli.replay_cmds",
    "truecount.cli.drift_cmds",
    "truecount.cli.sample_cmds",
    "truecount.cli.contract_cmds",
    "truecount.cli.report_cmds",
    "truecount.cli.serve_cmds",
)

F = TypeVar("F", bound=Callable[..., Any])


class OutputFormat(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def stdout_console() -> Console:
    """Console for results; plain when piped so output stays machine-friendly."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


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


def main() -> None:
    """Console-script entry point.

    Typer reports usage errors itself (exit 2); truecount errors raised by the library arrive
    here and become one line on stderr with exit code 2, never a traceback.
    """
    _load_verbs()
    try:
        app()
    except TruecountError as exc:
        err = stderr_console()
        err.print(f"[bold red]error:[/] {escape(exc.first_line)}", markup=True, highlight=False)
        for problem in exc.problems[1:10]:
            err.print(f"       {problem}", markup=False, highlight=False)
        sys.exit(EXIT_BAD_INPUT)
