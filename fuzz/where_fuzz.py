"""Coverage-guided fuzzing of the where parser (Atheris; optional, not run in CI).

Any text must give a tree that prints and parses back to itself, or a ``WhereError`` that names
the position: anything else is a crash that Atheris saves as a reproducer. See fuzz/README.md.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from truecount.definition.where import parse_where
    from truecount.errors import Location, WhereError

HERE = Location(file="def.yaml", line=1, key="where")


def test_one_input(data: bytes) -> None:
    """One input: text from the fuzzer's bytes, parsed; a tree must round-trip."""
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))
    try:
        tree = parse_where(text, HERE)
    except WhereError as exc:
        if "at position" not in exc.problems[0].message:
            raise AssertionError(f"an error without a position: {exc.first_line}") from None
        return
    again = parse_where(str(tree), HERE)
    if again != tree:
        raise AssertionError(f"{text!r} prints as {tree!s}, which parses to another tree")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
