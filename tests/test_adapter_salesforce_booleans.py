"""Salesforce checkbox fields in every form the tools write, checked by reading the files in
plain Python.

The fixtures under ``tests/fixtures/salesforce/booleans/`` hold the main fixture's cases with
every boolean spelled one way per folder (``true``/``false``, ``1``/``0``, ``TRUE``/``FALSE``,
``True``/``False``, ``yes``/``no``, ``t``/``f``, JSON ``true``/``false``). Each form must give
the same events, and a packaged definition's verdicts must equal the same definition evaluated
here over the form's own files, with booleans read by this module's own table of forms.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pytest

from test_adapter_salesforce import (
    ANSWERS,
    BAD,
    HISTORY,
    KEY,
    SESSIONS,
    SUBJECTS,
    F,
    Verdict,
    events,
    id18,
    ingest,
    library_verdicts,
    new_workspace,
    quarantine,
    rows,
    serial,
    strict_verdicts,
    when,
)
from truecount.adapters import ingest_source
from truecount.errors import InputError
from truecount.workspace import Workspace

B = F / "booleans"
CSV_FORMS = ["true_false", "1_0", "TRUE_FALSE", "True_False", "yes_no", "t_f"]
#: data_loader: true/false under the capital header Data Loader writes (``ID``, ``ISCLOSED``)
FORMS = [*CSV_FORMS, "data_loader", "json"]
#: Data Loader's documented reading of a checkbox, plus PostgreSQL's t/f; nothing else is one.
TRUE = {"true", "t", "1", "yes", "y", "on"}
FALSE = {"false", "f", "0", "no", "n", "off"}
LATE = "2026-06-30"
LATE_T = dt.datetime(2026, 6, 30, 23, 59, 59, 999999)


def boolean(value: Any) -> bool | None:
    """A checkbox as written: JSON true/false, or text in one of the forms; None when empty."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "":
        return None
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _names() -> dict[str, str]:
    """Field names as the APIs spell them, by their capitals (Data Loader's header)."""
    out: dict[str, str] = {}
    for name in ("Case", "CaseStatus", "CaseHistory", "SurveyQuestionResponse"):
        for key in rows(B / "true_false" / f"{name}.csv")[0]:
            out[key.upper()] = key
    return out


NAMES = _names()


def read(path: Path) -> list[dict[str, Any]]:
    """A fixture's records with field names in the APIs' spelling, whatever the file's case."""
    return [{NAMES.get(k, k): v for k, v in r.items()} for r in rows(path)]


def form_files(form: str) -> dict[str, Path | list[Path]]:
    """The files of one form's export (sessions and survey links have no booleans)."""
    folder = B / form
    if form == "json":
        return {
            "case": folder / "Case.json",
            "status": folder / "CaseStatus.json",
            "history": HISTORY,
            "answers": ANSWERS,
        }
    return {
        "case": folder / "Case.csv",
        "status": folder / "CaseStatus.csv",
        "history": [folder / "CaseHistory.csv"],
        "answers": folder / "SurveyQuestionResponse.csv",
    }


def all_files(files: dict[str, Path | list[Path]]) -> list[Path]:
    history = files["history"]
    assert isinstance(history, list)
    return [files["case"], files["status"], *history, SESSIONS, SUBJECTS, files["answers"]]  # type: ignore[list-item]


# --------------------------------------------------------------------------- the expectation


def expected(files: dict[str, Path | list[Path]], as_of: dt.datetime) -> dict[str, Verdict]:
    """support_resolution_strict over one form's files: closed statuses from its CaseStatus
    (IsClosed read as a boolean here), closes judged by the sessions before them, ratings
    through SurveySubject, follow-ups from Case.ParentId."""
    closed = {
        name
        for s in read(files["status"])  # type: ignore[arg-type]
        if boolean(s["IsClosed"])
        for name in (s["ApiName"], s["MasterLabel"])
    }
    sessions: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
    for s in rows(SESSIONS):
        sessions[s["CaseId"]].append((when(s["StartTime"]), s["AgentType"]))
    seen: dict[str, dict[str, Any]] = {}
    for page in files["history"]:  # type: ignore[union-attr]
        for r in read(page):
            seen.setdefault(r["Id"], r)
    status_rows = sorted(
        (r for r in seen.values() if r["Field"] == "Status"),
        key=lambda r: (r["CaseId"], when(r["CreatedDate"]), serial(r["Id"])),
    )
    first_ai: dict[str, dt.datetime] = {}
    reopens: dict[str, list[dt.datetime]] = defaultdict(list)
    for r in status_rows:
        case, ts = r["CaseId"], when(r["CreatedDate"])
        was, now = r["OldValue"] in closed, r["NewValue"] in closed
        if now and not was:
            before = [t for at, t in sessions[case] if at <= ts]
            if before and all(t == "Bot" for t in before) and case not in first_ai:
                first_ai[case] = ts
        elif was and not now:
            reopens[case].append(ts)
    links: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for s in rows(SUBJECTS):
        rank = 0 if s["SubjectEntityType"] == "Case" else 2
        links[id18(s["ParentId"])].append((rank, id18(s["SubjectId"])))
    session_case = {s["Id"]: s["CaseId"] for s in rows(SESSIONS)}
    rated: dict[str, list[tuple[dt.datetime, float]]] = defaultdict(list)
    for a in read(files["answers"]):  # type: ignore[arg-type]
        found = links.get(a["InvitationId"], []) + links.get(a["ResponseId"], [])
        found = [(1, session_case[e]) if e in session_case else (r, e) for r, e in found]
        numeric = a["Datatype"] in ("Int", "Number", "Double") and a["NumberValue"] is not None
        if found and numeric:
            rated[min(found)[1]].append((when(a["CreatedDate"]), float(a["NumberValue"])))
    children: dict[str, list[dt.datetime]] = defaultdict(list)
    for c in read(files["case"]):  # type: ignore[arg-type]
        if c["ParentId"]:
            children[id18(c["ParentId"])].append(when(c["CreatedDate"]))
    out: dict[str, Verdict] = {}
    for case, t in first_ai.items():
        if t > as_of:
            continue

        def inside(at: dt.datetime, days: int, t: dt.datetime = t) -> bool:
            return t <= at <= min(t + dt.timedelta(days=days), as_of)

        week = sorted((at, v) for at, v in rated.get(case, []) if inside(at, 7))
        conditions = {
            "not_reopened": not any(inside(r, 14) for r in reopens[case]),
            "no_followup": not any(inside(c, 14) for c in children.get(case, [])),
            "satisfied": bool(week) and week[-1][1] >= 4,
            "no_human_message": True,
        }
        failed = [n for n, ok in conditions.items() if not ok]
        if t + dt.timedelta(days=14) > as_of:
            out[KEY[case]] = ("pending", "pending", conditions)
        elif failed:
            out[KEY[case]] = ("not_counted", ", ".join(failed), conditions)
        else:
            out[KEY[case]] = ("counted", None, conditions)
    return out


EVERY = (
    "SELECT event_id, entity_id, ts, type, actor, value, seq, attrs FROM events ORDER BY event_id"
)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Any, ...]]:
    ws = new_workspace(tmp_path_factory.mktemp("sfb"))
    ingest(ws, all_files(form_files("true_false")))
    return events(ws, EVERY)


# --------------------------------------------------------------------------- every form


@pytest.mark.parametrize("form", FORMS)
def test_every_boolean_form_loads_and_counts_the_same(
    form: str, tmp_path: Path, baseline: list[tuple[Any, ...]]
) -> None:
    files = form_files(form)
    ws = new_workspace(tmp_path)
    report = ingest(ws, all_files(files))
    # nothing quarantined but the one answer no survey links to a case (as in the main export)
    assert report["totals"]["quarantined"] == 1
    for f in report["files"]:
        assert f["rows_read"] == f["loaded"] + f["duplicate"] + f["quarantined"]

    # each case's checkboxes, read here from the file, are on its `created` event
    got = {
        e: (c, s, d)
        for e, c, s, d in events(
            ws,
            "SELECT entity_id, CAST(attrs -> 'is_closed' AS BOOLEAN), "
            "CAST(attrs -> 'is_escalated' AS BOOLEAN), CAST(attrs -> 'is_deleted' AS BOOLEAN) "
            "FROM events WHERE type = 'created'",
        )
    }
    want = {
        c["Id"]: (boolean(c["IsClosed"]), boolean(c["IsEscalated"]), boolean(c["IsDeleted"]))
        for c in read(files["case"])  # type: ignore[arg-type]
    }
    assert got == want
    assert [KEY[k] for k, (_, escalated, _) in got.items() if escalated] == ["C16"]
    statuses = dict(
        events(
            ws,
            "SELECT attrs ->> 'api_name', CAST(attrs -> 'is_closed' AS BOOLEAN) FROM events "
            "WHERE type = 'case_status'",
        )
    )
    assert statuses == {
        s["ApiName"]: boolean(s["IsClosed"])
        for s in read(files["status"])  # type: ignore[arg-type]
    }
    # the history's checkbox change is an escalation in every spelling
    escalated = events(
        ws,
        "SELECT entity_id, attrs ->> 'from', attrs ->> 'to' FROM events "
        "WHERE type = 'escalated' AND attrs ->> 'record' = 'case_history'",
    )
    assert [(KEY[e], f, t) for e, f, t in escalated] == [("C16", "false", "true")]

    # the packaged definition against the same definition evaluated over this form's files
    got_verdicts = library_verdicts(ws, "support_resolution_strict", as_of=LATE)
    assert got_verdicts == expected(files, LATE_T)
    # ... which is the main fixture's count: the spelling never changes it
    assert got_verdicts == {KEY[k]: v for k, v in strict_verdicts(LATE_T).items()}
    assert sum(v[0] == "counted" for v in got_verdicts.values()) == 12

    # and the events themselves are those of the true/false export
    assert events(ws, EVERY) == baseline


def test_fixture_forms_differ_only_in_spelling() -> None:
    """The folders really are written in their forms (so the test above can fail)."""
    for form, (yes, no) in zip(
        CSV_FORMS,
        [("true", "false"), ("1", "0"), ("TRUE", "FALSE"), ("True", "False"), ("yes", "no"),
         ("t", "f")],
        strict=True,
    ):  # fmt: skip
        values = {c["IsClosed"] for c in read(B / form / "Case.csv")}
        assert values == {yes, no}, form
        flags = {a["IsTrueOrFalse"] for a in read(B / form / "SurveyQuestionResponse.csv")}
        assert flags == {yes, no}, form
    header = rows(B / "data_loader" / "Case.csv")[0]
    assert {"ID", "ISCLOSED", "CASENUMBER"} <= set(header) and "Id" not in header
    page = json.loads((B / "json" / "Case.json").read_text())
    assert {type(r["IsClosed"]) for r in page["records"]} == {bool}


def test_boolean_answer_is_read_in_every_form(tmp_path: Path) -> None:
    """A Boolean survey answer's IsTrueOrFalse is kept as 'true' / 'false' whatever its form."""
    for form in ("1_0", "yes_no"):
        ws = new_workspace(tmp_path / form)
        files = form_files(form)
        ingest(ws, [files["case"], SUBJECTS, files["answers"]], partial=True)
        got = events(
            ws,
            "SELECT event_id, attrs ->> 'raw' FROM events WHERE type = 'survey_answer' "
            "AND attrs ->> 'datatype' = 'Boolean'",
        )
        want = [
            (
                f"salesforce:SurveyQuestionResponse:{a['Id']}",
                str(boolean(a["IsTrueOrFalse"])).lower(),
            )
            for a in read(files["answers"])  # type: ignore[arg-type]
            if a["Datatype"] == "Boolean"
        ]
        assert got == want and want


# --------------------------------------------------------------------------- empty booleans


def test_empty_case_booleans_are_null_and_change_no_count(tmp_path: Path) -> None:
    """Case.IsClosed / IsEscalated / IsDeleted empty: the attribute is left out (not false),
    and the count is unchanged, since closes come from the history."""
    nulls = B / "nulls" / "Case.csv"
    files = {**form_files("true_false"), "case": nulls}
    ws = new_workspace(tmp_path)
    report = ingest(ws, all_files(files))
    assert report["totals"]["quarantined"] == 1
    got = dict(
        events(
            ws,
            "SELECT entity_id, [attrs ->> 'is_closed', attrs ->> 'is_escalated', "
            "attrs ->> 'is_deleted'] FROM events WHERE type = 'created'",
        )
    )
    want = {
        c["Id"]: [
            None if boolean(c[k]) is None else str(boolean(c[k])).lower()
            for k in ("IsClosed", "IsEscalated", "IsDeleted")
        ]
        for c in read(nulls)
    }
    assert got == want
    assert (
        sum(v[0] is None for v in got.values())
        == sum(1 for c in read(nulls) if c["IsClosed"] is None)
        > 0
    )
    verdicts = library_verdicts(ws, "support_resolution_strict", as_of=LATE)
    assert (
        verdicts
        == expected(files, LATE_T)
        == {KEY[k]: v for k, v in strict_verdicts(LATE_T).items()}
    )


def test_empty_status_is_closed_is_not_guessed(tmp_path: Path) -> None:
    """A CaseStatus whose IsClosed is empty: a change into or out of that status is set aside
    with the fix named, never read as 'not closed'; option closed_statuses settles it."""
    status = B / "nulls" / "CaseStatus.csv"
    unknown = {
        name
        for s in read(status)
        if boolean(s["IsClosed"]) is None
        for name in (s["ApiName"], s["MasterLabel"])
    }
    assert unknown == {"Resolved"}
    files = {**form_files("true_false"), "status": status}
    ws = new_workspace(tmp_path / "a")
    report = ingest(ws, all_files(files))
    history = read(B / "true_false" / "CaseHistory.csv")
    touching = [
        r for r in history if r["Field"] == "Status" and ({r["OldValue"], r["NewValue"]} & unknown)
    ]
    assert [KEY[r["CaseId"]] for r in touching] == ["C14"]
    f = next(f for f in report["files"] if f["file"].endswith("CaseHistory.csv"))
    assert f["quarantined"] == len(touching)
    got = [q for q in quarantine(ws) if q[0].endswith("CaseHistory.csv")]
    assert [(row, column) for _, row, column, _ in got] == [
        (history.index(r) + 1, "NewValue") for r in touching
    ]
    assert all(
        "'Resolved' has an empty IsClosed" in reason and "closed_statuses" in reason
        for *_, reason in got
    )
    verdicts = library_verdicts(ws, "support_resolution_strict", as_of=LATE)
    want = {k: v for k, v in strict_verdicts(LATE_T).items() if KEY[k] != "C14"}
    assert verdicts == {KEY[k]: v for k, v in want.items()}

    ws = new_workspace(tmp_path / "b")
    report = ingest(ws, all_files(files), 'closed_statuses=["Closed","Resolved"]')
    assert report["totals"]["quarantined"] == 1  # the unlinked answer only
    verdicts = library_verdicts(ws, "support_resolution_strict", as_of=LATE)
    assert verdicts == {KEY[k]: v for k, v in strict_verdicts(LATE_T).items()}


# --------------------------------------------------------------------------- bad input


def test_values_that_are_not_booleans_are_quarantined(tmp_path: Path) -> None:
    bad = BAD / "Case_bad_boolean.csv"
    records = rows(bad)
    wrong = []
    for n, c in enumerate(records, start=1):
        for column in ("IsClosed", "IsEscalated", "IsDeleted"):
            try:
                boolean(c[column])
            except ValueError:
                wrong.append((n, column, c[column], c["Id"]))
                break
    assert len(wrong) == 3
    ws = new_workspace(tmp_path)
    report = ingest(ws, [bad])
    f = report["files"][0]
    assert (f["rows_read"], f["loaded"], f["quarantined"]) == (
        len(records),
        len(records) - len(wrong),
        len(wrong),
    )
    got = quarantine(ws)
    assert [(row, column) for _, row, column, _ in got] == [(n, col) for n, col, _, _ in wrong]
    for (_, _, _, reason), (_, column, value, case_id) in zip(got, wrong, strict=True):
        assert f"{column} '{value}' is not a boolean" in reason and case_id in reason
        assert "true/false, 1/0, yes/no" in reason


@pytest.mark.parametrize("name", ["Case_tree.json", "Case-plan.json"])
def test_sobject_tree_export_is_refused(tmp_path: Path, name: str) -> None:
    """`sf data export tree` writes no Ids: refused whole, naming the shape and the export
    that works, before anything is stored."""
    tree = json.loads((BAD / name).read_text())
    if isinstance(tree, dict):
        assert all("Id" not in r and "referenceId" in r["attributes"] for r in tree["records"])
    ws = new_workspace(tmp_path)
    con = duckdb.connect(str(Workspace.open(ws).store_path))
    try:
        with pytest.raises(InputError) as caught:
            ingest_source(con, "salesforce", [F / "Case.csv", BAD / name])
        text = str(caught.value)
        assert name in text and "sf data export tree" in text
        assert "sf data query" in text and "--result-format csv" in text
        assert con.execute("SELECT count(*) FROM events").fetchone() == (0,)
    finally:
        con.close()
