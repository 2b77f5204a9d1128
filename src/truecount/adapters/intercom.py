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
complete. API 1.x conversations (``conversation_message`` instead of ``source``) are read as
conversations too: the opening message and its author give the ``created`` event.

ETL tools write the parts apart from their conversations: the ``conversation_parts`` kind
reads that flattened stream (Airbyte's, or the same records as JSON Lines), and a conversation
without parts of its own completes itself from the parts stored before it (see
:mod:`truecount.adapters.intercom_parts`). ``airbyte_streams`` names the kind of each stream.

Three things in an Intercom export are choices rather than facts, so they are options, recorded
with every file ingested:

* who counts as the AI: parts flagged ``from_ai_agent`` / ``is_ai_answer`` and ids the buyer
  names; a ``bot`` author is not the AI by itself, because the legacy Operator and workflow
  bots are bots too (``bot_actor=ai`` is the old, looser reading);
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
from typing import Any, ClassVar, Final, Literal

from pydantic import Field, field_validator

from truecount.adapters import intercom_conversation, intercom_parts
from truecount.adapters.base import Adapter, AdapterOptions, FileKind, Sniff
from truecount.adapters.intercom_sql import (
    ASSIGNEE_TYPES,
    AUTHOR_TYPES,
    CUSTOM_STATE_ATTRIBUTE,
    CUSTOM_STATES,
    DELIVERED_AS,
    STATES_2_14,
    STATES_2_15,
    STATES_BOTH,
)
from truecount.ingest.source import FileFormat

_VERSION: Final[re.Pattern[str]] = re.compile(r"(\d+)\.(\d+)")


class IntercomOptions(AdapterOptions):
    """The choices an Intercom export forces; see docs/sources/intercom.md for each default."""

    ai_admin_ids: tuple[str, ...] = Field(
        default=(),
        description="Admin or bot ids that are really an AI agent: a third-party bot that "
        "posts as a teammate, or Fin's own bot id in an export whose parts carry no "
        "from_ai_agent flag. Their parts, closes and assignments count as the AI's. Default "
        "none: an admin is a human and a bot is not the AI unless a part is flagged as the AI "
        "agent's.",
    )
    ai_flags: bool = Field(
        default=True,
        description="A part whose author has from_ai_agent or is_ai_answer set is the AI's, "
        "whatever the author type (Fin replying on a teammate's behalf). false: only "
        "ai_admin_ids (and every bot, with bot_actor=ai) are the AI.",
    )
    bot_actor: Literal["system", "ai"] = Field(
        default="system",
        description="Actor of parts by a 'bot' author neither flagged from_ai_agent / "
        "is_ai_answer nor in ai_admin_ids (the legacy Operator, workflows, auto-close rules): "
        "'system' (only Fin's flagged parts are the AI, so Operator's canned 'we will reply "
        "soon' is not an AI answer) or 'ai' (every bot is the AI, the looser reading).",
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
        "conversation_message",
    }
)
#: Keys of a part of the flattened conversation_parts stream (an ETL tool's).
_PART_KEYS: Final[frozenset[str]] = frozenset({"conversation_id", "part_type"})


class IntercomAdapter(Adapter):
    """Reads Intercom conversation objects (by id, as JSON Lines or pages) and the flattened
    conversation_parts stream of ETL tools."""

    name: ClassVar[str] = "intercom"
    title: ClassVar[str] = "Intercom"
    options_model: ClassVar[type[AdapterOptions]] = IntercomOptions
    kinds: ClassVar[dict[str, FileKind]] = {
        "conversations": FileKind(
            "conversations",
            "conversation objects with their conversation_parts, from GET /conversations/{id} "
            "(JSON Lines, one per line, a JSON array, or wrapped in pages)",
            array_key="conversations",
            # A conversation without parts of its own (an ETL tool's conversations stream)
            # reads them from the stored conversation_parts, which are loaded first.
            reads=("conversation_parts",),
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
        "conversation_parts": FileKind(
            "conversation_parts",
            "conversation parts one per record, each with its conversation_id (Airbyte's "
            "flattened conversation_parts stream, or the same records as JSON Lines): the "
            "messages, closes and reopens of conversations that come without their parts",
            needs=("conversations",),
            # Never a page key of a flattened part; named because the JSON reader needs one.
            array_key="conversation_parts",
        ),
    }
    airbyte_streams: ClassVar[dict[str, str]] = {
        "conversations": "conversations",
        "conversation_parts": "conversation_parts",
    }

    def recognize(self, sniff: Sniff) -> str | None:
        """Conversations by their own keys; with parts or without (a list or search page)."""
        if sniff.format not in (FileFormat.json, FileFormat.jsonl):
            return None
        if sniff.keys >= _PART_KEYS and "conversation_parts" not in sniff.keys:
            return "conversation_parts"
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
        # Conversations and summaries are both conversation objects (a summary simply has no
        # parts to read); the flattened parts have their own SQL.
        assert kind in self.kinds and isinstance(options, IntercomOptions)
        params: dict[str, Any] = {
            "ai_admin_ids": list(options.ai_admin_ids),
            "ai_flags": options.ai_flags,
            "bot_actor": options.bot_actor,
            "reopen_on_reply": options.reopen_on_customer_reply,
            "truncated_quarantine": options.truncated_parts == "quarantine",
        }
        if kind == "conversation_parts":
            return intercom_parts.SQL, params
        params |= {
            "api_version": options.api_version,
            "generation": options.generation(),
            "ratings": options.ratings,
        }
        return intercom_conversation.SQL, params


__all__ = [
    "ADAPTER",
    "ASSIGNEE_TYPES",
    "AUTHOR_TYPES",
    "CUSTOM_STATES",
    "CUSTOM_STATE_ATTRIBUTE",
    "DELIVERED_AS",
    "STATES_2_14",
    "STATES_2_15",
    "STATES_BOTH",
    "IntercomAdapter",
    "IntercomOptions",
]


ADAPTER = IntercomAdapter()
