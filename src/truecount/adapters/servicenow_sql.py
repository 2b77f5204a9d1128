"""The one SELECT that turns ServiceNow incident update rows into events.

Both shapes (CSV / Parquet list exports and Table API records) are first laid out as one JSON
object per update row under the fields' own names (``rec``: ``__tc_row``, ``j``, ``raw``), so a
single query derives every event. The steps, as CTEs:

- ``fields`` / ``readings``: each field's value (a Table API ``{display_value, value}`` object
  or plain text), and every reading of the two time fields (year first, day first, month
  first, the ``time_format`` given);
- ``styled``: what the whole file shows, as window aggregates: whether it has year-first times,
  whether a day above 12 proves a day-first or month-first order, and whether it has an
  update counter at all;
- ``checked``: one problem per unusable row (naming the export's column);
- ``occurrences`` / ``firsts`` / ``history``: repeated updates (copies that agree are
  duplicates; copies of one counter that disagree are all set aside, whatever their order),
  same-second ties without a counter, and each incident's previous row (ordered by time,
  then counter);
- ``events_base`` and one SELECT per event type.

Field names below are this module's constants, never user text; every option value, name
list and format is a query parameter.
"""

from __future__ import annotations

from typing import Final

#: List parameters, typed so that an empty list still compares with text.
_AI_USERS: Final[str] = "CAST($ai_users AS VARCHAR[])"
_SYSTEM_USERS: Final[str] = "CAST($system_users AS VARCHAR[])"
_CLOSED: Final[str] = "CAST($closed_codes AS VARCHAR[])"
_CODES: Final[str] = "CAST($state_codes AS VARCHAR[])"
_NAMES: Final[str] = "CAST($state_names AS VARCHAR[])"
_KEYS: Final[str] = "CAST($state_keys AS VARCHAR[])"
_YMD: Final[str] = "CAST($ymd_formats AS VARCHAR[])"
_DMY: Final[str] = "CAST($dmy_formats AS VARCHAR[])"
_MDY: Final[str] = "CAST($mdy_formats AS VARCHAR[])"
_GIVEN: Final[str] = "CAST($given_formats AS VARCHAR[])"

#: Event numbers within one update row (``__tc_sub``).
_SUBS: Final[dict[str, int]] = {
    "status_changed": 0,
    "closed": 1,
    "reopened": 2,
    "created": 3,
    "assigned": 4,
    "escalated": 5,
}

#: What a row without an update counter cannot show, kept in ``attrs.caveat`` of its events
#: and reported by ``truecount check``.
NO_COUNTER: Final[str] = (
    "ServiceNow export without an update counter (sys_mod_count / Updates): updates missing "
    "from the export cannot be detected, updates in the same second cannot be ordered, and an "
    "incident's first row gives no closed or assigned event (it may not be its first update)"
)
TIE_BY_FILE: Final[str] = (
    "; updates of this incident in the same second were ordered by their place in the file "
    "(option tie_order)"
)


# --------------------------------------------------------------------------- fragments


def _is_object(field: str) -> str:
    """True when the Table API gave the field as a {display_value, value} object."""
    return f"coalesce(json_type(j, '$.{field}') = 'OBJECT', false)"


def _api_internal() -> str:
    """True for a Table API record of plain internal values (``sysparm_display_value=false``).

    Such a record writes the state as its code (``6``), references as sys_ids and times in
    UTC; with ``sysparm_display_value=true`` the same fields are labels (``Resolved``) and the
    user's local time. The state's form tells the two apart, record by record.
    """
    return (
        "(api AND NOT coalesce(json_type(j, '$.state') = 'OBJECT', false) "
        "AND coalesce(regexp_full_match(trim(j ->> '$.state'), '[0-9]+'), false))"
    )


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


def _column(field: str) -> str:
    """The export's own name of the column a field came from (a list export's label)."""
    return f"coalesce(j -> '$.__cols' ->> '$.{field}', '{field}')"


def _readings(p: str, field: str) -> str:
    """Every reading of one time field's text (prefix ``p``: u updated, o opened)."""
    # A time inside a {display_value, value} object, or a plain time of a Table API record
    # read with sysparm_display_value=false (its state a code), is the internal format in
    # UTC: read as such, never in the list exporter's $timezone (:func:`_api_internal`).
    return f"""{_value(field)} AS {p}_raw, ({_is_object(field)} OR {_api_internal()}) AS {p}_obj,
               try_strptime({_value(field)}, {_YMD}) AS {p}_ymd,
               try_strptime({_value(field)}, {_DMY}) AS {p}_dmy,
               try_strptime({_value(field)}, {_MDY}) AS {p}_mdy,
               try_strptime({_value(field)}, {_GIVEN}) AS {p}_given"""


def _only(p: str, one: str, other: str) -> str:
    """Plain text that reads one way only (a day or month above 12 shows the order)."""
    return f"(NOT {p}_obj AND {p}_ymd IS NULL AND {p}_{one} IS NOT NULL AND {p}_{other} IS NULL)"


def _utc(p: str) -> str:
    """Naive UTC. Objects' values are UTC in the internal format. Plain text is local time in
    $timezone: in the given format; else year first; else in the order the file proves; a
    text whose two readings differ with nothing to prove the order stays NULL (a problem)."""
    local = f"""CASE WHEN $has_format THEN {p}_given
                     WHEN {p}_ymd IS NOT NULL THEN {p}_ymd
                     WHEN file_ymd OR (day_first AND month_first) THEN NULL
                     WHEN day_first THEN {p}_dmy
                     WHEN month_first THEN {p}_mdy
                     WHEN {p}_dmy = {p}_mdy THEN {p}_dmy END"""
    return f"CASE WHEN {p}_obj THEN {p}_ymd ELSE timezone('UTC', timezone($timezone, {local})) END"


def _time_problem(p: str, field: str, what: str) -> str:
    """Why a time did not read: ambiguous day/month, mixed orders, or another format."""
    col = _column(field)
    both = (
        f"'reads as ' || strftime({p}_dmy, '%Y-%m-%d') || ' (day first) or as ' "
        f"|| strftime({p}_mdy, '%Y-%m-%d') || ' (month first)'"
    )
    return f"""CASE
                WHEN NOT $has_format AND NOT {p}_obj AND NOT file_ymd
                     AND day_first AND month_first THEN
                    'incident ' || number || ': {what} ''' || {p}_raw || ''' in column '''
                    || {col} || ''' cannot be read: this file has dates that only read day '
                    || 'first and others that only read month first, so its format cannot be '
                    || 'told; set the exporting user''s format with --option time_format=... (e.g. '
                    || 'dd/MM/yyyy HH:mm:ss)'
                WHEN NOT $has_format AND NOT {p}_obj AND NOT file_ymd AND {p}_dmy IS NOT NULL
                     AND {p}_mdy IS NOT NULL THEN
                    'incident ' || number || ': ambiguous {what} ''' || {p}_raw
                    || ''' in column ''' || {col} || ''': it ' || {both}
                    || ', and no date in this file has a day above 12 to tell; set the '
                    || 'exporting user''s format with --option time_format=... (e.g. '
                    || 'dd/MM/yyyy HH:mm:ss or MM/dd/yyyy HH:mm:ss)'
                ELSE
                    'incident ' || number || ': unparseable {what} ''' || {p}_raw
                    || ''' in column ''' || {col} || ''' (expected ' || $format_text
                    || CASE WHEN $has_format THEN '' WHEN file_ymd
                       THEN ' like the other times of this file' ELSE '' END
                    || '; set --option time_format=... to the exporting user''s format)'
                END"""


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


def records_sql(csv: str) -> dict[str, str]:
    """Per kind, the SELECT giving (__tc_row, j, raw); ``csv`` is the list-export renaming."""
    return {
        "incident_updates": f"""
            SELECT n.__tc_row, n.j, to_json(r) AS raw, false AS api
            FROM ({csv}) AS n JOIN __tc_records AS r USING (__tc_row)
        """,  # noqa: S608 - this package's text
        # A single-record response (GET .../table/incident/<sys_id>) holds its record as
        # the object under "result".
        "incident_updates_api": """
            SELECT __tc_row,
                   CASE WHEN json_type(__tc_record, '$.result') = 'OBJECT'
                        THEN __tc_record -> '$.result' ELSE __tc_record END AS j,
                   __tc_record AS raw, true AS api
            FROM __tc_records
        """,
    }


_ORIGIN: Final[str] = """json_object(
    'entity_id', 'number', 'ts', 'sys_updated_on', 'actor', 'sys_updated_by',
    'seq', 'sys_mod_count', 'attrs.to', 'state', 'attrs.from', 'state (previous update)',
    'attrs.channel', 'contact_type')"""


_CREATED_ATTRS: Final[str] = """'caller', caller,
                   'actor_unknown', CASE WHEN created_by IS NULL
                       AND mod_count IS DISTINCT FROM 0 THEN
                       'who opened the incident is not in the export: no sys_created_by '
                       || '(Created by) column, and its first row here is not update 0'
                   END,
                   'origin', json_object(
                   'entity_id', 'number',
                   'ts', CASE WHEN opened_ts IS NOT NULL THEN 'opened_at'
                              ELSE 'sys_updated_on' END,
                   'actor', CASE WHEN created_by IS NOT NULL THEN 'sys_created_by'
                                 ELSE 'sys_updated_by' END,
                   'attrs.channel', 'contact_type', 'attrs.caller', 'caller_id')"""

_ASSIGN_ORIGIN: Final[str] = """json_object('entity_id', 'number', 'ts', 'sys_updated_on',
                       'actor', 'sys_updated_by', 'attrs.assignee', 'assigned_to',
                       'attrs.assignment_group', 'assignment_group')"""


# --------------------------------------------------------------------------- the query


def events_sql(records: str) -> str:
    """The one SELECT for both shapes; ``records`` yields (__tc_row, j JSON, raw JSON)."""
    prefix = "'servicenow:incident:' || number || ':'"

    def pick(kind: str, event_id: str, ts: str, actor: str, attrs: str, where: str) -> str:
        return f"""
        SELECT {event_id} AS event_id, entity_id, {ts} AS ts, '{kind}' AS type,
               {actor} AS actor, CAST(NULL AS DOUBLE) AS value,
               json_merge_patch('{{}}', json_object(
                   'channel', channel, 'sys_id', sys_id, 'updated_by', updated_by,
                   'missing_updates', CASE WHEN missing_updates > 0 THEN missing_updates END,
                   'caveat', caveat,
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
            # first update: a later first row (or one without a counter to tell) does not
            # say when the close happened.
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
    update = "coalesce(CAST(mod_count AS VARCHAR), 'at ' || strftime(ts, '%Y-%m-%d %H:%M:%S'))"
    return f"""
    WITH rec AS ({records}),
    readings AS (
        SELECT __tc_row, j, raw, api,
               {_value("number")} AS number,
               {_value("sys_id")} AS sys_id,
               {_value("state")} AS state_raw,
               {_shown("state")} AS state_shown,
               {_readings("u", "sys_updated_on")},
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
               {_readings("o", "opened_at")},
               CAST(j AS VARCHAR) AS content
        FROM rec
    ),
    styled AS (
        -- What the whole file shows: one user's format and zone wrote all its times.
        SELECT *,
               coalesce(bool_or((NOT u_obj AND u_ymd IS NOT NULL)
                                OR (NOT o_obj AND o_ymd IS NOT NULL)) OVER (), false)
                   AS file_ymd,
               coalesce(bool_or({_only("u", "dmy", "mdy")} OR {_only("o", "dmy", "mdy")})
                        OVER (), false) AS day_first,
               coalesce(bool_or({_only("u", "mdy", "dmy")} OR {_only("o", "mdy", "dmy")})
                        OVER (), false) AS month_first,
               coalesce(bool_or(mod_raw IS NOT NULL) OVER (), false) AS has_counter
        FROM readings
    ),
    coded AS (
        SELECT *, {_utc("u")} AS ts, {_utc("o")} AS opened_ts,
               coalesce({_state_code("state_raw")}, {_state_code("state_shown")})
                  AS state_code
        FROM styled
    ),
    checked AS (
        SELECT *,
            CASE
            WHEN number IS NULL THEN
                'update row: missing number (the incident number, e.g. INC0010001) in column '''
                || {_column("number")} || ''''
            WHEN u_raw IS NULL THEN
                'incident ' || number || ': missing sys_updated_on (the time of the update) '
                || 'in column ''' || {_column("sys_updated_on")} || ''''
            WHEN ts IS NULL THEN {_time_problem("u", "sys_updated_on", "sys_updated_on")}
            WHEN mod_raw IS NULL AND has_counter THEN
                'incident ' || number || ': missing sys_mod_count (the update counter that '
                || 'orders updates made in the same second) in column '''
                || {_column("sys_mod_count")} || ''''
            WHEN mod_raw IS NOT NULL AND (mod_count IS NULL OR mod_count < 0) THEN
                'incident ' || number || ': sys_mod_count ''' || mod_raw
                || ''' is not a whole number >= 0'
            WHEN state_raw IS NULL THEN
                'incident ' || number || ' update ' || {update} || ': missing state'
            WHEN state_code IS NULL THEN
                'incident ' || number || ' update ' || {update} || ': unknown state '''
                || state_raw || ''' (incident states: ' || $state_list
                || '; list custom states with --option states=...)'
            WHEN o_raw IS NOT NULL AND opened_ts IS NULL THEN
                {_time_problem("o", "opened_at", "opened_at")}
            END AS problem,
            CASE
            WHEN number IS NULL THEN {_column("number")}
            WHEN u_raw IS NULL OR ts IS NULL THEN {_column("sys_updated_on")}
            WHEN (mod_raw IS NULL AND has_counter)
                 OR (mod_raw IS NOT NULL AND (mod_count IS NULL OR mod_count < 0))
                THEN {_column("sys_mod_count")}
            WHEN state_raw IS NULL OR state_code IS NULL THEN {_column("state")}
            WHEN o_raw IS NOT NULL AND opened_ts IS NULL THEN {_column("opened_at")}
            END AS problem_column
        FROM coded
    ),
    occurrences AS (
        -- The same update may appear twice: overlapping pages repeat it unchanged (same
        -- events, counted as duplicates). Copies that disagree have nothing to say which is
        -- current, so every copy is set aside, whatever their order. An update is its
        -- counter; without one, its time and its whole content.
        SELECT *,
               row_number() OVER same_update AS occurrence,
               count(DISTINCT content) OVER (PARTITION BY number, update_key) AS versions,
               string_agg(CAST(__tc_row AS VARCHAR), ', ' ORDER BY __tc_row)
                   OVER (PARTITION BY number, update_key) AS copy_rows
        FROM (SELECT *, coalesce('n' || CAST(mod_count AS VARCHAR),
                                 't' || CAST(ts AS VARCHAR) || md5(content)) AS update_key
              FROM checked WHERE problem IS NULL)
        WINDOW same_update AS (PARTITION BY number, update_key ORDER BY __tc_row)
    ),
    firsts AS (
        -- Without a counter, updates of one incident in the same second have no known order:
        -- set aside unless tie_order says how the file lists them.
        SELECT number, update_key, mod_count, ts, __tc_row, state_code, assigned_to,
               assigned_to_value, assignment_group,
               count(*) OVER same_time AS same_time,
               row_number() OVER (PARTITION BY number, ts ORDER BY
                   CASE WHEN $tie_order = 'reverse_file' THEN -__tc_row ELSE __tc_row END)
                   AS tie_rank,
               mod_count IS NULL AND count(*) OVER same_time > 1 AND $tie_order = 'counter'
                   AS tied_out
        FROM occurrences WHERE occurrence = 1 AND versions = 1
        WINDOW same_time AS (PARTITION BY number, ts)
    ),
    history AS MATERIALIZED (
        SELECT number, update_key, same_time, tie_rank,
               lag(state_code) OVER incident AS prev_code,
               lag(mod_count) OVER incident AS prev_mod,
               lag(assigned_to) OVER incident AS prev_assigned_to,
               lag(assigned_to_value) OVER incident AS prev_assigned_value,
               lag(assignment_group) OVER incident AS prev_group,
               row_number() OVER incident AS nth
        FROM firsts WHERE NOT tied_out
        WINDOW incident AS (PARTITION BY number ORDER BY ts, mod_count, tie_rank)
    ),
    events_base AS MATERIALIZED (
        SELECT o.*, h.prev_code, h.prev_assigned_to, h.prev_assigned_value, h.prev_group,
               h.nth,
               CASE WHEN h.nth = 1 THEN o.mod_count ELSE o.mod_count - h.prev_mod - 1 END
                   AS missing_updates,
               {prefix} || coalesce(CAST(o.mod_count AS VARCHAR),
                   'at:' || strftime(o.ts, '%Y-%m-%dT%H:%M:%S')
                   || CASE WHEN h.same_time > 1 THEN '#' || h.tie_rank ELSE '' END) AS row_id,
               o.number AS entity_id,
               {_actor("o.updated_by")} AS actor,
               CASE WHEN o.mod_count IS NULL THEN $no_counter
                   || CASE WHEN h.same_time > 1 THEN $tie_by_file ELSE '' END END AS caveat
        FROM occurrences AS o JOIN history AS h USING (number, update_key)
    )
    {derived}
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           __tc_row, 0, problem, problem_column, raw
    FROM checked WHERE problem IS NOT NULL
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           __tc_row, 0,
           'incident ' || number || ': update counter sys_mod_count ' || mod_count
           || ' appears with different values at records ' || copy_rows
           || ', and nothing tells which copy is current; every copy is set aside: '
           || 're-export the incident''s history',
           {_column("sys_mod_count")}, raw
    FROM occurrences WHERE versions > 1
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           o.__tc_row, 0,
           'incident ' || o.number || ': ' || f.same_time || ' updates at '
           || strftime(o.ts, '%Y-%m-%d %H:%M:%S') || ' and no update counter to order them; '
           || 'export the Updates (sys_mod_count) column, or say how the file lists them with '
           || '--option tie_order=file (oldest first) or '
           || '--option tie_order=reverse_file (newest first)',
           {_column("sys_updated_on")}, o.raw
    FROM occurrences AS o JOIN firsts AS f USING (number, update_key)
    WHERE f.tied_out
    """  # noqa: S608 - this module's constants; option values are parameters
