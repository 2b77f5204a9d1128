"""Intercom conversations: one conversation object in, its lifecycle as canonical events out.

The record is the conversation as ``GET /conversations/{id}`` returns it, saved one per line
(JSON Lines), as a JSON array, or wrapped in the list / search pages
(``{"type": "conversation.list", "conversations": [...], "pages": {...}}``). Its
``conversation_parts`` become one event each (a message, a close, an assignment...), plus the
conversation-level facts: the ``created`` event, the teammate rating, the AI agent's rating and
the AI agent's own ``resolution_state``. See ``docs/sources/intercom.md`` for the mapping.

List and search responses carry no parts, so a file of them is its own kind,
``conversation_summaries``, which needs the by-id ``conversations``: alone it cannot show a
single message, close or reopen, and ingest says so instead of loading a picture that looks
complete.

Three things in an Intercom export are choices rather than facts, so they are options, recorded
with every file ingested:

* who counts as the AI: parts flagged ``from_ai_agent`` / ``is_ai_answer``, ``bot`` authors, and
  admins the buyer names (a third-party AI posting as a teammate);
* which API generation the export comes from: ``ai_agent.resolution_state`` changed its values
  in 2.15, so a value is checked against the version the buyer says was used, and a value of the
  other generation is quarantined with a reason naming the version that has it;
* which ratings become ``rated`` events (the teammate survey, the AI agent's, or both).

Reopens are read from the parts: a close followed by an ``open`` / ``assign_and_reopen`` part or
by the customer writing again. ``statistics.count_reopens`` has no timestamps, so it is kept on
the ``created`` event for cross-checking, never used as an event. The API returns at most 500
parts; a conversation with fewer parts than ``conversation_parts.total_count`` is flagged on
every one of its events (or quarantined, by option), never passed off as complete.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar, Final, Literal

from pydantic import Field, field_validator

from truecount.adapters.base import Adapter, AdapterOptions, FileKind, Sniff
from truecount.ingest.source import FileFormat

#: ``ai_agent.resolution_state`` values per API generation (vendor-exports.md §2.1).
STATES_BOTH: Final[tuple[str, ...]] = ("assumed_resolution", "confirmed_resolution")
STATES_2_14: Final[tuple[str, ...]] = (*STATES_BOTH, "routed_to_team", "abandoned")
STATES_2_15: Final[tuple[str, ...]] = (
    *STATES_BOTH,
    "escalated",
    "negative_feedback",
    "procedure_handoff",
)
#: The workspace custom attribute some exports carry instead of ``ai_agent.resolution_state``.
CUSTOM_STATE_ATTRIBUTE: Final[str] = "Fin AI Agent resolution state"
CUSTOM_STATES: Final[tuple[str, ...]] = ("Assumed Resolution", "Confirmed Resolution", "Escalated")
#: Author types of a conversation part or source (contacts are user, lead or contact).
AUTHOR_TYPES: Final[tuple[str, ...]] = ("admin", "bot", "team", "user", "lead", "contact")
ASSIGNEE_TYPES: Final[tuple[str, ...]] = ("admin", "team", "bot", "nobody_admin")
DELIVERED_AS: Final[tuple[str, ...]] = (
    "customer_initiated",
    "campaigns_initiated",
    "operator_initiated",
    "automated",
    "admin_initiated",
)
#: Unix seconds beyond this (year 5138) are milliseconds or garbage.
_MAX_UNIX: Final[int] = 100_000_000_000
_VERSION: Final[re.Pattern[str]] = re.compile(r"(\d+)\.(\d+)")


class IntercomOptions(AdapterOptions):
    """The choices an Intercom export forces; see docs/sources/intercom.md for each default."""

    ai_admin_ids: tuple[str, ...] = Field(
        default=(),
        description="Admin (teammate) ids that are really an AI agent, e.g. a third-party bot "
        "that posts as a teammate. Their parts, closes and assignments count as the AI's. "
        "Default none: an admin is a human unless a part is flagged as the AI agent's.",
    )
    ai_flags: bool = Field(
        default=True,
        description="A part whose author has from_ai_agent or is_ai_answer set is the AI's, "
        "whatever the author type (Fin replying on a teammate's behalf). false: only bot "
        "authors and ai_admin_ids are the AI.",
    )
    bot_actor: Literal["ai", "system"] = Field(
        default="ai",
        description="Actor of parts by a 'bot' author not flagged from_ai_agent (workflows, "
        "auto-close rules): 'ai' (Intercom's own reading: Fin is a bot) or 'system' (only "
        "flagged parts and ai_admin_ids are the AI; stricter).",
    )
    api_version: str = Field(
        default="auto",
        description="Intercom-Version the export was made with: 'auto' (accept the values of "
        "both generations and record which one each belongs to), '2.11'..'2.14', '2.15' or "
        "later, or 'unstable'. An explicit version quarantines resolution_state values of the "
        "other generation, naming the version that has them.",
    )
    ratings: Literal["both", "teammate", "ai"] = Field(
        default="both",
        description="Which ratings become 'rated' events: conversation_rating (the teammate "
        "survey), ai_agent.rating (the AI agent's), or both. The others stay on the created "
        "event's attrs.",
    )
    reopen_on_customer_reply: bool = Field(
        default=True,
        description="A customer message in a closed conversation reopens it (Intercom reopens "
        "on reply, and the vendor deducts a resolution when the customer comes back), even "
        "without an 'open' part.",
    )
    truncated_parts: Literal["flag", "quarantine"] = Field(
        default="flag",
        description="A conversation with fewer parts than conversation_parts.total_count (the "
        "API's 500-part limit): 'flag' loads it with attrs.parts_truncated on every event, "
        "'quarantine' sets it aside as incomplete.",
    )

    @field_validator("ai_admin_ids", mode="before")
    @classmethod
    def _ids(cls, value: object) -> object:
        """Ids arrive as JSON numbers, a list, or comma-separated text; they are text here."""
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, list | tuple):
            return tuple(
                str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip()
                for v in value
            )
        return value

    @field_validator("api_version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        """'2.14' parses as a JSON number on the command line; take it back as text."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = repr(float(value))
        if not isinstance(value, str):
            return value
        text = value.strip().lower()
        if text in ("auto", "unstable") or _VERSION.fullmatch(text):
            return text
        raise ValueError("expected 'auto', 'unstable' or a version such as '2.14' or '2.15'")

    def generation(self) -> str:
        """Which resolution_state values the version allows: auto, none, 2.14 or 2.15."""
        if self.api_version == "auto":
            return "auto"
        if self.api_version == "unstable":
            return "2.15"
        match = _VERSION.fullmatch(self.api_version)
        assert match is not None  # the validator guarantees it
        major, minor = int(match[1]), int(match[2])
        if (major, minor) >= (2, 15):
            return "2.15"
        if (major, minor) >= (2, 11):
            return "2.14"
        return "none"  # ai_agent first appears in 2.11


# --------------------------------------------------------------------------- SQL fragments
# Everything below is constant package text; option values reach the query as parameters.


def _lit(values: Sequence[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _unix_ok(x: str) -> str:
    return f"({x} IS NOT NULL AND {x} > 0 AND {x} < {_MAX_UNIX})"


def _ts(x: str) -> str:
    """Unix seconds (DOUBLE) to a naive UTC timestamp; NULL when not a plausible time."""
    return f"CASE WHEN {_unix_ok(x)} THEN make_timestamp(CAST(round({x} * 1000000) AS BIGINT)) END"


def _iso(x: str) -> str:
    return f"strftime({_ts(x)}, '%Y-%m-%dT%H:%M:%SZ')"


def _bad_unix(x: str, raw: str, what: str) -> str:
    """The reason text for a time that is not unix seconds (``what`` is constant text)."""
    return (
        f"'{what} ' || coalesce('''' || {raw} || '''', 'is missing') || "
        f"CASE WHEN {raw} IS NULL THEN '' WHEN {x} >= {_MAX_UNIX} THEN "
        f"' looks like milliseconds; Intercom gives unix time in seconds' "
        f"ELSE ' is not a unix time in seconds' END"
    )


def _actor(kind: str, ident: str, fin: str, answer: str) -> str:
    """Who wrote a part (or opened the conversation), by the options; NULL = unknown type."""
    return f"""CASE
        WHEN {kind} IS NULL OR {kind} = '' THEN 'system'
        WHEN {kind} = 'admin' AND list_contains(CAST($ai_admin_ids AS VARCHAR[]), {ident})
            THEN 'ai'
        WHEN {kind} IN ('admin', 'bot', 'team') AND $ai_flags
             AND (coalesce({fin}, false) OR coalesce({answer}, false)) THEN 'ai'
        WHEN {kind} = 'bot' THEN $bot_actor
        WHEN {kind} = 'admin' THEN 'human'
        WHEN {kind} = 'team' THEN 'system'
        WHEN {kind} IN ('user', 'lead', 'contact') THEN 'customer'
    END"""


def _basis(kind: str, ident: str, fin: str, answer: str) -> str:
    """Why the actor is what it is, so an output can show which choice it rests on."""
    return f"""CASE
        WHEN {kind} IS NULL OR {kind} = '' THEN 'no author'
        WHEN {kind} = 'admin' AND list_contains(CAST($ai_admin_ids AS VARCHAR[]), {ident})
            THEN 'ai_admin_ids'
        WHEN {kind} IN ('admin', 'bot', 'team') AND $ai_flags AND coalesce({fin}, false)
            THEN 'from_ai_agent'
        WHEN {kind} IN ('admin', 'bot', 'team') AND $ai_flags AND coalesce({answer}, false)
            THEN 'is_ai_answer'
        WHEN {kind} = 'bot' THEN 'bot_actor'
        ELSE {kind}
    END"""


def _first_problem(checks: Sequence[tuple[str, str, str]]) -> tuple[str, str]:
    """Two CASE expressions (reason, vendor field) picking the first failing check in order."""
    reason = "CASE " + " ".join(f"WHEN {c} THEN {m}" for c, m, _ in checks) + " END"
    column = "CASE " + " ".join(f"WHEN {c} THEN {f}" for c, _, f in checks) + " END"
    return reason, column


_PART_CHECKS: Final[list[tuple[str, str, str]]] = [
    (
        "json_type(p) <> 'OBJECT'",
        "'conversation part ' || pos || ' is not a JSON object'",
        "'conversation_parts'",
    ),
    (
        f"NOT {_unix_ok('x')}",
        "'conversation part ' || pos || coalesce(' (id ' || pid || ')', '') || ': created_at '"
        " || coalesce('''' || x_raw || '''', 'is missing') || CASE WHEN x >= "
        f"{_MAX_UNIX} THEN ' looks like milliseconds; Intercom gives unix time in seconds' "
        "WHEN x_raw IS NULL THEN '' ELSE ' is not a unix time in seconds' END",
        "'conversation_part.created_at'",
    ),
    (
        "part_type IS NULL",
        "'conversation part ' || pos || coalesce(' (id ' || pid || ')', '') || ' has no part_type'",
        "'conversation_part.part_type'",
    ),
    (
        "actor IS NULL",
        "'conversation part ' || pos || coalesce(' (id ' || pid || ')', '') || ': unknown "
        f"author.type ''' || a_type || ''' (Intercom author types: {', '.join(AUTHOR_TYPES)})'",
        "'conversation_part.author.type'",
    ),
    (
        f"to_type IS NOT NULL AND to_type NOT IN ({_lit(ASSIGNEE_TYPES)})",
        "'conversation part ' || pos || coalesce(' (id ' || pid || ')', '') || ': unknown "
        "assigned_to.type ''' || to_type || ''' (Intercom assignees: "
        f"{', '.join(ASSIGNEE_TYPES)})'",
        "'conversation_part.assigned_to.type'",
    ),
]

_OLD_ONLY: Final[str] = _lit([s for s in STATES_2_14 if s not in STATES_BOTH])
_NEW_ONLY: Final[str] = _lit([s for s in STATES_2_15 if s not in STATES_BOTH])
_STATES_TEXT: Final[str] = (
    f"API 2.11-2.14: {', '.join(STATES_2_14)}; API 2.15+ and Unstable: {', '.join(STATES_2_15)}"
)

_CONVERSATION_CHECKS: Final[list[tuple[str, str, str]]] = [
    ("cid IS NULL", "'conversation has no id'", "'id'"),
    (
        f"NOT {_unix_ok('created_x')}",
        _bad_unix("created_x", "created_raw", "created_at"),
        "'created_at'",
    ),
    (
        "s_actor IS NULL",
        "'unknown source.author.type ''' || s_type || ''' (Intercom author types: "
        f"{', '.join(AUTHOR_TYPES)})'",
        "'source.author.type'",
    ),
    (
        f"delivered_as IS NOT NULL AND delivered_as NOT IN ({_lit(DELIVERED_AS)})",
        "'unknown source.delivered_as ''' || delivered_as || ''' (Intercom values: "
        f"{', '.join(DELIVERED_AS)})'",
        "'source.delivered_as'",
    ),
    (
        "parts_kind IS NOT NULL AND parts_kind <> 'NULL' "
        "AND parts_arr_kind IS DISTINCT FROM 'ARRAY'",
        "'conversation_parts has no conversation_parts array (expected "
        '{"type": "conversation_part.list", "conversation_parts": [...]})\'',
        "'conversation_parts'",
    ),
    ("part_problem IS NOT NULL", "part_problem", "part_problem_column"),
    (
        "truncated AND $truncated_quarantine",
        "'conversation_parts holds ' || parts_present || ' of ' || parts_total || ' parts "
        "(the API returns at most 500): its close and reopen history is incomplete "
        "(truncated_parts=quarantine)'",
        "'conversation_parts.total_count'",
    ),
    (
        "rating_raw IS NOT NULL AND (rating_x IS NULL OR rating_x <> floor(rating_x) "
        "OR rating_x NOT BETWEEN 1 AND 5)",
        "'conversation_rating.rating ''' || rating_raw || ''' is not a score from 1 to 5'",
        "'conversation_rating.rating'",
    ),
    (
        f"rating_raw IS NOT NULL AND NOT {_unix_ok('rating_at_x')} "
        f"AND NOT {_unix_ok('rating_upd_x')}",
        "'conversation_rating has a rating but no created_at or updated_at in unix seconds'",
        "'conversation_rating.created_at'",
    ),
    (
        "ai_kind = 'OBJECT' AND $generation = 'none'",
        "'ai_agent is not in Intercom API ' || $api_version || ' (it first appears in 2.11): "
        "the export was made with a later Intercom-Version; pass -o api_version=auto or the "
        "version used'",
        "'ai_agent'",
    ),
    (
        "ai_rating_raw IS NOT NULL AND (ai_rating_x IS NULL OR ai_rating_x <> floor(ai_rating_x) "
        "OR ai_rating_x NOT BETWEEN 1 AND 5)",
        "'ai_agent.rating ''' || ai_rating_raw || ''' is not a score from 1 to 5'",
        "'ai_agent.rating'",
    ),
    (
        f"ai_rating_raw IS NOT NULL AND NOT {_unix_ok('ai_at_x')} AND NOT {_unix_ok('ai_upd_x')}",
        "'ai_agent has a rating but no created_at or updated_at in unix seconds'",
        "'ai_agent.created_at'",
    ),
    (
        "res_state IS NOT NULL AND res_generation IS NULL",
        "'unknown ai_agent.resolution_state ''' || res_state || ''' (" + _STATES_TEXT + ")'",
        "'ai_agent.resolution_state'",
    ),
    (
        "$generation = '2.14' AND res_generation = '2.15+'",
        "'ai_agent.resolution_state ''' || res_state || ''' is an Intercom API 2.15+ value, but "
        "api_version is ' || $api_version || ' (2.11-2.14 values: "
        + ", ".join(STATES_2_14)
        + "): the export was made with Intercom-Version 2.15 or later; pass "
        "-o api_version=2.15 (or auto)'",
        "'ai_agent.resolution_state'",
    ),
    (
        "$generation = '2.15' AND res_generation = '2.11-2.14'",
        "'ai_agent.resolution_state ''' || res_state || ''' is an Intercom API 2.11-2.14 value, "
        "but api_version is ' || $api_version || ' (2.15+ values: "
        + ", ".join(STATES_2_15)
        + "): the export was made with Intercom-Version 2.14 or earlier; pass "
        "-o api_version=2.14 (or auto)'",
        "'ai_agent.resolution_state'",
    ),
    (
        "res_state IS NULL AND res_custom IS NOT NULL AND custom_state IS NULL",
        f"'unknown custom attribute \"{CUSTOM_STATE_ATTRIBUTE}\" value ''' || res_custom || "
        f"''' (expected {', '.join(CUSTOM_STATES)})'",
        f"'custom_attributes.{CUSTOM_STATE_ATTRIBUTE}'",
    ),
]

_PART_PROBLEM, _PART_PROBLEM_COLUMN = _first_problem(_PART_CHECKS)
_PROBLEM, _PROBLEM_COLUMN = _first_problem(_CONVERSATION_CHECKS)

#: Part types that are assignments (Intercom also writes default_ and away_mode_ ones).
_IS_ASSIGNMENT: Final[str] = "(part_type = 'assignment' OR suffix(part_type, '_assignment'))"
_STATUS_PARTS: Final[str] = "('open', 'assign_and_reopen', 'snoozed')"
_MESSAGE_PARTS: Final[str] = "('comment', 'quick_reply')"
_TRUNCATED: Final[str] = "CASE WHEN truncated THEN true END"

_SQL: Final[str] = f"""
WITH conv AS (
    SELECT __tc_row AS rec_row, __tc_record AS r,
        nullif(trim(__tc_record ->> '$.id'), '') AS cid,
        __tc_record ->> '$.created_at' AS created_raw,
        TRY_CAST(__tc_record ->> '$.created_at' AS DOUBLE) AS created_x,
        TRY_CAST(__tc_record ->> '$.updated_at' AS DOUBLE) AS updated_x,
        __tc_record ->> '$.source.type' AS channel,
        __tc_record ->> '$.source.delivered_as' AS delivered_as,
        nullif(__tc_record ->> '$.source.author.type', '') AS s_type,
        __tc_record ->> '$.source.author.id' AS s_id,
        TRY_CAST(__tc_record ->> '$.source.author.from_ai_agent' AS BOOLEAN) AS s_fin,
        TRY_CAST(__tc_record ->> '$.source.author.is_ai_answer' AS BOOLEAN) AS s_answer,
        json_type(__tc_record, '$.conversation_parts') AS parts_kind,
        CASE WHEN json_type(__tc_record, '$.conversation_parts') = 'ARRAY'
             THEN __tc_record -> '$.conversation_parts'
             ELSE __tc_record -> '$.conversation_parts.conversation_parts' END AS parts_arr,
        TRY_CAST(__tc_record ->> '$.conversation_parts.total_count' AS BIGINT) AS parts_total,
        __tc_record ->> '$.conversation_rating.rating' AS rating_raw,
        TRY_CAST(__tc_record ->> '$.conversation_rating.rating' AS DOUBLE) AS rating_x,
        TRY_CAST(__tc_record ->> '$.conversation_rating.created_at' AS DOUBLE) AS rating_at_x,
        TRY_CAST(__tc_record ->> '$.conversation_rating.updated_at' AS DOUBLE) AS rating_upd_x,
        __tc_record ->> '$.conversation_rating.teammate.id' AS rating_teammate,
        json_type(__tc_record, '$.ai_agent') AS ai_kind,
        __tc_record ->> '$.ai_agent.rating' AS ai_rating_raw,
        TRY_CAST(__tc_record ->> '$.ai_agent.rating' AS DOUBLE) AS ai_rating_x,
        TRY_CAST(__tc_record ->> '$.ai_agent.created_at' AS DOUBLE) AS ai_at_x,
        TRY_CAST(__tc_record ->> '$.ai_agent.updated_at' AS DOUBLE) AS ai_upd_x,
        nullif(trim(__tc_record ->> '$.ai_agent.resolution_state'), '') AS res_state,
        nullif(trim(__tc_record ->> '$.custom_attributes."{CUSTOM_STATE_ATTRIBUTE}"'), '')
            AS res_custom,
        TRY_CAST(__tc_record ->> '$.statistics.last_close_at' AS DOUBLE) AS last_close_x
    FROM __tc_records
),
conv2 AS (
    SELECT *,
        json_type(parts_arr) AS parts_arr_kind,
        CASE WHEN json_type(parts_arr) = 'ARRAY' THEN json_array_length(parts_arr) ELSE 0 END
            AS parts_present,
        json_type(parts_arr) = 'ARRAY' AND parts_total IS NOT NULL
            AND parts_total > json_array_length(parts_arr) AS truncated,
        {_actor("s_type", "s_id", "s_fin", "s_answer")} AS s_actor_by_author,
        {_basis("s_type", "s_id", "s_fin", "s_answer")} AS s_basis,
        CASE WHEN res_state IN ({_lit(STATES_BOTH)}) THEN 'both'
             WHEN res_state IN ({_OLD_ONLY}) THEN '2.11-2.14'
             WHEN res_state IN ({_NEW_ONLY}) THEN '2.15+' END AS res_generation,
        CASE lower(res_custom) WHEN 'assumed resolution' THEN 'assumed_resolution'
             WHEN 'confirmed resolution' THEN 'confirmed_resolution'
             WHEN 'escalated' THEN 'escalated' END AS custom_state
    FROM conv
),
conv3 AS (
    SELECT *,
        CASE WHEN s_type IS NOT NULL THEN s_actor_by_author
             WHEN delivered_as = 'customer_initiated' THEN 'customer'
             WHEN delivered_as = 'operator_initiated' THEN $bot_actor
             WHEN delivered_as = 'admin_initiated' THEN 'human'
             ELSE 'system' END AS s_actor,
        CASE WHEN s_type IS NOT NULL THEN 'source.author'
             WHEN delivered_as IS NOT NULL THEN 'source.delivered_as' END AS s_actor_field
    FROM conv2
),
part_rows AS (
    SELECT rec_row, cid, channel, unnest(items) AS p, generate_subscripts(items, 1) AS pos
    FROM (SELECT rec_row, cid, channel, CAST(parts_arr AS JSON[]) AS items
          FROM conv3 WHERE parts_arr_kind = 'ARRAY')
),
parts AS (
    SELECT rec_row, cid, channel, pos, p,
        p ->> '$.id' AS pid,
        nullif(p ->> '$.part_type', '') AS part_type,
        p ->> '$.created_at' AS x_raw,
        TRY_CAST(p ->> '$.created_at' AS DOUBLE) AS x,
        nullif(p ->> '$.author.type', '') AS a_type,
        p ->> '$.author.id' AS a_id,
        TRY_CAST(p ->> '$.author.from_ai_agent' AS BOOLEAN) AS a_fin,
        TRY_CAST(p ->> '$.author.is_ai_answer' AS BOOLEAN) AS a_answer,
        CASE WHEN json_type(p, '$.assigned_to') = 'OBJECT'
             THEN coalesce(p ->> '$.assigned_to.type', '') END AS to_type,
        p ->> '$.assigned_to.id' AS to_id,
        p ->> '$.state' AS p_state
    FROM part_rows
),
parts2 AS (
    SELECT *,
        {_actor("a_type", "a_id", "a_fin", "a_answer")} AS actor,
        {_basis("a_type", "a_id", "a_fin", "a_answer")} AS basis,
        {_ts("x")} AS ts,
        CASE WHEN to_type IS NULL THEN NULL
             WHEN to_type = 'team' THEN 'team'
             WHEN to_type = 'nobody_admin' OR to_id IS NULL OR to_id IN ('', '0') THEN 'none'
             WHEN to_type = 'bot' THEN 'ai'
             WHEN to_type = 'admin'
                  AND list_contains(CAST($ai_admin_ids AS VARCHAR[]), to_id) THEN 'ai'
             WHEN to_type = 'admin' THEN 'human' END AS assignee_kind
    FROM parts
),
parts3 AS (
    SELECT *,
        {_PART_PROBLEM} AS part_problem,
        {_PART_PROBLEM_COLUMN} AS part_problem_column,
        CASE WHEN part_type = 'close' THEN 'closed'
             WHEN part_type IN ('open', 'assign_and_reopen') THEN 'open'
             WHEN part_type = 'snoozed' THEN 'snoozed'
             WHEN $reopen_on_reply AND actor = 'customer' AND part_type IN {_MESSAGE_PARTS}
                 THEN 'open'
        END AS sets_state
    FROM parts2
),
parts4 AS (
    SELECT *,
        coalesce(last_value(sets_state IGNORE NULLS) OVER w, 'open') AS state_before,
        last_value(assignee_kind IGNORE NULLS) OVER w AS assignee_before
    FROM parts3
    WINDOW w AS (PARTITION BY rec_row ORDER BY ts, pos
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
parts5 AS (
    SELECT *,
        CASE WHEN part_type IN {_MESSAGE_PARTS} THEN 'message'
             WHEN part_type = 'note' THEN 'note'
             WHEN part_type = 'close' THEN 'closed'
             WHEN part_type IN {_STATUS_PARTS} AND state_before = 'closed' THEN 'reopened'
             WHEN part_type IN {_STATUS_PARTS} THEN 'status_changed'
             WHEN {_IS_ASSIGNMENT} THEN 'assigned'
             ELSE 'intercom_' || part_type END AS main_type,
        $reopen_on_reply AND actor = 'customer' AND part_type IN {_MESSAGE_PARTS}
            AND state_before = 'closed' AS reply_reopens,
        assignee_kind IN ('human', 'team')
            AND (actor = 'ai' OR assignee_before = 'ai') AS escalates,
        coalesce('intercom:part:' || pid, 'intercom:conversation:' || cid || ':part:' || pos)
            AS part_event_id
    FROM parts4
),
part_summary AS (
    SELECT rec_row,
        arg_min(part_problem, pos) FILTER (WHERE part_problem IS NOT NULL) AS part_problem,
        arg_min(part_problem_column, pos) FILTER (WHERE part_problem IS NOT NULL)
            AS part_problem_column,
        max(ts) FILTER (WHERE actor = 'ai' AND part_type IN {_MESSAGE_PARTS}) AS last_ai_answer,
        count(*) FILTER (WHERE main_type = 'closed') AS closes,
        count(*) FILTER (WHERE main_type = 'reopened' OR reply_reopens) AS reopens
    FROM parts5 GROUP BY rec_row
),
checked AS (
    SELECT c.*, s.part_problem, s.part_problem_column, s.last_ai_answer, s.closes, s.reopens
    FROM conv3 c LEFT JOIN part_summary s USING (rec_row)
),
checked2 AS (
    SELECT *, {_PROBLEM} AS problem, {_PROBLEM_COLUMN} AS problem_column FROM checked
),
good AS (SELECT * FROM checked2 WHERE problem IS NULL),
good_parts AS (
    SELECT p.*, g.truncated FROM parts5 p JOIN good g USING (rec_row)
),
events AS (
    -- The conversation itself: opened by the author of its first message (source).
    SELECT rec_row, 0 AS ord, 'intercom:conversation:' || cid || ':created' AS event_id, cid,
        {_ts("created_x")} AS ts, 'created' AS type, s_actor AS actor,
        CAST(NULL AS DOUBLE) AS value, 0 AS seq,
        json_merge_patch('{{}}', json_object(
            'channel', channel,
            'delivered_as', delivered_as,
            'source_author_type', s_type,
            'actor_basis', CASE WHEN s_type IS NOT NULL THEN s_basis
                                ELSE 'delivered_as' END,
            'state', r ->> '$.state',
            'open', TRY_CAST(r ->> '$.open' AS BOOLEAN),
            'admin_assignee_id', r ->> '$.admin_assignee_id',
            'team_assignee_id', r ->> '$.team_assignee_id',
            'ai_agent_participated', TRY_CAST(r ->> '$.ai_agent_participated' AS BOOLEAN),
            'ai_source_type', r ->> '$.ai_agent.source_type',
            'ai_last_answer_type', r ->> '$.ai_agent.last_answer_type',
            'resolution_state', res_state,
            'resolution_state_custom', res_custom,
            'teammate_rating', TRY_CAST(rating_x AS INTEGER),
            'ai_rating', TRY_CAST(ai_rating_x AS INTEGER),
            'statistics', json_object(
                'count_reopens', TRY_CAST(r ->> '$.statistics.count_reopens' AS BIGINT),
                'first_close_at',
                    {_iso("TRY_CAST(r ->> '$.statistics.first_close_at' AS DOUBLE)")},
                'last_close_at', {_iso("last_close_x")},
                'last_closed_by_id', r ->> '$.statistics.last_closed_by_id',
                'first_admin_reply_at',
                    {_iso("TRY_CAST(r ->> '$.statistics.first_admin_reply_at' AS DOUBLE)")},
                'count_assignments', TRY_CAST(r ->> '$.statistics.count_assignments' AS BIGINT),
                'count_conversation_parts',
                    TRY_CAST(r ->> '$.statistics.count_conversation_parts' AS BIGINT)),
            'parts_present', parts_present,
            'parts_total', parts_total,
            'parts_missing', parts_kind IS NULL OR parts_kind = 'NULL',
            'parts_truncated', coalesce(truncated, false),
            'closes_in_parts', coalesce(closes, 0),
            'reopens_in_parts', coalesce(reopens, 0),
            'origin', json_object('entity_id', 'conversation.id',
                                  'ts', 'conversation.created_at',
                                  'actor', coalesce(s_actor_field, 'none'))
        )) AS attrs
    FROM good
    UNION ALL
    -- One event per part: its own type, by its author.
    SELECT rec_row, pos * 4, part_event_id, cid, ts, main_type, actor, NULL, pos,
        json_merge_patch('{{}}', json_object(
            'part_id', pid, 'part_type', part_type, 'part_index', pos,
            'author_type', a_type, 'author_id', a_id, 'actor_basis', basis,
            'from_ai_agent', a_fin, 'is_ai_answer', a_answer,
            'public', CASE main_type WHEN 'message' THEN true WHEN 'note' THEN false END,
            'channel', CASE WHEN main_type IN ('message', 'note') THEN channel END,
            'from', CASE WHEN main_type IN ('closed', 'reopened', 'status_changed')
                         THEN state_before END,
            'to', CASE WHEN main_type = 'closed' THEN 'closed'
                       WHEN main_type IN ('reopened', 'status_changed')
                       THEN CASE part_type WHEN 'snoozed' THEN 'snoozed' ELSE 'open' END END,
            'assignee', CASE WHEN main_type = 'assigned' THEN to_id END,
            'assignee_type', CASE WHEN main_type = 'assigned'
                                  THEN nullif(assignee_kind, 'none') END,
            'part_state', p_state,
            'parts_truncated', {_TRUNCATED},
            'origin', json_object('ts', 'conversation_part.created_at',
                                  'actor', 'conversation_part.author',
                                  'type', 'conversation_part.part_type')
        ))
    FROM good_parts
    UNION ALL
    -- The customer writing in a closed conversation reopens it.
    SELECT rec_row, pos * 4 + 1, part_event_id || ':reopened', cid, ts, 'reopened', actor,
        NULL, pos,
        json_merge_patch('{{}}', json_object(
            'part_id', pid, 'part_type', part_type, 'from', 'closed', 'to', 'open',
            'reason', 'customer replied after close', 'actor_basis', basis,
            'parts_truncated', {_TRUNCATED},
            'origin', json_object('ts', 'conversation_part.created_at',
                                  'actor', 'conversation_part.author',
                                  'type', 'conversation_part.part_type')))
    FROM good_parts WHERE reply_reopens
    UNION ALL
    -- A part that is not an assignment but (re)assigns the conversation on the way.
    SELECT rec_row, pos * 4 + 2, part_event_id || ':assigned', cid, ts, 'assigned', actor,
        NULL, pos,
        json_merge_patch('{{}}', json_object(
            'part_id', pid, 'part_type', part_type, 'assignee', to_id,
            'assignee_type', nullif(assignee_kind, 'none'), 'actor_basis', basis,
            'parts_truncated', {_TRUNCATED},
            'origin', json_object('ts', 'conversation_part.created_at',
                                  'actor', 'conversation_part.author',
                                  'attrs.assignee', 'conversation_part.assigned_to')))
    FROM good_parts WHERE assignee_kind IS NOT NULL AND main_type <> 'assigned'
    UNION ALL
    -- The AI handing the conversation to a human or a team.
    SELECT rec_row, pos * 4 + 3, part_event_id || ':escalated', cid, ts, 'escalated', actor,
        NULL, pos,
        json_merge_patch('{{}}', json_object(
            'part_id', pid, 'part_type', part_type, 'assignee', to_id,
            'assignee_type', assignee_kind, 'from_assignee_type', assignee_before,
            'actor_basis', basis,
            'parts_truncated', {_TRUNCATED},
            'origin', json_object('ts', 'conversation_part.created_at',
                                  'actor', 'conversation_part.author',
                                  'attrs.assignee', 'conversation_part.assigned_to')))
    FROM good_parts WHERE escalates
    UNION ALL
    -- The teammate survey (conversation_rating), 1-5.
    SELECT rec_row, 100000001, 'intercom:conversation:' || cid || ':rated:teammate', cid,
        coalesce({_ts("rating_at_x")}, {_ts("rating_upd_x")}), 'rated', 'customer', rating_x,
        parts_present + 1,
        json_merge_patch('{{}}', json_object(
            'rated', 'teammate', 'scale', '1-5', 'raw', r -> '$.conversation_rating.rating',
            'teammate_id', rating_teammate,
            'updated_at', {_iso("rating_upd_x")},
            'changed', rating_upd_x > rating_at_x,
            'parts_truncated', {_TRUNCATED},
            'origin', json_object('value', 'conversation_rating.rating',
                'ts', CASE WHEN {_unix_ok("rating_at_x")} THEN 'conversation_rating.created_at'
                           ELSE 'conversation_rating.updated_at' END,
                'actor', 'conversation_rating.contact')))
    FROM good WHERE rating_raw IS NOT NULL AND $ratings IN ('both', 'teammate')
    UNION ALL
    -- The AI agent's own rating (ai_agent.rating), 1-5.
    SELECT rec_row, 100000002, 'intercom:conversation:' || cid || ':rated:ai', cid,
        coalesce({_ts("ai_at_x")}, {_ts("ai_upd_x")}), 'rated', 'customer', ai_rating_x,
        parts_present + 2,
        json_merge_patch('{{}}', json_object(
            'rated', 'ai', 'scale', '1-5', 'raw', r -> '$.ai_agent.rating',
            'updated_at', {_iso("ai_upd_x")},
            'changed', ai_upd_x > ai_at_x,
            'parts_truncated', {_TRUNCATED},
            'origin', json_object('value', 'ai_agent.rating',
                'ts', CASE WHEN {_unix_ok("ai_at_x")} THEN 'ai_agent.created_at'
                           ELSE 'ai_agent.updated_at' END)))
    FROM good WHERE ai_rating_raw IS NOT NULL AND $ratings IN ('both', 'ai')
    UNION ALL
    -- The vendor's own verdict, dated at the AI's last answer it judges.
    SELECT rec_row, 100000003, 'intercom:conversation:' || cid || ':ai_outcome', cid,
        coalesce(last_ai_answer, {_ts("last_close_x")}, {_ts("updated_x")}, {_ts("created_x")}),
        'ai_outcome', 'system', NULL, parts_present + 3,
        json_merge_patch('{{}}', json_object(
            'state', coalesce(res_state, custom_state),
            'raw', coalesce(res_state, res_custom),
            'generation', CASE WHEN res_state IS NULL THEN 'custom_attribute'
                               ELSE res_generation END,
            'api_version', $api_version,
            'ai_source_type', r ->> '$.ai_agent.source_type',
            'ai_last_answer_type', r ->> '$.ai_agent.last_answer_type',
            'parts_truncated', {_TRUNCATED},
            'origin', json_object(
                'attrs.state', CASE WHEN res_state IS NOT NULL
                    THEN 'ai_agent.resolution_state'
                    ELSE 'custom_attributes.{CUSTOM_STATE_ATTRIBUTE}' END,
                'ts', CASE WHEN last_ai_answer IS NOT NULL
                        THEN 'conversation_part.created_at (last AI answer)'
                        WHEN {_unix_ok("last_close_x")} THEN 'statistics.last_close_at'
                        WHEN {_unix_ok("updated_x")} THEN 'conversation.updated_at'
                        ELSE 'conversation.created_at' END)))
    FROM good WHERE res_state IS NOT NULL OR custom_state IS NOT NULL
)
SELECT event_id, cid AS entity_id, ts, type, actor, value, attrs,
    CAST(NULL AS VARCHAR) AS source, CAST(NULL AS TIMESTAMP) AS recorded_at, seq,
    rec_row AS __tc_row,
    row_number() OVER (PARTITION BY rec_row ORDER BY ord) - 1 AS __tc_sub,
    CAST(NULL AS VARCHAR) AS __tc_problem, CAST(NULL AS VARCHAR) AS __tc_problem_column,
    CAST(NULL AS JSON) AS __tc_raw
FROM events
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
    rec_row, 0, problem, problem_column, r
FROM checked2 WHERE problem IS NOT NULL
"""  # noqa: S608 - constant package text; option values are parameters


#: Keys only an Intercom conversation object has (beside id and created_at).
_MARKERS: Final[frozenset[str]] = frozenset(
    {
        "conversation_parts",
        "conversation_rating",
        "ai_agent_participated",
        "ai_agent",
        "statistics",
        "waiting_since",
        "admin_assignee_id",
    }
)


class IntercomAdapter(Adapter):
    """Reads Intercom conversation objects (by id, as JSON Lines or pages)."""

    name: ClassVar[str] = "intercom"
    title: ClassVar[str] = "Intercom"
    options_model: ClassVar[type[AdapterOptions]] = IntercomOptions
    kinds: ClassVar[dict[str, FileKind]] = {
        "conversations": FileKind(
            "conversations",
            "conversation objects with their conversation_parts, from GET /conversations/{id} "
            "(JSON Lines, one per line, a JSON array, or wrapped in pages)",
            array_key="conversations",
        ),
        "conversation_summaries": FileKind(
            "conversation_summaries",
            "list or search pages ({'type': 'conversation.list', 'conversations': [...], "
            "'pages': ...}) or objects without conversation_parts: no messages, closes or "
            "reopens, so each conversation must also be fetched by id",
            needs=("conversations",),
            array_key="conversations",
            # Not read from the store, but loaded after the conversations of the same ingest:
            # a summary repeats their created / rated / ai_outcome event ids, and the by-id
            # object (whose ai_outcome is dated from its parts) must be the one kept.
            reads=("conversations",),
        ),
    }

    def recognize(self, sniff: Sniff) -> str | None:
        """Conversations by their own keys; with parts or without (a list or search page)."""
        if sniff.format not in (FileFormat.json, FileFormat.jsonl):
            return None
        if "conversations" in sniff.array_keys:
            records = sniff.element_keys
            if records and not ({"id", "created_at"} <= records):
                return None  # a page of something else that happens to be called so
            return "conversations" if "conversation_parts" in records else "conversation_summaries"
        if {"id", "created_at"} <= sniff.keys and sniff.keys & _MARKERS:
            if "conversation_parts" in sniff.keys:
                return "conversations"
            return "conversation_summaries"
        return None

    def events_sql(self, kind: str, options: AdapterOptions) -> tuple[str, dict[str, object]]:
        # Both kinds are conversation objects; a summary simply has no parts to read.
        assert kind in self.kinds and isinstance(options, IntercomOptions)
        params: dict[str, Any] = {
            "ai_admin_ids": list(options.ai_admin_ids),
            "ai_flags": options.ai_flags,
            "bot_actor": options.bot_actor,
            "api_version": options.api_version,
            "generation": options.generation(),
            "ratings": options.ratings,
            "reopen_on_reply": options.reopen_on_customer_reply,
            "truncated_quarantine": options.truncated_parts == "quarantine",
        }
        return _SQL, params


ADAPTER = IntercomAdapter()
