"""The drift report: the vendor's classification against the buyer's, period by period.

A reconciliation says which entities are billed wrongly this month; drift asks whether the
vendor's classifier *moves* relative to the buyer's frozen definition. The buyer's definition is
the stable counterfactual, so the two verdicts on each entity form a paired table per period (and
per day) and a per-entity stream in time order on which a sequential alarm watches the
vendor-only rate against a frozen baseline (docs/drift.md).

How each entity enters the paired table (every choice here is documented in docs/drift.md):

- **The universe** is the reconciliation's per-entity cells (every billed entity, and every
  counted entity in the periods the invoice bills) plus the buyer's other candidates in those
  periods: entities whose anchor made them candidates but which the buyer does not count and the
  vendor did not bill. Those are cell **d**, "both no". Entities in the export that are not
  candidates and were not billed are outside it: neither side said anything about them.
- **vendor yes** = billed (any number of lines); **buyer yes** = counted. So a = agreed,
  period_mismatch and counted duplicates; b = vendor_only and the other duplicates; c =
  buyer_only; d = the unbilled, uncounted candidates.
- **Left out of the rates, but reported**: ``unknown`` (billed, not in the export: the buyer has
  no verdict) and ``pending`` (the definition's window is still open, billed or not).
- **Period** of an entity: the period it was billed in, else its anchor's period — the period
  the reconciliation reports it in, so the two reports add up the same way.
- **Time** of an entity (its day, and its place in the stream): its anchor time, else its first
  ``billed_at``, else its first event.

Everything is computed in DuckDB (one table of entities, GROUP BYs for the tables) and the stream
comes back once as a numpy array of 0/1, so the cost grows with DuckDB, not with Python.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import duckdb
import numpy as np
import numpy.typing as npt
from scipy.stats import chi2
from sqlglot import exp

from truecount.billing.reconcile import (
    ENTITIES_TABLE,
    Reconciliation,
    entity_span,
    in_cell,
    reconcile_in,
)
from truecount.db import one_row
from truecount.drift.alarm import (
    DEFAULT_ALARM,
    AlarmResult,
    AlarmSettings,
    alarm_on_path,
    baseline_rate,
    bernoulli_cusum,
    cusum_path,
)
from truecount.drift.stats import CONFIDENCE, PairedStats, paired_stats
from truecount.errors import InputError, Location, Problem

__all__ = [
    "DEFAULT_BASELINE_PERIODS",
    "DRIFT_TABLE",
    "Baseline",
    "DriftReport",
    "DriftTable",
    "FirstAlarm",
    "Stream",
    "drift_in",
    "parse_baseline",
]

#: Per-entity view :func:`drift_in` leaves on the connection (entity_id, k, period, day, t).
DRIFT_TABLE: Final[str] = "drift_entities"

#: The rows of DRIFT_TABLE counted by period, day and kind: what every table and statistic reads.
_COUNTS: Final[str] = "_tc_drift_counts"

#: The first event of each watched entity that neither an anchor nor a billed_at dates.
_UNDATED: Final[str] = "_tc_drift_undated"

#: Periods the baseline covers when the user states none: the first quarter of monthly billing.
DEFAULT_BASELINE_PERIODS: Final[int] = 3

#: The kinds of entity in DRIFT_TABLE: the four paired cells, then the two left out of the rates
#: (in this order: DRIFT_TABLE's kind is an enumeration of them, and a position below 4 is a
#: paired one).
KINDS: Final[tuple[str, ...]] = ("a", "b", "c", "d", "pending", "unknown")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


# ------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class DriftTable:
    """Paired tables for a run of keys (periods or days), with what was left out of them."""

    keys: tuple[str, ...]
    stats: PairedStats
    pending: npt.NDArray[np.int64]
    unknown: npt.NDArray[np.int64]
    #: Keys inside the baseline (periods only; days are never marked).
    baseline: tuple[bool, ...] = ()

    def rows(self, key_name: str) -> list[dict[str, Any]]:
        """One JSON object per key: the issue's names first, then the documented extras."""
        out: list[dict[str, Any]] = []
        for i, key in enumerate(self.keys):
            r = self.stats.row(i)
            row: dict[str, Any] = {
                key_name: key,
                "vendor_billed": int(self.stats.a[i] + self.stats.b[i]),
                "buyer_counted": int(self.stats.a[i] + self.stats.c[i]),
                "agreed": r["agreed"],
                "vendor_only": r["vendor_only"],
                "buyer_only": r["buyer_only"],
                "vendor_only_rate": r["vendor_only_rate"],
                "buyer_only_rate": r["buyer_only_rate"],
                "mcnemar_p": r["mcnemar_p"],
                "kappa": r["kappa"],
                "neither": r["neither"],
                "entities": r["entities"],
                "agreement": r["agreement"],
                "vendor_only_ci": r["vendor_only_ci"],
                "buyer_only_ci": r["buyer_only_ci"],
                "difference": r["difference"],
                "difference_ci": r["difference_ci"],
                "kappa_ci": r["kappa_ci"],
                "ratio": r["ratio"],
                "pending": int(self.pending[i]),
                "unknown": int(self.unknown[i]),
            }
            if self.baseline:
                row["baseline"] = self.baseline[i]
            out.append(row)
        return out


@dataclass(frozen=True)
class Baseline:
    """The frozen reference rate the alarm compares with, and where it came from."""

    #: 'periods' (--baseline), 'default' (the first periods, no option given), 'contract'.
    source: str
    rate: float
    first: str | None = None
    last: str | None = None
    entities: int = 0
    vendor_only: int = 0
    #: How much more the baseline's daily vendor-only counts vary than independent entities
    #: would (Pearson chi-square over the days / degrees of freedom, at least 1); the alarm's
    #: threshold is multiplied by it. 1 for a contractual rate (no days to measure it on).
    dispersion: float = 1.0

    @property
    def observed_rate(self) -> float | None:
        return self.vendor_only / self.entities if self.entities else None

    @property
    def label(self) -> str:
        """How the report names it: 'baseline 2026-01..2026-03' or 'contractual rate'."""
        if self.source == "contract":
            return "contractual rate"
        span = self.first if self.first == self.last else f"{self.first}..{self.last}"
        return f"baseline {span}"

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "from": self.first,
            "to": self.last,
            "entities": self.entities,
            "vendor_only": self.vendor_only,
            "observed_rate": self.observed_rate,
            "dispersion": self.dispersion,
            "rate": self.rate,
        }


@dataclass(frozen=True)
class FirstAlarm:
    """Where the alarm's statistic first crossed its threshold."""

    period: str
    date: str
    statistic: float
    entity_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "date": self.date,
            "statistic": self.statistic,
            "entity_id": self.entity_id,
        }


@dataclass(frozen=True)
class Stream:
    """The alarm's input: one 0/1 per watched entity (1 = vendor only) in time order, and the
    day (in the definition's time zone) of each."""

    x: npt.NDArray[np.int8]
    day: npt.NDArray[Any]
    #: The CUSUM statistic after each entity (:func:`~truecount.drift.alarm.cusum_path`).
    path: npt.NDArray[np.float64]


@dataclass(frozen=True)
class DriftReport:
    """The result of :func:`drift_in` (JSON shape in docs/drift.md; names are stable)."""

    definition: Mapping[str, Any]
    as_of: dt.datetime | None
    baseline: Baseline
    settings: AlarmSettings
    result: AlarmResult
    first_alarm: FirstAlarm | None
    periods: DriftTable
    totals: DriftTable
    #: Entities the alarm watched (after the baseline), and the first period they fall in.
    watched: int
    watch_from: str | None
    days: DriftTable | None = None
    confidence: float = CONFIDENCE
    #: The watched stream itself, when asked for (``keep_stream``): for a caller that draws the
    #: statistic (the report), so the stream is sorted and fetched once, not twice.
    stream: Stream | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def alarm(self) -> bool:
        return bool(self.result.alarm)

    def to_json(self) -> dict[str, Any]:
        settings = {"method": "bernoulli_cusum", **_jsonable(dataclasses.asdict(self.settings))}
        out: dict[str, Any] = {
            "definition": dict(self.definition),
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "baseline": self.baseline.to_json(),
            "alarm": self.alarm,
            "first_alarm": None if self.first_alarm is None else self.first_alarm.to_json(),
            "alarm_settings": settings,
            "watched": {"from": self.watch_from, "entities": self.watched},
            "cusum_peak": _num(self.result.peak),
            "confidence": self.confidence,
            "periods": self.periods.rows("period"),
            "totals": self.totals.rows("period")[0],
        }
        if self.days is not None:
            out["days"] = self.days.rows("date")
        return out

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    v = float(x)
    return None if math.isnan(v) or math.isinf(v) else v


def _jsonable(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (_num(v) if isinstance(v, float) else v) for k, v in d.items()}


# ------------------------------------------------------------------------------------- inputs
def parse_baseline(text: str) -> tuple[str, str]:
    """``2026-01..2026-03`` -> ('2026-01', '2026-03'); ``2026-02`` -> ('2026-02', '2026-02')."""
    first, sep, last = text.strip().partition("..")
    first, last = first.strip(), (last.strip() if sep else first.strip())
    if not first or not last:
        raise InputError(
            Problem(
                f"'{text}' is not a baseline",
                Location(key="baseline"),
                "write one period (2026-01) or a range of periods (2026-01..2026-03)",
            )
        )
    if first > last:
        raise InputError(
            Problem(
                f"the baseline '{text}' ends before it starts",
                Location(key="baseline"),
                f"write {last}..{first}",
            )
        )
    return first, last


# ------------------------------------------------------------------------------------- core
def drift_in(
    con: duckdb.DuckDBPyConnection,
    definition: Any,
    verdicts_table: str,
    invoice_table: str,
    *,
    events_table: str | None = None,
    baseline: str | tuple[str, str] | None = None,
    contract_rate: float | None = None,
    settings: AlarmSettings = DEFAULT_ALARM,
    by_day: bool = False,
    as_of: dt.datetime | None = None,
    confidence: float = CONFIDENCE,
    scale_to_volume: bool = True,
    reconciled: Reconciliation | None = None,
    keep_stream: bool = False,
) -> DriftReport:
    """Paired tables per period (and day), and the alarm on the vendor-only stream.

    The tables are already on ``con``: the count's verdicts, the loaded invoice and, when given,
    the events (to tell unknown entities from billed ones without an anchor, and to date the
    latter). The reconciliation runs here on the same connection with its cell table.
    ``baseline`` (periods) and ``contract_rate`` are exclusive; with neither, the first
    :data:`DEFAULT_BASELINE_PERIODS` periods are the baseline. ``scale_to_volume`` raises the
    threshold for streams of more than the reference volume a day (the CUSUM's false-alarm
    rate is per entity; docs/drift-alarm.md) and by the baseline days' dispersion
    (:func:`_dispersion`); pass False to use ``settings`` exactly. ``reconciled`` is a
    reconciliation already run on ``con`` with its cell table (``cells=True``), for callers
    that need both (the report): the cells do not depend on the terms, so they are not
    written twice. ``keep_stream`` keeps the watched stream with each entity's day on the
    result (:class:`Stream`), fetched in the same sorted read as the alarm's.
    """
    for name in (verdicts_table, invoice_table, events_table):
        if name is not None and not _NAME.fullmatch(name):
            raise ValueError(f"table name {name!r} is not an identifier")
    if baseline is not None and contract_rate is not None:
        raise InputError(
            Problem(
                "give a baseline period or a contractual rate, not both",
                Location(key="baseline"),
                "drop --baseline or --baseline-rate",
            )
        )
    if contract_rate is not None and not 0.0 < contract_rate < 1.0:
        raise InputError(
            Problem(
                f"the contractual vendor-only rate must lie between 0 and 1, got {contract_rate}",
                Location(key="baseline-rate"),
                "write it as a fraction, e.g. 0.02 for 2%",
            )
        )
    span = baseline if not isinstance(baseline, str) else parse_baseline(baseline)

    recon = reconciled or reconcile_in(
        con,
        verdicts_table,
        invoice_table,
        known_table=events_table,
        definition=definition,
        as_of=as_of,
        fetch_entities=False,
        cells=True,
    )
    every = str(definition.period.every)
    timezone = str(definition.period.timezone)
    _entities(con, events_table, timezone)

    if scale_to_volume:
        volume = one_row(
            con,
            f"SELECT sum(n), count(DISTINCT day) FROM {_COUNTS} "  # noqa: S608 - fixed text
            "WHERE k IN ('a', 'b', 'c', 'd')",
        )
        if volume is not None and volume[1]:
            settings = settings.for_volume(int(volume[0]) / int(volume[1]))

    periods = _tables(con, "period", confidence)
    if not periods.keys:
        raise InputError(
            Problem(
                "nothing to compare: the invoice bills no entity the export knows, and the "
                "buyer has no candidate in the invoice's periods",
                Location(key="invoice"),
                "check that the invoice and the export cover the same periods and ids",
            )
        )
    base = _baseline(periods, span, contract_rate, settings, every)
    if base.first is not None and base.last is not None:
        base = dataclasses.replace(base, dispersion=_dispersion(con, base.first, base.last))
        if scale_to_volume:
            settings = dataclasses.replace(settings, threshold=settings.threshold * base.dispersion)
    watch_after = base.last
    first, last = base.first, base.last
    flags = tuple(
        first is not None and last is not None and first <= k <= last for k in periods.keys
    )
    periods = dataclasses.replace(periods, baseline=flags)
    totals = _totals(periods, confidence)

    # The stream: one 0/1 per entity judged by both sides, in time order, fetched once.
    # The four paired kinds come first in the kinds' enumeration, so one comparison of the
    # position picks them: an IN list of four would have DuckDB compute the kind four times.
    where = "enum_code(k) < 4" + ("" if watch_after is None else " AND period > ?")
    params: list[Any] = [] if watch_after is None else [watch_after]
    x, stream_days = _stream(con, where, params, keep_stream)
    stream = None
    if keep_stream:
        path = cusum_path(x, base.rate, settings)
        stream = Stream(x=x, day=stream_days, path=path)
        result = alarm_on_path(path, settings)
    else:
        result = bernoulli_cusum(x, base.rate, settings)
    first_alarm = None
    if result.alarm and result.index is not None:
        row = one_row(
            con,
            f"SELECT period, CAST(day AS VARCHAR), entity_id FROM {DRIFT_TABLE} "  # noqa: S608
            f"WHERE {where} "
            "ORDER BY t, entity_id LIMIT 1 OFFSET ?",
            [*params, int(result.index)],
        )
        if row is not None:
            first_alarm = FirstAlarm(
                period=str(row[0]),
                date=str(row[1]),
                statistic=float(result.statistic if result.statistic is not None else math.nan),
                entity_id=str(row[2]),
            )
    watch_from = next((k for k in periods.keys if watch_after is None or k > watch_after), None)

    days = _tables(con, "day", confidence) if by_day else None
    return DriftReport(
        definition=recon.definition,
        as_of=as_of,
        baseline=base,
        settings=settings,
        result=result,
        first_alarm=first_alarm,
        periods=periods,
        totals=totals,
        watched=int(x.size),
        watch_from=watch_from,
        days=days,
        confidence=confidence,
        stream=stream,
    )


def _entities(con: duckdb.DuckDBPyConnection, events: str | None, timezone: str) -> None:
    """Define :data:`DRIFT_TABLE` (one row per entity with its kind, period, day and time) and
    write :data:`_COUNTS`, its rows counted by period, day and kind.

    The reconciliation's entity table holds every billed entity, the buyer's verdicts (with
    ``pick: each``, each entity's best candidate, ranked as the reconciliation ranks them:
    counted, pending, not counted, excluded; then the earliest) and each billed entity's
    first ``billed_at``. Its cells give the billed entities and the counted ones in the
    invoice's periods; the buyer's other candidates in those periods (not counted, or still
    pending, and not billed) are its rows outside the cells, so one read of one table gives
    every entity drift watches.

    :data:`DRIFT_TABLE` is a view of that table, not a copy: drift reads it twice (the counts
    here, the stream in time order), and writing ten million rows to read them twice cost
    more than computing the kind twice. Every table and statistic reads the small counts.
    """
    kind = (
        "CASE WHEN cell IN ('agreed', 'period_mismatch') THEN 'a' "
        "WHEN cell = 'buyer_only' THEN 'c' "
        "WHEN cell = 'unknown' THEN 'unknown' "
        "WHEN cell = 'pending' THEN 'pending' "
        "WHEN cell = 'duplicate' AND buyer_status = 'counted' THEN 'a' "
        "WHEN cell = 'duplicate' AND buyer_status = 'pending' THEN 'pending' "
        "ELSE 'b' END"
    )
    kinds = exp.DataType(
        this=exp.DataType.Type.ENUM,
        expressions=[exp.Literal.string(k) for k in KINDS],
        nested=False,
    ).sql(dialect="duckdb")
    first, last, last_first = entity_span(con)
    cells = in_cell(first, last).sql(dialect="duckdb")
    other = exp.and_(
        exp.EQ(this=exp.column("cell"), expression=exp.Literal.string("buyer_only")),
        exp.In(
            this=exp.column("buyer_status"),
            expressions=[exp.Literal.string(s) for s in ("not_counted", "excluded", "pending")],
        ),
        exp.Between(
            this=exp.column("buyer_period"),
            low=exp.Literal.string(str(first)) if first is not None else exp.Null(),
            high=exp.Literal.string(str(last_first)) if last_first is not None else exp.Null(),
        ),
    ).sql(dialect="duckdb")
    watched = f"({cells}) OR ({other})"
    local: exp.Expr = exp.column("t")
    if timezone != "UTC":
        local = exp.ConvertTimezone(
            source_tz=exp.Literal.string("UTC"),
            target_tz=exp.Literal.string(timezone),
            timestamp=local,
        )
    day = exp.cast(local, exp.DataType.build("DATE")).sql(dialect="duckdb")

    def define(t: str, join: str) -> None:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {DRIFT_TABLE} AS "  # noqa: S608 - fixed text
            f"SELECT entity_id, k, period, {day} AS day, t FROM ("
            f"SELECT x.entity_id, CAST(CASE WHEN {cells} THEN {kind} "
            f"WHEN buyer_status = 'pending' THEN 'pending' ELSE 'd' END AS {kinds}) AS k, "
            f"coalesce(x.billed_period, x.buyer_period) AS period, {t} AS t "
            f"FROM {ENTITIES_TABLE} AS x{join} WHERE {watched})"
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_COUNTS} AS "  # noqa: S608 - fixed text
            f"SELECT period, day, k, count(*) AS n FROM {DRIFT_TABLE} GROUP BY ALL"
        )

    define("coalesce(x.anchor_ts, x.first_billed_at)", "")
    # Entities without an anchor time are dated by their first billed_at (on the table), else
    # by their first event. The counts tell whether any is left undated (its day is NULL);
    # only then are the events read, for those entities alone, and the counts taken again:
    # a scan of every event for a few entities would be most of this function's cost.
    undated = one_row(con, f"SELECT sum(n) FROM {_COUNTS} WHERE day IS NULL")  # noqa: S608
    if events is None or undated is None or not undated[0]:
        return
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_UNDATED} AS "  # noqa: S608 - fixed text
        f"SELECT e.entity_id, min(e.ts) AS t FROM {events} AS e "
        f"JOIN (SELECT entity_id FROM {DRIFT_TABLE} WHERE t IS NULL) AS u "
        "ON u.entity_id = e.entity_id GROUP BY 1"
    )
    define(
        "coalesce(x.anchor_ts, x.first_billed_at, u.t)",
        f" LEFT JOIN {_UNDATED} AS u ON u.entity_id = x.entity_id",
    )


def _stream(
    con: duckdb.DuckDBPyConnection, where: str, params: list[Any], with_days: bool
) -> tuple[npt.NDArray[np.int8], npt.NDArray[Any]]:
    """The watched entities' 0/1 (vendor-only or not) in the order of their time, ties broken
    by entity id, and each one's day when asked for (NaT for an entity with no time at all:
    no anchor, no billed_at, no event; such entities sort last)."""
    day = ", day" if with_days else ""
    fetched = con.execute(
        f"SELECT CAST(k = 'b' AS TINYINT) AS x{day} FROM {DRIFT_TABLE} "  # noqa: S608 - fixed text
        f"WHERE {where} ORDER BY t, entity_id",
        params,
    ).fetchnumpy()
    x = np.asarray(fetched["x"], dtype=np.int8)
    if not with_days:
        return x, np.empty(0)
    # a missing day is NaT, not the epoch that a masked value's data holds
    days = np.ma.asarray(fetched["day"]).astype("datetime64[D]")
    return x, np.ma.filled(days, np.datetime64("NaT"))


def _tables(con: duckdb.DuckDBPyConnection, key: str, confidence: float) -> DriftTable:
    """Counts per period or per day, in one GROUP BY of the counts, turned into statistics."""
    column = {"period": "period", "day": "day"}[key]
    counts = ", ".join(
        f"CAST(coalesce(sum(n) FILTER (WHERE k = '{k}'), 0) AS BIGINT) AS n_{k}" for k in KINDS
    )
    got = con.execute(
        f"SELECT CAST({column} AS VARCHAR) AS key, {counts} FROM {_COUNTS} "  # noqa: S608
        f"WHERE {column} IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).fetchnumpy()
    keys = tuple(str(k) for k in got["key"])

    def col(k: str) -> npt.NDArray[np.int64]:
        return np.asarray(got[f"n_{k}"], dtype=np.int64)

    return DriftTable(
        keys=keys,
        stats=paired_stats(col("a"), col("b"), col("c"), col("d"), confidence),
        pending=col("pending"),
        unknown=col("unknown"),
    )


def _totals(periods: DriftTable, confidence: float) -> DriftTable:
    s = periods.stats
    return DriftTable(
        keys=("total",),
        stats=paired_stats(
            [int(s.a.sum())], [int(s.b.sum())], [int(s.c.sum())], [int(s.d.sum())], confidence
        ),
        pending=np.asarray([int(periods.pending.sum())], dtype=np.int64),
        unknown=np.asarray([int(periods.unknown.sum())], dtype=np.int64),
    )


def _dispersion(con: duckdb.DuckDBPyConnection, first: str, last: str) -> float:
    """Overdispersion of the baseline's daily vendor-only counts against the binomial.

    The CUSUM's threshold assumes entities independent of each other. Real days are not: on a
    weekend the tickets left for people to close are a different mix, and the vendor-only share
    of a Sunday can sit far from the weekday one with no change in the vendor's classifier. The
    Pearson chi-square of the baseline days over its degrees of freedom measures how much more
    the days vary than independent entities would; the threshold is scaled by it (the
    quasi-binomial correction), so only a shift beyond the baseline's own day-to-day variation
    raises the alarm. The threshold is never lowered.
    """
    row = one_row(
        con,
        "WITH d AS (SELECT day, sum(n) AS n, coalesce(sum(n) FILTER (WHERE k = 'b'), 0) AS b "  # noqa: S608
        f"FROM {_COUNTS} WHERE k IN ('a', 'b', 'c', 'd') AND period BETWEEN ? AND ? "
        "GROUP BY day), p AS (SELECT sum(b) / sum(n) AS p FROM d) "
        "SELECT sum((d.b - d.n * p.p) ^ 2 / (d.n * p.p * (1 - p.p))), count(*) "
        "FROM d, p WHERE p.p > 0 AND p.p < 1",
        [first, last],
    )
    if row is None or row[0] is None or int(row[1]) < 2:
        return 1.0
    statistic, df = float(row[0]), int(row[1]) - 1
    # Only a dispersion the days show beyond chance (the chi-square test at 5%) changes the
    # threshold: independent entities keep the threshold the simulation calibrated.
    if statistic <= float(chi2.ppf(0.95, df)):
        return 1.0
    return statistic / df


def _baseline(
    periods: DriftTable,
    span: tuple[str, str] | None,
    contract_rate: float | None,
    settings: AlarmSettings,
    every: str,
) -> Baseline:
    """The frozen reference: stated periods, the contract's rate, or the first periods.

    Never a running mean: a reference that follows the stream absorbs the slow ramp it is
    there to catch.
    """
    keys = periods.keys
    if contract_rate is not None:
        contract = Baseline(source="contract", rate=float(contract_rate))
        _check_room(contract, settings)
        return contract
    if span is None:
        if len(keys) < 2:
            raise InputError(
                Problem(
                    f"the data covers one {every} ({keys[0]}): there is no baseline to watch from",
                    Location(key="baseline"),
                    "give the contractual vendor-only rate with --baseline-rate, "
                    "or drift over more periods",
                )
            )
        first, last = keys[0], keys[min(DEFAULT_BASELINE_PERIODS, len(keys) - 1) - 1]
        source = "default"
    else:
        first, last = span
        missing = [p for p in (first, last) if p not in keys]
        if missing:
            raise InputError(
                Problem(
                    f"baseline period {missing[0]} is not in the data",
                    Location(key="baseline"),
                    f"periods in the data: {', '.join(keys[:24])}"
                    + (" …" if len(keys) > 24 else ""),
                )
            )
        source = "periods"
    inside = np.asarray([first <= k <= last for k in keys], dtype=bool)
    n = int(periods.stats.n[inside].sum())
    b = int(periods.stats.b[inside].sum())
    if n == 0:
        raise InputError(
            Problem(
                f"the baseline {first}..{last} has no entity judged by both sides",
                Location(key="baseline"),
                "choose periods the invoice bills, or give --baseline-rate",
            )
        )
    rate = float(baseline_rate(b, n, settings))
    base = Baseline(source=source, rate=rate, first=first, last=last, entities=n, vendor_only=b)
    _check_room(base, settings)
    return base


def _check_room(base: Baseline, settings: AlarmSettings) -> None:
    """Refuse, in a reader's words, a baseline the alarm cannot watch from.

    The alarm looks for a rise of the vendor-only rate to ``shift`` times the reference rate
    (:func:`truecount.drift.alarm.llr_weights`). When most billed entities are already not
    outcomes, that rise is 100% or more and no stream can show it; a reference of 0 (no
    vendor-only entity, with ``baseline_bound="estimate"``) has no rate to rise from. Both
    are facts about the data, not bad settings, so they are an :class:`InputError` that the
    report and the dashboard show as a note instead of the alarm.
    """
    shift, p0 = settings.shift, base.rate
    cannot = "the drift alarm cannot run on these data"
    if p0 <= 0.0:
        raise InputError(
            Problem(
                f"{cannot}: in the {base.label}, none of the {base.entities:,} entities both "
                "sides judged was billed but not an outcome, so the alarm has no rate to rise from",
                Location(key="baseline"),
                "take the baseline's upper limit (baseline_bound 'upper') or give the "
                "contractual vendor-only rate with --baseline-rate",
            )
        )
    p1 = shift * p0
    if p1 < 1.0:
        return
    if base.source == "contract":
        why = (
            f"the rise the alarm watches for, {shift:g} times the contractual vendor-only rate "
            f"{p0:.1%}, is {p1:.1%}"
        )
    else:
        bound = (
            f"the {settings.confidence:.0%} upper limit of that share"
            if settings.baseline_bound == "upper"
            else "that share"
        )
        why = (
            f"in the {base.label}, {base.vendor_only:,} of the {base.entities:,} entities both "
            f"sides judged were billed but not an outcome ({base.vendor_only / base.entities:.1%}),"
            f" and the rise the alarm watches for, {shift:g} times {p0:.1%} ({bound}), is {p1:.1%}"
        )
    # the largest shift, to three decimals, that keeps the watched-for rate below 100%
    largest = math.floor(1000.0 / p0 - 1e-9) / 1000.0
    hints = [f"a --shift of at most {largest:.3f}"] if largest > 1.0 else []
    if base.source != "contract":
        hints.append("the contractual vendor-only rate with --baseline-rate")
    raise InputError(
        Problem(
            f"{cannot}: {why}, not a share below 100%",
            Location(key="shift"),
            f"give {', or '.join(hints)}" if hints else None,
        )
    )
