"""Fuzzing the YAML readers: definitions, terms and mappings.

Arbitrary bytes, arbitrary text and mutations of the shipped examples (a byte flipped, a span
cut or repeated, a line duplicated, an anchor or alias dropped in) must each give a value or
one of truecount's own errors with the file named — never another exception. Generated alias
bombs and nestings must be refused exactly when they cross the documented limits, and read
to the same data as PyYAML reads them when they do not.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import fuzz
from truecount.billing.invoice import load_invoice_mapping
from truecount.billing.terms import load_terms, parse_terms
from truecount.definition.load import load_definition, parse_definition
from truecount.errors import DefinitionError, MappingError, TermsError, TruecountError
from truecount.ingest.mapping import load_mapping
from truecount.yamlsource import MAX_ALIAS_NODES, MAX_ALIASES, MAX_DEPTH, parse_with_lines

EXAMPLES = Path(__file__).parent.parent / "examples"
DEFINITIONS = sorted(EXAMPLES.glob("*.yaml"))
TERMS = sorted(EXAMPLES.rglob("terms.yaml"))
MAPPINGS = sorted(EXAMPLES.rglob("*mapping.yaml"))

LOADERS: dict[str, tuple[Callable[[Path], object], type[TruecountError]]] = {
    "definition": (load_definition, DefinitionError),
    "terms": (load_terms, TermsError),
    "mapping": (load_mapping, MappingError),
    "invoice-mapping": (load_invoice_mapping, MappingError),
}


def loads_or_refuses(kind: str, data: bytes) -> None:
    """Write ``data`` to a file and load it as ``kind``: a value, or this kind's error that
    names the file."""
    load, error = LOADERS[kind]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input.yaml"
        path.write_bytes(data)
        try:
            load(path)
        except error as exc:
            assert exc.problems, "an error carries at least one problem"
            assert any(str(path) in str(p.location) for p in exc.problems), exc.first_line


@st.composite
def mutated(draw: st.DrawFn, sources: list[Path]) -> bytes:
    """A shipped example with one to three random edits."""
    data = bytearray(draw(st.sampled_from(sources)).read_bytes())
    for _ in range(draw(st.integers(1, 3))):
        edit = draw(st.sampled_from(["flip", "cut", "repeat", "insert", "line", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if edit == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "cut":
            del data[at : at + draw(st.integers(1, 40))]
        elif edit == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 40))]
        elif edit == "insert":
            junk = draw(
                st.sampled_from(
                    [b"&a ", b"*a", b"{", b"[", b"- ", b": ", b"\t", b"'", b'"', b"!!python/",
                     b"\xff", b"\x00", b"\r", b"\xef\xbb\xbf", b"<<: *a\n", b"? ", b"|", b"1e400"]
                )
            )  # fmt: skip
            data[at:at] = junk
        elif edit == "line":
            lines = bytes(data).splitlines(keepends=True)
            if lines:
                i = draw(st.integers(0, len(lines) - 1))
                lines.insert(i, lines[i])
                data = bytearray(b"".join(lines))
        else:
            del data[at:]
    return bytes(data)


@fuzz(150)
@given(st.sampled_from(sorted(LOADERS)), st.binary(max_size=300))
def test_arbitrary_bytes(kind: str, data: bytes) -> None:
    loads_or_refuses(kind, data)


@fuzz(150)
@given(st.text(max_size=200))
def test_arbitrary_text_as_a_definition_and_as_terms(text: str) -> None:
    for parse, error in ((parse_definition, DefinitionError), (parse_terms, TermsError)):
        try:
            parse(text, "t.yaml")
        except error as exc:
            assert "t.yaml" in exc.first_line


@fuzz(200)
@given(mutated(DEFINITIONS))
def test_mutated_definitions(data: bytes) -> None:
    loads_or_refuses("definition", data)


@fuzz(100)
@given(mutated(TERMS))
def test_mutated_terms(data: bytes) -> None:
    loads_or_refuses("terms", data)


@fuzz(100)
@given(mutated(MAPPINGS))
def test_mutated_mappings(data: bytes) -> None:
    loads_or_refuses("mapping", data)


# --------------------------------------------------------------------------- the limits
def bomb(width: int, levels: int) -> str:
    """``levels`` anchors, each a list of ``width`` aliases to the one before."""
    lines = ["l0: &l0 [" + ", ".join(["x"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def expanded_nodes(width: int, levels: int) -> int:
    """The nodes the aliases add once expanded, beyond those written out (independent count)."""
    written = width + 1 + (levels - 1) * (width + 1) + levels  # lists, items, keys
    full = 0  # every node of the built data
    size = width + 1  # a level-0 list and its items
    full += size + 1
    for _ in range(1, levels):
        size = 1 + width * size
        full += size + 1
    return full - written


@fuzz(80)
@given(st.integers(1, 12), st.integers(1, 6))
def test_alias_bombs_are_refused_exactly_past_the_limits(width: int, levels: int) -> None:
    text = bomb(width, levels)
    aliases = width * (levels - 1)
    try:
        data, _ = parse_with_lines(text, "b.yaml", DefinitionError)
    except DefinitionError as exc:
        assert "b.yaml" in exc.first_line
        assert aliases > MAX_ALIASES or expanded_nodes(width, levels) > MAX_ALIAS_NODES // 2, (
            f"refused a small document: {exc.first_line}"
        )
        return
    assert aliases <= MAX_ALIASES
    assert data == yaml.safe_load(text)


@fuzz(40)
@given(st.integers(1, 3 * MAX_DEPTH), st.sampled_from(["[", "{a: ", "- "]))
def test_nesting_is_refused_exactly_past_the_limit(levels: int, opener: str) -> None:
    if opener == "- ":
        text = "".join("  " * i + "-\n" for i in range(levels - 1)) + "  " * (levels - 1) + "- 1\n"
    else:
        closer = "]" if opener == "[" else "}"
        text = "x: " + opener * levels + "1" + closer * levels + "\n"
    try:
        data, _ = parse_with_lines(text, "n.yaml", MappingError)
    except MappingError as exc:
        assert "n.yaml" in exc.first_line
        assert levels + 1 > MAX_DEPTH - 1, exc.first_line
        return
    assert levels < MAX_DEPTH
    assert data == yaml.safe_load(text)


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_an_empty_and_a_binary_file(kind: str) -> None:
    for data in (b"", b"\x00" * 64, b"\xff\xfe\x00", b"\x1f\x8b\x08\x00junk"):
        loads_or_refuses(kind, data)


def test_terms_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "terms.yaml"
    path.write_bytes(b"truecount_terms: 1\ncurrency: \x80\n")
    with pytest.raises(TermsError, match=r"terms\.yaml"):
        load_terms(path)


def test_terms_that_are_a_folder_or_missing(tmp_path: Path) -> None:
    with pytest.raises(TermsError, match="no such file"):
        load_terms(tmp_path / "absent.yaml")
    with pytest.raises(TermsError, match="a folder, not a file"):
        load_terms(tmp_path)


@pytest.mark.parametrize("zone", ["America", "Europe", "Etc", "posix"])
def test_a_zone_that_is_a_folder(tmp_path: Path, zone: str) -> None:
    path = tmp_path / "mapping.yaml"
    text = (EXAMPLES / "support" / "ratings_mapping.yaml").read_text(encoding="utf-8")
    kept = [line for line in text.splitlines() if not line.startswith("timezone:")]
    path.write_text("\n".join([*kept, f"timezone: {zone}"]) + "\n", encoding="utf-8")
    with pytest.raises(MappingError, match=zone):
        load_mapping(path)
