"""YAML that is cheap to write and costly to read is refused fast, by the one YAML reader.

A "billion laughs" of nine anchors expands to 387 million strings; a 50 MB file or a
thousand-level nesting would take minutes or the interpreter's stack. Each is refused before
it is built, within a few megabytes, whichever file (definition, terms, mapping, invoice
mapping) holds it.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from truecount.billing.invoice import load_invoice_mapping
from truecount.billing.terms import load_terms
from truecount.definition.load import load_definition
from truecount.errors import DefinitionError, MappingError, TermsError, TruecountError
from truecount.ingest.mapping import load_mapping
from truecount.yamlsource import MAX_ALIASES, MAX_BYTES, MAX_DEPTH, parse_with_lines

LOL = "lol"


def billion_laughs(key: str = "description") -> str:
    """Nine levels of nine aliases each: 9**9 strings once expanded."""
    lines = [f'a: &a ["{LOL}","{LOL}","{LOL}","{LOL}","{LOL}","{LOL}","{LOL}","{LOL}","{LOL}"]']
    for i in range(1, 9):
        name, prev = chr(97 + i), chr(96 + i)
        lines.append(f"{name}: &{name} [" + ",".join(f"*{prev}" for _ in range(9)) + "]")
    lines.append(f"{key}: *i")
    return "\n".join(lines) + "\n"


def wide_alias() -> str:
    """Few aliases, each to a long list: under the alias count, over the expansion budget."""
    items = ", ".join(str(i) for i in range(2000))
    return f"base: &b [{items}]\n" + "".join(f"k{i}: *b\n" for i in range(50))


def deep(levels: int) -> str:
    return "x: " + "[" * levels + "]" * levels + "\n"


def refused_fast(call: Callable[[], object], error: type[TruecountError], says: str) -> None:
    """``call`` raises ``error`` whose message holds ``says``, within < 100 MB.

    The bound is on memory, not on the clock (a shared machine makes any time bound flaky): an
    expansion that was not cut short would hold its hundreds of millions of strings, and the
    message says which limit refused the file before any of that was built."""
    tracemalloc.start()
    try:
        with pytest.raises(error) as caught:
            call()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert says in caught.value.first_line, caught.value.first_line
    assert peak < 100 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"


def test_billion_laughs_is_refused() -> None:
    refused_fast(
        lambda: parse_with_lines(billion_laughs(), "def.yaml", DefinitionError),
        DefinitionError,
        "aliases expand to more than",
    )


def test_too_many_aliases_are_refused() -> None:
    text = "x: &x 1\n" + "".join(f"k{i}: *x\n" for i in range(MAX_ALIASES + 1))
    refused_fast(
        lambda: parse_with_lines(text, "def.yaml", DefinitionError),
        DefinitionError,
        f"more than {MAX_ALIASES} aliases",
    )


def test_alias_expansion_is_bounded_even_with_few_aliases() -> None:
    refused_fast(
        lambda: parse_with_lines(wide_alias(), "def.yaml", DefinitionError),
        DefinitionError,
        "aliases expand to more than",
    )


def test_a_few_small_aliases_still_work() -> None:
    data, _ = parse_with_lines("a: &x [1, 2]\nb: *x\nc: *x\n", "f.yaml")
    assert data == {"a": [1, 2], "b": [1, 2], "c": [1, 2]}


def test_deep_nesting_is_refused_with_its_line() -> None:
    text = "ok: 1\n" + deep(5000)
    with pytest.raises(MappingError) as caught:
        parse_with_lines(text, "m.yaml")
    assert f"nested more than {MAX_DEPTH} levels deep" in caught.value.first_line
    assert "m.yaml:2" in caught.value.first_line


def test_nesting_within_the_limit_is_read() -> None:
    data, _ = parse_with_lines(deep(MAX_DEPTH - 2), "f.yaml")
    assert isinstance(data, dict)


def test_an_oversized_text_is_refused() -> None:
    text = "description: " + "x" * (MAX_BYTES + 1) + "\n"
    refused_fast(
        lambda: parse_with_lines(text, "t.yaml", TermsError), TermsError, "more than the 1,000,000"
    )


def test_a_50_mb_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("w", encoding="utf-8") as out:
        out.write("truecount: 1\ndescription: |\n")
        line = "  " + "x" * 1022 + "\n"
        for _ in range(50 * 1024):
            out.write(line)
    assert big.stat().st_size > 50_000_000
    refused_fast(lambda: load_definition(big), DefinitionError, "52,4")


@pytest.mark.parametrize(
    ("load", "error"),
    [
        (load_definition, DefinitionError),
        (load_mapping, MappingError),
        (load_invoice_mapping, MappingError),
        (load_terms, TermsError),
    ],
    ids=["definition", "mapping", "invoice-mapping", "terms"],
)
def test_every_yaml_file_refuses_a_bomb(
    tmp_path: Path, load: Callable[[Path], object], error: type[TruecountError]
) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(billion_laughs(), encoding="utf-8")
    refused_fast(lambda: load(bomb), error, "aliases")
