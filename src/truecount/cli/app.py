"""The Typer application, shared options, and the error boundary (exit codes).

Exit codes: 0 fine, 1 a finding (beyond tolerance, alarm, missing data), 2 bad input or usage,
130 stopped by Ctrl-C.
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

from truecount.cli.terminal import guarded
from truecount.errors import TruecountError

EXIT_OK: Final[int] = 0
EXIT_FINDING: Final[int] = 1
EXIT_BAD_INPUT: Final[int] = 2
#: Stopped by Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED: Final[int] = 130

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


def main() -> None:
    """Console-script entry point.

    Typer reports usage errors itself (exit 2); truecount errors raised by the library arrive
    here and become one line on stderr with exit code 2, never a traceback.
    """
    try:
        _load_verbs()
        app()
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
