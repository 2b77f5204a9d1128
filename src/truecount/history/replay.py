"""Replay: every period under every definition version, as known at a chosen time.

"What would we have been billed under version 1, as known on 1 March?" needs three things at
once: the versions (stored in the workspace with the day each took effect, or given as files),
the events as the buyer had them on that day (the second clock, ``recorded_at``, where the export
has it; event time otherwise), and the contract's money rules. Each version is counted by the
engine's own query on one connection, so a replay costs one count per version and no pass over
the events in Python; the versions' period counts are then laid side by side, and each period is
marked with the version that was in effect in it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from truecount.billing.terms import Terms
from truecount.definition.load import load_definition
from truecount.definition.model import Definition
from truecount.engine.run import (
    KnownClock,
    PeriodCount,
    count_source,
    default_as_of,
    known_clock,
    parse_time,
)
from truecount.engine.source import EventsInput, open_events
from truecount.errors import InputError, Location, Problem
from truecount.history.versions import StoredVersion

_EPOCH: Final[dt.datetime] = dt.datetime(1970, 1, 1)
_NAME_SPEC: Final = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:@v?(?P<version>\d+))?$")


@dataclass(frozen=True)
class ReplayVersion:
    """A definition version to replay; ``effective`` is known for stored versions only."""

    definition: Definition
    effective: dt.date | None
    origin: str  # "workspace", or the file it was read from

    @property
    def label(self) -> str:
        return f"v{self.definition.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.definition.version,
            "sha256": self.definition.sha256,
            "effective": self.effective.isoformat() if self.effective is not None else None,
            "origin": self.origin,
        }


def select_versions(
    specs: Sequence[str | Path], stored: Sequence[StoredVersion]
) -> list[ReplayVersion]:
    """The versions named on the command line: files, stored names, or ``name@version``.

    No specs means every stored version. A file whose text is stored takes the stored
    effective date, so a replay of files still knows which version was in effect when.
    """
    if not specs:
        if not stored:
            raise InputError(
                Problem(
                    "no definition versions are stored in this workspace",
                    hint="store one with 'truecount versions add DEF --effective DATE', "
                    "or pass --definitions FILE",
                )
            )
        return _dedupe([_from_stored(v) for v in stored])
    by_hash = {v.sha256: v for v in stored}
    chosen: list[ReplayVersion] = []
    for spec in specs:
        path = Path(spec)
        match = _NAME_SPEC.match(str(spec))
        if path.is_file() or match is None:
            d = load_definition(path)  # a missing file is an error naming it
            known = by_hash.get(d.sha256)
            chosen.append(
                ReplayVersion(d, known.effective if known is not None else None, str(path))
            )
            continue
        name, number = match["name"], match["version"]
        found = [
            v for v in stored if v.name == name and (number is None or v.version == int(number))
        ]
        if not found:
            names = sorted({v.name for v in stored})
            hint = (
                f"stored: {', '.join(names)}"
                if names
                else (
                    "nothing is stored yet; store versions with "
                    "'truecount versions add DEF --effective DATE'"
                )
            )
            raise InputError(
                Problem(
                    f"no stored version {spec!s} and no such file",
                    Location(key="definitions"),
                    hint,
                )
            )
        chosen.extend(_from_stored(v) for v in found)
    return _dedupe(chosen)


def _from_stored(v: StoredVersion) -> ReplayVersion:
    return ReplayVersion(v.definition(), v.effective, "workspace")


def _dedupe(versions: Sequence[ReplayVersion]) -> list[ReplayVersion]:
    """One entry per text (a file given twice, or a file that is also stored, counts once)."""
    seen: dict[str, ReplayVersion] = {}
    for v in versions:
        seen.setdefault(v.definition.sha256, v)
    return list(seen.values())


# ----------------------------------------------------------------------------- periods

_PERIOD_SHAPES: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"), "day"),
    (re.compile(r"^(\d{4})-W(\d{2})$"), "week"),
    (re.compile(r"^(\d{4})-(\d{2})$"), "month"),
    (re.compile(r"^(\d{4})-Q([1-4])$"), "quarter"),
    (re.compile(r"^(\d{4})$"), "year"),
)


def period_span(key: str) -> tuple[dt.date, dt.date] | None:
    """First day and the day after the last of a period key, on the definition's wall clock.

    Keys are local dates (``2026-03``, ``2026-W09``, ``2026-Q1``...), so an effective date,
    also a local date, is compared with them directly.
    """
    for pattern, every in _PERIOD_SHAPES:
        m = pattern.match(key)
        if m is None:
            continue
        year = int(m[1])
        if every == "day":
            start = dt.date(year, int(m[2]), int(m[3]))
            return start, start + dt.timedelta(days=1)
        if every == "week":
            start = dt.date.fromisocalendar(year, int(m[2]), 1)
            return start, start + dt.timedelta(days=7)
        if every == "month":
            month = int(m[2])
            nxt = dt.date(year + month // 12, month % 12 + 1, 1)
            return dt.date(year, month, 1), nxt
        if every == "quarter":
            first = 3 * (int(m[2]) - 1) + 1
            nxt = dt.date(year + (first + 2) // 12, (first + 2) % 12 + 1, 1)
            return dt.date(year, first, 1), nxt
        return dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
    return None


# ----------------------------------------------------------------------------- money


def amounts_due(terms: Terms, units: Sequence[tuple[str, float]]) -> dict[str, Decimal]:
    """What each period would cost under ``terms``, the rules of docs/terms.md steps 3-5.

    Units are the period's counted quantity (the number counted when the definition's quantity
    is the default 1; the amount, for money outcomes such as collections). Outcome charge =
    units x unit price x (1 - discount); the annual cap applies per calendar year, cumulatively
    in period order; the platform fee is outside the cap; one rounding per period, half up.
    There is no invoice here, so there is no billing-source choice: the count is the version's.
    """
    keep = Decimal(1) - terms.discount_pct / 100
    used: dict[str, Decimal] = defaultdict(Decimal)
    out: dict[str, Decimal] = {}
    for period, quantity in sorted(units):
        charge = Decimal(repr(float(quantity))) * terms.unit_price * keep
        if terms.annual_cap is not None:
            year = period[:4]
            charge = min(charge, max(terms.annual_cap - used[year], Decimal(0)))
            used[year] += charge
        out[period] = terms.round(charge + terms.platform_fee)
    return out


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ReplayCell:
    """One version's counts in one period; ``amount`` under terms only."""

    candidates: int
    counted: int
    not_counted: int
    pending: int
    excluded: int
    quantity: float
    amount: Decimal | None

    def to_json(self) -> dict[str, Any]:
        return {
            "candidates": self.candidates,
            "counted": self.counted,
            "not_counted": self.not_counted,
            "pending": self.pending,
            "excluded": self.excluded,
            "quantity": self.quantity,
            "amount": None if self.amount is None else str(self.amount),
        }


@dataclass(frozen=True)
class ReplayPeriod:
    """A period: one cell per version (None where the version keeps other periods)."""

    period: str
    in_effect: int | None  # index into the name's versions
    changed_during: tuple[int, ...]
    cells: tuple[ReplayCell | None, ...]


@dataclass
class NameReplay:
    """All replayed versions of one definition name, period by period."""

    name: str
    unit: str
    versions: list[ReplayVersion]
    periods: list[ReplayPeriod] = field(default_factory=list)

    def totals(self) -> list[ReplayCell]:
        """Per version, the periods shown added up (amounts: the rounded periods added)."""
        out: list[ReplayCell] = []
        for i in range(len(self.versions)):
            cells = [p.cells[i] for p in self.periods if p.cells[i] is not None]
            money = [c.amount for c in cells if c is not None and c.amount is not None]
            out.append(
                ReplayCell(
                    candidates=sum(c.candidates for c in cells if c is not None),
                    counted=sum(c.counted for c in cells if c is not None),
                    not_counted=sum(c.not_counted for c in cells if c is not None),
                    pending=sum(c.pending for c in cells if c is not None),
                    excluded=sum(c.excluded for c in cells if c is not None),
                    quantity=sum(c.quantity for c in cells if c is not None),
                    amount=sum(money, Decimal(0)) if len(money) == len(cells) and money else None,
                )
            )
        return out

    def to_json(self) -> dict[str, Any]:
        def ident(i: int) -> dict[str, Any]:
            d = self.versions[i].definition
            return {"version": d.version, "sha256": d.sha256}

        periods = []
        for p in self.periods:
            span = period_span(p.period)
            periods.append(
                {
                    "period": p.period,
                    "start": span[0].isoformat() if span else None,
                    "in_effect": ident(p.in_effect) if p.in_effect is not None else None,
                    "changed_during": [
                        {**ident(i), "effective": _iso(self.versions[i].effective)}
                        for i in p.changed_during
                    ],
                    "versions": [
                        None if c is None else {**ident(i), **c.to_json()}
                        for i, c in enumerate(p.cells)
                    ],
                }
            )
        return {
            "name": self.name,
            "unit": self.unit,
            "versions": [v.to_json() for v in self.versions],
            "periods": periods,
            "totals": [{**ident(i), **c.to_json()} for i, c in enumerate(self.totals())],
        }


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day is not None else None


@dataclass
class Replay:
    """A replay: the time it is as of, the clock that allowed, and one table per name."""

    as_of: dt.datetime
    clock: KnownClock | None
    terms: Terms | None
    events: str
    definitions: list[NameReplay]

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of ``truecount replay --format json`` (docs/replay.md)."""
        return {
            "as_of": self.as_of.isoformat(),
            "known_at": self.clock.known_at.isoformat() if self.clock is not None else None,
            "clock": self.clock.to_json() if self.clock is not None else None,
            "terms": self.terms.summary() if self.terms is not None else None,
            "events": self.events,
            "definitions": [n.to_json() for n in self.definitions],
        }


def replay(
    versions: Sequence[ReplayVersion],
    events: EventsInput,
    as_of: dt.datetime | str | None = None,
    terms: Terms | None = None,
    period: str | None = None,
) -> Replay:
    """Count every version over the same events as known at ``as_of`` and lay them side by side.

    With ``as_of`` the events are those the buyer had by then (``COALESCE(recorded_at, ts) <=
    as_of``) and windows still open then are pending. Without it, the whole export counts, as
    of its latest event. ``period`` keeps one period in the output (the annual cap is still
    worked out over the periods before it).
    """
    if not versions:
        raise InputError("no definition versions to replay")
    known = parse_time(as_of)
    source = open_events(events)
    try:
        moment = known or source.max_ts or default_as_of(source.con) or _EPOCH
        clock = known_clock(source.con, moment, known) if known is not None else None
        counted: list[list[PeriodCount]] = []
        for v in versions:
            result = count_source(v.definition, source, moment, known_at=known, clock=clock)
            counted.append(result.periods)
        description = source.description
    finally:
        source.con.close()
    names: dict[str, list[int]] = {}
    for i, v in enumerate(versions):
        names.setdefault(v.definition.name, []).append(i)
    tables = [
        _name_table(name, [versions[i] for i in idx], [counted[i] for i in idx], terms)
        for name, idx in sorted(names.items())
    ]
    if period is not None:
        known_periods = sorted({p.period for t in tables for p in t.periods})
        if period not in known_periods:
            raise InputError(
                Problem(
                    f"period '{period}' has no candidates under any version",
                    Location(key="period"),
                    f"periods in the data: {', '.join(known_periods) or 'none'}",
                )
            )
        for t in tables:
            t.periods = [p for p in t.periods if p.period == period]
    return Replay(moment, clock, terms, description, tables)


def _name_table(
    name: str,
    versions: list[ReplayVersion],
    counts: list[list[PeriodCount]],
    terms: Terms | None,
) -> NameReplay:
    order = sorted(
        range(len(versions)),
        key=lambda i: (
            versions[i].definition.version,
            versions[i].effective or dt.date.max,
            versions[i].definition.sha256,
        ),
    )
    versions = [versions[i] for i in order]
    counts = [counts[i] for i in order]
    # A version fills zeros in every period of its calendar (its own period spec, shared with
    # other versions), and leaves periods of other calendars empty: a month is not a week.
    calendar = [(v.definition.period.every, v.definition.period.timezone) for v in versions]
    keys_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    for cal, rows in zip(calendar, counts, strict=True):
        keys_of[cal].update(p.period for p in rows)
    all_keys = sorted(set().union(*keys_of.values())) if keys_of else []
    columns: list[dict[str, ReplayCell]] = []
    for cal, rows in zip(calendar, counts, strict=True):
        by_key = {p.period: p for p in rows}
        keys = sorted(keys_of[cal])
        money: dict[str, Decimal] = {}
        if terms is not None:
            money = amounts_due(
                terms, [(k, by_key[k].quantity if k in by_key else 0.0) for k in keys]
            )
        column: dict[str, ReplayCell] = {}
        for k in keys:
            p = by_key.get(k)
            column[k] = ReplayCell(
                candidates=p.candidates if p else 0,
                counted=p.counted if p else 0,
                not_counted=p.not_counted if p else 0,
                pending=p.pending if p else 0,
                excluded=p.excluded if p else 0,
                quantity=p.quantity if p else 0.0,
                amount=money.get(k),
            )
        columns.append(column)
    dated = [(v.effective, i) for i, v in enumerate(versions) if v.effective is not None]
    periods: list[ReplayPeriod] = []
    for key in all_keys:
        span = period_span(key)
        current: int | None = None
        during: tuple[int, ...] = ()
        if span is not None and dated:
            start, end = span
            before = [(day, i) for day, i in dated if day <= start]
            current = max(before)[1] if before else None
            during = tuple(i for day, i in sorted(dated) if start < day < end)
        periods.append(ReplayPeriod(key, current, during, tuple(col.get(key) for col in columns)))
    return NameReplay(name, versions[0].definition.unit, versions, periods)
