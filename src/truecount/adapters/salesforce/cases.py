"""The Case and CaseStatus objects: the cases themselves, and which statuses are closed."""

from __future__ import annotations

from typing import Final

from truecount.adapters.salesforce.sql import (
    _PROBLEMS,
    _REC,
    _actor,
    _attrs,
    _bool,
    _bool_check,
    _common_checks,
    _event,
    _f,
    _id,
    _id_check,
    _origin,
    _problem,
    _serial,
    _time_check,
    _ts,
)

# --------------------------------------------------------------------------- Case

_CASE_SQL: Final[str] = f"""
WITH {_REC},
fields AS (
    SELECT row_no, j, j -> 'attributes' ->> 'type' AS sobject,
           {_f("Id")} AS id_raw, {_f("CaseNumber")} AS case_number, {_f("Status")} AS status,
           {_f("IsClosed")} AS is_closed_raw, {_f("ClosedDate")} AS closed_raw,
           {_f("CreatedDate")} AS created_raw, {_f("Origin")} AS channel,
           {_f("OwnerId")} AS owner_raw, {_f("IsEscalated")} AS is_escalated_raw,
           {_f("IsDeleted")} AS is_deleted_raw,
           {_f("ContactId")} AS contact_raw, {_f("AccountId")} AS account_raw,
           {_f("ParentId")} AS parent_raw, {_f("CreatedById")} AS by_raw,
           {_f("Priority")} AS priority, {_f("Type")} AS case_type, {_f("Reason")} AS reason
    FROM rec
),
parsed AS (
    SELECT *, {_id("id_raw")} AS id, {_ts("created_raw")} AS created,
           {_ts("closed_raw")} AS closed_at, {_id("parent_raw")} AS parent,
           {_id("by_raw")} AS by_id, {_id("owner_raw")} AS owner_id,
           {_id("contact_raw")} AS contact_id, {_id("account_raw")} AS account_id,
           {_bool("is_closed_raw")} AS is_closed, {_bool("is_escalated_raw")} AS is_escalated,
           {_bool("is_deleted_raw")} AS is_deleted
    FROM fields
),
checked0 AS (
    SELECT *, {
    _problem(
        *_common_checks("Case", "Case"),
        *_time_check("Case", "created_raw", "created", "CreatedDate", required=True),
        *_time_check("Case", "closed_raw", "closed_at", "ClosedDate", required=False),
        _id_check("Case", "parent_raw", "parent", "ParentId"),
        _id_check("Case", "owner_raw", "owner_id", "OwnerId"),
        _id_check("Case", "by_raw", "by_id", "CreatedById"),
        _bool_check("Case", "is_closed_raw", "is_closed", "IsClosed"),
        _bool_check("Case", "is_escalated_raw", "is_escalated", "IsEscalated"),
        _bool_check("Case", "is_deleted_raw", "is_deleted", "IsDeleted"),
    )
} AS p
    FROM parsed
),
facts AS (
    -- what a good record says, its Id aside (a 15-character Id and its 18-character form are
    -- one Id): copies that agree are one record, copies that disagree are a conflict
    SELECT *, CAST(json_array(case_number, status, is_closed, closed_at, created, channel,
                              owner_id, is_escalated, is_deleted, contact_id, account_id,
                              parent, by_id, priority, case_type, reason) AS VARCHAR) AS fact
    FROM checked0
),
checked AS (
    -- every copy of a conflicting Id is set aside, naming them all, whatever their order
    SELECT * REPLACE (CASE
        WHEN p IS NULL AND count(DISTINCT fact) FILTER (WHERE p IS NULL) OVER same_id > 1
        THEN struct_pack(
            m := 'Case ' || id || ': records that disagree under one Id ('
                || string_agg('row ' || row_no || ': Id ' || id_raw || ', CaseNumber '
                              || coalesce(case_number, 'none') || ', CreatedDate '
                              || created_raw, '; ' ORDER BY row_no)
                       FILTER (WHERE p IS NULL) OVER same_id
                || '); a 15-character Id is its 18-character form without the last 3 '
                || 'characters, so they name one case, and which copy is right cannot be '
                || 'told: every copy is set aside (export the cases again)',
            c := 'Id')
        ELSE p END AS p)
    FROM facts
    WINDOW same_id AS (PARTITION BY id)
),
ok AS (
    SELECT *, {_actor("by_id")} AS actor, {_serial("id")} AS seq,
           {
    _attrs(
        "'case_number', case_number",
        "'channel', channel",
        "'status', status",
        "'is_closed', is_closed",
        "'closed_date', strftime(closed_at, '%Y-%m-%dT%H:%M:%SZ')",
        "'is_escalated', is_escalated",
        "'is_deleted', is_deleted",
        "'owner_id', owner_id",
        "'contact_id', contact_id",
        "'account_id', account_id",
        "'parent_id', parent",
        "'priority', priority",
        "'case_type', case_type",
        "'reason', reason",
    )
} AS case_attrs
    FROM checked WHERE p IS NULL
)
{
    _event(
        event_id="'salesforce:Case:' || id || ':created'",
        entity_id="id",
        ts="created",
        type_="'created'",
        actor="actor",
        attrs="json_merge_patch(case_attrs, json_object('origin', "
        + _origin(
            entity_id="Case.Id",
            ts="Case.CreatedDate",
            actor="Case.CreatedById",
            **{"attrs.channel": "Case.Origin", "attrs.closed_date": "Case.ClosedDate"},
        )
        + "))",
        sub=0,
        where="TRUE",
    )
}
UNION ALL
{
    _event(
        event_id="'salesforce:Case:' || id || ':followup'",
        entity_id="parent",
        ts="created",
        type_="'followup_created'",
        actor="actor",
        attrs=_attrs(
            "'followup_id', id",
            "'case_number', case_number",
            "'channel', channel",
            "'origin', "
            + _origin(
                entity_id="Case.ParentId",
                ts="Case.CreatedDate",
                actor="Case.CreatedById",
                **{"attrs.followup_id": "Case.Id"},
            ),
        ),
        sub=1,
        where="parent IS NOT NULL AND $child_case_followup",
    )
}
UNION ALL
{_PROBLEMS}
"""  # noqa: S608 - package constants only; values are parameters

# --------------------------------------------------------------------------- CaseStatus

_CASE_STATUS_SQL: Final[str] = f"""
WITH {_REC},
fields AS (
    SELECT row_no, j, j -> 'attributes' ->> 'type' AS sobject,
           coalesce({_f("ApiName")}, {_f("MasterLabel")}) AS id,
           {_f("ApiName")} AS api_name, {_f("MasterLabel")} AS label,
           {_f("IsClosed")} AS is_closed_raw, {_f("IsDefault")} AS is_default_raw,
           {_f("SortOrder")} AS sort_order,
           {_f("LastModifiedDate")} AS modified_raw, {_f("SystemModstamp")} AS stamp_raw,
           {_f("CreatedDate")} AS created_raw, {_f("Id")} AS status_id
    FROM rec
),
parsed AS (
    SELECT *, {_ts("modified_raw")} AS modified, {_ts("stamp_raw")} AS stamp,
           {_ts("created_raw")} AS created, {_bool("is_closed_raw")} AS is_closed,
           {_bool("is_default_raw")} AS is_default
    FROM fields
),
checked AS (
    SELECT *, {
    _problem(
        (
            "sobject IS NOT NULL AND sobject <> 'CaseStatus'",
            "'record ' || row_no || ' is a ' || sobject || ' record, not a CaseStatus "
            "(attributes.type): is this the CaseStatus export?'",
            "attributes.type",
        ),
        (
            "id IS NULL",
            "'CaseStatus record ' || row_no || ': no ApiName or MasterLabel'",
            "ApiName",
        ),
        _bool_check("CaseStatus", "is_closed_raw", "is_closed", "IsClosed"),
        _bool_check("CaseStatus", "is_default_raw", "is_default", "IsDefault"),
        *_time_check("CaseStatus", "modified_raw", "modified", "LastModifiedDate", False),
        *_time_check("CaseStatus", "stamp_raw", "stamp", "SystemModstamp", False),
        *_time_check("CaseStatus", "created_raw", "created", "CreatedDate", False),
    )
} AS p
    FROM parsed
),
ok AS (SELECT * FROM checked WHERE p IS NULL)
{
    _event(
        event_id="'salesforce:CaseStatus:' || id",
        entity_id="'CaseStatus:' || id",
        ts="coalesce(modified, stamp, created, TIMESTAMP '1970-01-01')",
        type_="'case_status'",
        actor="'system'",
        seq="NULL",
        attrs=_attrs(
            "'api_name', api_name",
            "'label', label",
            "'is_closed', is_closed",
            "'is_default', is_default",
            "'sort_order', TRY_CAST(sort_order AS INTEGER)",
            "'status_id', status_id",
            "'origin', "
            + _origin(
                entity_id="CaseStatus.ApiName (else MasterLabel)",
                ts="CaseStatus.LastModifiedDate (else SystemModstamp, CreatedDate, 1970-01-01)",
                **{"attrs.is_closed": "CaseStatus.IsClosed"},
            ),
        ),
        sub=0,
        where="TRUE",
    )
}
UNION ALL
{_PROBLEMS}
"""  # noqa: S608 - package constants only; values are parameters
