"""The Salesforce adapter: which object a file holds, and the SELECT that reads it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final

from truecount.adapters.base import Adapter, AdapterOptions, FileKind, Sniff
from truecount.adapters.salesforce.cases import _CASE_SQL, _CASE_STATUS_SQL
from truecount.adapters.salesforce.history import _HISTORY_SQL
from truecount.adapters.salesforce.options import VENDOR, SalesforceOptions
from truecount.adapters.salesforce.sessions import _SESSION_SQL
from truecount.adapters.salesforce.surveys import _RESPONSE_SQL, _SUBJECT_SQL
from truecount.errors import InputError, Location, Problem
from truecount.ingest.source import FileFormat

_SQL: Final[dict[str, str]] = {
    "case": _CASE_SQL,
    "case_history": _HISTORY_SQL,
    "case_status": _CASE_STATUS_SQL,
    "messaging_session": _SESSION_SQL,
    "survey_subject": _SUBJECT_SQL,
    "survey_question_response": _RESPONSE_SQL,
}

#: The options each kind's SQL uses (every parameter given must be used).
_PARAMS: Final[dict[str, tuple[str, ...]]] = {
    "case": ("ai_user_ids", "system_user_ids", "child_case_followup"),
    "case_history": (
        "ai_user_ids",
        "system_user_ids",
        "ai_agent_types",
        "ai_close_by_sessions",
        "closed_statuses",
    ),
    "case_status": (),
    "messaging_session": ("ai_agent_types",),
    "survey_subject": (),
    "survey_question_response": ("rating_question_ids", "rating_scale"),
}


class SalesforceAdapter(Adapter):
    """Service Cloud objects (REST query pages, JSON Lines, Bulk API 2.0 CSV) to case events."""

    name: ClassVar[str] = VENDOR
    title: ClassVar[str] = "Salesforce"
    options_model: ClassVar[type[AdapterOptions]] = SalesforceOptions
    kinds: ClassVar[Mapping[str, FileKind]] = {
        "case": FileKind(
            "case",
            "Case records (Id, CaseNumber, Status, IsClosed, ClosedDate, CreatedDate, Origin, "
            "OwnerId, ParentId, ...)",
            array_key="records",
        ),
        "case_history": FileKind(
            "case_history",
            "CaseHistory rows (CaseId, Field, OldValue, NewValue, DataType, CreatedDate, "
            "CreatedById)",
            needs=("case",),
            array_key="records",
            reads=("case_status", "messaging_session"),
        ),
        "case_status": FileKind(
            "case_status",
            "CaseStatus picklist values (ApiName, MasterLabel, IsClosed)",
            array_key="records",
        ),
        "messaging_session": FileKind(
            "messaging_session",
            "MessagingSession records (CaseId, AgentType, Status, StartTime, EndTime, "
            "AcceptTime, ChannelType)",
            needs=("case",),
            array_key="records",
        ),
        "survey_subject": FileKind(
            "survey_subject",
            "SurveySubject records (SubjectId, SubjectEntityType, ParentId): which case a "
            "survey is about",
            array_key="records",
            reads=("messaging_session",),
        ),
        "survey_question_response": FileKind(
            "survey_question_response",
            "SurveyQuestionResponse records (NumberValue, Datatype, QuestionId, InvitationId, "
            "ResponseId, CreatedDate)",
            needs=("survey_subject",),
            array_key="records",
            reads=("survey_subject",),
        ),
    }

    def recognize(self, sniff: Sniff) -> str | None:
        """The object from its field names (REST records carry them, Bulk CSV in its header).

        An sObject tree file (``sf data export tree``, or its ``--plan`` file) is Salesforce's
        but unreadable here, so it is refused with the export that works, not passed over as
        another vendor's.
        """
        fields = sniff.record_keys
        paged = sniff.format is not FileFormat.csv and "records" in sniff.array_keys
        if paged:
            fields = sniff.element_keys or fields
        # API names are case-insensitive; Data Loader writes its header in capitals
        fields = frozenset(f.lower() for f in fields)
        kind = self._object(fields)
        if (paged and "attributes" in fields and "id" not in fields and kind != "case_status") or (
            {"sobject", "files"} <= fields and bool({"saverefs", "resolverefs"} & fields)
        ):
            raise InputError(_tree_export(sniff, kind))
        return kind

    @staticmethod
    def _object(fields: frozenset[str]) -> str | None:
        """The object whose fields (lower-cased) these are."""
        if "previousupdate" in fields:  # CaseHistory2 (API 59.0+) is a different shape
            return None
        if "casenumber" in fields or {"status", "isclosed", "origin"} <= fields:
            return "case"
        if {"caseid", "field"} <= fields:
            return "case_history"
        if "agenttype" in fields or {"starttime", "channeltype"} <= fields:
            return "messaging_session"
        if "isclosed" in fields and ({"apiname", "masterlabel"} & fields):
            return "case_status"
        if "subjectid" in fields and ({"parentid", "subjectentitytype"} & fields):
            return "survey_subject"
        if "questionid" in fields and ({"responseid", "invitationid"} & fields):
            return "survey_question_response"
        return None

    def events_sql(self, kind: str, options: AdapterOptions) -> tuple[str, dict[str, object]]:
        assert isinstance(options, SalesforceOptions)
        values: dict[str, object] = {
            "ai_user_ids": list(options.ai_user_ids),
            "system_user_ids": list(options.system_user_ids),
            "ai_agent_types": list(options.ai_agent_types),
            "ai_close_by_sessions": options.ai_close_by_sessions,
            "closed_statuses": None
            if options.closed_statuses is None
            else list(options.closed_statuses),
            "child_case_followup": options.child_case_followup,
            "rating_question_ids": list(options.rating_question_ids),
            "rating_scale": options.rating_scale,
        }
        return _SQL[kind], {name: values[name] for name in _PARAMS[kind]}


ADAPTER = SalesforceAdapter()


def _tree_export(sniff: Sniff, kind: str | None) -> Problem:
    """``sf data export tree`` (sObject tree format) writes ``attributes.referenceId`` in place
    of every record's ``Id``, and drops lookups (``CaseId``, ``ParentId``, ``OwnerId``) unless
    ``--plan`` rewrites them as ``@CaseRef1`` references: the case a record is about cannot be
    known, so the file is refused whole rather than quarantined record by record."""
    what = f"{kind} records" if kind else "records"
    if {"sobject", "files"} <= {k.lower() for k in sniff.record_keys}:
        shape = "the data plan of an sObject tree export (`sf data export tree --plan`)"
    else:
        shape = "an sObject tree file (what `sf data export tree` writes)"
    return Problem(
        f"{shape}: {what} without an Id (attributes.referenceId instead, lookups left out or "
        "written as @references), so cases and their history cannot be identified or joined",
        Location(file=str(sniff.path)),
        hint='export each object with its Ids instead: `sf data query --query "SELECT Id, ... '
        'FROM Case" --result-format csv > Case.csv`, `sf data export bulk --query "..." '
        "--output-file Case.csv --result-format csv`, or a REST query page; "
        "docs/sources/salesforce.md lists the fields of each object",
    )
