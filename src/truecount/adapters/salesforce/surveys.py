"""SurveySubject and SurveyQuestionResponse: satisfaction ratings tied to their case."""

from __future__ import annotations

from typing import Final

from truecount.adapters.base import STORE
from truecount.adapters.salesforce.options import (
    DATATYPES,
    NUMERIC_DATATYPES,
    VENDOR,
)
from truecount.adapters.salesforce.sql import (
    _PROBLEMS,
    _REC,
    BOOL_FORMS_SHOWN,
    _attrs,
    _bool,
    _common_checks,
    _event,
    _f,
    _id,
    _id_check,
    _origin,
    _problem,
    _q,
    _serial,
    _time_check,
    _ts,
)

# --------------------------------------------------------------------------- SurveySubject

_SUBJECT_SQL: Final[str] = f"""
WITH {_REC},
fields AS (
    SELECT row_no, j, j -> 'attributes' ->> 'type' AS sobject,
           {_f("Id")} AS id_raw, {_f("SubjectId")} AS subject_raw,
           {_f("SubjectEntityType")} AS subject_type_raw, {_f("ParentId")} AS parent_raw,
           {_f("CreatedDate")} AS created_raw, {_f("Name")} AS name
    FROM rec
),
parsed AS (
    SELECT *, {_id("id_raw")} AS id, {_id("subject_raw")} AS subject,
           {_id("parent_raw")} AS parent, {_ts("created_raw")} AS created
    FROM fields
),
checked AS (
    SELECT *, {
    _problem(
        *_common_checks("SurveySubject", "SurveySubject"),
        ("subject_raw IS NULL", "'SurveySubject ' || id || ': no SubjectId'", "SubjectId"),
        _id_check("SurveySubject", "subject_raw", "subject", "SubjectId"),
        ("parent_raw IS NULL", "'SurveySubject ' || id || ': no ParentId'", "ParentId"),
        _id_check("SurveySubject", "parent_raw", "parent", "ParentId"),
        *_time_check("SurveySubject", "created_raw", "created", "CreatedDate", True),
    )
} AS p
    FROM parsed
),
sessions AS (
    SELECT attrs ->> 'session_id' AS session_id, min(entity_id) AS entity_id
    FROM {STORE}
    WHERE type = 'session_started' AND attrs ->> 'vendor' = '{VENDOR}'
    GROUP BY ALL
),
ok AS (
    SELECT c.*, s.entity_id AS session_entity,
           coalesce(subject_type_raw,
                    CASE WHEN starts_with(subject, '500') THEN 'Case'
                         WHEN starts_with(subject, '0Mw') THEN 'MessagingSession' END)
               AS subject_type,
           {_serial("id")} AS seq
    FROM checked AS c LEFT JOIN sessions AS s ON s.session_id = c.subject
    WHERE p IS NULL
)
{
    _event(
        event_id="'salesforce:SurveySubject:' || id",
        entity_id="CASE WHEN subject_type = 'MessagingSession' "
        "THEN coalesce(session_entity, subject) ELSE subject END",
        ts="created",
        type_="'survey_linked'",
        actor="'system'",
        attrs=_attrs(
            "'subject_id', subject",
            "'subject_type', subject_type",
            "'parent_id', parent",
            "'via_session', CASE WHEN subject_type = 'MessagingSession' "
            "AND session_entity IS NOT NULL THEN subject END",
            "'name', name",
            "'origin', "
            + _origin(
                entity_id="SurveySubject.SubjectId (a MessagingSession's CaseId)",
                ts="SurveySubject.CreatedDate",
                **{"attrs.parent_id": "SurveySubject.ParentId"},
            ),
        ),
        sub=0,
        where="TRUE",
    )
}
UNION ALL
{_PROBLEMS}
"""  # noqa: S608 - package constants only; values are parameters

# --------------------------------------------------------------------------- SurveyQuestionResponse

_RESPONSE_SQL: Final[str] = f"""
WITH {_REC},
fields AS (
    SELECT row_no, j, j -> 'attributes' ->> 'type' AS sobject,
           {_f("Id")} AS id_raw, {_f("InvitationId")} AS invitation_raw,
           {_f("ResponseId")} AS response_raw, {_f("QuestionId")} AS question_raw,
           {_f("Datatype")} AS datatype, {_f("NumberValue")} AS number_raw,
           {_f("ChoiceValue")} AS choice, {_f("ResponseShortText")} AS short_text,
           {_f("IsTrueOrFalse")} AS true_false_raw, {_f("DateValue")} AS date_value,
           {_f("CreatedDate")} AS created_raw
    FROM rec
),
parsed AS (
    SELECT *, {_id("id_raw")} AS id, {_id("invitation_raw")} AS invitation_id,
           {_id("response_raw")} AS response_id, {_id("question_raw")} AS question_id,
           TRY_CAST(number_raw AS DOUBLE) AS number, {_ts("created_raw")} AS created,
           {_bool("true_false_raw")} AS true_false
    FROM fields
),
links AS (
    SELECT attrs ->> 'parent_id' AS parent_id, entity_id,
           CASE WHEN attrs ->> 'subject_type' = 'Case' THEN 0
                WHEN attrs ->> 'via_session' IS NOT NULL THEN 1 ELSE 2 END AS rank
    FROM {STORE}
    WHERE type = 'survey_linked' AND attrs ->> 'vendor' = '{VENDOR}'
),
linked AS (
    SELECT p.row_no, arg_min(l.entity_id, struct_pack(r := l.rank, e := l.entity_id)) AS entity
    FROM parsed AS p JOIN links AS l
      ON l.parent_id = p.invitation_id OR l.parent_id = p.response_id
    GROUP BY p.row_no
),
judged AS (
    SELECT p.*, l.entity,
           (datatype IN {NUMERIC_DATATYPES!r} OR (datatype IS NULL AND number IS NOT NULL))
               AND number IS NOT NULL
               AND (len($rating_question_ids) = 0
                    OR list_contains($rating_question_ids, question_id)) AS is_rating
    FROM parsed AS p LEFT JOIN linked AS l USING (row_no)
),
checked AS (
    SELECT *, {
    _problem(
        *_common_checks("SurveyQuestionResponse", "SurveyQuestionResponse"),
        *_time_check("SurveyQuestionResponse", "created_raw", "created", "CreatedDate", True),
        _id_check("SurveyQuestionResponse", "invitation_raw", "invitation_id", "InvitationId"),
        _id_check("SurveyQuestionResponse", "response_raw", "response_id", "ResponseId"),
        _id_check("SurveyQuestionResponse", "question_raw", "question_id", "QuestionId"),
        (
            f"datatype NOT IN {DATATYPES!r}",
            "'SurveyQuestionResponse ' || id || ': unknown Datatype ' || "
            + _q("datatype")
            + " || ' (Salesforce Datatype values: "
            + ", ".join(DATATYPES)
            + ")'",
            "Datatype",
        ),
        (
            "datatype = 'Boolean' AND true_false_raw IS NOT NULL AND true_false IS NULL",
            "'SurveyQuestionResponse ' || id || ': IsTrueOrFalse ' || "
            + _q("true_false_raw")
            + f" || ' is not a boolean (accepted: {BOOL_FORMS_SHOWN})'",
            "IsTrueOrFalse",
        ),
        (
            "number_raw IS NOT NULL AND number IS NULL",
            "'SurveyQuestionResponse ' || id || ': NumberValue ' || "
            + _q("number_raw")
            + " || ' is not a number'",
            "NumberValue",
        ),
        (
            "invitation_id IS NULL AND response_id IS NULL",
            "'SurveyQuestionResponse ' || id || ': no InvitationId or ResponseId to find "
            "its case by'",
            "InvitationId",
        ),
        (
            "entity IS NULL",
            "'SurveyQuestionResponse ' || id || ': no SurveySubject links invitation ' || "
            "coalesce(invitation_id, '(none)') || ' or response ' || "
            "coalesce(response_id, '(none)') || ' to a case; ingest the SurveySubject "
            "export (SubjectId, SubjectEntityType, ParentId) with it'",
            "InvitationId",
        ),
        (
            "is_rating AND (number < 1 OR number > $rating_scale)",
            "'SurveyQuestionResponse ' || id || ': rating ' || number_raw || ' of question ' "
            "|| coalesce(question_id, '(none)') || ' is outside 1..' || $rating_scale || "
            "' (option rating_scale); if this is not the satisfaction question, list the "
            "rating questions in option rating_question_ids'",
            "NumberValue",
        ),
    )
} AS p
    FROM judged
),
ok AS (SELECT *, {_serial("id")} AS seq FROM checked WHERE p IS NULL)
{
    _event(
        event_id="'salesforce:SurveyQuestionResponse:' || id",
        entity_id="entity",
        ts="created",
        type_="'rated'",
        actor="'customer'",
        value="1 + (number - 1) * 4.0 / ($rating_scale - 1)",
        attrs=_attrs(
            "'scale', $rating_scale",
            "'raw', number",
            "'question_id', question_id",
            "'response_id', response_id",
            "'invitation_id', invitation_id",
            "'datatype', datatype",
            "'origin', "
            + _origin(
                entity_id="SurveySubject.SubjectId (via InvitationId / ResponseId)",
                ts="SurveyQuestionResponse.CreatedDate",
                value="SurveyQuestionResponse.NumberValue (scaled to 1-5)",
            ),
        ),
        sub=0,
        where="is_rating",
    )
}
UNION ALL
{
    _event(
        event_id="'salesforce:SurveyQuestionResponse:' || id",
        entity_id="entity",
        ts="created",
        type_="'survey_answer'",
        actor="'customer'",
        value="number",
        attrs=_attrs(
            "'raw', CASE WHEN datatype = 'Boolean' THEN CAST(true_false AS VARCHAR) "
            "ELSE coalesce(choice, short_text, date_value, number_raw) END",
            "'question_id', question_id",
            "'response_id', response_id",
            "'invitation_id', invitation_id",
            "'datatype', datatype",
            "'origin', "
            + _origin(
                entity_id="SurveySubject.SubjectId (via InvitationId / ResponseId)",
                ts="SurveyQuestionResponse.CreatedDate",
                value="SurveyQuestionResponse.NumberValue",
            ),
        ),
        sub=0,
        where="NOT is_rating",
    )
}
UNION ALL
{_PROBLEMS}
"""  # noqa: S608 - package constants only; values are parameters
