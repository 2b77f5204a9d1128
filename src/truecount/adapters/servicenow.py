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
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from typing import ClassVar, Final

from pydantic import Field, ValidationInfo, field_validator

from truecount.adapters.base import Adapter, AdapterOptions, FileKind, Sniff
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

#: How ``sys_updated_on`` / ``opened_at`` are written: the platform's internal format; the
#: ISO ``T`` form appears when exports pass through other tools.
_TS_FORMATS: Final[str] = "['%Y-%m-%d %H:%M:%S', '%Y-%m-%dT%H:%M:%S']"

#: List parameters, typed so that an empty list still compares with text.
_AI_USERS: Final[str] = "CAST($ai_users AS VARCHAR[])"
_SYSTEM_USERS: Final[str] = "CAST($system_users AS VARCHAR[])"
_CLOSED: Final[str] = "CAST($closed_codes AS VARCHAR[])"
_CODES: Final[str] = "CAST($state_codes AS VARCHAR[])"
_NAMES: Final[str] = "CAST($state_names AS VARCHAR[])"
_KEYS: Final[str] = "CAST($state_keys AS VARCHAR[])"

#: Event numbers within one update row (``__tc_sub``).
_SUBS: Final[dict[str, int]] = {
    "status_changed": 0,
    "closed": 1,
    "reopened": 2,
    "created": 3,
    "assigned": 4,
    "escalated": 5,
}


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
        "exports use the exporting user's zone). Table API {value, display_value} objects "
        "are read from 'value', which is always UTC.",
    )

    @field_validator("ai_users", "system_users", "closed_states", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """``-o ai_users=a,b`` as well as a JSON list: names never contain commas."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, int):
            return (str(value),)  # -o closed_states=7 parses as a JSON number
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone '{value}' (use an IANA name)") from exc
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


# --------------------------------------------------------------------------- SQL fragments
# Field names below are this module's constants, never user text.


def _is_object(field: str) -> str:
    """True when the Table API gave the field as a {display_value, value} object."""
    return f"coalesce(json_type(j, '$.{field}') = 'OBJECT', false)"


def _value(field: str) -> str:
    """The stored value: 'value' of an object, else the plain text; blank is NULL."""
    return (
        f"nullif(trim(CASE WHEN {_is_object(field)} THEN j -> '$.{field}' ->> '$.value' "
        f"ELSE j ->> '$.{field}' END), '')"
    )


def _shown(field: str) -> str:
    """The readable value: 'display_value' of an object (else its value), or the plain text."""
    return (
        f"coalesce(nullif(trim(CASE WHEN {_is_object(field)} THEN "
        f"j -> '$.{field}' ->> '$.display_value' END), ''), {_value(field)})"
    )


def _timestamp(raw: str, field: str) -> str:
    """Naive UTC: object values are UTC already; plain text is local time in $timezone."""
    parsed = f"try_strptime({raw}, {_TS_FORMATS})"
    return (
        f"CASE WHEN {_is_object(field)} THEN {parsed} "
        f"ELSE timezone('UTC', timezone($timezone, {parsed})) END"
    )


def _state_code(raw: str) -> str:
    return (
        f"CASE WHEN list_contains({_CODES}, {raw}) THEN {raw} "
        f"ELSE {_CODES}[list_position({_KEYS}, lower({raw}))] END"
    )


def _state_name(code: str) -> str:
    return f"{_NAMES}[list_position({_CODES}, {code})]"


def _actor(user: str) -> str:
    return (
        f"CASE WHEN {user} IS NULL THEN NULL "
        f"WHEN list_contains({_AI_USERS}, lower({user})) THEN 'ai' "
        f"WHEN list_contains({_SYSTEM_USERS}, lower({user})) THEN 'system' ELSE 'human' END"
    )


def _is_ai(shown: str, value: str) -> str:
    return (
        f"(list_contains({_AI_USERS}, lower({shown})) "
        f"OR list_contains({_AI_USERS}, lower({value})))"
    )


_RECORDS: Final[dict[str, str]] = {
    # CSV / Parquet: the row's columns as one JSON object, so both shapes share one query and
    # an optional column the export left out reads as NULL instead of failing the query.
    "incident_updates": """
        SELECT __tc_row,
               CAST(json_merge_patch(to_json(r), '{"__tc_row": null, "__tc_problem": null}')
                    AS JSON) AS j
        FROM __tc_records AS r
    """,
    "incident_updates_api": "SELECT __tc_row, __tc_record AS j FROM __tc_records",
}

_ORIGIN: Final[str] = """json_object(
    'entity_id', 'number', 'ts', 'sys_updated_on', 'actor', 'sys_updated_by',
    'seq', 'sys_mod_count', 'attrs.to', 'state', 'attrs.from', 'state (previous update)',
    'attrs.channel', 'contact_type')"""


_CREATED_ATTRS: Final[str] = """'caller', caller, 'origin', json_object(
                   'entity_id', 'number',
                   'ts', CASE WHEN opened_ts IS NOT NULL THEN 'opened_at'
                              ELSE 'sys_updated_on' END,
                   'actor', CASE WHEN created_by IS NOT NULL THEN 'sys_created_by'
                                 ELSE 'sys_updated_by' END,
                   'attrs.channel', 'contact_type', 'attrs.caller', 'caller_id')"""

_ASSIGN_ORIGIN: Final[str] = """json_object('entity_id', 'number', 'ts', 'sys_updated_on',
                       'actor', 'sys_updated_by', 'attrs.assignee', 'assigned_to',
                       'attrs.assignment_group', 'assignment_group')"""


def _events_sql(records: str) -> str:
    """The one SELECT for both shapes; ``records`` yields (__tc_row, j JSON)."""
    prefix = "'servicenow:incident:' || number || ':'"
    common = f"""{prefix} || o.mod_count AS row_id, o.number AS entity_id,
               {_actor("o.updated_by")} AS actor"""

    def pick(kind: str, event_id: str, ts: str, actor: str, attrs: str, where: str) -> str:
        return f"""
        SELECT {event_id} AS event_id, entity_id, {ts} AS ts, '{kind}' AS type,
               {actor} AS actor, CAST(NULL AS DOUBLE) AS value,
               json_merge_patch('{{}}', json_object(
                   'channel', channel, 'sys_id', sys_id, 'updated_by', updated_by,
                   'missing_updates', CASE WHEN missing_updates > 0 THEN missing_updates END,
                   {attrs})) AS attrs,
               CAST(NULL AS VARCHAR) AS source, CAST(NULL AS TIMESTAMP) AS recorded_at,
               mod_count AS seq, __tc_row, {_SUBS[kind]} AS __tc_sub,
               CAST(NULL AS VARCHAR) AS __tc_problem,
               CAST(NULL AS VARCHAR) AS __tc_problem_column, CAST(NULL AS JSON) AS __tc_raw
        FROM events_base WHERE {where}"""  # noqa: S608 - this module's constants

    transition = f"""'from', {_state_name("prev_code")}, 'to', {_state_name("state_code")},
                   'from_code', prev_code, 'to_code', state_code"""
    is_closed = f"list_contains({_CLOSED}, state_code)"
    was_closed = f"list_contains({_CLOSED}, prev_code)"
    assignee_is_ai = _is_ai("assigned_to", "assigned_to_value")
    derived = "\n    UNION ALL\n".join(
        [
            pick(
                "status_changed",
                "row_id",
                "ts",
                "actor",
                f"""{transition}, 'assigned_to', assigned_to,
                   'assignment_group', assignment_group, 'reopen_count', reopen_count,
                   'close_code', close_code, 'origin', {_ORIGIN}""",
                "true",
            ),
            # Entering a closed state. A first row closes only when it is the incident's
            # first update: a later first row does not say when the close happened.
            pick(
                "closed",
                "row_id || '/closed'",
                "ts",
                "actor",
                f"""{transition}, 'close_code', close_code, 'resolved_by', resolved_by,
                   'origin', {_ORIGIN}""",
                f"{is_closed} AND ((prev_code IS NULL AND mod_count = 0) OR NOT {was_closed})",
            ),
            pick(
                "reopened",
                "row_id || '/reopened'",
                "ts",
                "actor",
                f"{transition}, 'reopen_count', reopen_count, 'origin', {_ORIGIN}",
                f"{was_closed} AND NOT {is_closed}",
            ),
            pick(
                "created",
                f"{prefix} || 'created'",
                "coalesce(opened_ts, ts)",
                f"CASE WHEN created_by IS NOT NULL THEN {_actor('created_by')} "
                "WHEN mod_count = 0 THEN actor END",
                _CREATED_ATTRS,
                "nth = 1 AND (opened_ts IS NOT NULL OR mod_count = 0)",
            ),
            pick(
                "assigned",
                "row_id || '/assigned'",
                "ts",
                "actor",
                f"""'assignee', assigned_to, 'assignment_group', assignment_group,
                   'assignee_type', CASE WHEN {assignee_is_ai} THEN 'ai'
                       WHEN assigned_to IS NOT NULL THEN 'human' ELSE 'team' END,
                   'previous_assignee', prev_assigned_to, 'origin', {_ASSIGN_ORIGIN}""",
                # Like a close, a first row that is not the first update cannot say when
                # the assignment was made, so it gives none.
                "coalesce(assigned_to, assignment_group) IS NOT NULL AND ("
                "(nth = 1 AND mod_count = 0) OR (nth > 1 AND ("
                "assigned_to IS DISTINCT FROM prev_assigned_to "
                "OR assignment_group IS DISTINCT FROM prev_group)))",
            ),
            # The AI was the assignee and someone else is now: handed to a human or a team.
            pick(
                "escalated",
                "row_id || '/escalated'",
                "ts",
                "actor",
                f"""'from_assignee', prev_assigned_to, 'assignee', assigned_to,
                   'assignment_group', assignment_group, 'origin', {_ASSIGN_ORIGIN}""",
                f"nth > 1 AND {_is_ai('prev_assigned_to', 'prev_assigned_value')} "
                f"AND NOT coalesce({assignee_is_ai}, false) "
                "AND coalesce(assigned_to, assignment_group) IS NOT NULL",
            ),
        ]
    )
    return f"""
    WITH rec AS ({records}),
    fields AS (
        SELECT __tc_row, j,
               {_value("number")} AS number,
               {_value("sys_id")} AS sys_id,
               {_value("state")} AS state_raw,
               {_shown("state")} AS state_shown,
               {_value("sys_updated_on")} AS updated_on_raw,
               {_timestamp(_value("sys_updated_on"), "sys_updated_on")} AS ts,
               {_value("sys_mod_count")} AS mod_raw,
               TRY_CAST({_value("sys_mod_count")} AS BIGINT) AS mod_count,
               {_value("sys_updated_by")} AS updated_by,
               {_value("sys_created_by")} AS created_by,
               {_value("contact_type")} AS channel,
               {_shown("assigned_to")} AS assigned_to,
               {_value("assigned_to")} AS assigned_to_value,
               {_shown("assignment_group")} AS assignment_group,
               {_value("close_code")} AS close_code,
               {_shown("resolved_by")} AS resolved_by,
               {_shown("caller_id")} AS caller,
               TRY_CAST({_value("reopen_count")} AS BIGINT) AS reopen_count,
               {_value("opened_at")} AS opened_raw,
               {_timestamp(_value("opened_at"), "opened_at")} AS opened_ts,
               CAST(j AS VARCHAR) AS content
        FROM rec
    ),
    coded AS (
        SELECT *, coalesce({_state_code("state_raw")}, {_state_code("state_shown")})
                  AS state_code
        FROM fields
    ),
    checked AS (
        SELECT *,
            CASE
            WHEN number IS NULL THEN
                'update row: missing number (the incident number, e.g. INC0010001)'
            WHEN updated_on_raw IS NULL THEN
                'incident ' || number || ': missing sys_updated_on (the time of the update)'
            WHEN ts IS NULL THEN
                'incident ' || number || ': unparseable sys_updated_on ''' || updated_on_raw
                || ''' (expected YYYY-MM-DD HH:MM:SS)'
            WHEN mod_raw IS NULL THEN
                'incident ' || number || ': missing sys_mod_count (the update counter that '
                || 'orders updates made in the same second)'
            WHEN mod_count IS NULL OR mod_count < 0 THEN
                'incident ' || number || ': sys_mod_count ''' || mod_raw
                || ''' is not a whole number >= 0'
            WHEN state_raw IS NULL THEN
                'incident ' || number || ' update ' || mod_count || ': missing state'
            WHEN state_code IS NULL THEN
                'incident ' || number || ' update ' || mod_count || ': unknown state '''
                || state_raw || ''' (incident states: ' || $state_list
                || '; list custom states with -o states=...)'
            WHEN opened_raw IS NOT NULL AND opened_ts IS NULL THEN
                'incident ' || number || ': unparseable opened_at ''' || opened_raw
                || ''' (expected YYYY-MM-DD HH:MM:SS)'
            END AS problem,
            CASE
            WHEN number IS NULL THEN 'number'
            WHEN updated_on_raw IS NULL OR ts IS NULL THEN 'sys_updated_on'
            WHEN mod_raw IS NULL OR mod_count IS NULL OR mod_count < 0 THEN 'sys_mod_count'
            WHEN state_raw IS NULL OR state_code IS NULL THEN 'state'
            WHEN opened_raw IS NOT NULL AND opened_ts IS NULL THEN 'opened_at'
            END AS problem_column
        FROM coded
    ),
    occurrences AS (
        -- The same update (incident, counter) may appear twice: overlapping pages repeat it
        -- unchanged (same events, counted as duplicates), a conflicting copy is set aside.
        SELECT *,
               row_number() OVER same_update AS occurrence,
               first_value(content) OVER same_update AS first_content,
               first_value(__tc_row) OVER same_update AS first_row
        FROM checked WHERE problem IS NULL
        WINDOW same_update AS (PARTITION BY number, mod_count ORDER BY __tc_row)
    ),
    history AS MATERIALIZED (
        SELECT number, mod_count,
               lag(state_code) OVER incident AS prev_code,
               lag(mod_count) OVER incident AS prev_mod,
               lag(assigned_to) OVER incident AS prev_assigned_to,
               lag(assigned_to_value) OVER incident AS prev_assigned_value,
               lag(assignment_group) OVER incident AS prev_group,
               row_number() OVER incident AS nth
        FROM occurrences WHERE occurrence = 1
        WINDOW incident AS (PARTITION BY number ORDER BY ts, mod_count, __tc_row)
    ),
    events_base AS MATERIALIZED (
        SELECT o.*, h.prev_code, h.prev_assigned_to, h.prev_assigned_value, h.prev_group,
               h.nth,
               CASE WHEN h.nth = 1 THEN o.mod_count ELSE o.mod_count - h.prev_mod - 1 END
                   AS missing_updates,
               {common}
        FROM occurrences AS o JOIN history AS h USING (number, mod_count)
        WHERE o.occurrence = 1 OR o.content = o.first_content
    )
    {derived}
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           __tc_row, 0, problem, problem_column, j
    FROM checked WHERE problem IS NOT NULL
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           __tc_row, 0,
           'incident ' || number || ': update counter sys_mod_count ' || mod_count
           || ' appears again with different values (first at record ' || first_row
           || '); the later copy is set aside: re-export the incident''s history',
           'sys_mod_count', j
    FROM occurrences WHERE occurrence > 1 AND content <> first_content
    """  # noqa: S608 - this module's constants; option values are parameters


class ServiceNowAdapter(Adapter):
    """Incident update logs from a ServiceNow instance: CSV exports and Table API pages."""

    name: ClassVar[str] = "servicenow"
    title: ClassVar[str] = "ServiceNow"
    options_model: ClassVar[type[AdapterOptions]] = ServiceNowOptions
    kinds: ClassVar[Mapping[str, FileKind]] = {
        "incident_updates": FileKind(
            "incident_updates",
            "incident update log as CSV (or Parquet): one row per update with number, state, "
            "sys_updated_on, sys_mod_count, sys_updated_by",
        ),
        "incident_updates_api": FileKind(
            "incident_updates_api",
            'Table API pages {"result": [...]} of incident updates (.json, or .jsonl one page '
            "or record a line), plain values or sysparm_display_value=all objects",
            array_key="result",
        ),
    }

    def recognize(self, sniff: Sniff) -> str | None:
        if sniff.format in (FileFormat.csv, FileFormat.parquet):
            return "incident_updates" if sniff.keys >= REQUIRED_FIELDS else None
        if "result" in sniff.array_keys:
            # "result" is the Table API's envelope for every table: the records' own fields
            # tell an incident log from, say, a page of users. An empty page is an empty log.
            if not sniff.element_keys or sniff.element_keys >= REQUIRED_FIELDS:
                return "incident_updates_api"
            return None
        return "incident_updates_api" if sniff.record_keys >= REQUIRED_FIELDS else None

    def events_sql(self, kind: str, options: AdapterOptions) -> tuple[str, dict[str, object]]:
        assert isinstance(options, ServiceNowOptions)
        closed = [state_code(options.states, s) for s in options.closed_states]
        return _events_sql(_RECORDS[kind]), {
            "ai_users": [u.strip().lower() for u in options.ai_users],
            "system_users": [u.strip().lower() for u in options.system_users],
            "closed_codes": [c for c in closed if c is not None],
            "state_codes": list(options.states),
            "state_names": list(options.states.values()),
            "state_keys": [label.strip().lower() for label in options.states.values()],
            "state_list": state_listing(options.states),
            "timezone": options.timezone,
        }


ADAPTER: Final[ServiceNowAdapter] = ServiceNowAdapter()
