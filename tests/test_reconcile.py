"""Reconciliation: each cell by hand, the one-cell-per-row invariant, self-reconciliation, and an
independent pandas computation of the cells (written from docs/reconcile.md, not from the code)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from truecount.billing.reconcile import CELLS, Reconciliation, period_key, reconcile
from truecount.errors import InputError

COND = ("not_reopened", "satisfied")


def verdicts(rows: list[tuple[str, str, str, bool | None, bool | None]]) -> pa.Table:
    """rows: entity, period, status, cond_not_reopened, cond_satisfied."""
    return pa.table(
        {
            "entity_id": pa.array([r[0] for r in rows], pa.string()),
            "anchor_event_id": pa.array([f"e-{r[0]}" for r in rows], pa.string()),
            "anchor_ts": pa.array(
                [dt.datetime(int(r[1][:4]), int(r[1][5:7]), 10) for r in rows], pa.timestamp("us")
            ),
            "period": pa.array([r[1] for r in rows], pa.string()),
            "status": pa.array([r[2] for r in rows], pa.string()),
            "quantity": pa.array([1.0 if r[2] == "counted" else 0.0 for r in rows], pa.float64()),
            "reason": pa.array([None for _ in rows], pa.string()),
            "cond_not_reopened": pa.array([r[3] for r in rows], pa.bool_()),
            "cond_satisfied": pa.array([r[4] for r in rows], pa.bool_()),
        }
    )


def invoice(rows: list[tuple[str, str]], amount: str = "1.00") -> pa.Table:
    """rows: entity, billed period."""
    return pa.table(
        {
            "line_id": pa.array([f"L{i}" for i in range(len(rows))], pa.string()),
            "entity_id": pa.array([r[0] for r in rows], pa.string()),
            "period": pa.array([r[1] for r in rows], pa.string()),
            "amount": pa.array([Decimal(amount)] * len(rows), pa.decimal128(18, 6)),
        }
    )


V = verdicts(
    [
        ("A", "2026-01", "counted", True, True),
        ("B", "2026-01", "not_counted", True, False),
        ("C", "2026-01", "pending", None, None),
        ("D", "2026-01", "counted", True, True),
        ("E", "2026-02", "counted", True, True),
        ("F", "2026-01", "counted", True, True),
        ("G", "2026-01", "not_counted", False, False),
        ("H", "2026-02", "counted", True, True),
    ]
)
KNOWN = ["A", "B", "C", "D", "E", "F", "G", "H", "N"]


def test_each_cell_by_hand() -> None:
    inv = invoice(
        [
            ("A", "2026-01"),
            ("B", "2026-01"),
            ("C", "2026-01"),
            ("D", "2026-01"),
            ("D", "2026-01"),
            ("E", "2026-01"),
            ("Z", "2026-01"),
            ("G", "2026-01"),
            ("N", "2026-01"),
            ("Z", "2026-02"),
        ]
    )
    r = reconcile(V, inv, known_entities=KNOWN)
    assert r.entities is not None
    cells = dict(
        zip(
            r.entities.column("entity_id").to_pylist(),
            r.entities.column("cell").to_pylist(),
            strict=True,
        )
    )
    assert cells == {
        "A": "agreed",
        "B": "vendor_only",
        "C": "pending",
        "D": "duplicate",
        "E": "period_mismatch",
        "F": "buyer_only",
        "G": "vendor_only",
        "Z": "unknown",
        "N": "vendor_only",
        "H": "buyer_only",
    }
    reasons = dict(
        zip(
            r.entities.column("entity_id").to_pylist(),
            r.entities.column("reason").to_pylist(),
            strict=True,
        )
    )
    # first failing condition in definition order; no anchor for an entity without a verdict
    assert reasons["B"] == "satisfied" and reasons["G"] == "not_reopened"
    assert reasons["N"] == "no_anchor"
    assert dict(r.reasons) == {"not_reopened": 1, "satisfied": 2, "no_anchor": 1}
    t = r.totals
    assert (t.vendor_billed, t.vendor_lines) == (8, 10)
    # buyer_counted = agreed + buyer_only + period_mismatch + counted duplicates
    assert t.buyer_counted == t.agreed + t.buyer_only + t.period_mismatch + t.duplicate_counted
    assert t.buyer_counted == 5  # A D E F H
    steps = r.waterfall()
    running = steps[0].entities
    for s in steps[1:]:
        if s.kind == "minus":
            running -= s.entities
        elif s.kind == "plus":
            running += s.entities
        else:
            assert s.entities == running, s
    assert steps[-1].entities == t.buyer_counted


def test_unknown_without_known_entities() -> None:
    r = reconcile(V, invoice([("N", "2026-01"), ("A", "2026-01")]))
    assert r.totals.unknown == 1 and r.totals.agreed == 1


def test_ids_in_another_format_are_reported_not_guessed() -> None:
    inv = invoice([(" A", "2026-01"), ("b", "2026-01"), ("TKT-D", "2026-01"), ("F", "2026-01")])
    with pytest.raises(InputError) as err:
        reconcile(
            verdicts(
                [
                    ("A", "2026-01", "counted", True, True),
                    ("B", "2026-01", "counted", True, True),
                    ("D", "2026-01", "counted", True, True),
                    ("F", "2026-01", "counted", True, True),
                ]
            ),
            inv,
            known_entities=["A", "B", "D", "F"],
        )
    text = str(err.value)
    assert "' A'" in text and "whitespace" in text
    assert "'b'" in text and "case" in text
    assert "'TKT-D'" in text and "prefix" in text


def test_bad_period_key_and_period_outside_export() -> None:
    with pytest.raises(InputError, match="not a month key"):
        reconcile(V, invoice([("A", "Jan 2026")]))
    with pytest.raises(InputError, match="outside every period"):
        reconcile(V, invoice([("A", "2027-05")]))


def test_period_key_python() -> None:
    ts = dt.datetime(2026, 1, 31, 23, 30)
    assert period_key(ts, "month", "UTC") == "2026-01"
    assert period_key(ts, "month", "Europe/Berlin") == "2026-02"
    assert period_key(ts, "quarter") == "2026-Q1"
    assert period_key(dt.datetime(2027, 1, 1), "week") == "2026-W53"
    assert period_key(ts, "day", "America/New_York") == "2026-01-31"
    assert period_key(ts, "year") == "2026"


# ------------------------------------------------------------------ property tests
STATUSES = ("counted", "not_counted", "pending", "excluded")
PERIODS = ("2026-01", "2026-02", "2026-03")


@st.composite
def scenario(draw: st.DrawFn) -> tuple[pa.Table, pa.Table, list[str]]:
    n = draw(st.integers(1, 30))
    ids = [f"T{i}" for i in range(n)]
    vrows = []
    for e in ids:
        if draw(st.booleans()) or len(vrows) == 0:
            status = draw(st.sampled_from(STATUSES))
            a = draw(st.booleans()) if status == "not_counted" else True
            b = draw(st.booleans()) if status == "not_counted" and a else (status != "not_counted")
            vrows.append((e, draw(st.sampled_from(PERIODS)), status, a, b))
    # billed periods stay inside the export's periods (outside is bad input, tested above)
    covered = [p for p in PERIODS if min(r[1] for r in vrows) <= p <= max(r[1] for r in vrows)]
    irows = []
    for e in [*ids, "X1", "X2"]:
        for _ in range(draw(st.integers(0, 3))):
            irows.append((e, draw(st.sampled_from(covered))))
    if not irows:
        irows.append((ids[0], covered[0]))
    known = [e for e in ids if draw(st.booleans()) or e in {r[0] for r in vrows}]
    return verdicts(vrows), invoice(irows), known


def reference_cells(v: pd.DataFrame, inv: pd.DataFrame, known: set[str]) -> dict[str, str]:
    """docs/reconcile.md, re-implemented with pandas group-bys and dict lookups."""
    lines = inv.groupby("entity_id").agg(n=("line_id", "size"), period=("period", "min"))
    status = v.set_index("entity_id")
    scope_lo, scope_hi = inv["period"].min(), inv["period"].max()
    out: dict[str, str] = {}
    for e, row in lines.iterrows():
        has_v = e in status.index
        if not has_v and e not in known:
            out[str(e)] = "unknown"
        elif row["n"] > 1:
            out[str(e)] = "duplicate"
        elif not has_v or status.loc[e, "status"] in ("not_counted", "excluded"):
            out[str(e)] = "vendor_only"
        elif status.loc[e, "status"] == "pending":
            out[str(e)] = "pending"
        elif row["period"] != status.loc[e, "period"]:
            out[str(e)] = "period_mismatch"
        else:
            out[str(e)] = "agreed"
    counted = v[(v["status"] == "counted") & (v["period"] >= scope_lo) & (v["period"] <= scope_hi)]
    for e in counted["entity_id"]:
        out.setdefault(str(e), "buyer_only")
    return out


@settings(max_examples=60, deadline=None)
@given(scenario())
def test_every_row_lands_in_exactly_one_cell_and_matches_pandas(
    data: tuple[pa.Table, pa.Table, list[str]],
) -> None:
    v, inv, known = data
    r = reconcile(v, inv, known_entities=known)
    assert r.entities is not None
    got = dict(
        zip(
            r.entities.column("entity_id").to_pylist(),
            r.entities.column("cell").to_pylist(),
            strict=True,
        )
    )
    assert len(got) == r.entities.num_rows  # one row per entity
    assert set(got.values()) <= set(CELLS)
    billed = set(inv.column("entity_id").to_pylist())
    counted_in_scope = {
        e
        for e, p, s in zip(
            v.column("entity_id").to_pylist(),
            v.column("period").to_pylist(),
            v.column("status").to_pylist(),
            strict=True,
        )
        if s == "counted"
        and min(inv.column("period").to_pylist()) <= p <= max(inv.column("period").to_pylist())
    }
    assert set(got) == billed | counted_in_scope  # every invoice line's entity, every counted
    assert got == reference_cells(v.to_pandas(), inv.to_pandas(), set(known))
    t = r.totals
    assert sum(getattr(t, c) for c in CELLS) == len(got)
    assert t.vendor_billed == len(billed)
    assert t.vendor_lines == inv.num_rows
    assert t.buyer_counted == t.agreed + t.buyer_only + t.period_mismatch + t.duplicate_counted


@settings(max_examples=40, deadline=None)
@given(scenario())
def test_invoice_made_from_the_count_reconciles_to_zero(
    data: tuple[pa.Table, pa.Table, list[str]],
) -> None:
    v, _, _ = data
    df = v.to_pandas()
    counted = df[df["status"] == "counted"]
    if counted.empty:
        return
    inv = invoice(list(zip(counted["entity_id"], counted["period"], strict=True)), "0.99")
    r = reconcile(v, inv)
    t = r.totals
    assert t.agreed == t.vendor_billed == t.buyer_counted == len(counted)
    for c in CELLS:
        if c != "agreed":
            assert getattr(t, c) == 0, c
    assert t.difference_pct == 0.0 and not r.beyond_tolerance
    assert t.amount_billed == Decimal("0.99") * len(counted)


def cells_by_period(
    r: Reconciliation, cells: dict[str, str], inv_df: pd.DataFrame, v_df: pd.DataFrame
) -> bool:
    """The reconciliation's cells per period equal pandas': each entity counted once, in its
    first billed period, else its anchor's."""
    first_billed = inv_df.groupby("entity_id")["period"].min().to_dict()
    anchor = dict(zip(v_df["entity_id"], v_df["period"], strict=True))
    expected: dict[tuple[str, str], int] = {}
    for e, cell in cells.items():
        key = (first_billed.get(e) or anchor[e], cell)
        expected[key] = expected.get(key, 0) + 1
    got = {(p.period, c): getattr(p, c) for p in r.periods for c in CELLS if getattr(p, c)}
    assert got == expected
    return True


@settings(max_examples=60, deadline=None)
@given(scenario())
def test_counts_from_the_join_equal_counts_from_the_cell_table_and_pandas(
    data: tuple[pa.Table, pa.Table, list[str]],
) -> None:
    """Without a dispute pack the counts are aggregated straight from the join; they must be
    the very numbers the per-entity cell table gives, and pandas' per-period cells."""
    v, inv, known = data
    with_cells = reconcile(v, inv, known_entities=known)
    direct = reconcile(v, inv, known_entities=known, fetch_entities=False)
    assert direct.entities is None
    assert direct.periods == with_cells.periods
    assert direct.totals == with_cells.totals
    assert direct.reasons == with_cells.reasons
    assert direct.primary_reasons == with_cells.primary_reasons

    cells = reference_cells(v.to_pandas(), inv.to_pandas(), set(known))
    inv_df = inv.to_pandas()
    assert cells_by_period(direct, cells, inv_df, v.to_pandas())
    lines_per_period = inv_df.groupby("period").size().to_dict()
    for p in direct.periods:
        assert p.vendor_lines == lines_per_period.get(p.period, 0)
        assert p.amount_billed == Decimal("1.00") * lines_per_period.get(p.period, 0)


def test_many_billed_entities_without_a_verdict_match_pandas() -> None:
    """Thousands of billed entities without a verdict, some in the export and some not, billed
    once or more over several periods, beside verdicts with reasons of their own. The counts
    without a cell table collect these ids per group and sort them afterwards; pandas sorts
    every entity by hand, and the cell-table path must agree with both."""
    rng = random.Random(15)
    months = ("2026-01", "2026-02", "2026-03", "2026-04")
    vrows, reasons_of = [], {}
    for i in range(1500):
        status = rng.choice(STATUSES)
        a = rng.random() < 0.6 if status == "not_counted" else True
        b = rng.random() < 0.5 if status == "not_counted" else status != "not_counted"
        vrows.append((f"V{i:05d}", rng.choice(months), status, a, b))
        if status in ("not_counted", "excluded") and rng.random() < 0.5:
            reasons_of[f"V{i:05d}"] = rng.choice(("spam", "merged"))
    v = verdicts(vrows)
    v = v.set_column(
        v.schema.get_field_index("reason"),
        "reason",
        pa.array([reasons_of.get(r[0]) for r in vrows], pa.string()),
    )
    billed = [f"V{i:05d}" for i in range(0, 1500, 2)] + [f"N{i:05d}" for i in range(4000)]
    irows = [(e, rng.choice(months)) for e in billed for _ in range(rng.choice((1, 1, 1, 2, 3)))]
    rng.shuffle(irows)
    inv = invoice(irows)
    inv = inv.set_column(
        inv.schema.get_field_index("amount"),
        "amount",
        pa.array([Decimal(rng.randint(1, 999)) / 100 for _ in irows], pa.decimal128(18, 6)),
    )
    known = [e for e in billed if e.startswith("V") or rng.random() < 0.7]

    direct = reconcile(v, inv, known_entities=known, fetch_entities=False)
    with_cells = reconcile(v, inv, known_entities=known)
    assert direct.periods == with_cells.periods and direct.reasons == with_cells.reasons

    inv_df, v_df = inv.to_pandas(), v.to_pandas()
    cells = reference_cells(v_df, inv_df, set(known))
    no_verdict = {e for e in billed if e.startswith("N")}
    assert sum(1 for e in no_verdict if cells[e] == "unknown") > 1000
    assert sum(1 for e in no_verdict if cells[e] != "unknown") > 2000
    assert cells_by_period(direct, cells, inv_df, v_df)
    by_period = inv_df.groupby("period")["amount"].agg(["size", "sum"])
    for p in direct.periods:
        assert p.vendor_lines == by_period["size"].get(p.period, 0)
        assert p.amount_billed == by_period["sum"].get(p.period, Decimal(0))

    # reasons: every failing condition of a vendor_only verdict, then the other reasons
    status = {r["entity_id"]: r for r in v.to_pylist()}
    want: dict[str, int] = {}
    for e, cell in cells.items():
        if cell != "vendor_only":
            continue
        if e not in status:
            want["no_anchor"] = want.get("no_anchor", 0) + 1
            continue
        row = status[e]
        failing = [c for c in COND if row[f"cond_{c}"] is not True]
        if row["status"] == "not_counted" and failing:
            for c in failing:
                want[c] = want.get(c, 0) + 1
        else:
            other = row["reason"] if row["reason"] is not None else row["status"]
            want[other] = want.get(other, 0) + 1
    assert dict(direct.reasons) == want


@pytest.mark.parametrize("n_conditions", [1, 9, 17, 33, 70])
def test_failing_conditions_counted_for_any_number_of_conditions(n_conditions: int) -> None:
    """The failing-condition mask takes a wider integer type as conditions are added; every
    width must count each failing condition of each vendor_only entity, as pandas does."""
    rng = random.Random(n_conditions)
    names = [f"c{i:02d}" for i in range(n_conditions)]
    rows = []
    for i in range(300):
        status = rng.choice(("counted", "not_counted", "not_counted", "excluded"))
        conds = [status != "not_counted" or rng.random() < 0.8 for _ in names]
        rows.append({"entity_id": f"E{i}", "period": "2026-01", "status": status} | {
            f"cond_{n}": c for n, c in zip(names, conds, strict=True)
        })  # fmt: skip
    v = pa.Table.from_pylist(rows)
    inv = invoice([(r["entity_id"], "2026-01") for r in rows[::2]])
    direct = reconcile(v, inv, fetch_entities=False)
    with_cells = reconcile(v, inv)
    want: dict[str, int] = {}
    for r in rows[::2]:
        if r["status"] == "excluded":
            want["excluded"] = want.get("excluded", 0) + 1
        elif r["status"] == "not_counted":
            failing = [n for n in names if not r[f"cond_{n}"]]
            for n in failing:
                want[n] = want.get(n, 0) + 1
            if not failing:
                want["not_counted"] = want.get("not_counted", 0) + 1
    assert dict(direct.reasons) == want
    assert direct.reasons == with_cells.reasons
    assert direct.primary_reasons == with_cells.primary_reasons


@pytest.mark.parametrize("fetch_entities", [True, False])
@pytest.mark.parametrize("status", ["resolved", None, "Counted"])
def test_a_status_no_count_writes_is_refused_not_agreed(
    status: str | None, fetch_entities: bool
) -> None:
    # Before the check, any status other than not_counted, excluded and pending fell through
    # the cell rules to 'agreed', so a verdict table with its own words billed everything.
    v = verdicts([("A", "2026-01", "counted", True, True), ("B", "2026-01", "counted", True, True)])
    statuses = v.column("status").to_pylist()
    statuses[1] = status
    v = v.set_column(v.schema.get_field_index("status"), "status", pa.array(statuses, pa.string()))
    with pytest.raises(InputError) as caught:
        reconcile(v, invoice([("A", "2026-01"), ("B", "2026-01")]), fetch_entities=fetch_entities)
    text = str(caught.value)
    assert "column 'status'" in text
    assert ("NULL" if status is None else repr(status)) in text
    assert "(1 row)" in text
    assert "counted, not_counted, pending, excluded" in text


@pytest.mark.parametrize("distinct", [3, 1500])
def test_verdicts_own_reasons_reach_the_cells_as_written(distinct: int) -> None:
    # The cell table keeps the reason as an enumeration of every reason it can hold, and as
    # text past a thousand distinct ones; either way each entity's reason is the verdict's own
    # (when no condition fails) or the first failing condition, as written.
    rows, reasons = [], []
    for i in range(3000):
        status = ("not_counted", "excluded", "counted")[i % 3]
        rows.append((f"T{i:05d}", "2026-01", status, True, i % 6 != 3))
        reasons.append(None if status == "counted" else f"why 'it' — {i % distinct}")
    v = verdicts(rows)
    v = v.set_column(v.schema.get_field_index("reason"), "reason", pa.array(reasons, pa.string()))
    inv = invoice([(f"T{i:05d}", "2026-01") for i in range(3000)] + [("NOPE", "2026-01")])
    r = reconcile(v, inv, known_entities=["NOPE"])
    got = r.entities.to_pandas().set_index("entity_id")
    assert got.loc["NOPE", "reason"] == "no_anchor" and got.loc["NOPE", "cell"] == "vendor_only"
    for i in range(3000):
        e, status = f"T{i:05d}", rows[i][2]
        if status == "counted":
            expected = None
        elif status == "not_counted" and i % 6 == 3:
            expected = "satisfied"  # the first condition that fails
        else:
            expected = reasons[i]
        assert (got.loc[e, "reason"] if pd.notna(got.loc[e, "reason"]) else None) == expected, e
