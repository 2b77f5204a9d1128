"""Run a count on Apache Spark: the same compiled tree, Spark's dialect, DuckDB's summaries.

Spark computes the verdict rows (one per candidate) from canonical events in Parquet; the rows
come back as Arrow and are summarised by the same DuckDB code as a local count, so the JSON of
``truecount count --engine spark`` is byte for byte the JSON of the DuckDB engine.

What is forced, because loading decides correctness silently otherwise: the session time zone
is UTC (event times are naive UTC; a session in another zone would shift every period), and
events are read from Parquet only (CSV loses the JSON of ``attrs`` to Spark's escape rules).
Local exports in other shapes (a workspace, CSV, JSON Lines) are validated by DuckDB and
written to Parquet first (:mod:`truecount.engine.export`).

PySpark is optional (``pip install 'truecount[spark]'``); this module imports it only when a
session is made.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from truecount.definition.model import Definition
from truecount.engine.compile import render_sql
from truecount.engine.export import export_events, parquet_files
from truecount.engine.run import (
    ClockBasis,
    CountResult,
    KnownClock,
    count_source,
    parse_time,
)
from truecount.engine.source import EventSource, open_events
from truecount.errors import InputError, Location, Problem
from truecount.ingest.canonical import CANONICAL_COLUMNS, EVENTS_TABLE, REQUIRED_COLUMNS
from truecount.workspace import Workspace, configure

#: Spark type of each canonical column (``attrs`` is JSON text).
SPARK_TYPES: dict[str, str] = {
    "VARCHAR": "string",
    "JSON": "string",
    "TIMESTAMP": "timestamp",
    "DOUBLE": "double",
    "BIGINT": "bigint",
}

INSTALL_HINT = "install the Spark extra: pip install 'truecount[spark]'; Spark also needs Java 17+"


def spark_session(master: str | None = None, config: dict[str, str] | None = None) -> Any:
    """A SparkSession in UTC: ``master`` (default ``local[*]``), or Spark Connect.

    With no ``master`` and ``SPARK_REMOTE`` set (``sc://host:15002``), the session is a Spark
    Connect client of that cluster. An existing session is reused (one JVM per process).
    What keeps Spark from starting (no PySpark, no Java, a master that does not answer) is an
    :class:`InputError` of one line rather than a Java stack trace.
    """
    can_start(master)
    from pyspark.sql import SparkSession

    builder: Any = SparkSession.builder.appName("truecount")
    remote = os.environ.get("SPARK_REMOTE")
    if master is None and remote:
        builder = builder.remote(remote)
    else:
        builder = builder.master(master or "local[*]")
    settings = {"spark.sql.session.timeZone": "UTC", "spark.ui.enabled": "false"}
    if not (master is None and remote):
        # The verdicts come back to this process: in local mode the driver is also the
        # executor, and Spark's 1 GB default loses results past a few million entities.
        settings.update(
            {
                "spark.driver.memory": os.environ.get(DRIVER_MEMORY_ENV, "").strip() or "4g",
                "spark.driver.maxResultSize": "0",
            }
        )
    settings.update(config or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # PySpark raises many kinds; all mean "not started"
        connect = master is None and bool(remote)
        where = remote if connect else (master or "local[*]")
        hint = (
            "a Spark Connect client needs pip install 'pyspark[connect]' and a server there"
            if connect
            else "check --spark-master, and that Java 17 or later runs"
        )
        raise InputError(
            Problem(
                f"Spark did not start ({where}): {_first_line(exc)}", Location(key="engine"), hint
            )
        ) from None
    session.conf.set("spark.sql.session.timeZone", "UTC")
    return session


#: The memory of the driver of a session truecount starts (``4g`` unless set): it receives
#: every verdict row, so it grows with the number of entities.
DRIVER_MEMORY_ENV = "TRUECOUNT_SPARK_DRIVER_MEMORY"

#: What to do when Java is missing (Spark runs in a Java virtual machine).
JAVA_HINT = (
    "Spark needs Java 17 or later: install a JDK (e.g. apt-get install openjdk-17-jre-headless) "
    "and set JAVA_HOME or put java on PATH"
)


def can_start(master: str | None = None) -> None:
    """Raise the one-line error for what a session would lack: PySpark, or (for a session in
    this process rather than a Spark Connect client) Java. Cheap: nothing is started."""
    try:
        import pyspark.sql  # noqa: F401 - the import is the check
    except ImportError:
        raise InputError(
            Problem("PySpark is not installed", Location(key="engine"), INSTALL_HINT)
        ) from None
    if master is None and os.environ.get("SPARK_REMOTE"):
        return
    missing = java_missing()
    if missing is not None:
        raise InputError(Problem(missing, Location(key="engine"), JAVA_HINT))


def java_missing() -> str | None:
    """Why Spark's launcher would find no ``java`` (as it looks: ``JAVA_HOME``, then PATH).

    Checked before starting a local session, because PySpark's own error for it is a
    "Java gateway process exited" with the reason buried in a log.
    """
    home = os.environ.get("JAVA_HOME")
    if home:
        if (Path(home) / "bin" / "java").is_file():
            return None
        return f"JAVA_HOME is {home} but it has no bin/java"
    if shutil.which("java") is None:
        return "no Java found: JAVA_HOME is not set and there is no java on PATH"
    return None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class SparkEngine:
    """Verdicts computed on a SparkSession over canonical events in Parquet.

    ``paths`` are Parquet files, folders of them, or any URI the cluster reads
    (``s3a://bucket/events/``). They are read once into the temp view ``events`` with the
    canonical columns and types; rows without ``entity_id``, ``ts`` or ``type`` are left out,
    as the DuckDB engine leaves them out.
    """

    dialect = "spark"

    def __init__(self, spark: Any, paths: Sequence[str]) -> None:
        self.spark = spark
        self.paths = list(paths)
        self._events = self._load()

    def _load(self) -> Any:
        from pyspark.sql import functions as F  # noqa: N812 - the usual name

        try:
            raw = self.spark.read.parquet(*self.paths)
        except Exception as exc:  # AnalysisException and the Connect variants
            raise InputError(
                Problem(
                    f"Spark cannot read the events: {_first_line(exc)}",
                    Location(file=", ".join(self.paths[:3])),
                    "give Parquet files, folders of them, or a URI the cluster reads",
                )
            ) from None
        present = {c.lower(): c for c in raw.columns}
        missing = [c for c in REQUIRED_COLUMNS if c not in present]
        if missing:
            raise InputError(
                Problem(
                    f"missing required column {', '.join(missing)} in the Parquet events",
                    hint="canonical events need entity_id, ts and type; write them with "
                    "'truecount export'",
                )
            )
        cols = []
        for name, typ in CANONICAL_COLUMNS.items():
            spark_type = SPARK_TYPES[typ]
            source = F.col(present[name]) if name in present else F.lit(None)
            cols.append(source.cast(spark_type).alias(name))
        frame = raw.select(*cols)
        for name in REQUIRED_COLUMNS:
            frame = frame.where(F.col(name).isNotNull())
        frame.createOrReplaceTempView(EVENTS_TABLE)
        return frame

    def sql(self, query: exp.Expr) -> Any:
        """A Spark DataFrame of ``query`` rendered in Spark's dialect."""
        return self.spark.sql(render_sql(query, "spark", pretty=False))

    def verdicts(self, query: exp.Select) -> pa.Table:
        """The verdict rows, collected into this process as Arrow.

        A failure of the job (most often the driver running out of memory for the rows) is
        one line naming the setting, not a Java stack trace.
        """
        try:
            return to_arrow(self.sql(query))
        except Exception as exc:  # Py4J, Spark Connect and Spark's own errors alike
            if isinstance(exc, InputError):
                raise
            raise InputError(
                Problem(
                    f"the count failed on Spark: {_first_line(exc)}",
                    Location(key="engine"),
                    f"the verdicts of every entity come back to this process: raise "
                    f"{DRIVER_MEMORY_ENV} (now "
                    f"{os.environ.get(DRIVER_MEMORY_ENV, '').strip() or '4g'}), or count "
                    "fewer periods at a time",
                )
            ) from None

    def latest_event(self) -> dt.datetime | None:
        """``MAX(ts)`` of the events: the default as-of, as DuckDB takes it."""
        rows = self.sql(exp.select(exp.Max(this=exp.column("ts"))).from_(EVENTS_TABLE)).collect()
        value = rows[0][0] if rows else None
        return _naive_utc(value) if isinstance(value, dt.datetime) else None

    def known_clock(self, as_of: dt.datetime, known_at: dt.datetime) -> KnownClock:
        """The second clock measured on Spark (see :func:`truecount.engine.run.known_clock`)."""
        ts, recorded = exp.column("ts"), exp.column("recorded_at")
        horizon = exp.LTE(this=ts, expression=_ts(as_of))
        has = exp.Not(this=exp.Is(this=recorded, expression=exp.Null()))
        late = exp.GT(this=exp.Coalesce(this=recorded, expressions=[ts]), expression=_ts(known_at))
        query = exp.select(
            exp.func("COUNT_IF", horizon),
            exp.func("COUNT_IF", exp.and_(horizon.copy(), has)),
            exp.func("COUNT_IF", exp.and_(horizon.copy(), late)),
        ).from_(EVENTS_TABLE)
        events, with_recorded, held = (int(v or 0) for v in self.sql(query).collect()[0])
        basis: ClockBasis = "event_time"
        if events and with_recorded == events:
            basis = "recorded_at"
        elif with_recorded:
            basis = "mixed"
        return KnownClock(known_at, basis, events, with_recorded, held)


def _ts(value: dt.datetime) -> exp.Expr:
    text = value.isoformat(sep=" ", timespec="microseconds")
    return exp.cast(exp.Literal.string(text), exp.DataType.build("TIMESTAMP"))


def _naive_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def to_arrow(frame: Any) -> pa.Table:
    """Collect a Spark DataFrame as Arrow (``toArrow`` from Spark 4; pandas on 3.5)."""
    if hasattr(frame, "toArrow"):
        table: pa.Table = frame.toArrow()
        return table
    pdf = frame.toPandas()  # pragma: no cover - PySpark 3.5
    return pa.Table.from_pandas(pdf, preserve_index=False)  # pragma: no cover


def count_on_spark(
    definition: Definition,
    events: Workspace | Sequence[str | Path] | str | Path,
    as_of: dt.datetime | str | None = None,
    known_at: dt.datetime | str | None = None,
    spark: Any = None,
    master: str | None = None,
) -> CountResult:
    """Count ``definition`` with verdicts computed on Spark; the result is a :class:`CountResult`.

    ``events``: a workspace or local export in any supported shape (validated by DuckDB and
    written to Parquet for Spark), or Parquet files, folders or URIs that Spark reads directly.
    Local Parquet is also opened by DuckDB, which reads the as-of default from the footers;
    for URIs only Spark can read, Spark computes it.
    """
    session = spark if spark is not None else spark_session(master)
    if isinstance(events, Workspace) or not _all_parquet(events):
        source = open_events(events)
        folder = tempfile.mkdtemp(prefix="truecount-spark-")
        try:
            paths = [str(p) for p in export_events(source.con, folder)]
            engine = SparkEngine(session, paths or _empty_parquet(folder))
            # the verdicts are collected before this returns: the copy is no longer needed
            return count_source(definition, source, as_of, known_at, engine=engine)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    given = [str(p) for p in ([events] if isinstance(events, str | Path) else events)]
    files = parquet_files(given)
    if all("://" not in f for f in files):
        source = open_events(files)
        return count_source(definition, source, as_of, known_at, engine=SparkEngine(session, files))
    engine = SparkEngine(session, files)
    con = duckdb.connect()
    configure(con)
    source = EventSource(con, f"{len(files)} Parquet path(s) read by Spark", files=files)
    known = parse_time(known_at)
    moment = parse_time(as_of) or known or engine.latest_event() or dt.datetime(1970, 1, 1)
    clock = engine.known_clock(moment, known) if known is not None else None
    return count_source(definition, source, moment, known, clock=clock, engine=engine)


def _all_parquet(events: Sequence[str | Path] | str | Path) -> bool:
    items = [events] if isinstance(events, str | Path) else list(events)
    for item in items:
        text = str(item)
        if "://" in text or text.lower().endswith(".parquet"):
            continue
        if Path(text).is_dir():
            continue
        return False
    return bool(items)


def _empty_parquet(folder: str) -> list[str]:
    """One empty canonical Parquet file, for an export with no events (Spark needs a schema)."""
    con = duckdb.connect()
    cols = ", ".join(
        f"CAST(NULL AS {'VARCHAR' if t == 'JSON' else t}) AS {n}"
        for n, t in CANONICAL_COLUMNS.items()
    )
    path = str(Path(folder) / "empty.parquet")
    con.execute(
        f"COPY (SELECT {cols} LIMIT 0) TO {exp.Literal.string(path).sql('duckdb')} (FORMAT PARQUET)"
    )
    return [path]
