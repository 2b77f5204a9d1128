"""Audit sampling: which reconciled entities a person should review by hand, and what they show.

The meter's cells say where the vendor and the buyer disagree, not who is right. A person who
reads the tickets is the reference standard, and the question an auditor asks of that person's
review is the one of attribute sampling for tests of controls (PCAOB AS 2315, the AICPA Audit
Sampling guide, ISA 530): *is the rate at which the meter's cell is wrong low enough to rely on
the meter?* This module answers it in three steps, each one an auditor can redo by hand.

**Size.** For a tolerable deviation rate T, a confidence C (1 - C is the risk of relying on the
meter when its deviation rate exceeds T) and an expected deviation rate p_e, the sample size is
the smallest n with ``P(X ≤ k | n, T) ≤ 1 - C`` for X binomial, where k — the deviations the
sample may show and still support reliance — is the expected number in the sample rounded up,
``k = ceil(n · p_e)``. With p_e = 0 this is k = 0 and n = ln(1 - C) / ln(1 - T) rounded up (59
at 5 % / 95 %). This is how the AICPA tables are built: every entry of their Tables A-1 and A-2
comes out of this rule (the tests check a range of them). The binomial is the large-population
model; sampling from a finite stratum without replacement makes the sample no less informative,
so the sizes are conservative there, and a stratum no larger than its sample is reviewed whole.

**Allocation.** Every reconciliation cell is its own stratum (ISA 530: strata of similar
items), because each cell poses a different question to the reviewer (is this really an outcome?
is it really not? is the second line really the same ticket?) and fails in its own way. Each
stratum gets the full sample size above, so each can support reliance on its own; a single
sample sized for the whole population would leave the small, disputed cells with a handful of
items. The ``vendor_only`` cell is oversampled beyond that: it is planned to allow one deviation
more than the others, because the buyer's credit claim rests on it and the vendor will contest
its reviews, so one contested item should not by itself overturn the claim (at 5 % / 95 % this
is 93 items instead of 59). A stratum's weight for projecting back is its share of the frame.

**Conclusion.** Per stratum the one-sided Clopper-Pearson upper limit at C (the exact binomial
bound, so a sample of the planned size that shows at most k deviations has an upper limit of at
most T: the sizing and the evaluation are the same inequality read two ways). A stratum reviewed
whole has no sampling risk and its limit is its observed rate. The population's deviation rate
is the weighted mean of the strata's, and the sample supports reliance when *every* stratum's
upper limit is at most T: if the population's rate exceeded T, some stratum's would too, and
that stratum passes with probability at most 1 - C, so the risk of overreliance on the whole
stays within 1 - C. The weighted mean of the strata's upper limits is reported as the overall
upper limit (it is at most T whenever the conclusion is to rely).

**The draw.** The frame (``entities.csv`` of an evidence or dispute pack) is sorted by the UTF-8
bytes of ``entity_id``; numpy's PCG64 bit generator, seeded with the integer seed through
numpy's SeedSequence, gives one 64-bit number per entity in that order (``random_raw``, whose
stream numpy keeps stable across versions and machines); in each stratum the entities with the
smallest numbers are the sample, in that order. The default seed is the first 12 hex digits of
the frame's SHA-256, so the same pack always gives the same sample; it stays below 10^15 so a
spreadsheet does not round it. A larger sample from the same seed contains the smaller one.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from scipy import stats

from truecount.errors import InputError, Location, Problem

__all__ = [
    "OUTCOMES",
    "OVERSAMPLED",
    "WORKSHEET_COLUMNS",
    "Evaluation",
    "Frame",
    "Parameters",
    "Plan",
    "SamplingError",
    "Stratum",
    "StratumResult",
    "Worksheet",
    "attribute_sample_size",
    "default_seed",
    "draw",
    "evaluate",
    "load_frame",
    "make_plan",
    "parse_rate",
    "read_worksheet",
    "upper_limit",
    "write_worksheet",
]

#: Review outcomes a worksheet row may carry. An item that cannot be reviewed (the ticket is
#: gone, the transcript is missing) is recorded as a deviation, as AS 2315 treats such items.
OUTCOMES: Final[tuple[str, ...]] = ("deviation", "ok")

#: Cells oversampled beyond the base plan (one more deviation allowed): the credit claim's cell.
OVERSAMPLED: Final[frozenset[str]] = frozenset({"vendor_only"})

#: Order strata are listed in: the disputed cells first, the agreed bulk last; any other cell
#: name found in a frame follows in byte order.
STRATUM_ORDER: Final[tuple[str, ...]] = (
    "vendor_only", "unknown", "duplicate", "pending", "period_mismatch", "buyer_only", "agreed",
)  # fmt: skip

#: Frame columns copied to the worksheet when present (empty otherwise).
FRAME_COLUMNS: Final[tuple[str, ...]] = (
    "reason", "lines", "billed_period", "buyer_status", "buyer_period",
)  # fmt: skip

#: The reviewer's columns, left empty for the review.
REVIEW_COLUMNS: Final[tuple[str, ...]] = ("review_outcome", "reviewer", "notes")

WORKSHEET_COLUMNS: Final[tuple[str, ...]] = (
    "stratum", "draw", "entity_id", "cell", *FRAME_COLUMNS, *REVIEW_COLUMNS,
)  # fmt: skip

WORKSHEET_MAGIC: Final[str] = "#truecount_sample_worksheet"
WORKSHEET_VERSION: Final[str] = "1"

#: How the sample is selected, recorded in every worksheet so it can be redone without truecount.
SELECTION: Final[str] = (
    "frame sorted by the UTF-8 bytes of entity_id; numpy PCG64 seeded with the seed through "
    "SeedSequence gives one random_raw 64-bit number per entity in that order; in each stratum "
    "the entities with the smallest numbers, in that order"
)

#: Digits of the frame's SHA-256 (hex) that make the default seed: 48 bits, below 10^15.
SEED_HEX_DIGITS: Final[int] = 12

#: Largest sample size searched for; beyond it the expected rate is too close to the tolerable.
MAX_SAMPLE: Final[int] = 100_000

#: Places kept in rates written to JSON and to the worksheet's header.
RATE_PLACES: Final[int] = 6

_FIRST_CHUNK: Final[int] = 1024

#: Characters that make a spreadsheet treat a cell as a formula (as in the dispute pack).
_FORMULA_START: Final[tuple[str, ...]] = ("=", "+", "-", "@", "\t", "\r")


class SamplingError(InputError):
    """A sampling parameter, frame or worksheet cannot be used."""


def neutralize(text: str) -> str:
    """A CSV cell no spreadsheet runs as a formula; idempotent on already neutralised text."""
    return "'" + text if text.startswith(_FORMULA_START) else text


# --------------------------------------------------------------------------- parameters


def parse_rate(
    text: str | Decimal | float,
    what: str,
    *,
    allow_zero: bool = False,
    where: Location | None = None,
) -> Decimal:
    """``5%`` or ``0.05`` as the fraction 0.05; at most 8 decimal places, below 1.

    Why a Decimal: the expected rate enters an exact ceiling (``ceil(n · p_e)``), and a binary
    float would put 100 * 1% a hair above 1 and allow one deviation too many.
    """
    raw = str(text).strip()
    percent = raw.endswith("%")
    try:
        value = Decimal(raw[:-1].strip() if percent else raw)
    except InvalidOperation:
        raise SamplingError(
            Problem(
                f"{what} {raw!r} is not a rate", where or Location(), hint="write it as 5% or 0.05"
            )
        ) from None
    if not value.is_finite():
        raise SamplingError(
            Problem(f"{what} {raw!r} is not a rate", where or Location(), hint="write 5% or 0.05")
        )
    if percent:
        value = value / 100
    elif value > 1:
        raise SamplingError(
            Problem(
                f"{what} {raw!r} is above 1",
                where or Location(),
                hint=f"write {raw}% or {value / 100}",
            )
        )
    value = value.normalize()
    if value < 0 or value >= 1 or (value == 0 and not allow_zero):
        bounds = "at least 0" if allow_zero else "above 0"
        raise SamplingError(
            Problem(f"{what} {raw!r} must be {bounds} and below 100%", where or Location())
        )
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        raise SamplingError(
            Problem(f"{what} {raw!r} has more than 8 decimal places", where or Location())
        )
    return value


@dataclass(frozen=True)
class Parameters:
    """The sampling plan's parameters: tolerable and expected deviation rates, confidence."""

    tolerable: Decimal
    confidence: Decimal
    expected: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.expected >= self.tolerable:
            raise SamplingError(
                Problem(
                    f"the expected rate ({pct(self.expected)}) must be below the tolerable "
                    f"rate ({pct(self.tolerable)})",
                    hint="a sample cannot show the rate is below T if about T is expected",
                )
            )

    @property
    def risk(self) -> float:
        """The risk of overreliance, 1 - confidence."""
        return float(Decimal(1) - self.confidence)

    def to_json(self) -> dict[str, str]:
        return {
            "tolerable": str(self.tolerable),
            "confidence": str(self.confidence),
            "expected": str(self.expected),
        }


def pct(rate: Decimal | float) -> str:
    """A rate as a percentage for people: 0.05 -> 5%, 0.0466 -> 4.66%."""
    if isinstance(rate, Decimal):
        text = format((rate * 100).normalize(), "f")
        return f"{text}%"
    return f"{rate * 100:.2f}%"


# --------------------------------------------------------------------------- sample size


def attribute_sample_size(
    tolerable: Decimal | float | str,
    confidence: Decimal | float | str,
    expected: Decimal | float | str = 0,
    min_allowed: int = 0,
) -> tuple[int, int]:
    """The smallest n, and its allowed deviations k, with ``P(X ≤ k | n, T) ≤ 1 - C``.

    ``k = max(min_allowed, ceil(n · expected))``: the deviations expected in a sample of n,
    rounded up (the AICPA tables' rule), or more when the caller plans for more. The search
    evaluates the binomial CDF on whole blocks of candidate n at once, growing the block
    fourfold until one holds a solution, so even a six-figure n takes a handful of array calls.
    """
    params = Parameters(
        parse_rate(str(tolerable), "tolerable rate"),
        parse_rate(str(confidence), "confidence"),
        parse_rate(str(expected), "expected rate", allow_zero=True),
    )
    if min_allowed < 0:
        raise ValueError("min_allowed must be non-negative")
    t = float(params.tolerable)
    risk = params.risk
    pe = Fraction(params.expected)
    lo, hi = 1, _FIRST_CHUNK
    while lo <= MAX_SAMPLE:
        n = np.arange(lo, min(hi, MAX_SAMPLE) + 1, dtype=np.int64)
        # ceil(n * num / den) in exact integers: num <= 10^8 and n <= 10^5 fit in int64
        k = np.maximum(min_allowed, -((-n * pe.numerator) // pe.denominator))
        ok = np.asarray(stats.binom.cdf(k, n, t)) <= risk
        if bool(ok.any()):
            i = int(np.argmax(ok))
            return int(n[i]), int(k[i])
        lo, hi = hi + 1, hi * 4
    raise SamplingError(
        Problem(
            f"no sample of up to {MAX_SAMPLE:,} items tests a tolerable rate of "
            f"{pct(params.tolerable)} when {pct(params.expected)} is expected",
            hint="raise the tolerable rate or lower the expected rate",
        )
    )


def upper_limit(
    deviations: npt.ArrayLike,
    sample: npt.ArrayLike,
    confidence: Decimal | float,
    population: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float64]:
    """One-sided Clopper-Pearson upper limits of deviation rates, element by element.

    The exact binomial bound: the rate p at which ``P(X ≤ x | n, p) = 1 - C``, i.e. the C
    quantile of Beta(x + 1, n - x); 1 when every item deviates. Where the sample is the whole
    population (``population`` given and equal to ``sample``) nothing was left to chance and
    the limit is the observed rate.
    """
    x = np.asarray(deviations, dtype=np.float64)
    n = np.asarray(sample, dtype=np.float64)
    c = float(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        cp = np.where(x < n, stats.beta.ppf(c, x + 1.0, np.maximum(n - x, 1.0)), 1.0).astype(
            np.float64
        )
        if population is None:
            return cp
        whole = np.asarray(population, dtype=np.float64) <= n
        out: npt.NDArray[np.float64] = np.where(whole, x / np.maximum(n, 1.0), cp)
    return out


# --------------------------------------------------------------------------- the frame


@dataclass(frozen=True)
class Frame:
    """The sampling frame: one row per reconciled entity, sorted by entity_id bytes."""

    path: Path
    sha256: str
    table: pa.Table = field(repr=False)
    #: The pack's statement, when one sits beside the frame: its path and SHA-256.
    statement: Path | None = None
    statement_sha256: str | None = None

    @property
    def size(self) -> int:
        return int(self.table.num_rows)

    def populations(self) -> dict[str, int]:
        """Entities per cell."""
        counts = pc.value_counts(self.table.column("cell")).to_pylist()
        return {str(row["values"]): int(row["counts"]) for row in counts}


def _frame_path(pack: Path) -> Path:
    if pack.is_file():
        return pack
    if pack.is_dir():
        for candidate in (pack / "entities.csv", pack / "dispute" / "entities.csv"):
            if candidate.is_file():
                return candidate
        raise SamplingError(
            Problem(
                "no entities.csv in this folder",
                Location(str(pack)),
                hint="give an evidence pack, a dispute pack, or the entities.csv itself",
            )
        )
    raise SamplingError(Problem("no such file or folder", Location(str(pack))))


def _file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _statement_subjects(path: Path) -> list[Mapping[str, Any]]:
    """Subjects of an in-toto statement, plain or inside a DSSE envelope."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and "payload" in doc and "subject" not in doc:
            doc = json.loads(base64.b64decode(str(doc["payload"])))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SamplingError(
            Problem(f"not a JSON in-toto statement: {exc}", Location(str(path)))
        ) from None
    subjects = doc.get("subject") if isinstance(doc, dict) else None
    if not isinstance(subjects, list):
        return []
    return [s for s in subjects if isinstance(s, dict)]


def _check_statement(frame: Path, statement: Path, digest: str) -> None:
    """A statement that names the frame must carry its digest: else the frame was changed."""
    for subject in _statement_subjects(statement):
        name = str(subject.get("name", ""))
        if Path(name).name != frame.name:
            continue
        digests = subject.get("digest")
        recorded = digests.get("sha256") if isinstance(digests, dict) else None
        if recorded is not None and str(recorded).lower() != digest:
            raise SamplingError(
                Problem(
                    f"{frame.name} has SHA-256 {digest}, but the statement records {recorded}",
                    Location(str(statement), key="subject"),
                    hint="the frame changed after the pack was made; rebuild the pack",
                )
            )


def load_frame(pack: str | Path) -> Frame:
    """Read ``entities.csv`` from a pack folder (or the file itself), every column as text.

    Needs ``entity_id`` and ``cell``; ids must be unique and neither column empty. The file's
    SHA-256 identifies the frame; a ``statement.json`` beside it that lists the file must agree.
    """
    path = _frame_path(Path(pack))
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SamplingError(
            Problem(f"cannot read as a UTF-8 CSV: {exc}", Location(str(path), line=1))
        ) from None
    if not header:
        raise SamplingError(Problem("empty file: no header row", Location(str(path), line=1)))
    missing = [c for c in ("entity_id", "cell") if c not in header]
    if missing:
        raise SamplingError(
            Problem(
                f"missing column {missing[0]!r}",
                Location(str(path), line=1),
                hint=f"an entities.csv has {', '.join(['entity_id', 'cell', *FRAME_COLUMNS])}",
            )
        )
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()), strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise SamplingError(Problem(f"cannot read as CSV: {exc}", Location(str(path)))) from None
    keep = [c for c in ("entity_id", "cell", *FRAME_COLUMNS) if c in header]
    table = table.select(keep)
    for column in ("entity_id", "cell"):
        empty = pc.equal(pc.utf8_length(table.column(column)), 0)
        if pc.any(empty).as_py():
            first = int(pc.index(empty, True).as_py())
            raise SamplingError(
                Problem("empty value", Location(str(path), line=first + 2, column=column))
            )
    table = table.take(pc.sort_indices(table, sort_keys=[("entity_id", "ascending")]))
    ids = table.column("entity_id")
    if table.num_rows > 1:
        same = pc.equal(ids.slice(1), ids.slice(0, table.num_rows - 1))
        if pc.any(same).as_py():
            dup = ids[int(pc.index(same, True).as_py())].as_py()
            raise SamplingError(
                Problem(
                    f"entity {dup!r} appears more than once; a frame lists each entity once",
                    Location(str(path), column="entity_id"),
                )
            )
    digest = _file_sha256(path)
    statement = path.parent / "statement.json"
    if statement.is_file():
        _check_statement(path, statement, digest)
        return Frame(path, digest, table, statement, _file_sha256(statement))
    return Frame(path, digest, table)


def default_seed(sha256_hex: str) -> int:
    """The seed a frame gets unless one is given: its digest's first 12 hex digits."""
    return int(sha256_hex[:SEED_HEX_DIGITS], 16)


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Stratum:
    """One cell's share of the plan."""

    name: str
    population: int
    #: Items to review: the planned size, or the whole stratum when it is no larger.
    sample: int
    #: The attribute-sampling size before capping at the population.
    planned: int
    #: The most deviations the sample can show and still support reliance.
    allowed: int
    oversampled: bool

    @property
    def census(self) -> bool:
        """True when the whole stratum is reviewed (no sampling risk)."""
        return self.sample >= self.population

    def to_json(self, total: int) -> dict[str, Any]:
        return {
            "stratum": self.name,
            "population": self.population,
            "sample": self.sample,
            "planned": self.planned,
            "allowed": self.allowed,
            "weight": round(self.population / total, RATE_PLACES) if total else 0.0,
            "census": self.census,
            "oversampled": self.oversampled,
        }


@dataclass(frozen=True)
class Plan:
    """Sizes per stratum for a frame under the parameters."""

    parameters: Parameters
    strata: tuple[Stratum, ...]
    #: Base plan (n, k) for an ordinary stratum and for an oversampled one.
    base: tuple[int, int]
    oversampled: tuple[int, int]

    @property
    def population(self) -> int:
        return sum(s.population for s in self.strata)

    @property
    def sample(self) -> int:
        return sum(s.sample for s in self.strata)

    def stratum(self, name: str) -> Stratum | None:
        return next((s for s in self.strata if s.name == name), None)


def _ordered(names: Sequence[str]) -> list[str]:
    known = [n for n in STRATUM_ORDER if n in names]
    rest = sorted((n for n in names if n not in STRATUM_ORDER), key=lambda s: s.encode())
    return known + rest


def _census_allowed(tolerable: Decimal, population: int) -> int:
    """Deviations a whole stratum may have with its rate still at most T: floor(T · N)."""
    return int((tolerable * population).to_integral_value(rounding=ROUND_FLOOR))


def make_plan(populations: Mapping[str, int], parameters: Parameters) -> Plan:
    """Sample sizes per stratum (see the module docstring for the allocation and why)."""
    base = attribute_sample_size(parameters.tolerable, parameters.confidence, parameters.expected)
    over = attribute_sample_size(
        parameters.tolerable, parameters.confidence, parameters.expected, min_allowed=base[1] + 1
    )
    strata: list[Stratum] = []
    for name in _ordered([n for n, size in populations.items() if size > 0]):
        size = int(populations[name])
        oversampled = name in OVERSAMPLED
        planned, allowed = over if oversampled else base
        if planned >= size:
            strata.append(
                Stratum(
                    name,
                    size,
                    size,
                    planned,
                    _census_allowed(parameters.tolerable, size),
                    oversampled,
                )
            )
        else:
            strata.append(Stratum(name, size, planned, planned, allowed, oversampled))
    return Plan(parameters, tuple(strata), base, over)


# --------------------------------------------------------------------------- the draw


def draw(frame: Frame, plan: Plan, seed: int) -> pa.Table:
    """The sample: frame rows with ``stratum`` and ``draw`` (1, 2, … within the stratum).

    One random 64-bit key per entity in entity_id order, then per stratum the smallest keys
    (a simple random sample without replacement within each stratum; see the module docstring).
    """
    if seed < 0:
        raise SamplingError(Problem(f"the seed must be a non-negative integer, got {seed}"))
    table = frame.table
    keys = np.random.PCG64(seed).random_raw(table.num_rows)
    encoded = pc.dictionary_encode(table.column("cell")).combine_chunks()
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    names = [str(v) for v in encoded.dictionary.to_pylist()]
    order = np.lexsort((keys, codes))  # by cell, then key; stable, so ties keep frame order
    starts = np.searchsorted(codes[order], np.arange(len(names) + 1), side="left")
    takes: list[npt.NDArray[np.int64]] = []
    strata: list[str] = []
    ranks: list[npt.NDArray[np.int64]] = []
    for s in plan.strata:
        if s.name not in names:
            raise SamplingError(Problem(f"the frame has no entities in cell {s.name!r}"))
        code = names.index(s.name)
        block = order[starts[code] : starts[code + 1]][: s.sample]
        takes.append(block.astype(np.int64))
        strata += [s.name] * len(block)
        ranks.append(np.arange(1, len(block) + 1, dtype=np.int64))
    picked = np.concatenate(takes) if takes else np.zeros(0, dtype=np.int64)
    sample = table.take(pa.array(picked, type=pa.int64()))
    sample = sample.add_column(0, "stratum", pa.array(strata, type=pa.string()))
    rank = np.concatenate(ranks) if ranks else np.zeros(0, dtype=np.int64)
    return sample.add_column(1, "draw", pa.array(rank, type=pa.int64()))


# --------------------------------------------------------------------------- the worksheet


def _rate_text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def write_worksheet(
    path: str | Path, frame: Frame, plan: Plan, seed: int, sample: pa.Table, seed_source: str
) -> Path:
    """The review worksheet: a header block of ``#key,value`` rows, then one row per item.

    The header block keeps the plan with the rows (a worksheet mailed back alone can still be
    evaluated); every text cell from the frame is neutralised against spreadsheet formulas.
    """
    out = Path(path)
    p = plan.parameters
    meta: list[list[str]] = [
        [WORKSHEET_MAGIC, WORKSHEET_VERSION],
        ["#frame", str(frame.path)],
        ["#frame_sha256", frame.sha256],
        ["#statement", str(frame.statement) if frame.statement else ""],
        ["#statement_sha256", frame.statement_sha256 or ""],
        ["#seed", str(seed)],
        ["#seed_source", seed_source],
        ["#selection", SELECTION],
        ["#tolerable", _rate_text(p.tolerable)],
        ["#confidence", _rate_text(p.confidence)],
        ["#expected", _rate_text(p.expected)],
    ]
    meta += [
        ["#stratum", s.name, str(s.population), str(s.sample), str(s.allowed), str(s.planned)]
        for s in plan.strata
    ]
    columns = {name: sample.column(name).to_pylist() for name in sample.column_names}
    blank = [""] * sample.num_rows
    with out.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        for row in meta:
            writer.writerow([row[0], *(neutralize(v) for v in row[1:])])
        writer.writerow(WORKSHEET_COLUMNS)
        # one row per sampled item: the sample is a few hundred rows, not the frame
        for i in range(sample.num_rows):
            cells = [
                "" if columns.get(c, blank)[i] is None else str(columns.get(c, blank)[i])
                for c in WORKSHEET_COLUMNS
            ]
            writer.writerow([neutralize(v) for v in cells])
    return out


@dataclass(frozen=True)
class Worksheet:
    """A worksheet read back: its plan and the reviewer's outcome per item."""

    path: Path
    meta: dict[str, str]
    plan: Plan
    #: Per stratum: items reviewed and deviations found.
    reviewed: dict[str, int]
    deviations: dict[str, int]


def _meta_value(meta: Mapping[str, str], key: str, path: Path) -> str:
    if key not in meta:
        raise SamplingError(
            Problem(
                f"the header block has no #{key} row",
                Location(str(path)),
                hint="evaluate the worksheet truecount sample wrote, with its # rows kept",
            )
        )
    return meta[key]


def _int_cell(text: str, path: Path, line: int, what: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise SamplingError(
            Problem(f"{what} {text!r} is not a whole number", Location(str(path), row=line))
        ) from None
    if value < 0:
        raise SamplingError(Problem(f"{what} is negative", Location(str(path), row=line)))
    return value


def read_worksheet(path: str | Path) -> Worksheet:
    """Read a filled worksheet; every unfilled or unreadable outcome is reported at once."""
    src = Path(path)
    if not src.is_file():
        raise SamplingError(Problem("no such worksheet", Location(str(src))))
    meta: dict[str, str] = {}
    meta_rows: dict[str, int] = {}
    strata: list[Stratum] = []
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    try:
        with src.open(encoding="utf-8-sig", newline="") as fh:
            records = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SamplingError(
            Problem(
                f"cannot read as a UTF-8 CSV: {exc}",
                Location(str(src)),
                hint="save it from the spreadsheet as 'CSV UTF-8'",
            )
        ) from None
    # rows are counted as a spreadsheet shows them: one per record, blank ones included
    for line, row in enumerate(records, start=1):
        cells = list(row)
        while cells and not cells[-1].strip():
            cells.pop()  # spreadsheets pad rows to the widest one
        if not cells:
            continue
        if header is None and cells[0].startswith("#"):
            key = cells[0][1:].strip()
            if key == "stratum":
                if len(cells) < 6:
                    raise SamplingError(
                        Problem(
                            "a #stratum row needs name, population, sample, allowed, planned",
                            Location(str(src), row=line),
                        )
                    )
                strata.append(
                    Stratum(
                        cells[1],
                        _int_cell(cells[2], src, line, "population"),
                        _int_cell(cells[3], src, line, "sample"),
                        _int_cell(cells[5], src, line, "planned"),
                        _int_cell(cells[4], src, line, "allowed"),
                        cells[1] in OVERSAMPLED,
                    )
                )
            else:
                meta[key] = cells[1] if len(cells) > 1 else ""
                meta_rows[key] = line
        elif header is None:
            header = [c.strip() for c in cells]
        else:
            rows.append((line, cells))
    if WORKSHEET_MAGIC[1:] not in meta:
        raise SamplingError(
            Problem(
                "not a truecount sample worksheet (no #truecount_sample_worksheet row)",
                Location(str(src), row=1),
            )
        )
    if header is None:
        raise SamplingError(Problem("no column header row", Location(str(src))))

    def rate(key: str, what: str, allow_zero: bool = False) -> Decimal:
        where = Location(str(src), row=meta_rows.get(key))
        return parse_rate(_meta_value(meta, key, src), what, allow_zero=allow_zero, where=where)

    params = Parameters(
        rate("tolerable", "tolerable rate"),
        rate("confidence", "confidence"),
        rate("expected", "expected rate", allow_zero=True),
    )
    if not strata:
        raise SamplingError(Problem("the header block has no #stratum rows", Location(str(src))))
    for required in ("stratum", "entity_id", "review_outcome"):
        if required not in header:
            raise SamplingError(
                Problem(
                    f"missing column {required!r}",
                    Location(str(src), column=required),
                    hint=f"the worksheet's columns are {', '.join(WORKSHEET_COLUMNS)}",
                )
            )
    at = {name: header.index(name) for name in ("stratum", "entity_id", "review_outcome")}
    known = {s.name for s in strata}
    reviewed = dict.fromkeys(known, 0)
    deviations = dict.fromkeys(known, 0)
    seen: set[tuple[str, str]] = set()
    problems: list[Problem] = []
    valid = ", ".join(OUTCOMES)
    for line, cells in rows:

        def cell(name: str, cells: list[str] = cells) -> str:
            i = at[name]
            return cells[i].strip() if i < len(cells) else ""

        stratum = cell("stratum")
        if stratum not in known:
            problems.append(
                Problem(
                    f"stratum {stratum!r} is not in the plan",
                    Location(str(src), row=line, column="stratum"),
                    hint=f"the plan's strata are {', '.join(sorted(known))}",
                )
            )
            continue
        item = (stratum, cell("entity_id"))
        if item in seen:
            problems.append(
                Problem(
                    f"entity {item[1]!r} is listed twice in stratum {stratum!r}",
                    Location(str(src), row=line, column="entity_id"),
                )
            )
            continue
        seen.add(item)
        outcome = cell("review_outcome").lower()
        if not outcome:
            problems.append(
                Problem(
                    "not reviewed yet (empty)",
                    Location(str(src), row=line, column="review_outcome"),
                    hint=f"valid values: {valid}",
                )
            )
        elif outcome not in OUTCOMES:
            problems.append(
                Problem(
                    f"{cell('review_outcome')!r} is not a review outcome",
                    Location(str(src), row=line, column="review_outcome"),
                    hint=f"valid values: {valid}",
                )
            )
        else:
            reviewed[stratum] += 1
            deviations[stratum] += outcome == "deviation"
    if problems:
        raise SamplingError(problems)
    for s in strata:
        if reviewed[s.name] != s.sample:
            raise SamplingError(
                Problem(
                    f"stratum {s.name!r} has {reviewed[s.name]} rows, the plan drew {s.sample}",
                    Location(str(src), column="stratum"),
                    hint="every drawn item must be reviewed and no other added; "
                    "an item that cannot be reviewed counts as a deviation",
                )
            )
    base = attribute_sample_size(params.tolerable, params.confidence, params.expected)
    over = attribute_sample_size(
        params.tolerable, params.confidence, params.expected, min_allowed=base[1] + 1
    )
    plan = Plan(params, tuple(strata), base, over)
    return Worksheet(src, meta, plan, reviewed, deviations)


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class StratumResult:
    """A stratum's evidence: deviations in its sample and the upper deviation limit."""

    name: str
    population: int
    sample: int
    deviations: int
    rate: float
    upper_limit: float
    allowed: int
    census: bool
    supports_reliance: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "stratum": self.name,
            "population": self.population,
            "sample": self.sample,
            "deviations": self.deviations,
            "rate": round(self.rate, RATE_PLACES),
            "upper_limit": round(self.upper_limit, RATE_PLACES),
            "allowed": self.allowed,
            "census": self.census,
            "supports_reliance": self.supports_reliance,
        }


@dataclass(frozen=True)
class Evaluation:
    """Per stratum and for the population: deviations, rates, upper limits, the conclusion."""

    worksheet: Worksheet
    strata: tuple[StratumResult, ...]
    population: int
    sample: int
    deviations: int
    #: ISA 530 projection: the strata's rates weighted by their share of the frame.
    weighted_rate: float
    #: The strata's upper limits weighted the same way.
    weighted_upper_limit: float
    #: Deviations projected to the frame: sum over strata of N_h · x_h / n_h.
    projected_deviations: float
    supports_reliance: bool

    @property
    def tolerable(self) -> Decimal:
        return self.worksheet.plan.parameters.tolerable

    @property
    def failing(self) -> tuple[StratumResult, ...]:
        return tuple(s for s in self.strata if not s.supports_reliance)

    @property
    def conclusion(self) -> str:
        return "supports reliance" if self.supports_reliance else "does not support reliance"

    def to_json(self) -> dict[str, Any]:
        meta = self.worksheet.meta
        seed = meta.get("seed", "")
        return {
            "worksheet": str(self.worksheet.path),
            "frame": meta.get("frame") or None,
            "frame_sha256": meta.get("frame_sha256") or None,
            "seed": int(seed) if seed.isdigit() else None,
            "parameters": self.worksheet.plan.parameters.to_json(),
            "strata": [s.to_json() for s in self.strata],
            "overall": {
                "population": self.population,
                "sample": self.sample,
                "deviations": self.deviations,
                "weighted_rate": round(self.weighted_rate, RATE_PLACES),
                "weighted_upper_limit": round(self.weighted_upper_limit, RATE_PLACES),
                "projected_deviations": round(self.projected_deviations, 2),
            },
            "supports_reliance": self.supports_reliance,
            "conclusion": self.conclusion,
            "failing_strata": [s.name for s in self.failing],
        }


def evaluate(worksheet: Worksheet | str | Path) -> Evaluation:
    """Upper deviation limits per stratum and weighted, and whether they support reliance."""
    ws = worksheet if isinstance(worksheet, Worksheet) else read_worksheet(worksheet)
    plan = ws.plan
    strata = plan.strata
    tolerable = float(plan.parameters.tolerable)
    pop = np.array([s.population for s in strata], dtype=np.float64)
    n = np.array([s.sample for s in strata], dtype=np.float64)
    x = np.array([ws.deviations[s.name] for s in strata], dtype=np.float64)
    rate = x / np.maximum(n, 1.0)
    ul = upper_limit(x, n, plan.parameters.confidence, population=pop)
    # the planned n with its k allowed deviations has a limit just below T by construction;
    # a relative slack of 1e-12 keeps the beta quantile's last-bit error from flipping that
    passes = ul <= tolerable * (1 + 1e-12)
    results = tuple(
        StratumResult(
            s.name,
            s.population,
            s.sample,
            int(x[i]),
            float(rate[i]),
            float(ul[i]),
            s.allowed,
            s.census,
            bool(passes[i]),
        )
        for i, s in enumerate(strata)
    )
    total = float(pop.sum())
    weights = pop / total if total else pop
    return Evaluation(
        ws,
        results,
        int(total),
        int(n.sum()),
        int(x.sum()),
        float(np.dot(weights, rate)),
        float(np.dot(weights, ul)),
        float(np.dot(pop, rate)),
        bool(passes.all()),
    )
