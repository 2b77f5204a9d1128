"""SQL pieces the Intercom kinds share: vendor enums, time and actor rules, the part pipeline.

A conversation part is read the same way whether it arrives inside its conversation
(``GET /conversations/{id}``) or on its own line (an ETL tool's flattened
``conversation_parts`` stream): :func:`part_ctes` turns rows of ``part_rows`` into parts with
their actor, state before and after, and assignee, and :func:`part_event_selects` turns those
into events. Keeping one text for both shapes is what makes them give the same events.

Everything here is constant package text; option values reach a query as parameters
(``$ai_admin_ids``, ``$bot_actor``...), never as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

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
#: Assignee types read with a meaning of their own. The published OpenAPI (2.14, 2.15, 2.16,
#: Unstable) types ``assigned_to`` as a generic ``reference`` (``type`` and ``id``, no enum,
#: example ``contact``), so any other type is accepted and kept as ``other``.
ASSIGNEE_TYPES: Final[tuple[str, ...]] = (
    "admin",
    "team",
    "bot",
    "nobody_admin",
    "contact",
    "user",
    "lead",
)
DELIVERED_AS: Final[tuple[str, ...]] = (
    "customer_initiated",
    "campaigns_initiated",
    "operator_initiated",
    "automated",
    "admin_initiated",
)
#: Unix seconds beyond this (year 5138) are milliseconds or garbage.
MAX_UNIX: Final[int] = 100_000_000_000


def lit(values: Sequence[str]) -> str:
    """Constant package strings as SQL literals (never user text)."""
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def unix_ok(x: str) -> str:
    return f"({x} IS NOT NULL AND {x} > 0 AND {x} < {MAX_UNIX})"


def ts(x: str) -> str:
    """Unix seconds (DOUBLE) to a naive UTC timestamp; NULL when not a plausible time."""
    return f"CASE WHEN {unix_ok(x)} THEN make_timestamp(CAST(round({x} * 1000000) AS BIGINT)) END"


def iso(x: str) -> str:
    return f"strftime({ts(x)}, '%Y-%m-%dT%H:%M:%SZ')"


def bad_unix(x: str, raw: str, what: str) -> str:
    """The reason text for a time that is not unix seconds (``what`` is constant text)."""
    return (
        f"'{what} ' || coalesce('''' || {raw} || '''', 'is missing') || "
        f"CASE WHEN {raw} IS NULL THEN '' WHEN {x} >= {MAX_UNIX} THEN "
        f"' looks like milliseconds; Intercom gives unix time in seconds' "
        f"ELSE ' is not a unix time in seconds' END"
    )


_NAMED_AI: Final[str] = "list_contains(CAST($ai_admin_ids AS VARCHAR[]), {ident})"


def actor(kind: str, ident: str, fin: str, answer: str) -> str:
    """Who wrote a part (or opened the conversation), by the options; NULL = unknown type.

    A ``bot`` author is the AI only when Intercom flags the part as the AI agent's or the
    buyer names its id: the legacy Operator and workflow bots are bots too, and their canned
    "we'll reply soon" is not an answer by the AI (``bot_actor=ai`` restores the old reading).
    """
    named = _NAMED_AI.format(ident=ident)
    return f"""CASE
        WHEN {kind} IS NULL OR {kind} = '' THEN 'system'
        WHEN {kind} IN ('admin', 'bot') AND {named} THEN 'ai'
        WHEN {kind} IN ('admin', 'bot', 'team') AND $ai_flags
             AND (coalesce({fin}, false) OR coalesce({answer}, false)) THEN 'ai'
        WHEN {kind} = 'bot' THEN $bot_actor
        WHEN {kind} = 'admin' THEN 'human'
        WHEN {kind} = 'team' THEN 'system'
        WHEN {kind} IN ('user', 'lead', 'contact') THEN 'customer'
    END"""


def basis(kind: str, ident: str, fin: str, answer: str) -> str:
    """Why the actor is what it is, so an output can show which choice it rests on."""
    named = _NAMED_AI.format(ident=ident)
    return f"""CASE
        WHEN {kind} IS NULL OR {kind} = '' THEN 'no author'
        WHEN {kind} IN ('admin', 'bot') AND {named} THEN 'ai_admin_ids'
        WHEN {kind} IN ('admin', 'bot', 'team') AND $ai_flags AND coalesce({fin}, false)
            THEN 'from_ai_agent'
        WHEN {kind} IN ('admin', 'bot', 'team') AND $ai_flags AND coalesce({answer}, false)
            THEN 'is_ai_answer'
        WHEN {kind} = 'bot' THEN 'bot_actor'
        ELSE {kind}
    END"""


def first_problem(checks: Sequence[tuple[str, str, str]]) -> tuple[str, str]:
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
        f"NOT {unix_ok('x')}",
        "'conversation part ' || pos || coalesce(' (id ' || pid || ')', '') || ': created_at '"
        " || coalesce('''' || x_raw || '''', 'is missing') || CASE WHEN x >= "
        f"{MAX_UNIX} THEN ' looks like milliseconds; Intercom gives unix time in seconds' "
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
]
PART_PROBLEM, PART_PROBLEM_COLUMN = first_problem(_PART_CHECKS)

#: Part types that are assignments (Intercom also writes default_ and away_mode_ ones).
IS_ASSIGNMENT: Final[str] = "(part_type = 'assignment' OR suffix(part_type, '_assignment'))"
STATUS_PARTS: Final[str] = "('open', 'assign_and_reopen', 'snoozed')"
MESSAGE_PARTS: Final[str] = "('comment', 'quick_reply')"
TRUNCATED: Final[str] = "CASE WHEN truncated THEN true END"


def part_ctes() -> str:
    """CTEs ``parts`` .. ``parts5`` over a preceding CTE ``part_rows``.

    ``part_rows`` has one row per part: ``rec_row`` (the record the part's events belong to),
    ``grp`` (the conversation the part is in: the state is followed within it), ``cid``,
    ``channel``, ``p`` (the part, JSON) and ``pos`` (its 1-based position in the
    conversation's part list, the API's order). The text starts with a comma: it continues a
    ``WITH`` list.
    """
    return f""",
parts AS (
    SELECT rec_row, grp, cid, channel, pos, p,
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
        {actor("a_type", "a_id", "a_fin", "a_answer")} AS actor,
        {basis("a_type", "a_id", "a_fin", "a_answer")} AS basis,
        {ts("x")} AS ts,
        CASE WHEN to_type IS NULL THEN NULL
             WHEN to_type = 'team' THEN 'team'
             WHEN to_type = 'nobody_admin' OR to_id IS NULL OR to_id IN ('', '0') THEN 'none'
             WHEN to_type IN ('admin', 'bot')
                  AND list_contains(CAST($ai_admin_ids AS VARCHAR[]), to_id) THEN 'ai'
             WHEN to_type = 'bot' AND $bot_actor = 'ai' THEN 'ai'
             WHEN to_type = 'bot' THEN 'bot'
             WHEN to_type = 'admin' THEN 'human'
             WHEN to_type IN ('contact', 'user', 'lead') THEN 'customer'
             ELSE 'other' END AS assignee_kind
    FROM parts
),
parts3 AS (
    SELECT *,
        {PART_PROBLEM} AS part_problem,
        {PART_PROBLEM_COLUMN} AS part_problem_column,
        CASE WHEN part_type = 'close' THEN 'closed'
             WHEN part_type IN ('open', 'assign_and_reopen') THEN 'open'
             WHEN part_type = 'snoozed' THEN 'snoozed'
             WHEN $reopen_on_reply AND actor = 'customer' AND part_type IN {MESSAGE_PARTS}
                 THEN 'open'
        END AS sets_state
    FROM parts2
),
parts4 AS (
    SELECT *,
        coalesce(last_value(sets_state IGNORE NULLS) OVER w, 'open') AS state_before,
        last_value(assignee_kind IGNORE NULLS) OVER w AS assignee_before
    FROM parts3
    WINDOW w AS (PARTITION BY grp ORDER BY ts, pos
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
parts5 AS (
    SELECT *,
        CASE WHEN part_type IN {MESSAGE_PARTS} THEN 'message'
             WHEN part_type = 'note' THEN 'note'
             WHEN part_type = 'close' THEN 'closed'
             WHEN part_type IN {STATUS_PARTS} AND state_before = 'closed' THEN 'reopened'
             WHEN part_type IN {STATUS_PARTS} THEN 'status_changed'
             WHEN {IS_ASSIGNMENT} THEN 'assigned'
             ELSE 'intercom_' || part_type END AS main_type,
        $reopen_on_reply AND actor = 'customer' AND part_type IN {MESSAGE_PARTS}
            AND state_before = 'closed' AS reply_reopens,
        assignee_kind IN ('human', 'team')
            AND (actor = 'ai' OR assignee_before = 'ai') AS escalates,
        coalesce('intercom:part:' || pid, 'intercom:conversation:' || cid || ':part:' || pos)
            AS part_event_id
    FROM parts4
)"""  # noqa: S608 - constant package text


def part_event_selects(source: str) -> str:
    """The events of every part in ``source`` (a CTE of ``parts5`` rows plus ``truncated``
    and ``total_attr``, the ETL stream's ``conversation_total_parts`` or NULL): the part's own
    event, and the reopen, assignment and escalation it may also be. Columns: rec_row, ord,
    event_id, cid, ts, type, actor, value, seq, attrs."""
    origin_type = """json_object('ts', 'conversation_part.created_at',
                                  'actor', 'conversation_part.author',
                                  'type', 'conversation_part.part_type')"""
    origin_assignee = """json_object('ts', 'conversation_part.created_at',
                                  'actor', 'conversation_part.author',
                                  'attrs.assignee', 'conversation_part.assigned_to')"""
    return f"""
    -- One event per part: its own type, by its author.
    SELECT rec_row, pos * 4 AS ord, part_event_id AS event_id, cid, ts, main_type AS type,
        actor, CAST(NULL AS DOUBLE) AS value, pos AS seq,
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
            'assignee_raw_type', CASE WHEN main_type = 'assigned' THEN to_type END,
            'part_state', p_state,
            'parts_truncated', {TRUNCATED},
            'conversation_total_parts', total_attr,
            'origin', {origin_type}
        )) AS attrs
    FROM {source}
    UNION ALL
    -- The customer writing in a closed conversation reopens it.
    SELECT rec_row, pos * 4 + 1, part_event_id || ':reopened', cid, ts, 'reopened', actor,
        NULL, pos,
        json_merge_patch('{{}}', json_object(
            'part_id', pid, 'part_type', part_type, 'from', 'closed', 'to', 'open',
            'reason', 'customer replied after close', 'actor_basis', basis,
            'parts_truncated', {TRUNCATED},
            'origin', {origin_type}))
    FROM {source} WHERE reply_reopens
    UNION ALL
    -- A part that is not an assignment but (re)assigns the conversation on the way.
    SELECT rec_row, pos * 4 + 2, part_event_id || ':assigned', cid, ts, 'assigned', actor,
        NULL, pos,
        json_merge_patch('{{}}', json_object(
            'part_id', pid, 'part_type', part_type, 'assignee', to_id,
            'assignee_type', nullif(assignee_kind, 'none'), 'assignee_raw_type', to_type,
            'actor_basis', basis,
            'parts_truncated', {TRUNCATED},
            'origin', {origin_assignee}))
    FROM {source} WHERE assignee_kind IS NOT NULL AND main_type <> 'assigned'
    UNION ALL
    -- The AI handing the conversation to a human or a team.
    SELECT rec_row, pos * 4 + 3, part_event_id || ':escalated', cid, ts, 'escalated', actor,
        NULL, pos,
        json_merge_patch('{{}}', json_object(
            'part_id', pid, 'part_type', part_type, 'assignee', to_id,
            'assignee_type', assignee_kind, 'from_assignee_type', assignee_before,
            'actor_basis', basis,
            'parts_truncated', {TRUNCATED},
            'origin', {origin_assignee}))
    FROM {source} WHERE escalates"""  # noqa: S608 - constant package text
