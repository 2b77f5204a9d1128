"""The per-file plan: one SQL query that turns an opened file into checked canonical rows.

The query (a SQLGlot syntax tree, so names and literals from the mapping are quoted, never
pasted) produces every canonical column plus three internal ones:

- ``__tc_row``: the record's row number in the file;
- ``__tc_problem`` / ``__tc_problem_column``: the first failing check and the input column it
  concerns, or NULL when the row is good;
- ``__tc_raw``: the input record as JSON, computed only for rows with a problem.

Checks run in canonical column order (entity_id, ts, type, actor, value, attrs, seq,
recorded_at, then the status of a status history), so a row with several problems is
quarantined under the first one. A canonical file (no mapping) is read as if by a mapping that
takes every canonical column present under its own name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlglot import exp

from truecount.errors import InputError, Location, MappingError, Problem, suggest
from truecount.ingest.canonical import CANONICAL_COLUMNS, REQUIRED_COLUMNS, SAFE_INTEGER
from truecount.ingest.mapping import FieldSpec, MappingFile
from truecount.ingest.source import JSON_COLUMN, ROW_COLUMN, Source, call, column, quoted
from truecount.ingest.zones import ZONE_HINT, text_to_utc

PROBLEM: Final[str] = "__tc_problem"
PROBLEM_COLUMN: Final[str] = "__tc_problem_column"
#: Epoch values below this are seconds, at or above it milliseconds (see _parse_timestamp).
EPOCH_UNIT_SPLIT: Final[int] = 100_000_000_000
RAW: Final[str] = "__tc_raw"
STATUS: Final[str] = "__tc_status"

#: Length of the hex event_id derived from "<file name>:<row>" when the export has none.
HASH_CHARS: Final[int] = 32

#: The bound SAFE_INTEGER (2^53 - 1) for a FLOAT (single precision) id column: 2^24 - 1.
_SAFE_FLOAT_INTEGER: Final[int] = 2**24 - 1
#: How DuckDB writes a JSON number it read as a double (1001.0, 1e22, NaN, -Infinity).
_DOUBLE_SPELLING: Final[str] = r"^-?([0-9]+[.eE]|\.[0-9]|NaN|Infinity)"


_NAIVE_TIMESTAMP_TYPES: Final[frozenset[str]] = frozenset(
    {"TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "DATE"}
)
_NUMERIC_PREFIXES: Final[tuple[str, ...]] = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
)
_MAX_SHOWN: Final[int] = 100


@dataclass(frozen=True)
class _Input:
    """A value as read from the file, before conversion: expression, DuckDB type, label."""

    expr: exp.Expr
    type: str
    label: str

    @property
    def is_text(self) -> bool:
        return self.type in ("VARCHAR", "JSON")

    def text(self) -> exp.Expr:
        if self.type == "VARCHAR":
            return self.expr
        return exp.Cast(this=self.expr, to=exp.DataType.build("VARCHAR"))

    def missing(self) -> exp.Expr:
        """NULL, or (for text) empty / blank: what counts as 'no value' in an export."""
        if not self.is_text:
            return exp.Is(this=self.expr, expression=exp.Null())
        return exp.or_(
            exp.Is(this=self.expr, expression=exp.Null()),
            exp.EQ(this=call("trim", self.text()), expression=exp.Literal.string("")),
        )


@dataclass(frozen=True)
class _Target:
    """One computed canonical value and the checks on it."""

    name: str
    value: exp.Expr
    checks: tuple[tuple[str, exp.Expr], ...] = ()


@dataclass(frozen=True)
class StagePlan:
    """The query for one file, and whether it carries a status column for history."""

    query: exp.Select
    has_status: bool
    #: True when every event_id is derived from file name and row, hence unique in the file.
    derived_ids: bool = False
    #: The name the derived ids hash (``sha256("<name>:<row>")``), when they are derived.
    id_name: str | None = None


def build_stage(source: Source, mapping: MappingFile | None) -> StagePlan:
    """Plan the conversion of ``source``; raise InputError / MappingError for file-wide issues."""
    assert source.query is not None
    builder = _Builder(source, mapping)
    targets = builder.targets()
    inner = exp.select(exp.Star())
    for t in targets:
        inner = inner.select(t.value.as_(_v(t.name)))
    inner = inner.from_(source.query.subquery("src"))

    checks = [(label, reason) for t in targets for label, reason in t.checks]
    middle = exp.select(exp.Star())
    for i, (_, reason) in enumerate(checks):
        middle = middle.select(reason.as_(f"__tc_r{i}"))
    middle = middle.from_(inner.subquery("v"))

    outer = exp.select(*[exp.column(_v(c)).as_(c, quoted=True) for c in CANONICAL_COLUMNS])
    outer = outer.select(exp.column(ROW_COLUMN))
    reasons = [exp.column(f"__tc_r{i}") for i in range(len(checks))]
    problem: exp.Expr = exp.Null()
    which: exp.Expr = exp.Null()
    raw: exp.Expr = exp.Null()
    if reasons:
        problem = exp.Coalesce(this=reasons[0], expressions=reasons[1:])
        which = exp.Case(
            ifs=[
                exp.If(this=_not_null(r), true=exp.Literal.string(label))
                for r, (label, _) in zip(reasons, checks, strict=True)
            ]
        )
        # Only rows with a problem pay for serialising the record.
        raw = exp.Case(ifs=[exp.If(this=_not_null(problem.copy()), true=builder.raw_record())])
    outer = outer.select(
        exp.Cast(this=problem, to=exp.DataType.build("VARCHAR")).as_(PROBLEM),
        exp.Cast(this=which, to=exp.DataType.build("VARCHAR")).as_(PROBLEM_COLUMN),
        exp.Cast(this=raw, to=exp.DataType.build("JSON")).as_(RAW),
    )
    has_status = mapping is not None and mapping.spec.status_history is not None
    if has_status:
        outer = outer.select(exp.column(_v("status")).as_(STATUS))
    outer = outer.from_(middle.subquery("c"))
    derived = "event_id" not in builder.specs
    return StagePlan(
        query=outer,
        has_status=has_status,
        derived_ids=derived,
        id_name=source.name if derived else None,
    )


def _not_null(e: exp.Expr) -> exp.Expr:
    return exp.Not(this=exp.Is(this=e, expression=exp.Null()))


def _v(name: str) -> str:
    return f"__tc_v_{name}"


class _Builder:
    def __init__(self, source: Source, mapping: MappingFile | None) -> None:
        self.source = source
        self.mapping = mapping
        self.zone = mapping.spec.timezone if mapping is not None else "UTC"
        self.specs: dict[str, FieldSpec] = {}
        self.attr_specs: dict[str, FieldSpec] = {}
        if mapping is None:
            self._canonical_specs()
        else:
            self._mapped_specs(mapping)

    # -- which input feeds which canonical column -------------------------------------------

    def _canonical_specs(self) -> None:
        have = self.source.columns
        missing = [c for c in REQUIRED_COLUMNS if c not in have]
        if missing:
            shown = ", ".join(sorted(have)) or "(none)"
            hints = [h for h in (suggest(missing[0], have),) if h]
            if len(have) == 1 and any(ch in next(iter(have)) for ch in ",;\t|"):
                hints.append(
                    "the rows could not be split into columns consistently; look for rows "
                    "with extra or missing fields"
                )
            hints.append(
                f"a canonical file needs {', '.join(REQUIRED_COLUMNS)}; the file has: {shown}; "
                "for another shape pass --mapping"
            )
            raise InputError(
                Problem(
                    f"missing required column '{missing[0]}'",
                    Location(file=str(self.source.path), column=missing[0]),
                    hint="; ".join(hints),
                )
            )
        for name in CANONICAL_COLUMNS:
            if name in have:
                self.specs[name] = FieldSpec(column=name)

    def _mapped_specs(self, mapping: MappingFile) -> None:
        cols = mapping.spec.columns
        for name in CANONICAL_COLUMNS:
            if name == "attrs":
                continue
            spec = getattr(cols, name)
            if spec is not None:
                self._require(spec, ("columns", name))
                self.specs[name] = spec
        for key, spec in (cols.attrs or {}).items():
            self._require(spec, ("columns", "attrs", key))
            self.attr_specs[key] = spec
        history = mapping.spec.status_history
        if history is not None:
            self._require(history.status, ("status_history", "status"))
            self.specs["status"] = history.status

    def _require(self, spec: FieldSpec, at: tuple[str, ...]) -> None:
        assert self.mapping is not None
        if spec.path is not None and not self.source.is_json:
            raise MappingError(
                Problem(
                    f"a JSON path ('{spec.path}') needs JSON Lines input, "
                    f"but {self.source.name} is {self.source.format.value}",
                    self.mapping.where(*at, "path"),
                    hint="use 'column' for tabular files",
                )
            )
        if spec.column is not None and spec.column not in self.source.columns:
            have = sorted(self.source.columns)
            hint = suggest(spec.column, have)
            listing = f"{self.source.name} has: {', '.join(have) or '(no columns)'}"
            raise MappingError(
                Problem(
                    f"column '{spec.column}' is not in {self.source.path}",
                    self.mapping.where(*at, "column"),
                    hint="; ".join(h for h in (hint, listing) if h),
                )
            )

    def _input(self, spec: FieldSpec, as_json: bool = False) -> _Input:
        if "const" in spec.model_fields_set:
            const = spec.const
            if const is None:
                return _Input(exp.Null(), "VARCHAR", "constant")
            if isinstance(const, bool):
                return _Input(
                    exp.Literal.string("true" if const else "false"), "VARCHAR", "constant"
                )
            if isinstance(const, int | float):
                return _Input(exp.Literal.number(const), "DOUBLE", "constant")
            return _Input(exp.Literal.string(const), "VARCHAR", "constant")
        if self.source.is_json:
            path = spec.path if spec.path is not None else _json_key_path(str(spec.column))
            fn = "json_extract" if as_json else "json_extract_string"
            expr = call(fn, column(JSON_COLUMN), exp.Literal.string(path))
            return _Input(expr, "JSON" if as_json else "VARCHAR", spec.label)
        name = str(spec.column)
        return _Input(column(name), self.source.columns[name], name)

    # -- the canonical columns ----------------------------------------------------------------

    def targets(self) -> list[_Target]:
        self._id_problems: list[_Target] = []
        out = [
            self._event_id(),
            self._text("entity_id", required=True),
            self._timestamp("ts", required=True),
            self._text("type", required=True),
            self._text("actor", required=False),
            self._value(),
            self._attrs(),
            self._seq(),
            self._recorded_at(),
            self._source_column(),
        ]
        if "status" in self.specs:
            out.append(self._text("status", required=True))
        # computed beside the ids they judge (one read of the value), checked with the ids
        return out + self._id_problems

    def _row_label(self) -> exp.Expr:
        return exp.DPipe(
            this=exp.Literal.string(f"{self.source.name}:"),
            expression=exp.Cast(this=exp.column(ROW_COLUMN), to=exp.DataType.build("VARCHAR")),
        )

    def _event_id(self) -> _Target:
        derived = call(
            "substr",
            call("sha256", self._row_label()),
            exp.Literal.number(1),
            exp.Literal.number(HASH_CHARS),
        )
        spec = self.specs.get("event_id")
        if spec is None:
            return _Target("event_id", derived)
        given, checks = self._id(spec, "event_id")
        value = exp.Coalesce(
            this=call("nullif", call("trim", given.text()), exp.Literal.string("")),
            expressions=[derived],
        )
        return _Target("event_id", value, tuple(checks))

    def _source_column(self) -> _Target:
        spec = self.specs.get("source")
        if spec is None:
            return _Target("source", self._row_label())
        # The same text as _row_label, spelled with printf: were the two spellings to share a
        # part, DuckDB would compute it once for every row, ahead of both COALESCEs, where each
        # needs the label only for the rows without an id or a source.
        pattern = self.source.name.replace("%", "%%") + ":%d"
        label = call("printf", exp.Literal.string(pattern), exp.column(ROW_COLUMN))
        return _Target(
            "source",
            exp.Coalesce(this=self._input(spec).text(), expressions=[label]),
        )

    def _text(self, name: str, required: bool) -> _Target:
        spec = self.specs.get(name)
        if spec is None:
            return _Target(name, exp.Cast(this=exp.Null(), to=exp.DataType.build("VARCHAR")))
        given, id_checks = self._id(spec, name) if name == "entity_id" else (self._input(spec), [])
        value, checks = self._mapped(spec, given)
        if required:
            missing = _Input(exp.column(_v(name)), "VARCHAR", given.label).missing()
            checks.insert(
                0, (given.label, _when(missing, _message("missing required value for ", name)))
            )
        else:
            value = call("nullif", value, exp.Literal.string(""))
        return _Target(name, value, tuple(id_checks + checks))

    def _id(self, spec: FieldSpec, name: str) -> tuple[_Input, list[tuple[str, exp.Expr]]]:
        """An id as text, and the check on it.

        A number read as a double (a JSON number written with a fraction or an exponent, a
        FLOAT, DOUBLE or DECIMAL column) is one entity however it is spelled: 1001, 1001.0 and
        1.001e3 all read '1001', as the vendor readers' numeric ids do. A number with a
        fraction, or beyond what a double holds exactly, is quarantined, never made an entity.
        Text is kept as written ("1001.0" in a CSV cell or a JSON string is that text).
        """
        given = self._input(spec)
        text: exp.Expr
        number: exp.Expr
        floating: exp.Expr
        safe: int | None = SAFE_INTEGER
        if self.source.is_json and "const" not in spec.model_fields_set:
            # Only text spelled like a double (1001.0, 1e3, NaN) asks the record whether it is
            # a JSON number or a string; an integer too long for 64 bits keeps its digits as
            # written (exact), so it stays as it is.
            text = given.expr
            number = exp.TryCast(this=text.copy(), to=exp.DataType.build("DOUBLE"))
            spelled = call("regexp_matches", text.copy(), exp.Literal.string(_DOUBLE_SPELLING))
            kind = call("json_type", self._input(spec, as_json=True).expr)
            floating = exp.Case(
                ifs=[
                    exp.If(
                        this=spelled,
                        true=exp.EQ(this=kind, expression=exp.Literal.string("DOUBLE")),
                    )
                ],
                default=exp.false(),
            )
        elif given.type in ("DOUBLE", "FLOAT") or given.type.startswith("DECIMAL"):
            text, number, floating = given.text(), given.expr, _not_null(given.expr)
            if given.type == "FLOAT":
                safe = _SAFE_FLOAT_INTEGER
            elif given.type != "DOUBLE":
                safe = None  # a decimal is exact
        else:
            return given, []
        fraction = exp.NEQ(this=number.copy(), expression=call("trunc", number.copy()))
        reasons = [
            exp.If(
                this=fraction,
                true=_message(
                    f"{name} ",
                    text.copy(),
                    " is a number with a fraction; an id is text or a whole number",
                ),
            )
        ]
        whole: exp.Expr = exp.Not(this=fraction.copy())
        if safe is not None:
            beyond = exp.Not(
                this=exp.LTE(this=call("abs", number.copy()), expression=exp.Literal.number(safe))
            )
            whole = exp.and_(whole, exp.Not(this=beyond.copy()))
            bits = 53 if safe == SAFE_INTEGER else 24
            infinite = exp.Not(this=call("isfinite", number.copy()))
            reasons.insert(
                0,
                exp.If(
                    this=infinite,
                    true=_message(f"{name} ", text.copy(), " is not a finite number"),
                ),
            )
            reasons.append(
                exp.If(
                    this=beyond,
                    true=_message(
                        f"{name} ",
                        text.copy(),
                        f" is read as a floating-point number beyond ±{safe} "
                        f"(2^{bits} - 1), where not every whole number is exact: write the id "
                        "as text or as digits alone",
                    ),
                )
            )
        integer = exp.Cast(
            this=exp.Cast(this=number.copy(), to=exp.DataType.build("HUGEINT")),
            to=exp.DataType.build("VARCHAR"),
        )
        value = exp.Case(
            ifs=[exp.If(this=floating, true=exp.Case(ifs=[exp.If(this=whole, true=integer)]))],
            default=text.copy(),
        )
        problem = exp.Case(
            ifs=[
                exp.If(
                    this=exp.and_(floating.copy(), exp.Not(this=exp.paren(whole.copy()))),
                    true=exp.Case(ifs=reasons),
                )
            ]
        )
        self._id_problems.append(_Target(f"{name}_problem", problem))
        return _Input(value, "VARCHAR", given.label), [
            (given.label, exp.column(_v(f"{name}_problem")))
        ]

    def _mapped(
        self, spec: FieldSpec, given: _Input
    ) -> tuple[exp.Expr, list[tuple[str, exp.Expr]]]:
        """Apply ``map`` (and ``strict``); return the text value and the unmapped-value check."""
        text = given.text()
        if spec.map is None:
            return text, []
        ifs = [
            exp.If(
                this=exp.EQ(this=text, expression=exp.Literal.string(key)),
                true=exp.Null() if out is None else exp.Literal.string(_scalar_text(out)),
            )
            for key, out in spec.map.items()
        ]
        fallback = exp.Null() if spec.strict else text
        value = exp.Case(ifs=ifs, default=fallback)
        if not spec.strict:
            return value, []
        known = [exp.Literal.string(k) for k in spec.map]
        unmapped = exp.and_(
            exp.Not(this=exp.Is(this=text, expression=exp.Null())),
            exp.Not(this=exp.In(this=text, expressions=known)),
        )
        listing = ", ".join(spec.map)
        reason = _message("unmapped value '", text, f"' (the mapping lists: {listing})")
        return value, [(given.label, _when(unmapped, reason))]

    def _timestamp(self, name: str, required: bool) -> _Target:
        spec = self.specs.get(name)
        if spec is None:
            return _Target(name, exp.Cast(this=exp.Null(), to=exp.DataType.build("TIMESTAMP")))
        given = self._input(spec)
        zone = spec.timezone or self.zone
        value, expected = self._parse_timestamp(given, spec, zone, name)
        missing = given.missing()
        ifs = []
        if required:
            ifs.append(exp.If(this=missing, true=_message("missing required value for ", name)))
        ifs.append(
            exp.If(
                this=exp.and_(
                    exp.Not(this=exp.paren(missing)),
                    exp.Is(this=exp.column(_v(name)), expression=exp.Null()),
                ),
                true=_message("unparseable timestamp '", given.text(), f"' ({expected})"),
            )
        )
        return _Target(name, value, ((given.label, exp.Case(ifs=ifs)),))

    def _parse_timestamp(
        self, given: _Input, spec: FieldSpec, zone: str, name: str
    ) -> tuple[exp.Expr, str]:
        def local_to_utc(naive: exp.Expr) -> exp.Expr:
            if zone == "UTC":
                return naive
            return call(
                "timezone",
                exp.Literal.string("UTC"),
                call("timezone", exp.Literal.string(zone), naive),
            )

        def aware_to_utc(aware: exp.Expr) -> exp.Expr:
            return call("timezone", exp.Literal.string("UTC"), aware)

        def try_cast(e: exp.Expr, to: str) -> exp.Expr:
            return exp.TryCast(this=e, to=exp.DataType.build(to))

        formats = spec.formats
        numeric = given.type.startswith(_NUMERIC_PREFIXES)
        # An epoch in the other unit is off by a factor of 1000, which still parses: seconds
        # read as milliseconds land in January 1970, milliseconds read as seconds tens of
        # thousands of years ahead. 10^11 splits the two for any date from 1973 to 5138.
        split = exp.Literal.number(EPOCH_UNIT_SPLIT)

        def plain(to: str) -> exp.Expr:
            # DuckDB's cast reads '1_700_000_000' as a number (a digit separator): not here
            text = given.text()
            separated = call("contains", text.copy(), exp.Literal.string("_"))
            return exp.Case(ifs=[exp.If(this=exp.Not(this=separated), true=try_cast(text, to))])

        if formats == ["epoch"]:
            seconds = exp.Cast(
                this=given.expr if numeric else plain("DOUBLE"),
                to=exp.DataType.build("DOUBLE"),
            )
            fits: exp.Expr = exp.LT(this=call("abs", seconds), expression=split)
            return aware_to_utc(
                exp.Case(ifs=[exp.If(this=fits, true=call("to_timestamp", seconds))])
            ), (
                "expected seconds since 1970-01-01 UTC (a value of 10^11 or more is "
                "milliseconds: declare epoch_ms)"
            )
        if formats == ["epoch_ms"]:
            millis = exp.Cast(
                this=given.expr if numeric else plain("BIGINT"),
                to=exp.DataType.build("BIGINT"),
            )
            fits = exp.GTE(this=call("abs", millis), expression=split)
            return exp.Case(ifs=[exp.If(this=fits, true=call("epoch_ms", millis))]), (
                "expected milliseconds since 1970-01-01 UTC (a value below 10^11 is seconds: "
                "declare epoch)"
            )
        if formats:
            pattern: exp.Expr = (
                exp.Literal.string(formats[0])
                if len(formats) == 1
                else exp.Array(expressions=[exp.Literal.string(f) for f in formats])
            )
            parsed = call("try_strptime", given.text(), pattern)
            aware = "%z" in formats[0] or "%Z" in formats[0]
            shown = " or ".join(f"'{f}'" for f in formats)
            return (
                aware_to_utc(parsed) if aware else local_to_utc(parsed)
            ), f"expected format {shown}"
        if given.type.startswith("TIMESTAMP WITH TIME ZONE"):
            return aware_to_utc(given.expr), "expected a timestamp"
        if given.type in _NAIVE_TIMESTAMP_TYPES:
            naive = exp.Cast(this=given.expr, to=exp.DataType.build("TIMESTAMP"))
            return local_to_utc(naive), "expected a timestamp"
        if not given.is_text:
            where = Location(file=str(self.source.path), column=given.label)
            raise InputError(
                Problem(
                    f"column '{given.label}' for {name} has type {given.type}, not a timestamp",
                    where,
                    hint="use a mapping with format: epoch (seconds) or epoch_ms",
                )
            )
        # a zone after the time is honoured when exact and refused otherwise (.zones)
        value = text_to_utc(given.text(), lambda t: local_to_utc(try_cast(t, "TIMESTAMP")))
        return value, f"expected ISO 8601, e.g. 2026-01-15T09:30:00Z; {ZONE_HINT}"

    def _value(self) -> _Target:
        spec = self.specs.get("value")
        if spec is None:
            return _Target("value", exp.Cast(this=exp.Null(), to=exp.DataType.build("DOUBLE")))
        given = self._input(spec)
        checks: list[tuple[str, exp.Expr]] = []
        if spec.map is not None or given.is_text:
            text, checks = self._mapped(spec, given)
            # DuckDB's cast reads '1_000' as 1000 (a digit separator); a plain number has none
            separated = call("contains", text.copy(), exp.Literal.string("_"))
            value: exp.Expr = exp.Case(
                ifs=[
                    exp.If(
                        this=exp.Not(this=separated),
                        true=exp.TryCast(this=text, to=exp.DataType.build("DOUBLE")),
                    )
                ]
            )
            bad = exp.and_(
                exp.Not(this=exp.paren(_Input(text, "VARCHAR", given.label).missing())),
                exp.Is(this=exp.column(_v("value")), expression=exp.Null()),
            )
            reason = exp.Case(
                ifs=[
                    exp.If(
                        this=separated.copy(),
                        true=_message(
                            "not a plain number: '",
                            given.text(),
                            "' (a digit separator '_'; write the digits alone)",
                        ),
                    ),
                    exp.If(
                        # 4,5 or 1.234,56: a decimal comma, as European list exports write
                        this=call(
                            "regexp_full_match",
                            call("trim", given.text()),
                            exp.Literal.string(r"[+-]?[0-9]{1,3}(\.[0-9]{3})*,[0-9]+"),
                        ),
                        true=_message(
                            "not a number: '",
                            given.text(),
                            "' (a comma in a number: write decimals with a point, 4.5, and "
                            "thousands without a separator, 1234)",
                        ),
                    ),
                ],
                default=_message("not a number: '", given.text(), "'"),
            )
            checks.append((given.label, _when(bad, reason)))
        elif given.type.startswith(_NUMERIC_PREFIXES) or given.type == "BOOLEAN":
            value = exp.Cast(this=given.expr, to=exp.DataType.build("DOUBLE"))
        else:
            raise self._type_error(given, "value", "a number")
        current = exp.column(_v("value"))
        # 'nan' and 'inf' parse as doubles; no count, sum or JSON output can use them
        infinite = exp.Not(this=call("isfinite", current.copy()))
        checks.append(
            (given.label, _when(infinite, _message("not a finite number: '", given.text(), "'")))
        )
        # Beyond 2^53 - 1 a double no longer holds every whole number: such a value is already
        # rounded (12345678901234567890 reads ...7168), its sums are rounded, and two of 1e308
        # sum to inf. Within it, no export's row count can take a sum past the double's range.
        beyond = exp.GT(
            this=call("abs", current.copy()), expression=exp.Literal.number(SAFE_INTEGER)
        )
        checks.append(
            (
                given.label,
                _when(
                    beyond,
                    _message(
                        "value '",
                        given.text(),
                        f"' is beyond ±{SAFE_INTEGER} (2^53 - 1), where a double no longer "
                        "holds every whole number, so sums of it would be rounded or overflow",
                    ),
                ),
            )
        )
        if spec.min is not None:
            below = exp.LT(this=current, expression=exp.Literal.number(spec.min))
            checks.append(
                (
                    given.label,
                    _when(
                        below,
                        _message("value ", current, f" is below the declared min {spec.min:g}"),
                    ),
                )
            )
        if spec.max is not None:
            above = exp.GT(this=current, expression=exp.Literal.number(spec.max))
            checks.append(
                (
                    given.label,
                    _when(
                        above,
                        _message("value ", current, f" is above the declared max {spec.max:g}"),
                    ),
                )
            )
        return _Target("value", value, tuple(checks))

    def _seq(self) -> _Target:
        spec = self.specs.get("seq")
        if spec is None:
            return _Target("seq", exp.Cast(this=exp.Null(), to=exp.DataType.build("BIGINT")))
        given = self._input(spec)
        # A cast to BIGINT rounds (1.5 becomes 2): only whole numbers are read as a seq, so a
        # fractional one is quarantined as "not an integer" rather than silently reordered.
        if given.is_text:
            text = exp.Trim(this=given.text())
            whole = call("regexp_full_match", text, exp.Literal.string(r"[+-]?[0-9]+(\.0*)?"))
            value: exp.Expr = exp.If(
                this=whole, true=exp.TryCast(this=text.copy(), to=exp.DataType.build("BIGINT"))
            )
        elif given.type.startswith(_NUMERIC_PREFIXES):
            number = given.expr
            value = exp.If(
                this=exp.EQ(this=number, expression=call("trunc", number.copy())),
                true=exp.TryCast(this=number.copy(), to=exp.DataType.build("BIGINT")),
            )
        else:
            raise self._type_error(given, "seq", "an integer")
        bad = exp.and_(
            exp.Not(this=exp.paren(given.missing())),
            exp.Is(this=exp.column(_v("seq")), expression=exp.Null()),
        )
        checks: list[tuple[str, exp.Expr]] = [
            (given.label, _when(bad, _message("not an integer: '", given.text(), "'")))
        ]
        current = exp.column(_v("seq"))
        if spec.min is not None:
            below = exp.LT(this=current, expression=exp.Literal.number(spec.min))
            checks.append(
                (
                    given.label,
                    _when(
                        below, _message("seq ", current, f" is below the declared min {spec.min:g}")
                    ),
                )
            )
        if spec.max is not None:
            above = exp.GT(this=current, expression=exp.Literal.number(spec.max))
            checks.append(
                (
                    given.label,
                    _when(
                        above, _message("seq ", current, f" is above the declared max {spec.max:g}")
                    ),
                )
            )
        return _Target("seq", value, tuple(checks))

    def _recorded_at(self) -> _Target:
        """The export's own receipt time, or NULL: the time of the ingest is not a fact about
        the events (it is in the ingest log), and stamping it would make two loads of the same
        export differ and hide every event from an "as known at" count before the load."""
        if "recorded_at" in self.specs:
            return self._timestamp("recorded_at", required=False)
        return _Target("recorded_at", exp.Cast(this=exp.Null(), to=exp.DataType.build("TIMESTAMP")))

    def _attrs(self) -> _Target:
        json_type = exp.DataType.build("JSON")
        if self.attr_specs:
            pairs: list[exp.Expr] = []
            checks: list[tuple[str, exp.Expr]] = []
            for key, attr in self.attr_specs.items():
                read = self._input(attr, as_json=attr.map is None)
                if attr.map is not None:
                    mapped, more = self._mapped(attr, read)
                    checks.extend(more)
                    pairs.extend([exp.Literal.string(key), mapped])
                else:
                    pairs.extend([exp.Literal.string(key), read.expr])
            return _Target(
                "attrs", exp.Cast(this=call("json_object", *pairs), to=json_type), tuple(checks)
            )
        spec = self.specs.get("attrs")
        if spec is None:
            return _Target("attrs", exp.Cast(this=exp.Null(), to=json_type))
        given = self._input(spec, as_json=True)
        if given.type == "JSON":
            raw = given.expr
            kind = call("json_type", raw)
            value: exp.Expr = exp.Case(
                ifs=[
                    exp.If(
                        this=exp.EQ(this=kind, expression=exp.Literal.string("NULL")),
                        true=exp.Null(),
                    )
                ],
                default=raw,
            )
            bad = exp.and_(
                exp.Not(this=exp.Is(this=raw, expression=exp.Null())),
                exp.Not(
                    this=exp.In(
                        this=kind,
                        expressions=[exp.Literal.string("OBJECT"), exp.Literal.string("NULL")],
                    )
                ),
            )
            reason = _message("attrs must be a JSON object, got '", given.text(), "'")
            return _Target(
                "attrs", exp.Cast(this=value, to=json_type), ((given.label, _when(bad, reason)),)
            )
        if given.type == "VARCHAR":
            text = given.expr
            # DuckDB's AND does not short-circuit: json_type of invalid text would fail the
            # whole file, so it only ever sees valid JSON (one bad cell, one quarantined row)
            valid_text = exp.Case(ifs=[exp.If(this=call("json_valid", text), true=text.copy())])
            is_object = exp.func(
                "coalesce",
                exp.EQ(this=call("json_type", valid_text), expression=exp.Literal.string("OBJECT")),
                exp.false(),
            )
            value = exp.Case(
                ifs=[exp.If(this=is_object, true=exp.Cast(this=valid_text.copy(), to=json_type))]
            )
            # the value is NULL exactly when the text is not an object: testing it reuses the
            # value's parse instead of parsing the text twice more
            bad = exp.and_(
                exp.Not(this=exp.paren(given.missing())),
                exp.Is(this=exp.column(_v("attrs")), expression=exp.Null()),
            )
            reason = _message("attrs must be a JSON object, got '", text, "'")
            return _Target("attrs", value, ((given.label, _when(bad, reason)),))
        # STRUCT / MAP columns from Parquet become JSON objects.
        return _Target("attrs", exp.Cast(this=call("to_json", given.expr), to=json_type))

    def _type_error(self, given: _Input, name: str, wanted: str) -> InputError:
        return InputError(
            Problem(
                f"column '{given.label}' for {name} has type {given.type}, not {wanted}",
                Location(file=str(self.source.path), column=given.label),
            )
        )

    # -- the record as read, for quarantine entries -----------------------------------------

    def raw_record(self) -> exp.Expr:
        if self.source.is_json:
            return exp.column(JSON_COLUMN)
        pairs: list[exp.Expr] = []
        for name in self.source.columns:
            pairs.extend([exp.Literal.string(name), exp.Column(this=quoted(name))])
        return call("json_object", *pairs)


def _when(condition: exp.Expr, reason: exp.Expr) -> exp.Expr:
    return exp.Case(ifs=[exp.If(this=condition, true=reason)])


def _message(*parts: str | exp.Expr) -> exp.Expr:
    """Concatenate fixed text with (truncated) data values into one reason string."""
    pieces: list[exp.Expr] = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(exp.Literal.string(part))
        else:
            as_text = exp.Cast(this=part, to=exp.DataType.build("VARCHAR"))
            pieces.append(call("left", as_text, exp.Literal.number(_MAX_SHOWN)))
    out = pieces[0]
    for piece in pieces[1:]:
        out = exp.DPipe(this=out, expression=piece)
    return out


def _json_key_path(key: str) -> str:
    """A JSON path selecting one top-level key, whatever characters the key contains."""
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'$."{escaped}"'


def _scalar_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
