"""Verify an evidence pack offline: signature, files, definition, SQL, data and results.

The verifier trusts nothing in the pack that it can recompute. It checks the signature with
the public key it is given (never a key the pack names), then recomputes every digest and root
from the pack's files and the data the auditor supplies, re-runs the definition and the
reconciliation with the same engine, and compares. The statement supplies only what cannot be
recomputed: the as-of time (a parameter of the count) and the claims being checked. Each check
is reported passed or failed with its cause, so a failure says *what* was altered.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final, Literal

import duckdb
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from truecount.billing.terms import parse_terms
from truecount.container import literal_path
from truecount.definition.load import parse_definition
from truecount.engine.source import EventsInput
from truecount.errors import TruecountError
from truecount.ingest.canonical import INGEST_LOG_TABLE
from truecount.workspace import Workspace, configure

from .canonical import canonical_json, file_sha256, sha256_hex
from .livelog import check_citation
from .pack import (
    CANONICAL_FILE,
    DEFINITION_FILE,
    ENVELOPE_FILE,
    INVOICE_DIR,
    PREDICATE_TYPE,
    STATEMENT_FILE,
    STATEMENT_TYPE,
    TERMS_FILE,
    engine_versions,
    pack_digest,
    pack_files,
    read_statement,
)
from .records import EVENT_LEAF_FORMAT, ROW_LEAF_FORMAT
from .run import (
    ENTITIES_FILE,
    QUERY_FILE,
    RECONCILIATION_FILE,
    VERDICTS_FILE,
    RunInputs,
    RunResult,
    run,
    summary,
)
from .sign import check_envelope

Status = Literal["passed", "failed", "note"]

#: Result files every pack must carry as subjects.
REQUIRED: Final[tuple[str, ...]] = (
    DEFINITION_FILE, CANONICAL_FILE, QUERY_FILE, RECONCILIATION_FILE, ENTITIES_FILE, VERDICTS_FILE,
)  # fmt: skip


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    name: str
    status: Status
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "detail": self.detail}


@dataclass
class Verification:
    """All checks of one verification; ``ok`` when none failed (notes do not fail)."""

    target: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.status != "failed" for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "failed"]

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, "passed" if ok else "failed", detail))

    def note(self, name: str, detail: str) -> None:
        self.checks.append(Check(name, "note", detail))

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "ok": self.ok,
            "checks": [c.to_json() for c in self.checks],
        }


# ----------------------------------------------------------------------------- helpers
def _short(digest: str) -> str:
    return digest[:16] + "…" if len(digest) > 16 else digest


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The first JSON path where ``a`` (the pack) and ``b`` (recomputed) differ, described."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}".lstrip(".") + (
                    " is missing from the pack" if key not in a else " is not recomputed"
                )
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        if len(a) != len(b):
            return f"{path.lstrip('.')}: {len(a)} items in the pack, {len(b)} recomputed"
        return None
    if a != b or type(a) is not type(b):
        return f"{path.lstrip('.')}: pack {json.dumps(a)}, recomputed {json.dumps(b)}"
    return None


def _first_line_difference(a: bytes, b: bytes) -> str:
    la, lb = a.decode("utf-8", "replace").splitlines(), b.decode("utf-8", "replace").splitlines()
    for i, (x, y) in enumerate(zip(la, lb, strict=False), start=1):
        if x != y:
            return f"first difference at line {i}"
    return f"{len(la)} lines in the pack, {len(lb)} recomputed"


def _csv_difference(pack: Path, mine: Path) -> str:
    """How two CSV files of the same columns differ, by row (read in DuckDB, not Python)."""
    with duckdb.connect() as con:
        configure(con)
        opts = "header = true, all_varchar = true, auto_detect = true"
        try:
            row = con.execute(
                f"WITH a AS (SELECT * FROM read_csv(?, {opts})), "  # noqa: S608 - fixed options
                f"b AS (SELECT * FROM read_csv(?, {opts})), "
                "only_a AS (SELECT * FROM a EXCEPT ALL SELECT * FROM b), "
                "only_b AS (SELECT * FROM b EXCEPT ALL SELECT * FROM a) "
                "SELECT (SELECT count(*) FROM only_a), (SELECT count(*) FROM only_b), "
                "(SELECT min(entity_id) FROM (SELECT entity_id FROM only_a UNION ALL "
                "SELECT entity_id FROM only_b))",
                [str(literal_path(pack)), str(literal_path(mine))],
            ).fetchall()[0]
        except duckdb.Error:
            return "the pack's file does not have the recomputed columns"
    only_pack, only_mine, first = row
    if not only_pack and not only_mine:
        return "same rows, different bytes (order or formatting)"
    return (
        f"{only_pack} rows of the pack are not recomputed, {only_mine} recomputed rows are not "
        f"in the pack (first entity: {first})"
    )


def next_period(key: str, every: str) -> str | None:
    """The period after ``key`` (``2026-01`` -> ``2026-02``), or None if it does not parse."""
    try:
        if every == "month":
            year, month = (int(x) for x in key.split("-"))
            return f"{year + month // 12:04d}-{month % 12 + 1:02d}"
        if every == "quarter":
            year_s, q_s = key.split("-Q")
            year, q = int(year_s), int(q_s)
            return f"{year + q // 4:04d}-Q{q % 4 + 1}"
        if every == "year":
            return f"{int(key) + 1:04d}"
        if every == "day":
            return (dt.date.fromisoformat(key) + dt.timedelta(days=1)).isoformat()
        if every == "week":
            year_s, w_s = key.split("-W")
            monday = dt.date.fromisocalendar(int(year_s), int(w_s), 1) + dt.timedelta(days=7)
            iso = monday.isocalendar()
            return f"{iso.year:04d}-W{iso.week:02d}"
    except ValueError:
        return None
    return None


# ----------------------------------------------------------------------------- the checks
def _check_signature(
    v: Verification, folder: Path, key: Ed25519PublicKey
) -> tuple[bytes | None, bool]:
    path = folder / ENVELOPE_FILE
    try:
        envelope = json.loads(path.read_bytes())
    except (OSError, json.JSONDecodeError) as exc:
        v.add("signature", False, f"{ENVELOPE_FILE} cannot be read ({exc})")
        return None, False
    result = check_envelope(envelope, key)
    v.add("signature", result.ok, result.cause)
    return result.payload, result.ok


def _check_statement(v: Verification, folder: Path, payload: bytes | None) -> dict[str, Any] | None:
    try:
        on_disk = (folder / STATEMENT_FILE).read_bytes()
    except OSError:
        on_disk = None
    data = payload if payload is not None else on_disk
    if data is None:
        v.add("statement", False, "neither the envelope nor statement.json can be read")
        return None
    try:
        statement = json.loads(data)
    except json.JSONDecodeError as exc:
        v.add("statement", False, f"the signed payload is not JSON ({exc.msg})")
        return None
    problems: list[str] = []
    if not isinstance(statement, dict):
        v.add("statement", False, "the signed payload is not a JSON object")
        return None
    if statement.get("_type") != STATEMENT_TYPE:
        problems.append(f"_type is {statement.get('_type')!r}")
    if statement.get("predicateType") != PREDICATE_TYPE:
        problems.append(f"predicateType is {statement.get('predicateType')!r}")
    if canonical_json(statement) != data:
        problems.append("the payload is not canonical JSON (RFC 8785)")
    if on_disk is None:
        problems.append("statement.json is missing")
    elif payload is not None and on_disk != payload:
        problems.append("statement.json differs from the signed payload")
    if not isinstance(statement.get("predicate"), dict):
        problems.append("it has no predicate")
    v.add(
        "statement",
        not problems,
        "; ".join(problems)
        if problems
        else f"in-toto v1 Statement, pack digest {_short(pack_digest(data))}",
    )
    return statement if isinstance(statement.get("predicate"), dict) else None


def _safe_name(name: str) -> bool:
    p = PurePosixPath(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and "\\" not in name


def _check_subjects(v: Verification, folder: Path, statement: dict[str, Any]) -> set[str]:
    """Recompute every subject's SHA-256; return the names that match."""
    signed: dict[str, str] = {}
    for s in statement.get("subject") or []:
        if isinstance(s, dict) and isinstance(s.get("digest"), dict):
            signed[str(s.get("name"))] = str(s["digest"].get("sha256", ""))
    good: set[str] = set()
    problems: list[str] = []
    for name, digest in sorted(signed.items()):
        if not _safe_name(name):
            problems.append(f"{name!r} is not a file name inside the pack")
            continue
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif file_sha256(path) != digest:
            problems.append(f"{name} was changed (its SHA-256 differs from the signed one)")
        else:
            good.add(name)
    missing = [r for r in REQUIRED if r not in signed]
    if missing:
        problems.append("the statement does not name " + ", ".join(missing))
    v.add(
        "pack files",
        not problems,
        "; ".join(problems) if problems else f"{len(good)} files match their signed SHA-256",
    )
    extra = [n for n in pack_files(folder) if n not in signed]
    if extra:
        v.note(
            "unsigned files",
            f"{len(extra)} file(s) not covered by the signature, ignored: "
            + ", ".join(extra[:5])
            + ("…" if len(extra) > 5 else ""),
        )
    return good


def _check_definition(v: Verification, folder: Path, pred: dict[str, Any]) -> str | None:
    claim = pred.get("definition") or {}
    path = folder / DEFINITION_FILE
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
        d = parse_definition(text, str(path))
    except (OSError, UnicodeDecodeError) as exc:
        v.add("definition", False, f"{DEFINITION_FILE} cannot be read ({exc})")
        return None
    except TruecountError as exc:
        v.add("definition", False, f"{DEFINITION_FILE} does not load: {exc.first_line}")
        return None
    problems = []
    if d.sha256 != claim.get("sha256"):
        problems.append(
            f"its canonical SHA-256 is {_short(d.sha256)}, the statement says "
            f"{_short(str(claim.get('sha256')))}"
        )
    if sha256_hex(data) != claim.get("source_sha256"):
        problems.append("its text differs from the text that was signed")
    try:
        canonical = (folder / CANONICAL_FILE).read_bytes()
    except OSError:
        canonical = None
    if canonical != d.canonical_text.encode("utf-8"):
        problems.append(f"{CANONICAL_FILE} is not the canonical text of {DEFINITION_FILE}")
    v.add(
        "definition",
        not problems,
        "; ".join(problems)
        if problems
        else f"{d.name} v{d.version}, SHA-256 {_short(d.sha256)} recomputed from the YAML",
    )
    return text


def _check_terms(v: Verification, folder: Path, pred: dict[str, Any]) -> tuple[bool, str | None]:
    claim = pred.get("terms")
    path = folder / TERMS_FILE
    if claim is None:
        if path.exists():
            v.add("terms", False, f"{TERMS_FILE} is in the pack but the statement names no terms")
            return False, None
        v.note("terms", "the reconciliation used no terms (no money)")
        return True, None
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
        terms = parse_terms(text, str(path))
    except (OSError, UnicodeDecodeError) as exc:
        v.add("terms", False, f"{TERMS_FILE} cannot be read ({exc})")
        return False, None
    except TruecountError as exc:
        v.add("terms", False, f"{TERMS_FILE} does not load: {exc.first_line}")
        return False, None
    problems = []
    recomputed = str(terms.summary()["sha256"])
    if recomputed != claim.get("sha256"):
        problems.append(
            f"their SHA-256 is {_short(recomputed)}, the statement says "
            f"{_short(str(claim.get('sha256')))}"
        )
    if sha256_hex(data) != claim.get("source_sha256"):
        problems.append("their text differs from the text that was signed")
    v.add(
        "terms",
        not problems,
        "; ".join(problems) if problems else f"SHA-256 {_short(recomputed)} recomputed",
    )
    return not problems, text


def _check_engine(v: Verification, pred: dict[str, Any]) -> None:
    claimed = pred.get("engine") or {}
    mine = engine_versions()
    differ = [
        f"{k} {claimed.get(k)} (now {mine[k]})" for k in sorted(mine) if claimed.get(k) != mine[k]
    ]
    if differ:
        v.note(
            "engine",
            "made with other versions: " + ", ".join(differ) + "; results are compared anyway",
        )
    else:
        v.add("engine", True, ", ".join(f"{k} {mine[k]}" for k in sorted(mine)))


def _signed_files(pred: dict[str, Any], role: str) -> list[tuple[str, str]]:
    return sorted(
        (str(f.get("name")), str(f.get("sha256")))
        for f in pred.get("files") or []
        if isinstance(f, dict) and f.get("role") == role
    )


def _compare_files(
    v: Verification,
    name: str,
    signed: list[tuple[str, str]],
    given: list[tuple[str, str]],
    basis: str,
) -> None:
    signed_digests = {d for _, d in signed}
    given_digests = {d for _, d in given}
    problems = [
        f"{n} is not one of the signed files (SHA-256 {_short(d)})"
        for n, d in given
        if d not in signed_digests
    ]
    problems += [
        f"{n} (SHA-256 {_short(d)}) was not given" for n, d in signed if d not in given_digests
    ]
    v.add(
        name,
        not problems,
        "; ".join(problems)
        if problems
        else f"{len(given)} file(s) match the signed SHA-256 ({basis})",
    )


def _check_event_files(v: Verification, pred: dict[str, Any], events: EventsInput) -> None:
    signed = _signed_files(pred, "events")
    if isinstance(events, Workspace):
        with events.connect(read_only=True) as con:
            rows = con.execute(
                f"SELECT DISTINCT file, sha256 FROM {INGEST_LOG_TABLE}"  # noqa: S608
            ).fetchall()
        given = sorted({(Path(str(f)).name, str(s)) for f, s in rows})
        _compare_files(
            v, "export files", signed, given, "from the workspace's ingest log, not re-read"
        )
        return
    paths = [events] if isinstance(events, str | Path) else list(events)
    given = sorted((Path(p).name, file_sha256(p)) for p in paths)
    _compare_files(v, "export files", signed, given, "hashed now")


def _invoice_for_replay(
    v: Verification,
    folder: Path,
    pred: dict[str, Any],
    invoice: Sequence[Path] | None,
    good: set[str],
) -> list[Path] | None:
    signed = _signed_files(pred, "invoice")
    copies = [folder / INVOICE_DIR / n for n, _ in signed]
    have_copies = bool(signed) and all(f"{INVOICE_DIR}/{n}" in good for n, _ in signed)
    if invoice:
        given = sorted((p.name, file_sha256(p)) for p in invoice)
        _compare_files(v, "invoice files", signed, given, "hashed now")
        # Same bytes as the pack's copies when that passed; the copies keep the names the
        # invoice lines' derived ids were made from.
        return copies if have_copies else list(invoice)
    if have_copies:
        v.add(
            "invoice files",
            True,
            f"the pack's copy of {len(copies)} file(s) is used; its SHA-256 is signed",
        )
        return copies
    v.add("invoice files", False, "the pack has no intact invoice copy; pass --invoice FILE")
    return None


def _same_bytes(a: Path, b: Path) -> bool:
    """Whether two files hold the same bytes, read 1 MiB at a time: a pack's CSV files run to
    a gigabyte at ten million entities, and both copies must not sit in memory at once."""
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            chunk = fa.read(1 << 20)
            if chunk != fb.read(1 << 20):
                return False
            if not chunk:
                return True


def _compare_bytes(v: Verification, name: str, pack: Path, mine: Path, what: str) -> bool:
    try:
        same = _same_bytes(pack, mine)
    except OSError:
        v.add(name, False, f"{pack.name} is missing from the pack")
        return False
    if same:
        v.add(name, True, what)
        return True
    if pack.suffix == ".csv":
        detail = _csv_difference(pack, mine)
    elif name == RECONCILIATION_FILE:
        try:
            detail = (
                first_difference(json.loads(pack.read_bytes()), json.loads(mine.read_bytes()))
                or "different bytes"
            )
        except json.JSONDecodeError:
            detail = "the pack's file is not JSON"
    else:
        detail = _first_line_difference(pack.read_bytes(), mine.read_bytes())
    v.add(name, False, f"differs from the recomputed file: {detail}")
    return False


def _check_tree(v: Verification, name: str, claim: Any, root: str, size: int, what: str) -> None:
    claim = claim if isinstance(claim, dict) else {}
    ok = claim.get("merkle_root") == root and claim.get("tree_size") == size
    v.add(
        name,
        ok,
        f"recomputed {_short(root)} over {size:,} {what}"
        if ok
        else f"recomputed {_short(root)} over {size:,} {what}; the statement says "
        f"{_short(str(claim.get('merkle_root')))} over {claim.get('tree_size')}",
    )


def _check_replay(
    v: Verification, folder: Path, pred: dict[str, Any], mine: Path, result: RunResult
) -> None:
    query_claim = (pred.get("query") or {}).get("sha256")
    same_sql = _compare_bytes(
        v,
        "query.sql",
        folder / QUERY_FILE,
        mine / QUERY_FILE,
        "the definition compiles to exactly this SQL",
    )
    if same_sql and query_claim != file_sha256(mine / QUERY_FILE):
        v.add("query.sql", False, "the statement names another SQL digest")
    ev = pred.get("events") or {}
    _check_tree(v, "event root", ev, result.events.root, result.events.size, "leaves")
    claimed_periods = (pred.get("period") or {}).get("covered")
    v.add(
        "periods",
        claimed_periods == result.periods,
        ", ".join(result.periods)
        if claimed_periods == result.periods
        else f"recomputed {result.periods}, the statement says {claimed_periods}",
    )
    _compare_bytes(
        v,
        RECONCILIATION_FILE,
        folder / RECONCILIATION_FILE,
        mine / RECONCILIATION_FILE,
        "re-run count and reconciliation give the same figures",
    )
    totals = summary(result.recon)
    claimed = (pred.get("results") or {}).get("totals")
    diff = first_difference(claimed, totals)
    v.add(
        "totals",
        diff is None,
        f"billed {totals['vendor_billed']:,}, counted {totals['buyer_counted']:,}, "
        f"credit {totals['credit']}"
        if diff is None
        else f"the statement's totals differ: {diff}",
    )
    _compare_bytes(
        v,
        ENTITIES_FILE,
        folder / ENTITIES_FILE,
        mine / ENTITIES_FILE,
        f"{result.entity_rows or result.entities.size:,} entities recomputed",
    )
    _check_tree(
        v, "entity root", pred.get("entities"), result.entities.root, result.entities.size, "leaves"
    )
    _compare_bytes(
        v,
        VERDICTS_FILE,
        folder / VERDICTS_FILE,
        mine / VERDICTS_FILE,
        f"{result.verdict_rows or result.verdicts.size:,} verdicts recomputed",
    )
    _check_tree(
        v,
        "verdict root",
        pred.get("verdicts"),
        result.verdicts.root,
        result.verdicts.size,
        "leaves",
    )
    _check_columns(v, pred, result)


def _check_columns(v: Verification, pred: dict[str, Any], result: RunResult) -> None:
    """The signed column names of each CSV tree against the recomputed header rows.

    A row leaf holds cells, not names, so the names are signed apart (pack format 2). A
    format 1 statement signs none; its header rows are covered by the files' SHA-256 only,
    which the byte comparison above already checks, so it is accepted with a note.
    """
    claims = {
        ENTITIES_FILE: ((pred.get("entities") or {}).get("columns"), result.entity_columns),
        VERDICTS_FILE: ((pred.get("verdicts") or {}).get("columns"), result.verdict_columns),
    }
    if all(signed is None for signed, _ in claims.values()):
        v.note(
            "column names",
            "the statement (pack format 1) signs no column lists; the header rows are "
            "checked through the files' bytes only",
        )
        return
    problems = [
        f"{file}: the statement signs {signed}, recomputed {mine}"
        for file, (signed, mine) in claims.items()
        if signed != mine
    ]
    v.add(
        "column names",
        not problems,
        "; ".join(problems) if problems else "the signed column lists are the recomputed headers",
    )


def _check_chain(
    v: Verification,
    key: Ed25519PublicKey,
    pred: dict[str, Any],
    previous: Path | None,
    periods: list[str],
) -> None:
    claim = pred.get("previous")
    if previous is None:
        if isinstance(claim, dict):
            v.note(
                "chain",
                f"names a previous pack {_short(str(claim.get('sha256')))}; not checked "
                "(pass --previous PACK)",
            )
        return
    if not isinstance(claim, dict):
        v.add("chain", False, "this pack names no previous pack")
        return
    try:
        data, statement = read_statement(previous)
    except TruecountError as exc:
        v.add("chain", False, exc.first_line)
        return
    problems: list[str] = []
    digest = pack_digest(data)
    if digest != claim.get("sha256"):
        problems.append(
            f"the given previous pack has digest {_short(digest)}, this pack names "
            f"{_short(str(claim.get('sha256')))}: it is not the pack this one follows"
        )
    try:
        envelope = json.loads((previous / ENVELOPE_FILE).read_bytes())
    except (OSError, json.JSONDecodeError):
        envelope = None
    env = check_envelope(envelope, key)
    if not env.ok or env.payload != data:
        problems.append("the previous pack's signature does not verify with the given key")
    prev_pred = statement.get("predicate") or {}
    prev_period = prev_pred.get("period") or {}
    covered = [str(p) for p in prev_period.get("covered") or []]
    every = str((pred.get("period") or {}).get("every"))
    if covered and periods:
        last, first = covered[-1], periods[0]
        if first <= last:
            problems.append(
                f"the periods overlap: the previous pack runs to {last}, this from {first}"
            )
        elif next_period(last, every) != first:
            problems.append(f"a gap: the previous pack ends at {last}, this one starts at {first}")
    if prev_period.get("every") is not None and prev_period.get("every") != every:
        problems.append(f"the previous pack counts {prev_period.get('every')} periods")
    v.add(
        "chain",
        not problems,
        "; ".join(problems)
        if problems
        else f"follows pack {_short(digest)} ({covered[0] if covered else '?'} to "
        f"{covered[-1] if covered else '?'})",
    )


def _row_leaf_format(pred: dict[str, Any]) -> str:
    """The CSV trees' leaf format a pack names (packs of formats 1 to 3: one leaf per row).

    Both CSV trees of a pack share it; a pack naming two different ones is answered with the
    verdicts tree's, and the other tree's root then fails its check.
    """
    named = (pred.get("verdicts") or {}).get("leaf_format")
    return str(named) if named is not None else ROW_LEAF_FORMAT


def _event_leaf_format(pred: dict[str, Any]) -> str:
    """The event leaf format a pack names; packs of formats 1 and 2 name one leaf per event.

    A name this version does not know is passed on, so the replay fails with it named.
    """
    named = (pred.get("events") or {}).get("leaf_format")
    return str(named) if named is not None else EVENT_LEAF_FORMAT


def verify_pack(
    folder: Path,
    key: Ed25519PublicKey,
    events: EventsInput,
    invoice: Sequence[Path] | None = None,
    previous: Path | None = None,
    threads: int | None = None,
    meter_key: Ed25519PublicKey | None = None,
) -> Verification:
    """Run every check on the pack in ``folder`` against ``events`` (files or a workspace)."""
    v = Verification(str(folder))
    payload, _signed = _check_signature(v, folder, key)
    statement = _check_statement(v, folder, payload)
    if statement is None:
        return v
    pred: dict[str, Any] = statement["predicate"]
    good = _check_subjects(v, folder, statement)
    definition_text = _check_definition(v, folder, pred)
    _terms_ok, terms_text = _check_terms(v, folder, pred)
    _check_engine(v, pred)
    try:
        _check_event_files(v, pred, events)
    except (OSError, duckdb.Error) as exc:
        v.add("export files", False, f"cannot be read: {exc}")
    replay_invoice = _invoice_for_replay(v, folder, pred, invoice, good)
    periods = [str(p) for p in (pred.get("period") or {}).get("covered") or []]
    if definition_text is None or replay_invoice is None:
        v.add("replay", False, "not run: the definition or the invoice is unusable")
    else:
        with tempfile.TemporaryDirectory(prefix="truecount-verify-") as tmp:
            mine = Path(tmp)
            try:
                result = run(
                    RunInputs(
                        definition_text=definition_text,
                        events=events,
                        invoice=tuple(replay_invoice),
                        terms_text=terms_text if pred.get("terms") is not None else None,
                        as_of=str(pred.get("as_of")),
                        definition_file=str(folder / DEFINITION_FILE),
                        terms_file=str(folder / TERMS_FILE),
                        threads=threads,
                        event_leaf=_event_leaf_format(pred),
                        row_leaf=_row_leaf_format(pred),
                    ),
                    mine,
                )
            except TruecountError as exc:
                v.add("replay", False, f"the count or reconciliation failed: {exc.first_line}")
            else:
                _check_replay(v, folder, pred, mine, result)
                periods = result.periods
    _check_chain(v, key, pred, previous, periods)
    for name, ok, detail in check_citation(folder, pred, events, meter_key):  # a cited tree head
        if ok is None:
            v.note(name, detail)
        else:
            v.add(name, ok, detail)
    return v
