"""Salesforce constants, Ids and the options a Salesforce export forces on the buyer."""

from __future__ import annotations

from typing import Final

from pydantic import Field, field_validator

from truecount.adapters.base import AdapterOptions

VENDOR: Final[str] = "salesforce"

#: ``MessagingSession.AgentType`` picklist values.
AGENT_TYPES: Final[tuple[str, ...]] = ("Agent", "Bot", "BotToAgent", "System")
#: ``SurveyQuestionResponse.Datatype`` picklist values (a restricted picklist).
DATATYPES: Final[tuple[str, ...]] = ("Boolean", "Date", "Double", "Int", "Number", "String")
NUMERIC_DATATYPES: Final[tuple[str, ...]] = ("Double", "Int", "Number")
#: ``CaseHistory.Field`` values that record an owner change (each writes a name and an id row).
OWNER_FIELDS: Final[tuple[str, ...]] = ("Owner", "ownerAssignment", "ownerAccepted")

_ID_CHARS: Final[str] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_CHARS: Final[str] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id18(value: str) -> str:
    """The 18-character form of a Salesforce Id (the 15-character form plus its case checksum).

    Reports print 15-character Ids, the APIs 18-character ones; the two must meet as one
    entity. Raises ValueError for text that is not an Id.
    """
    text = value.strip()
    if len(text) == 18 and text.isascii() and text.isalnum():
        return text
    if len(text) != 15 or not (text.isascii() and text.isalnum()):
        raise ValueError(f"'{value}' is not a Salesforce Id (15 or 18 letters and digits)")
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, ch in enumerate(text[chunk * 5 : chunk * 5 + 5]) if ch.isupper())
        suffix += _SUFFIX_CHARS[bits]
    return text + suffix


def _id_list(value: object) -> object:
    """Ids from ``--option key=a,b`` text or a JSON list, each in its 18-character form."""
    if isinstance(value, str):
        value = [v for v in (p.strip() for p in value.split(",")) if v]
    if isinstance(value, list | tuple):
        return tuple(salesforce_id18(str(v)) for v in value)
    return value


def _text_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(v for v in (p.strip() for p in value.split(",")) if v)
    return value


class SalesforceOptions(AdapterOptions):
    """The choices a Salesforce export forces: who the AI is, what is closed, what a rating is."""

    ai_agent_types: tuple[str, ...] = Field(
        default=("Bot",),
        description="MessagingSession.AgentType values that mean the AI handled the session "
        f"({', '.join(AGENT_TYPES)}). BotToAgent is a handoff to a person, so not the AI's "
        "by default; it always also gives an 'escalated' event.",
    )
    ai_close_by_sessions: bool = Field(
        default=True,
        description="A close is the AI's when the case had at least one messaging session "
        "started before it and every such session has an AI agent type, whoever saved the "
        "status (often an automation user). Off: only ai_user_ids make a close the AI's.",
    )
    ai_user_ids: tuple[str, ...] = Field(
        default=(),
        description="User Ids of the Agentforce / bot integration users: changes they save "
        "are by actor 'ai' (and their closes are the AI's). 15- or 18-character Ids.",
    )
    system_user_ids: tuple[str, ...] = Field(
        default=(),
        description="User Ids of automation (Automated Process, flows, integrations): their "
        "changes are by actor 'system' rather than 'human'.",
    )
    closed_statuses: tuple[str, ...] | None = Field(
        default=None,
        description="Case statuses that are closed. Default (null): the statuses the "
        "CaseStatus export marks IsClosed, when one is in this ingest or the workspace; "
        "else just 'Closed'.",
    )
    child_case_followup: bool = Field(
        default=True,
        description="A case with a ParentId is a follow-up of its parent: 'followup_created' "
        "on the parent at the child's CreatedDate.",
    )
    rating_question_ids: tuple[str, ...] = Field(
        default=(),
        description="SurveyQuestion Ids whose numeric answers are the satisfaction rating. "
        "Default (empty): every numeric answer (Datatype Int, Number, Double) is a rating.",
    )
    rating_scale: int = Field(
        default=5,
        ge=2,
        description="Top of the rating questions' scale (bottom is 1): answers are mapped "
        "linearly onto 1-5 ('rated' value); an answer outside 1..rating_scale is quarantined.",
    )

    @field_validator("ai_user_ids", "system_user_ids", "rating_question_ids", mode="before")
    @classmethod
    def _ids(cls, value: object) -> object:
        return _id_list(value)

    @field_validator("ai_agent_types", "closed_statuses", mode="before")
    @classmethod
    def _texts(cls, value: object) -> object:
        return _text_list(value)

    @field_validator("ai_agent_types")
    @classmethod
    def _agent_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [v for v in value if v not in AGENT_TYPES]
        if unknown:
            raise ValueError(
                f"unknown AgentType {', '.join(unknown)} (MessagingSession.AgentType values: "
                f"{', '.join(AGENT_TYPES)})"
            )
        return value
