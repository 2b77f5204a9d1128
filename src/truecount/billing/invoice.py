"""The vendor's invoice: which entities it billed, when, and for how much (DESIGN §7).

An invoice is read from CSV, JSON Lines or Parquet through DuckDB into one table of *lines*
with a fixed shape (:data:`INVOICE_COLUMNS`). Nothing is collapsed: a line billed twice stays
twice, because a duplicate is one of the things the buyer disputes. Nothing is guessed either:
an amount that is not a number, a negative amount, a second currency or a timestamp that does
not parse stops the load with an :class:`~truecount.errors.InputError` naming the file, row and
column, so the reconciliation is never computed on an invoice that was silently "repaired".

Ids that look like the export's ids in another format (spaces, case, a prefix) are detected in
:mod:`truecount.billing.reconcile`, where the export's ids are known; an :class:`InvoiceMapping` may
normalise them explicitly.

Column names and file paths are user data: columns are quoted as identifiers through sqlglot
syntax trees, paths go through DuckDB's Python API, values through query parameters.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from truecount.billing.repeats import (
    REPEATS,
    ids_in_order,
    repeated_lines,
    repeats_table,
    repeats_warnings,
)
from truecount.container import literal_path, readable
from truecount.db import one_row as _one
from truecount.errors import InputError, Location, MappingError, Problem, suggest
from truecount.ingest.canonical import SAFE_INTEGER
from truecount.ingest.source import (
    MAX_CSV_LINE,
    duplicate_header_problem,
    encoding_problem,
    long_line_problem,
    ragged_row_problem,
)
from truecount.ingest.zones import ZONE_HINT, text_to_utc
from truecount.workspace import configure
from truecount.yamlsource import load_with_lines

#: Column name -> DuckDB type of the loaded invoice table, in order.
INVOICE_COLUMNS: Final[dict[str, str]] = {
    "line_id": "VARCHAR",
    "entity_id": "VARCHAR",
    "billed_at": "TIMESTAMP",
    "period": "VARCHAR",
    "amount": "DECIMAL(18,6)",
    "currency": "VARCHAR",
    "source_file": "VARCHAR",
    "source_row": "BIGINT",
    "line_no": "BIGINT",
}

#: The invoice fields a file (or a mapping) may provide; only ``entity_id`` is required.
FIELDS: Final[tuple[str, ...]] = (
    "entity_id",
    "line_id",
    "billed_at",
    "period",
    "amount",
    "currency",
)

#: How many examples an error lists before saying "and N more".
MAX_EXAMPLES: Final[int] = 5

_OFFSET_RE: Final[str] = r"(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$"

#: The comment :func:`load_invoice_into` puts on the invoice view when every line names its
#: billed period (:func:`periods_complete`).
_PERIODS_COMPLETE: Final[str] = "truecount: every line names its period"

Format = Literal["csv", "jsonl", "parquet"]


@dataclass(frozen=True)
class IdNormalization:
    """Explicit, buyer-chosen rewriting of invoice ids to the export's format.

    Applied in this order: trim, strip_prefix, case, add_prefix. Nothing here is ever applied
    unless a mapping asks for it.
    """

    trim: bool = False
    strip_prefix: str | None = None
    case: Literal["lower", "upper"] | None = None
    add_prefix: str | None = None

    @property
    def active(self) -> bool:
        return bool(self.trim or self.strip_prefix or self.case or self.add_prefix)


@dataclass(frozen=True)
class InvoiceMapping:
    """How a foreign invoice file maps onto the invoice fields.

    ``columns`` maps an invoice field (``entity_id``, ``line_id``, ``billed_at``, ``period``,
    ``amount``, ``currency``) to the file's column name; fields not listed are read from a
    column of the same name when the file has one. ``currency`` may instead be a constant for
    files without a currency column. ``billed_at_format`` is a strptime format for timestamps
    DuckDB cannot read on its own; ``timezone`` is the zone of timestamps without an offset.
    """

    columns: Mapping[str, str] = field(default_factory=dict)
    entity_id: IdNormalization = IdNormalization()
    billed_at_format: str | None = None
    timezone: str = "UTC"
    currency: str | None = None


_MAPPING_KEYS: Final[frozenset[str]] = frozenset(
    {"invoice", "columns", "entity_id", "billed_at_format", "timezone", "currency"}
)
_NORMALIZE_KEYS: Final[frozenset[str]] = frozenset({"trim", "strip_prefix", "case", "add_prefix"})


def load_invoice_mapping(path: str | Path) -> InvoiceMapping:
    """Read an invoice mapping (YAML). Unknown keys are errors with a suggestion.

    ```yaml
    invoice: 1
    columns: {entity_id: ticket, amount: price_usd, billed_at: billed}
    entity_id: {trim: true, strip_prefix: "TKT-", case: upper}
    timezone: UTC
    currency: USD          # constant, when the file has no currency column
    ```
    """
    file = str(path)
    # the one YAML reader: file:line errors, and the size, alias and depth limits
    data = load_with_lines(Path(path), MappingError)[0] or {}
    if not isinstance(data, dict):
        raise MappingError(Problem("an invoice mapping must be a mapping of keys", Location(file)))
    problems: list[Problem] = []
    for key in data:
        if key not in _MAPPING_KEYS:
            problems.append(
                Problem(
                    f"unknown key '{key}'",
                    Location(file=file, key=str(key)),
                    suggest(str(key), _MAPPING_KEYS),
                )
            )
    columns = data.get("columns") or {}
    if not isinstance(columns, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in columns.items()
    ):
        problems.append(
            Problem(
                "columns must map field names to column names", Location(file=file, key="columns")
            )
        )
        columns = {}
    for key in columns:
        if key not in FIELDS:
            problems.append(
                Problem(
                    f"unknown invoice field '{key}'",
                    Location(file=file, key=f"columns.{key}"),
                    suggest(key, FIELDS) or f"valid fields: {', '.join(FIELDS)}",
                )
            )
    norm_data = data.get("entity_id") or {}
    norm = IdNormalization()
    if not isinstance(norm_data, dict):
        problems.append(
            Problem(
                "entity_id must be a mapping of normalisation options",
                Location(file=file, key="entity_id"),
            )
        )
    else:
        for key in norm_data:
            if key not in _NORMALIZE_KEYS:
                problems.append(
                    Problem(
                        f"unknown normalisation '{key}'",
                        Location(file=file, key=f"entity_id.{key}"),
                        suggest(str(key), _NORMALIZE_KEYS),
                    )
                )
        case = norm_data.get("case")
        if case not in (None, "lower", "upper"):
            problems.append(
                Problem(
                    f"case must be 'lower' or 'upper', not {case!r}",
                    Location(file=file, key="entity_id.case"),
                )
            )
            case = None
        norm = IdNormalization(
            trim=bool(norm_data.get("trim", False)),
            strip_prefix=_opt_str(norm_data.get("strip_prefix")),
            case=case,
            add_prefix=_opt_str(norm_data.get("add_prefix")),
        )
    zone = str(data.get("timezone") or "UTC")
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        problems.append(
            Problem(
                f"unknown time zone '{zone}'",
                Location(file=str(path), key="timezone"),
                "use an IANA name such as UTC, Europe/Berlin or America/New_York",
            )
        )
    if problems:
        raise MappingError(problems)
    return InvoiceMapping(
        columns=dict(columns),
        entity_id=norm,
        billed_at_format=_opt_str(data.get("billed_at_format")),
        timezone=str(data.get("timezone") or "UTC"),
        currency=_opt_str(data.get("currency")),
    )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class InvoiceSummary:
    """What was loaded: line and entity counts, and findings that are not errors."""

    files: tuple[str, ...]
    lines: int
    entities: int
    duplicate_entities: int
    currency: str | None
    has_amounts: bool
    has_billed_at: bool
    has_period: bool
    warnings: tuple[str, ...] = ()


def detect_format(path: str | Path) -> Format:
    """The format of an invoice file from its extension."""
    name = str(path).lower()
    for suffix in (".gz", ".zst"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise InputError(
        Problem(
            "unknown invoice file type",
            Location(file=str(path)),
            "use .csv, .jsonl (JSON Lines) or .parquet",
        )
    )


def _read(con: duckdb.DuckDBPyConnection, path: Path) -> duckdb.DuckDBPyRelation:
    if not path.is_file():
        raise InputError(Problem("file not found", Location(file=str(path))))
    fmt = detect_format(path)
    # zstd is left to DuckDB; gzip, BOMs and UTF-16 are decoded by truecount.container
    data = str(literal_path(path) if fmt == "parquet" or path.suffix == ".zst" else readable(path))
    try:
        if fmt == "csv":
            rel = con.read_csv(data, header=True, all_varchar=True, max_line_size=MAX_CSV_LINE)
            for problem in (
                duplicate_header_problem(path, list(rel.columns)),
                ragged_row_problem(path, list(rel.columns)),
            ):
                if problem is not None:
                    raise InputError(problem)
            return rel
        if fmt == "jsonl":
            return con.read_json(data, format="newline_delimited")
        return con.read_parquet(data)
    except duckdb.Error as exc:
        problem = encoding_problem(path, exc) or long_line_problem(path, exc)
        if problem is not None:
            raise InputError(problem) from exc
        raise InputError(
            Problem(f"cannot read the file as {fmt}: {_first_line(exc)}", Location(file=str(path)))
        ) from exc


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _col(name: str) -> exp.Expression:
    return exp.column(name, quoted=True)


def _text(expr: exp.Expression) -> exp.Expression:
    return exp.Cast(this=expr, to=exp.DataType.build("VARCHAR"))


def _normalized_id(expr: exp.Expression, norm: IdNormalization) -> exp.Expression:
    """Apply an explicit id normalisation as a syntax tree (values are literals, never pasted)."""
    out = expr
    if norm.trim:
        out = exp.Trim(this=out)
    if norm.strip_prefix:
        prefix = exp.Literal.string(norm.strip_prefix)
        out = exp.If(
            this=exp.func("starts_with", out, prefix),
            true=exp.Substring(this=out, start=exp.Literal.number(len(norm.strip_prefix) + 1)),
            false=out,
        )
    if norm.case == "lower":
        out = exp.Lower(this=out)
    elif norm.case == "upper":
        out = exp.Upper(this=out)
    if norm.add_prefix:
        out = exp.DPipe(this=exp.Literal.string(norm.add_prefix), expression=out)
    return out


def _null(type_name: str) -> exp.Expr:
    return exp.Cast(this=exp.Null(), to=exp.DataType.build(type_name))


_NUMERIC_TYPES: Final[tuple[str, ...]] = (
    "DECIMAL", "DOUBLE", "FLOAT", "REAL", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT",
    "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT",
)  # fmt: skip


#: Ids that a JSON or Parquet invoice may hold as numbers, and the types that hold fractions.
_ID_FIELDS: Final[tuple[str, ...]] = ("entity_id", "line_id")
_FLOATING_TYPES: Final[tuple[str, ...]] = ("DOUBLE", "FLOAT", "DECIMAL")


def _whole_text(col: exp.Expression) -> exp.Expr:
    """A floating-point or decimal id as the text of its whole number: 1001.0 reads '1001',
    as the same id does in the events (:mod:`truecount.ingest.plan`)."""
    whole = exp.Cast(this=col, to=exp.DataType.build("HUGEINT"))
    return exp.Cast(this=whole, to=exp.DataType.build("VARCHAR"))


def _inexact_ids(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    view: str,
    name: str,
    source_type: str,
    row: exp.Expr | None,
) -> list[Problem]:
    """The lines whose numeric id is not a whole number, or lies beyond the whole numbers a
    double (2^53 - 1) or a float (2^24 - 1) holds exactly: one set-based query, examples only."""
    value = exp.column("v")
    bad: exp.Expr = exp.NEQ(this=value, expression=exp.func("trunc", value.copy()))
    bound = {"DOUBLE": (SAFE_INTEGER, 53), "FLOAT": (2**24 - 1, 24)}.get(source_type)
    if bound is not None:
        beyond = exp.GT(this=exp.func("abs", value.copy()), expression=exp.Literal.number(bound[0]))
        bad = exp.or_(bad, beyond, exp.Not(this=exp.func("isfinite", value.copy())))
    number = (
        exp.Add(this=row, expression=exp.Literal.number(1))
        if row is not None
        else exp.Window(this=exp.RowNumber())
    )
    inner = sqlglot.select(exp.alias_(_col(name), "v"), exp.alias_(number, "r")).from_(view)
    query = (
        sqlglot.select("r", exp.alias_(_text(value.copy()), "t"))
        .from_(inner.subquery("n"))
        .where(bad)
        .order_by("r")
        .limit(MAX_EXAMPLES + 1)
    )
    found = con.execute(query.sql(dialect="duckdb")).fetchall()
    limit = f"±{bound[0]} (2^{bound[1]} - 1)" if bound is not None else ""
    problems = [
        Problem(
            f"{name} {text} is a number that is not a whole number"
            + (f" within {limit}" if limit else ""),
            Location(file=str(path), row=int(r), column=name),
            "write ids as text or as integers",
        )
        for r, text in found[:MAX_EXAMPLES]
    ]
    if len(found) > MAX_EXAMPLES:
        problems.append(Problem(f"more lines with the same problem in {name}"))
    return problems


def _native(
    fld: str, col: exp.Expression, source_type: str, mapping: InvoiceMapping
) -> exp.Expr | None:
    """A typed source column as its canonical value, or None when it must be parsed as text.

    Naive timestamps and dates are wall-clock times in the mapping's zone, exactly as the
    same text would be; zoned timestamps are converted to UTC.
    """
    if fld == "billed_at":
        if source_type.startswith("TIMESTAMP WITH TIME ZONE"):
            return exp.func("timezone", exp.Literal.string("UTC"), col)
        if source_type.startswith("TIMESTAMP") or source_type == "DATE":
            local = exp.Cast(this=col, to=exp.DataType.build("TIMESTAMP"))
            if mapping.timezone == "UTC":
                return local
            zoned = exp.func("timezone", exp.Literal.string(mapping.timezone), local)
            return exp.func("timezone", exp.Literal.string("UTC"), zoned)
        return None
    if fld == "amount" and source_type.startswith(_NUMERIC_TYPES):
        return exp.Cast(this=col, to=exp.DataType.build("DECIMAL(18,6)"))
    return None


def _stage_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    mapping: InvoiceMapping,
    stage: str,
    file_index: int,
    in_place: bool = False,
) -> set[str]:
    """Append one file to the staging table; return the invoice fields it provided.

    ``in_place`` (one Parquet file): the stage is a view over the file with its row numbers,
    so ten million lines are not copied before they are checked.
    """
    first = file_index == 0
    rel = (
        con.read_parquet(str(literal_path(path)), file_row_number=True)
        if in_place
        else _read(con, path)
    )
    columns = list(rel.columns)
    problems: list[Problem] = []
    provided: dict[str, str] = {}
    for fld in FIELDS:
        source = mapping.columns.get(fld)
        if source is not None:
            if source not in columns:
                problems.append(
                    Problem(
                        f"the mapping names column '{source}' for {fld}, which the file lacks",
                        Location(file=str(path), column=source),
                        suggest(source, columns) or f"columns: {', '.join(columns)}",
                    )
                )
            else:
                provided[fld] = source
        elif fld in columns:
            provided[fld] = fld
    if "entity_id" not in provided and "entity_id" not in mapping.columns:
        problems.append(
            Problem(
                "the invoice has no entity_id column",
                Location(file=str(path), column="entity_id"),
                (suggest("entity_id", columns) or f"columns: {', '.join(columns)}")
                + "; name the column in an invoice mapping (columns: {entity_id: ...})",
            )
        )
    if problems:
        raise InputError(problems)
    view = "_tc_invoice_raw"
    if in_place:
        # a TEMP view: the workspace store may be attached read-only (reconcile, evidence and
        # drift with -w); the path enters as a string literal node, never pasted text
        reader = exp.Anonymous(
            this="read_parquet",
            expressions=[
                exp.Literal.string(str(literal_path(path))),
                exp.PropertyEQ(this=exp.to_identifier("file_row_number"), expression=exp.true()),
            ],
        )
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {view} AS "
            + sqlglot.select("*").from_(exp.Table(this=reader)).sql(dialect="duckdb")
        )
    else:
        con.register(view, rel)
    try:
        types = {c: str(t).upper() for c, t in zip(rel.columns, rel.dtypes, strict=True)}
        selects: list[Any] = []
        natives: dict[str, exp.Expr] = {}
        for fld in FIELDS:
            if fld not in provided:
                selects.append(exp.alias_(_null("VARCHAR"), fld))
                continue
            source_type = types[provided[fld]]
            native = _native(fld, _col(provided[fld]), source_type, mapping)
            if fld in _ID_FIELDS and source_type.startswith(_FLOATING_TYPES):
                row = exp.column("file_row_number") if in_place else None
                problems += _inexact_ids(con, path, view, provided[fld], source_type, row)
                selects.append(exp.alias_(_whole_text(_col(provided[fld])), fld))
            elif native is None:
                selects.append(exp.alias_(_text(_col(provided[fld])), fld))
            else:
                # Already typed (Parquet, JSON): keep the value, skip the text round trip.
                natives[fld] = native
                selects.append(exp.alias_(_null("VARCHAR"), fld))
        for fld, typ in (("billed_at", "TIMESTAMP"), ("amount", "DECIMAL(18,6)")):
            selects.append(exp.alias_(natives.get(fld, _null(typ)), f"{fld}_native"))
        selects.append(exp.alias_(exp.Literal.number(file_index), "file_index"))
        if in_place:
            selects.append(exp.alias_(exp.column("file_row_number"), "file_row"))
        if problems:
            raise InputError(problems)
        query = sqlglot.select(*selects).from_(view)
        sql = query.sql(dialect="duckdb")
        if in_place:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {stage} AS {sql}")
        elif first:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS {sql}")
        else:
            con.execute(f"INSERT INTO {stage} {sql}")
    finally:
        if not in_place:
            con.unregister(view)
    return set(provided)


def load_invoice_into(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[str | Path],
    mapping: InvoiceMapping | None = None,
    table: str = "invoice",
    summary: bool = False,
) -> InvoiceSummary | None:
    """Load invoice files into ``table`` (replaced) on ``con``, validating every line.

    ``summary=True`` also returns :func:`summarize` (distinct entities and line ids: two more
    passes over the lines, which reconciliation itself does not need).

    ``table`` is a name chosen by the caller's code, never by a user. Raises
    :class:`InputError` listing every problem found (up to a few examples of each kind).
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", table):
        raise ValueError(f"table name {table!r} is not an identifier")
    mapping = mapping or InvoiceMapping()
    if not files:
        raise InputError(Problem("no invoice file given", hint="pass --invoice FILE"))
    stage = "_tc_invoice_stage"
    provided: set[str] = set()
    offsets: list[int] = []
    in_place = len(files) == 1 and detect_format(files[0]) == "parquet" and Path(files[0]).is_file()
    for i, f in enumerate(files):
        offsets.append(_table_rows(con, stage) if i else 0)
        provided |= _stage_file(con, Path(f), mapping, stage, file_index=i, in_place=in_place)
    # rowid of a table filled in file order is the line number; a file's rows start at its
    # offset (in place, the file's own row number is both). File names and offsets enter as
    # literals of a list, never as pasted text.
    names = exp.Array(expressions=[exp.Literal.string(str(f)) for f in files])
    starts = exp.Array(expressions=[exp.Literal.number(o) for o in offsets])
    file_pos = exp.Add(this=exp.column("file_index"), expression=exp.Literal.number(1))
    typed = _typed_columns(provided, mapping)
    line_no: exp.Expr = exp.column("file_row") if in_place else exp.column("rowid")
    start: exp.Expr = (
        exp.Literal.number(0) if in_place else exp.func("list_extract", starts, file_pos.copy())
    )
    hidden = [exp.column("file_index"), *([exp.column("file_row")] if in_place else [])]
    rows = sqlglot.select(
        exp.Star(**{"except": hidden}),
        exp.alias_(line_no, "line_no"),
        exp.alias_(exp.func("list_extract", names, file_pos), "source_file"),
        exp.alias_(
            exp.Add(
                this=exp.Sub(this=line_no.copy(), expression=start),
                expression=exp.Literal.number(1),
            ),
            "source_row",
        ),
        *typed,
    ).from_(stage)
    try:
        con.execute(
            # A view: typed columns are computed where they are read, and a typed (Parquet)
            # invoice is never copied a second time.
            f"CREATE OR REPLACE TEMP VIEW _tc_invoice_rows AS {rows.sql(dialect='duckdb')}",
        )
    except duckdb.Error as exc:
        raise MappingError(
            Problem(
                f"invalid timezone or billed_at_format: {_first_line(exc)}",
                Location(key="timezone"),
            )
        ) from exc
    entity_column = mapping.columns.get("entity_id", "entity_id")
    named = in_place and _present_in_statistics(con, Path(files[0]), entity_column)
    period_column = mapping.columns.get("period", "period")
    dated = (
        in_place
        and "period" in provided
        and _present_in_statistics(con, Path(files[0]), period_column)
    )
    try:
        complete = _validate(
            con,
            provided,
            mapping,
            entities_named=named,
            periods_named=dated,
            files=[str(f) for f in files],
        )
        repeats_table(con, "line_id" in provided and ids_in_order(con))
        _materialize(con, table, provided, mapping)
        if complete:
            # fixed text of our own, on a view named by the caller's code (checked above)
            con.execute(f"COMMENT ON VIEW {table} IS '{_PERIODS_COMPLETE}'")
    except BaseException:
        con.execute("DROP VIEW IF EXISTS _tc_invoice_rows")
        raise
    return summarize(con, table, [str(f) for f in files]) if summary else None


def periods_complete(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether ``table`` is an invoice view :func:`load_invoice_into` made whose every line
    names its billed period (a period column with no line blank).

    Then a line's billed period is its period as written, and reconciliation neither reads
    ``billed_at`` for it nor counts the dated lines of each entity. The proof is a comment on
    the view itself: replacing the view drops it, so a table made another way, or replaced
    since, is never taken for proven."""
    row = _one(
        con,
        "SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = ? AND comment = ?",
        [table, _PERIODS_COMPLETE],
    )
    return bool(row and row[0])


def _table_rows(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = _one(con, f"SELECT count(*) FROM {table}")  # noqa: S608 - our own table name
    return int(row[0]) if row else 0


def _typed_columns(provided: set[str], mapping: InvoiceMapping) -> list[exp.Expr]:
    """``amount_num`` and ``billed_ts``: each text parsed once, for checks and the table alike."""
    cols: list[exp.Expr] = []
    if "amount" in provided:
        # DuckDB's cast reads '1_5' as 15 (a digit separator): such text is not a plain number
        cols.append(sqlglot.parse_one(
            "coalesce(amount_native, CASE WHEN NOT contains(amount, '_') "
            "THEN try_cast(trim(amount) AS DECIMAL(18,6)) END) AS amount_num",
            dialect="duckdb",
        ))  # fmt: skip
    if "billed_at" in provided:
        empty = exp.EQ(
            this=exp.Trim(this=exp.column("billed_at")), expression=exp.Literal.string("")
        )
        parsed = exp.Case(ifs=[exp.If(this=empty, true=exp.Null())], default=_ts_sql(mapping))
        billed = exp.Coalesce(this=exp.column("billed_at_native"), expressions=[parsed])
        cols.append(exp.alias_(billed, "billed_ts"))
    return cols


def _examples(
    con: duckdb.DuckDBPyConnection,
    where_sql: str,
    column: str,
    message: str,
    hint: str,
    params: Sequence[Any] = (),
) -> list[Problem]:
    """Problems for the first rows matching a fixed predicate, plus a count of the rest."""
    rows = con.execute(
        f"SELECT source_file, source_row, value FROM (SELECT source_file, source_row, "  # noqa: S608
        f"{column} AS value, line_no FROM _tc_invoice_rows WHERE {where_sql}) "
        f"ORDER BY line_no LIMIT {MAX_EXAMPLES + 1}",
        list(params),
    ).fetchall()
    if not rows:
        return []
    total = _one(con, f"SELECT count(*) FROM _tc_invoice_rows WHERE {where_sql}", list(params))  # noqa: S608
    n = int(total[0]) if total else len(rows)
    problems = [
        Problem(message.format(value=v), Location(file=f, row=int(r), column=column), hint)
        for f, r, v in rows[:MAX_EXAMPLES]
    ]
    if n > MAX_EXAMPLES:
        problems.append(Problem(f"{n - MAX_EXAMPLES} more rows with the same problem in {column}"))
    return problems


def _ts_sql(mapping: InvoiceMapping) -> exp.Expr:
    """The text ``billed_at`` as naive UTC: a syntax tree, the zone and format as literals."""
    text = exp.Trim(this=exp.column("billed_at"))
    utc = exp.Literal.string("UTC")
    zone = exp.Literal.string(mapping.timezone)
    if not mapping.billed_at_format:
        # a zone word after the time is read only when exact, never dropped (ingest.zones)
        return text_to_utc(
            text,
            lambda t: exp.func(
                "timezone",
                utc.copy(),
                exp.func(
                    "timezone", zone.copy(), exp.TryCast(this=t, to=exp.DataType.build("TIMESTAMP"))
                ),
            ),
            offset_end=_OFFSET_RE,
        )
    local = exp.func("try_strptime", text.copy(), exp.Literal.string(mapping.billed_at_format))
    with_offset = exp.func("regexp_matches", text.copy(), exp.Literal.string(_OFFSET_RE))
    zoned = exp.TryCast(this=text.copy(), to=exp.DataType.build("TIMESTAMPTZ"))
    return exp.Case(
        ifs=[exp.If(this=with_offset, true=exp.func("timezone", utc, zoned))],
        default=exp.func(
            "timezone",
            utc.copy(),
            exp.func("timezone", exp.Literal.string(mapping.timezone), local),
        ),
    )


def _present_in_statistics(con: duckdb.DuckDBPyConnection, path: Path, column: str) -> bool:
    """Whether a Parquet file's footer alone proves that no value of a text ``column`` is
    missing or blank: every row group counts no null, and its smallest value sorts at or after
    ``!``, so no value is empty or starts with a space (``trim`` removes spaces only, so a
    blank value is all spaces). Statistics the writer left out prove nothing, and the lines
    are then checked one by one. Reading the footer costs nothing next to decoding ten million
    ids for a check they all pass."""
    try:
        row = _one(
            con,
            "SELECT count(*), count(*) FILTER (WHERE type = 'BYTE_ARRAY' "
            "AND stats_null_count = 0 AND stats_min_value >= '!') "
            "FROM parquet_metadata(?) WHERE path_in_schema = ?",
            [str(literal_path(path)), column],
        )
    except duckdb.Error:
        return False
    return row is not None and int(row[0]) > 0 and int(row[0]) == int(row[1])


def _validate(
    con: duckdb.DuckDBPyConnection,
    provided: set[str],
    mapping: InvoiceMapping,
    *,
    entities_named: bool = False,
    periods_named: bool = False,
    files: Sequence[str] = (),
) -> bool:
    """Refuse a bad invoice with every problem named; return whether every line names its
    billed period. ``entities_named`` and ``periods_named``: the file's statistics proved
    every line names its entity, or its period (:func:`_present_in_statistics`); a period is
    otherwise counted in the same scan as the checks, as a fact rather than a problem (a line
    without one is billed by its ``billed_at``)."""
    checks: list[tuple[str, str, str, str]] = []
    if not entities_named:
        checks.append(
            (
                "entity_id IS NULL OR trim(entity_id) = ''",
                "entity_id",
                "empty entity_id",
                "every invoice line must name the entity it bills",
            )
        )
    if "amount" in provided:
        checks.append(
            (
                "amount IS NOT NULL AND trim(amount) <> '' AND amount_num IS NULL "
                "AND (contains(amount, '_') "
                "OR NOT coalesce(isfinite(try_cast(trim(amount) AS DOUBLE)), false))",
                "amount",
                "amount '{value}' is not a number",
                "write plain decimal numbers such as 0.99, without currency symbols or separators",
            )
        )
        checks.append(
            (
                "amount IS NOT NULL AND trim(amount) <> '' AND amount_num IS NULL "
                "AND NOT contains(amount, '_') "
                "AND coalesce(isfinite(try_cast(trim(amount) AS DOUBLE)), false)",
                "amount",
                "amount '{value}' is a number beyond what an invoice line holds "
                "(below 10^12, with at most 6 decimal places)",
                "check the column is the line's amount, not an id or a total in minor units",
            )
        )
        checks.append(
            (
                "amount_num < 0",
                "amount",
                "negative amount {value}",
                "an invoice line bills a positive amount; credits are computed by reconcile",
            )
        )
    if "billed_at" in provided:
        checks.append(
            (
                "billed_at IS NOT NULL AND trim(billed_at) <> '' AND billed_ts IS NULL",
                "billed_at",
                "billed_at '{value}' is not a timestamp",
                "use ISO 8601 such as 2026-01-31 or 2026-01-31T17:05:00Z, or set "
                f"billed_at_format in the invoice mapping; {ZONE_HINT}",
            )
        )
    # One scan counts the lines and every check; the checks are fixed text written here.
    count_undated = "period" in provided and not periods_named
    counts_sql = "SELECT " + ", ".join(
        [
            "count(*)",
            *(f"count(*) FILTER (WHERE {where})" for where, _, _, _ in checks),
            *(["count(*) FILTER (WHERE period IS NULL OR trim(period) = '')"] * count_undated),
        ]
    )
    counts = _one(con, counts_sql + " FROM _tc_invoice_rows")
    assert counts is not None
    if int(counts[0]) == 0:
        # an empty invoice has no rows to name their file: the files given are named
        raise InputError(
            Problem(
                "the invoice is empty: no lines to reconcile",
                Location(file=", ".join(files) or None),
                "check that the file has a header row and at least one line",
            )
        )
    problems: list[Problem] = []
    for (where, column, message, hint), failing in zip(
        checks, counts[1 : 1 + len(checks)], strict=True
    ):
        if failing:
            problems += _examples(con, where, column, message, hint)
    if "currency" in provided:
        currencies = con.execute(
            "SELECT upper(trim(currency)) AS c, min(line_no) AS first, count(*) FROM "
            "_tc_invoice_rows WHERE currency IS NOT NULL AND trim(currency) <> '' "
            "GROUP BY c ORDER BY first"
        ).fetchall()
        if len(currencies) > 1:
            listing = ", ".join(f"{c} ({n} lines)" for c, _, n in currencies)
            first_other = _one(
                con,
                "SELECT source_file, source_row FROM _tc_invoice_rows WHERE line_no = ?",
                [currencies[1][1]],
            )
            assert first_other is not None
            problems.append(
                Problem(
                    f"mixed currencies: {listing}; first {currencies[1][0]} line here",
                    Location(file=first_other[0], row=int(first_other[1]), column="currency"),
                    "split the invoice by currency and reconcile each under its own terms",
                )
            )
    if problems:
        raise InputError(problems)
    return "period" in provided and (periods_named or int(counts[-1]) == 0)


def _materialize(
    con: duckdb.DuckDBPyConnection, table: str, provided: set[str], mapping: InvoiceMapping
) -> None:
    """The invoice as a view over the checked lines: each text is parsed where it is read, and
    a typed (Parquet) invoice is never copied (reconciliation reads it two or three times)."""
    entity = _normalized_id(exp.column("entity_id"), mapping.entity_id).sql(dialect="duckdb")
    billed_at = "billed_ts" if "billed_at" in provided else "CAST(NULL AS TIMESTAMP)"
    amount = "amount_num" if "amount" in provided else "CAST(NULL AS DECIMAL(18,6))"
    if "currency" in provided:
        currency = "nullif(upper(trim(currency)), '')"
    elif mapping.currency:
        # a literal node rendered by SQLGlot (quoted and escaped): a view cannot take parameters
        currency = exp.Upper(this=exp.Literal.string(mapping.currency)).sql(dialect="duckdb")
    else:
        currency = "CAST(NULL AS VARCHAR)"
    # a line repeated verbatim under its own line_id is one line listed twice, not two
    # billings; without a line_id nothing tells a repeat from a second billing, so such lines
    # stay and land in the `duplicate` cell (docs/reconcile.md). The repeats were found at load
    # time; usually there are none and the view reads the lines as they are.
    found = _one(con, f"SELECT count(*) FROM {REPEATS}")  # noqa: S608 - our own table
    skip = f"WHERE line_no NOT IN (SELECT line_no FROM {REPEATS})"  # noqa: S608 - fixed text
    repeats = skip if found and found[0] else ""
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT "  # noqa: S608
        "coalesce(nullif(trim(line_id), ''), source_file || '#' || source_row) AS line_id, "
        f"{entity} AS entity_id, "
        f"CAST({billed_at} AS TIMESTAMP) AS billed_at, "
        "nullif(trim(period), '') AS period, "
        f"CAST({amount} AS DECIMAL(18,6)) AS amount, "
        f"{currency} AS currency, source_file, CAST(source_row AS BIGINT) AS source_row, "
        f"CAST(line_no AS BIGINT) AS line_no FROM _tc_invoice_rows {repeats}",
    )


def summarize(
    con: duckdb.DuckDBPyConnection, table: str, files: Sequence[str] = ()
) -> InvoiceSummary:
    """Counts and findings of a loaded invoice table."""
    row = _one(
        con,
        f"SELECT count(*), 0, count(amount), count(billed_at), "  # noqa: S608
        f"count(period), min(currency), count(DISTINCT line_id) FROM {table}",
    )
    assert row is not None
    # Entities and those billed more than once, from one grouping.
    ent = _one(
        con,
        "SELECT count(*), count(*) FILTER (WHERE n > 1) FROM "  # noqa: S608
        f"(SELECT entity_id, count(*) AS n FROM {table} GROUP BY entity_id)",
    )
    assert ent is not None
    row = (row[0], ent[0], *row[2:])
    dup = (ent[1],)
    warnings: list[str] = []
    lines = int(row[0])
    warnings += repeats_warnings(*repeated_lines(con))
    if int(row[6]) < lines:
        warnings.append(
            f"{lines - int(row[6])} lines repeat a line_id of an earlier line: "
            "the same invoice line may have been loaded twice"
        )
    return InvoiceSummary(
        files=tuple(files),
        lines=lines,
        entities=int(row[1]),
        duplicate_entities=int(dup[0]) if dup else 0,
        currency=row[5],
        has_amounts=int(row[2]) > 0,
        has_billed_at=int(row[3]) > 0,
        has_period=int(row[4]) > 0,
        warnings=tuple(warnings),
    )


def load_invoice(
    files: Sequence[str | Path] | str | Path, mapping: InvoiceMapping | None = None
) -> pa.Table:
    """Load invoice files into an Arrow table with the :data:`INVOICE_COLUMNS` shape."""
    if isinstance(files, str | Path):
        files = [files]
    with duckdb.connect() as con:
        configure(con)
        load_invoice_into(con, files, mapping, table="invoice")
        return con.sql("SELECT * FROM invoice ORDER BY line_no").to_arrow_table()
