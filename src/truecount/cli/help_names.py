"""Help that names values as a user thinks of them: ``DEFINITION``, ``FILE…``, ``RATE``.

Typer prints a parameter's Python type next to it (``<path>``, ``<str>``, ``<list[Path]>``, and
``<bool>`` beside every flag). Every truecount option therefore sets a ``metavar``, which Typer
shows instead of the type for an option, but for an argument Typer prints the type even then,
and a flag takes no value to name at all. :func:`install` closes those two gaps, once, at
import of :mod:`truecount.cli.app`:

* an argument with a metavar shows the metavar alone (it is its name in the help table);
* a flag shows nothing after its name.

The test ``tests/test_cli_help.py`` walks every verb's help so a new option without a metavar
is caught.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperOption

_INSTALLED_FLAG = "_truecount_help_names"


def install() -> None:
    """Patch the two display methods; a second call does nothing."""
    if getattr(TyperOption, _INSTALLED_FLAG, False):
        return
    option_display = TyperOption.display_type_rich
    argument_display = TyperArgument.display_type_rich

    def option_type(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return option_display(self, ctx)

    def argument_type(self: TyperArgument, ctx: Any) -> str | None:
        if self.metavar is not None:
            return None
        return argument_display(self, ctx)

    TyperOption.display_type_rich = option_type  # type: ignore[method-assign]
    TyperArgument.display_type_rich = argument_type  # type: ignore[method-assign,assignment]
    setattr(TyperOption, _INSTALLED_FLAG, True)
