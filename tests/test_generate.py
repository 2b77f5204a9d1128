"""The demo generator: deterministic, canonical, calibrated, and its truth table is the truth.

The truth table is derived inside the generator from latent variables. These tests recompute
every label from the *generated events and invoice* with plain pandas (written here from the
case's definition, sharing no code with the generator) and require the two to agree ticket by
ticket, so a generator bug cannot hide behind its own bookkeeping.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from truecount.demo.generate import (
    BLOCK_TICKETS,
    CELLS,
    SupportData,
    SupportScenario,
    generate,
    write_parquet_chunks,
)
from truecount.ingest.canonical import CANONICAL_COLUMNS

ARROW_TYPE = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "TIMESTAMP": pa.timestamp("us"),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
}


@pytest.fixture(scope="module")
def demo() -> SupportData:
    return generate(SupportScenario())


@pytest.fixture(scope="module")
def small() -> SupportData:
    return generate(SupportScenario(seed=11, tickets=6_000, months=2, start=date(2025, 11, 1)))


def buyer_labels(events: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """The case's definition, by hand: first AI close, no reopen in 14 days, rated 4+ in 7 days."""
    ev = events.sort_values(["entity_id", "ts", "seq"])
    closes = ev[ev["type"] == "closed"]
    ai = closes[closes["actor"] == "ai"].groupby("entity_id")["ts"].first().rename("anchor")
    first_close = closes.groupby("entity_id")["ts"].first().rename("first_close")
    out = pd.DataFrame(index=pd.Index(ev["entity_id"].unique(), name="entity_id"))
    out = out.join(ai).join(first_close)

    def any_in_window(kind: pd.DataFrame, days: int) -> pd.Series:
        joined = kind.join(out["anchor"], on="entity_id").dropna(subset=["anchor"])
        inside = (joined["ts"] >= joined["anchor"]) & (
            joined["ts"] <= joined["anchor"] + timedelta(days=days)
        )
        return inside.groupby(joined["entity_id"]).any()

    reopened = any_in_window(ev[ev["type"] == "reopened"], 14)
    rated = any_in_window(ev[(ev["type"] == "rated") & (ev["value"] >= 4)], 7)
    has_anchor = out["anchor"].notna()
    out["reopened_within_14d"] = reopened.reindex(out.index, fill_value=False).where(has_anchor)
    out["rated_4plus_within_7d"] = rated.reindex(out.index, fill_value=False).where(has_anchor)
    in_period = has_anchor & (out["anchor"] >= start) & (out["anchor"] < end)
    out["buyer_counts"] = (
        in_period
        & (out["reopened_within_14d"] == False)  # noqa: E712 (object column with NaN)
        & (out["rated_4plus_within_7d"] == True)  # noqa: E712
    )
    out["closed_in_period"] = (out["first_close"] >= start) & (out["first_close"] < end)
    return out


def span(sc: SupportScenario) -> tuple[datetime, datetime]:
    return datetime.combine(sc.start, datetime.min.time()), datetime.combine(
        sc.end, datetime.min.time()
    )


def test_same_seed_same_data_other_seed_other_data() -> None:
    sc = SupportScenario(seed=3, tickets=3_000)
    a, b = generate(sc), generate(sc)
    assert a.events.equals(b.events)
    assert a.invoice.equals(b.invoice)
    assert a.truth.equals(b.truth)
    c = generate(replace(sc, seed=4))
    assert not a.events.equals(c.events)


def test_events_have_the_canonical_schema(small: SupportData) -> None:
    schema = small.events.schema
    assert schema.names == list(CANONICAL_COLUMNS)
    for name, sql_type in CANONICAL_COLUMNS.items():
        assert schema.field(name).type == ARROW_TYPE[sql_type], name
    ev = small.events.to_pandas()
    assert ev["event_id"].is_unique
    assert ev[["entity_id", "ts", "type", "source", "recorded_at", "seq"]].notna().all().all()
    assert (ev["recorded_at"] >= ev["ts"]).all()
    assert set(ev["type"]) <= {"created", "message", "escalated", "closed", "reopened", "rated"}
    assert set(ev["actor"]) <= {"customer", "ai", "human"}
    ratings = ev[ev["type"] == "rated"]["value"]
    assert ratings.between(1, 5).all() and (ratings == ratings.round()).all()
    assert ev[ev["type"] != "rated"]["value"].isna().all()
    assert ev[ev["type"] == "created"]["attrs"].str.startswith('{"channel":').all()
    # seq numbers each ticket's events 1..n in time order.
    ordered = ev.sort_values(["entity_id", "seq"])
    assert (ordered.groupby("entity_id")["seq"].diff().dropna() == 1).all()
    assert (ordered.groupby("entity_id")["ts"].diff().dropna() > pd.Timedelta(0)).all()
    assert ordered.groupby("entity_id")["type"].first().eq("created").all()


def test_invoice_shape(small: SupportData) -> None:
    inv = small.invoice.to_pandas()
    assert list(inv.columns) == [
        "line_id",
        "entity_id",
        "billed_at",
        "period",
        "amount",
        "currency",
    ]
    assert inv["line_id"].is_unique
    assert (inv["amount"] == "5.00").all() and (inv["currency"] == "USD").all()
    assert inv["period"].str.fullmatch(r"\d{4}-\d{2}").all()


@pytest.mark.parametrize("which", ["small", "demo"])
def test_truth_agrees_with_an_independent_computation(
    which: str, request: pytest.FixtureRequest
) -> None:
    data: SupportData = request.getfixturevalue(which)
    sc = data.scenario
    start, end = span(sc)
    ev = data.events.to_pandas()
    inv = data.invoice.to_pandas()
    truth = data.truth.to_pandas().set_index("entity_id")
    mine = buyer_labels(ev, start, end)

    exported = truth[truth["in_export"]]
    assert set(mine.index) == set(exported.index)
    mine = mine.reindex(exported.index)
    pd.testing.assert_series_equal(
        mine["anchor"], exported["first_ai_close_ts"], check_names=False, check_dtype=False
    )
    for label in ("reopened_within_14d", "rated_4plus_within_7d"):
        has = mine["anchor"].notna()
        assert (mine.loc[has, label].astype(bool) == exported.loc[has, label].astype(bool)).all()
        assert exported.loc[~has, label].isna().all()
    assert (mine["buyer_counts"] == exported["buyer_counts"]).all()
    assert not truth.loc[~truth["in_export"], "buyer_counts"].any()
    assert (mine["closed_in_period"] == exported["closed_in_period"]).all()

    # The invoice is the vendor's rule: each ticket first closed in the span, billed once.
    lines = inv.groupby("entity_id").size()
    assert set(lines.index) == set(truth.index[truth["vendor_bills"]])
    assert (truth["invoice_lines"].reindex(lines.index) == lines).all()
    assert truth.loc[truth["invoice_lines"] == 0, "vendor_bills"].eq(False).all()

    # Cells, recomputed from the events and the invoice alone.
    billed = truth.index.isin(lines.index)
    in_events = truth.index.isin(mine.index)
    counted = truth.index.isin(mine.index[mine["buyer_counts"]])
    expected = pd.Series("neither", index=truth.index)
    expected[billed & ~in_events] = "unknown"
    expected[billed & in_events & ~counted] = "vendor_only"
    expected[billed & counted] = "agreed"
    expected[~billed & counted] = "buyer_only"
    assert expected.value_counts().to_dict() == {
        k: v for k, v in truth["cell"].value_counts().to_dict().items() if v
    }
    assert (expected == truth["cell"]).all()

    # Billed periods: the month of the first close, except lines the vendor put a month late.
    first_line = inv.drop_duplicates("entity_id").set_index("entity_id")
    assert (first_line["period"] == truth.loc[first_line.index, "billed_period"]).all()
    close_month = truth.loc[first_line.index, "first_close_ts"].dt.strftime("%Y-%m")
    late = first_line["period"] != close_month
    assert (
        pd.PeriodIndex(first_line.loc[late, "period"], freq="M")
        == pd.PeriodIndex(close_month[late], freq="M") + 1
    ).all()


def test_every_ticket_has_one_cell_and_a_reason_unless_agreed(demo: SupportData) -> None:
    truth = demo.truth.to_pandas()
    assert set(truth["cell"]) <= set(CELLS)
    assert truth["reason"].isna().eq(truth["cell"] == "agreed").all()
    vendor_only = truth[truth["cell"] == "vendor_only"]
    has_anchor = vendor_only["first_ai_close_ts"].notna()
    assert vendor_only.loc[has_anchor, "failing_conditions"].notna().all()
    assert (vendor_only.loc[~has_anchor, "reason"] == "no_ai_close").all()


def test_demo_scale_matches_the_case(demo: SupportData) -> None:
    s = demo.summary()
    assert abs(s["billed"] - 41_000) / 41_000 < 0.03, s
    assert abs(s["counted"] - 27_000) / 27_000 < 0.03, s
    # Every defect is present but small, as on a real invoice.
    assert 0 < s["cells"]["unknown"] < 200
    assert 0 < s["cells"]["buyer_only"] < 200
    assert 0 < s["invoice_lines"] - s["billed"] < 50
    # About four events per ticket, the benchmark's assumption.
    assert 3.5 < s["events"] / s["tickets"] < 4.5


def test_defects_off_gives_a_clean_invoice() -> None:
    data = generate(SupportScenario(seed=5, tickets=20_000, defects=False))
    s = data.summary()
    assert s["invoice_lines"] == s["billed"]
    assert s["cells"]["unknown"] == 0 and s["cells"]["buyer_only"] == 0
    inv = data.invoice.to_pandas()
    assert (inv["period"] == inv["billed_at"].dt.strftime("%Y-%m")).all()


def test_chunked_files_hold_exactly_the_in_memory_rows(tmp_path: Path) -> None:
    sc = SupportScenario(seed=9, tickets=BLOCK_TICKETS + 7_000, months=1)
    files = write_parquet_chunks(sc, tmp_path, chunk_tickets=BLOCK_TICKETS)
    assert len(files.events) == 2
    whole = generate(sc)
    on_disk = pa.concat_tables([pq.read_table(p) for p in files.events])
    assert on_disk.equals(whole.events)
    assert pq.read_table(files.invoice).equals(whole.invoice)
    assert pq.read_table(files.truth).equals(whole.truth)
    assert files.manifest.is_file()


def test_scenario_rejects_an_export_taken_before_windows_close() -> None:
    with pytest.raises(ValueError, match="export_lag_days"):
        SupportScenario(export_lag_days=10)
