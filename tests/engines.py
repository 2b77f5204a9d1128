"""The engines the dialect tests run on: one SparkSession and one PostgreSQL 15 server per run.

Both are started lazily, once per test process, and shared by every test that asks (Spark's
start-up is most of its cost). PostgreSQL runs from a temporary data directory on a Unix
socket only, as an unprivileged user when the tests run as root (``initdb`` refuses root), and
is stopped when the process ends.

When one is missing, its tests are skipped with the command that installs it, so the README's
test command runs on any machine with Python; CI sets ``TRUECOUNT_REQUIRE_ENGINES=1`` and then
a missing engine fails instead (``.ci/run`` installs both first). A developer deselects them with
``-m "not spark and not postgres"``.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import os
import pwd
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

import pyarrow as pa
import pytest

#: Set to 1 (CI does) to fail, not skip, when Spark, Java or PostgreSQL is missing.
REQUIRE_ENV = "TRUECOUNT_REQUIRE_ENGINES"
PG_BIN = Path(os.environ.get("TRUECOUNT_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _missing(why: str) -> NoReturn:
    """Skip (a developer's machine) or fail (CI, ``TRUECOUNT_REQUIRE_ENGINES=1``)."""
    if os.environ.get(REQUIRE_ENV, "").strip() == "1":
        pytest.fail(why)
    pytest.skip(why)


@cache
def spark() -> Any:
    """The shared local SparkSession (two cores, two shuffle partitions: the data are small)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        _missing("PySpark is missing: pip install -e '.[test]' (needs Java 17)")
    from truecount.engine.spark import java_missing, spark_session

    java = java_missing()
    if java is not None:
        _missing(f"{java}: apt-get install openjdk-17-jre-headless")

    session = spark_session(
        "local[2]",
        {"spark.sql.shuffle.partitions": "2", "spark.ui.showConsoleProgress": "false"},
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


class Postgres:
    """A throwaway PostgreSQL server: ``connect()`` gives a psycopg connection to it."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            _missing(
                f"PostgreSQL 15 is missing ({PG_BIN}/initdb): apt-get install postgresql "
                "(or set TRUECOUNT_PG_BIN to its bin folder)"
            )
        self.root = Path(tempfile.mkdtemp(prefix="truecount-pg-"))
        self.data = self.root / "data"
        self.user: str | None = None
        if os.geteuid() == 0:
            # initdb refuses to run as root: run the server as the postgres (or nobody) user
            for name in ("postgres", "nobody"):
                try:
                    pwd.getpwnam(name)
                except KeyError:
                    continue
                self.user = name
                break
            entry = pwd.getpwnam(self.user or "nobody")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "truecount", "--auth=trust", "-E", "UTF8")
        options = f"-c listen_addresses='' -k {self.root} -c fsync=off -c TimeZone=UTC"
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w",
            "start",
        )  # fmt: skip
        atexit.register(self.stop)

    def _run(self, program: str, *args: str) -> None:
        command = [str(PG_BIN / program), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(f"{program} failed: {done.stdout}\n{done.stderr}")

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(host=str(self.root), user="truecount", dbname="postgres",
                               autocommit=True)  # fmt: skip

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
            shutil.rmtree(self.root, ignore_errors=True)


@cache
def postgres() -> Postgres:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _missing("psycopg is missing: pip install -e '.[test]'")
    return Postgres()


def load_postgres(con: Any, events: pa.Table, table: str, attrs_type: str) -> None:
    """Create ``table`` with the canonical columns (``attrs`` as text, json or jsonb) and load."""
    with con.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(
            f"CREATE TABLE {table} (event_id text, entity_id text, ts timestamp, type text, "
            f"actor text, value double precision, attrs {attrs_type}, source text, "
            "recorded_at timestamp, seq bigint)"
        )
        columns = ["event_id", "entity_id", "ts", "type", "actor", "value", "attrs", "source",
                   "recorded_at", "seq"]  # fmt: skip
        present = [c for c in columns if c in events.column_names]
        rows = events.select(present).to_pylist()
        with cur.copy(f"COPY {table} ({', '.join(present)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([_pg_value(row[c]) for c in present])


def _pg_value(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value
