"""ServiceNow incident update logs: one row per update, the state after it, and its counter.

A ServiceNow incident carries its whole life in a handful of fields that change with every
update: ``state`` (a numeric choice, 1 New ... 7 Closed), ``sys_updated_on``,
``sys_updated_by`` and ``sys_mod_count``, the update counter. An update log (a CSV export, or
Table API pages ``{"result": [...]}``) lists one row per update with the values *after* it.
A close or a reopen is therefore only visible as a *transition* between two rows of the same
incident, and this adapter derives it in SQL with a window over the incident's rows, ordered by
``sys_updated_on`` and then by ``sys_mod_count`` (updates in the same second are ordered by the
counter, never by file order).

Per update row (the record):

- ``status_changed`` always, with ``attrs.from`` / ``attrs.to`` (state names) — the record's
  own event, so every row is kept even when nothing a definition needs changed;
- ``closed`` on entering a closed state (option ``closed_states``) from one that is not:
  Resolved -> Closed is the same close, not a second one;
- ``reopened`` on leaving a closed state for one that is not;
- ``created`` (at ``opened_at``) on the incident's first row in the file;
- ``assigned`` when the assignee or group changes, and ``escalated`` when the assignee
  changes from an AI identity (option ``ai_users``) to anyone else.

Because the ``from`` state is computed within one file, a history is ingested whole: the
first row of an incident in a file has no ``from``. A first row that is not the incident's
first update (``sys_mod_count`` > 0) says nothing about *when* it entered its state, so it
gives no ``closed`` (or ``assigned``) event; every row notes how many updates before it the
file lacks (``attrs.missing_updates``), which is how a current-state export (one row per
incident) shows itself as too thin to count closes. See docs/sources/servicenow.md.

List exports (labels or legacy names for columns, the user's date format and zone, ``?`` for
no value, sometimes no counter) are read through :mod:`servicenow_fields`; without a counter a
file still loads, and what that costs (no gaps seen, no close on a first row, same-second
updates set aside unless ``tie_order`` says how the file lists them) is kept in
``attrs.caveat`` for ``truecount check`` to state. Single-record Table API responses
``{"result": {...}}`` read like a page. The query itself is :mod:`servicenow_sql`.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from typing import ClassVar, Final, Literal

import duckdb
from pydantic import Field, ValidationInfo, field_validator

from truecount.adapters.base import (
    RECORD,
    RECORDS_TABLE,
    Adapter,
    AdapterOptions,
    FileKind,
    Sniff,
    read_records,
    sniff,
)
from truecount.adapters.servicenow_fields import (
    AUTO_FORMATS,
    CSV_REQUIRED,
    FIELD_NAMES,
    csv_records_sql,
    field_names,
    header_fields,
    strptime_format,
)
from truecount.adapters.servicenow_sql import NO_COUNTER, TIE_BY_FILE, events_sql, records_sql
from truecount.ingest.plan import PROBLEM
from truecount.ingest.source import FileFormat

#: The incident state choice list of a base instance (code -> label).
DEFAULT_STATES: Final[dict[str, str]] = {
    "1": "New",
    "2": "In Progress",
    "3": "On Hold",
    "6": "Resolved",
    "7": "Closed",
    "8": "Canceled",
}

#: Columns (or record fields) without which a file is not an incident update log.
REQUIRED_FIELDS: Final[frozenset[str]] = frozenset(
    {"number", "state", "sys_updated_on", "sys_mod_count"}
)


class ServiceNowOptions(AdapterOptions):
    """The choices an incident log forces: who is the AI, which states close, which clock."""

    ai_users: tuple[str, ...] = Field(
        default=("virtual.agent", "now.assist", "Virtual Agent", "Now Assist"),
        description="Identities that count as the AI (actor 'ai'), compared without case: "
        "user names as in sys_updated_by, and the names or sys_ids that assigned_to shows "
        "for them. The default is an assumption: list your instance's own AI users.",
    )
    system_users: tuple[str, ...] = Field(
        default=("system",),
        description="sys_updated_by values of scheduled jobs and integrations (actor "
        "'system'), e.g. the auto-close job; every other updater is 'human'.",
    )
    states: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_STATES),
        description="The incident state choice list, code -> label (JSON). Rows with a state "
        "that is neither a code nor a label here are quarantined.",
    )
    closed_states: tuple[str, ...] = Field(
        default=("6", "7"),
        description="States (codes or labels) that mean closed: entering one from another "
        "state is a 'closed' event, leaving one for another state a 'reopened' event. "
        "Default Resolved and Closed, so Resolved -> Closed is one close.",
    )
    timezone: str = Field(
        default="UTC",
        description="IANA zone of sys_updated_on / opened_at written as plain text (CSV "
        "exports and Table API records read with sysparm_display_value=true use the "
        "exporting user's zone). Table API {value, display_value} objects are read from "
        "'value', and plain API records whose state is a code (sysparm_display_value=false) "
        "hold internal values: both are always UTC and never moved.",
    )
    time_format: str | None = Field(
        default=None,
        description="The exporting user's date and time format as ServiceNow writes it (Java "
        "pattern, e.g. 'dd/MM/yyyy HH:mm:ss', 'MM-dd-yyyy hh:mm:ss a'). Unset: "
        "yyyy-MM-dd HH:mm:ss, or a day/month order the file itself proves (a day above 12); "
        "a date that reads both ways is quarantined, never guessed.",
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="CSV column -> incident field (JSON), for headers the built-in names "
        "(field names, English labels such as 'Updated' or 'Updates', legacy names such as "
        '\'incident_state\') do not cover, e.g. {"Last change": "sys_updated_on"}.',
    )
    null_markers: tuple[str, ...] = Field(
        default=("?",),
        description="CSV values that mean 'no value' besides an empty cell.",
    )
    tie_order: Literal["counter", "file", "reverse_file"] = Field(
        default="counter",
        description="How to order an incident's updates in the same second when the export "
        "has no update counter: 'counter' quarantines them (the order cannot be known), "
        "'file' takes the file's order (oldest first), 'reverse_file' the reverse (a list "
        "sorted newest first).",
    )

    @field_validator("ai_users", "system_users", "closed_states", "null_markers", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """``--option ai_users=a,b`` as well as a JSON list: names never contain commas."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, int):
            return (str(value),)  # --option closed_states=7 parses as a JSON number
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(f"unknown time zone '{value}' (use an IANA name)") from exc
        return value

    @field_validator("time_format")
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        if value is not None:
            strptime_format(value)  # raises ValueError with what would be valid
        return value

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted({f for f in value.values() if f not in FIELD_NAMES})
        if unknown:
            raise ValueError(
                f"{unknown} not a field this source reads (fields: {', '.join(FIELD_NAMES)})"
            )
        return value

    @field_validator("states")
    @classmethod
    def _usable_states(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("the state list is empty")
        labels = [label.strip().lower() for label in value.values()]
        if len(set(labels)) != len(labels):
            raise ValueError("two states share a label, so a label could not be read back")
        return value

    @field_validator("closed_states")
    @classmethod
    def _closed_states_known(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        states = info.data.get("states")
        if states is None:  # the state list itself was refused; that error is reported
            return value
        unknown = [s for s in value if state_code(states, s) is None]
        if unknown:
            raise ValueError(f"{unknown} not in the state list ({state_listing(states)})")
        return value


def state_code(states: Mapping[str, str], given: str) -> str | None:
    """The code of a state given as a code or a label (labels compared without case)."""
    if given in states:
        return given
    wanted = given.strip().lower()
    return next((code for code, label in states.items() if label.strip().lower() == wanted), None)


def state_listing(states: Mapping[str, str]) -> str:
    """``1 New, 2 In Progress, ...`` for error messages."""
    return ", ".join(f"{code} {label}" for code, label in states.items())


class ServiceNowAdapter(Adapter):
    """Incident update logs from a ServiceNow instance: CSV exports and Table API pages."""

    name: ClassVar[str] = "servicenow"
    title: ClassVar[str] = "ServiceNow"
    options_model: ClassVar[type[AdapterOptions]] = ServiceNowOptions
    kinds: ClassVar[Mapping[str, FileKind]] = {
        "incident_updates": FileKind(
            "incident_updates",
            "incident update log as CSV (or Parquet), a scheduled or list export: one row per "
            "update with the number, state and updated time (field names such as "
            "sys_updated_on, or labels such as Updated), and the update counter if exported",
        ),
        "incident_updates_api": FileKind(
            "incident_updates_api",
            'Table API responses of incident updates: pages {"result": [...]} (.json, or '
            '.jsonl one page or record a line) or single records {"result": {...}}, plain '
            "values or sysparm_display_value=all objects",
            array_key="result",
        ),
    }

    def recognize(self, sniff: Sniff) -> str | None:
        if sniff.format in (FileFormat.csv, FileFormat.parquet):
            found = header_fields(sniff.keys)
            return "incident_updates" if found >= set(CSV_REQUIRED) else None
        if "result" in sniff.array_keys:
            # "result" is the Table API's envelope for every table: the records' own fields
            # tell an incident log from, say, a page of users. An empty page is an empty log.
            if not sniff.element_keys or sniff.element_keys >= REQUIRED_FIELDS:
                return "incident_updates_api"
            return None
        if "result" in sniff.keys and _single_record_keys(sniff) >= REQUIRED_FIELDS:
            return "incident_updates_api"  # GET /api/now/table/incident/<sys_id>
        return "incident_updates_api" if sniff.record_keys >= REQUIRED_FIELDS else None

    def events_sql(self, kind: str, options: AdapterOptions) -> tuple[str, dict[str, object]]:
        assert isinstance(options, ServiceNowOptions)
        closed = [state_code(options.states, s) for s in options.closed_states]
        given = strptime_format(options.time_format) if options.time_format else None
        params: dict[str, object] = {
            "ai_users": [u.strip().lower() for u in options.ai_users],
            "system_users": [u.strip().lower() for u in options.system_users],
            "closed_codes": [c for c in closed if c is not None],
            "state_codes": list(options.states),
            "state_names": list(options.states.values()),
            "state_keys": [label.strip().lower() for label in options.states.values()],
            "state_list": state_listing(options.states),
            "timezone": options.timezone,
            "ymd_formats": AUTO_FORMATS["ymd"],
            "dmy_formats": AUTO_FORMATS["dmy"],
            "mdy_formats": AUTO_FORMATS["mdy"],
            # The given format, and the internal one (which no other format can be read as)
            # for Table API plain values ingested in the same command.
            "given_formats": [given, *AUTO_FORMATS["ymd"]] if given else AUTO_FORMATS["ymd"],
            "has_format": given is not None,
            "format_text": options.time_format or "yyyy-MM-dd HH:mm:ss",
            "tie_order": options.tie_order,
            "no_counter": NO_COUNTER,
            "tie_by_file": TIE_BY_FILE,
        }
        if kind == "incident_updates":
            params["field_names"] = field_names(options.columns)
            params["null_markers"] = [m.strip() for m in options.null_markers]
        return events_sql(records_sql(csv_records_sql())[kind]), params


def _single_record_keys(found: Sniff) -> frozenset[str]:
    """The fields of a single-record response ``{"result": {...}}``: the sniff sees only the
    envelope, and "result" is also the Aggregate API's envelope, so the record's own fields
    decide. Read on a connection of its own: recognition has none."""
    con = duckdb.connect()
    try:
        seen = sniff(con, found.path)
        read_records(con, found.path, seen.format, "result")
        rows = con.execute(
            f"""
            SELECT DISTINCT unnest(json_keys(j)) FROM (
                SELECT {RECORD} -> '$.result' AS j FROM {RECORDS_TABLE}
                WHERE {PROBLEM} IS NULL AND json_type({RECORD}, '$.result') = 'OBJECT'
                LIMIT 50
            )
            """  # noqa: S608 - fixed text
        ).fetchall()
    finally:
        con.close()
    return frozenset(str(r[0]) for r in rows)


ADAPTER: Final[ServiceNowAdapter] = ServiceNowAdapter()
