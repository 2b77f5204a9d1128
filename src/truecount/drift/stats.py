"""Agreement statistics of paired 2x2 tables: the vendor's verdict against the buyer's.

Each entity is judged twice, by the vendor (billed or not) and by the buyer's definition
(counted or not), so a period is a *paired* table (docs/drift.md)::

                      buyer counts   buyer does not
    vendor bills           a               b          (b: vendor-only, over-billing)
    vendor does not        c               d          (c: buyer-only, under-billing)

Billing cares about the asymmetry b - c, so the statistics here are the ones that read it on
the same entities: the vendor-only and buyer-only rates with exact intervals, their difference
with the interval for paired proportions, McNemar's exact test of b against c, and Cohen's kappa
as a secondary, symmetric quality figure (it treats over- and under-billing alike).

Every function takes numpy arrays of a, b, c, d — one element per period or per day — and works
on all of them at once, so a year of days costs a handful of array operations, not a loop. A
statistic that is undefined for a table (any rate of an empty table, kappa when chance agreement
is 1, the ratio when the buyer counts nothing) is NaN; :meth:`PairedStats.row` turns NaN into
None for JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "CONFIDENCE",
    "PairedStats",
    "clopper_pearson",
    "cohens_kappa",
    "mcnemar_exact",
    "newcombe_paired",
    "paired_stats",
    "wilson",
]

F64 = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

#: Two-sided confidence level of every interval unless the caller says otherwise.
CONFIDENCE: Final[float] = 0.95


def _f(x: ArrayLike) -> F64:
    return np.asarray(x, dtype=np.float64)


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2.0))


def clopper_pearson(k: ArrayLike, n: ArrayLike, confidence: float = CONFIDENCE) -> tuple[F64, F64]:
    """Exact (Clopper-Pearson) interval of k successes in n: quantiles of the beta distribution.

    Exact rather than Wald because the rates watched here are small (a few percent) and a day
    has a few hundred entities: the normal approximation would give negative lower bounds.
    Conservative by construction (coverage at least the nominal level). 0 successes give a lower
    bound of 0, n successes an upper bound of 1, and n = 0 gives NaN.
    """
    _z(confidence)
    kk, nn = _f(k), _f(n)
    alpha = 1.0 - confidence
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(
            kk > 0, stats.beta.ppf(alpha / 2, np.maximum(kk, 1), np.maximum(nn - kk + 1, 1)), 0.0
        )
        high = np.where(kk < nn, stats.beta.ppf(1 - alpha / 2, kk + 1, np.maximum(nn - kk, 1)), 1.0)
    empty = nn <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def wilson(k: ArrayLike, n: ArrayLike, confidence: float = CONFIDENCE) -> tuple[F64, F64]:
    """Wilson score interval of k in n: the building block of Newcombe's paired interval."""
    z = _z(confidence)
    kk, nn = _f(k), _f(n)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (kk + z * z / 2) / (nn + z * z)
        half = z * np.sqrt(np.maximum(kk * (nn - kk) / nn, 0.0) + z * z / 4) / (nn + z * z)
    empty = nn <= 0
    return np.where(empty, np.nan, centre - half), np.where(empty, np.nan, centre + half)


def newcombe_paired(
    a: ArrayLike, b: ArrayLike, c: ArrayLike, d: ArrayLike, confidence: float = CONFIDENCE
) -> tuple[F64, F64]:
    """Interval of (b - c)/n by Newcombe's square-and-add method for paired proportions.

    Newcombe (1998, Statistics in Medicine 17:2635, method 10): Wilson intervals of the two
    marginal proportions p1 = (a+b)/n (vendor bills) and p2 = (a+c)/n (buyer counts), combined
    with the estimated correlation of the pair, ψ = (ad - bc - n/2)/√(product of the margins)
    when ad - bc > n/2, 0 when 0 ≤ ad - bc ≤ n/2, (ad - bc)/√(…) when negative, and 0 when a
    margin is empty. Chosen over the Wald interval because it stays inside [-1, 1] and keeps its
    coverage when b and c are small, which is every day of a calm month.
    """
    aa, bb, cc, dd = _f(a), _f(b), _f(c), _f(d)
    n = aa + bb + cc + dd
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = (aa + bb) / n, (aa + cc) / n
        l1, u1 = wilson(aa + bb, n, confidence)
        l2, u2 = wilson(aa + cc, n, confidence)
        margins = (aa + bb) * (cc + dd) * (aa + cc) * (bb + dd)
        cross = aa * dd - bb * cc
        adjusted = np.where(cross > n / 2, cross - n / 2, np.where(cross >= 0, 0.0, cross))
        psi = np.where(margins > 0, adjusted / np.sqrt(np.where(margins > 0, margins, 1.0)), 0.0)
        theta = p1 - p2
        below = (p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * psi * (p1 - l1) * (u2 - p2)
        above = (p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * psi * (p2 - l2) * (u1 - p1)
        low = theta - np.sqrt(np.maximum(below, 0.0))
        high = theta + np.sqrt(np.maximum(above, 0.0))
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def mcnemar_exact(b: ArrayLike, c: ArrayLike) -> F64:
    """McNemar's exact test: two-sided binomial test of b against b + c discordant pairs.

    Under "the vendor and the buyer count the same", each discordant entity is vendor-only or
    buyer-only with probability ½, so p = min(1, 2·P[Bin(b+c, ½) ≤ min(b, c)]). Only the
    discordant entities matter; with none, p = 1.
    """
    bb, cc = _f(b), _f(c)
    p = 2.0 * stats.binom.cdf(np.minimum(bb, cc), bb + cc, 0.5)
    out: F64 = np.minimum(p, 1.0)
    return out


def cohens_kappa(
    a: ArrayLike, b: ArrayLike, c: ArrayLike, d: ArrayLike, confidence: float = CONFIDENCE
) -> tuple[F64, F64, F64, F64]:
    """Cohen's kappa, its asymptotic standard error and Wald interval: (kappa, se, low, high).

    κ = (Po - Pe)/(1 - Pe) with chance agreement Pe from the margins. The variance is the
    large-sample one of Fleiss, Cohen & Everitt (1969), the formula statsmodels' ``cohens_kappa``
    uses (not the variance under κ = 0, which only serves a test of zero)::

        var = [Σ_i p_ii (1 - (p_i. + p_.i)(1 - κ))² + (1 - κ)² Σ_{i≠j} p_ij (p_.i + p_j.)²
               - (κ - Pe(1 - κ))²] / ((1 - Pe)² n)

    Undefined (NaN) when Pe = 1, i.e. when both sides put every entity in the same class.
    """
    z = _z(confidence)
    aa, bb, cc, dd = _f(a), _f(b), _f(c), _f(d)
    n = aa + bb + cc + dd
    with np.errstate(invalid="ignore", divide="ignore"):
        pa, pb, pc, pd = aa / n, bb / n, cc / n, dd / n
        r1, r2 = pa + pb, pc + pd  # vendor yes / no (rows)
        c1, c2 = pa + pc, pb + pd  # buyer yes / no (columns)
        po = pa + pd
        pe = r1 * c1 + r2 * c2
        kappa = np.where(pe < 1.0, (po - pe) / (1.0 - pe), np.nan)
        term_a = pa * (1 - (r1 + c1) * (1 - kappa)) ** 2 + pd * (1 - (r2 + c2) * (1 - kappa)) ** 2
        term_b = (1 - kappa) ** 2 * (pb * (c1 + r2) ** 2 + pc * (c2 + r1) ** 2)
        term_c = (kappa - pe * (1 - kappa)) ** 2
        var = (term_a + term_b - term_c) / (1 - pe) ** 2 / n
        se = np.sqrt(np.maximum(var, 0.0))
    return kappa, se, kappa - z * se, kappa + z * se


@dataclass(frozen=True)
class PairedStats:
    """Every statistic of a run of paired tables, one array element per table."""

    a: npt.NDArray[np.int64]
    b: npt.NDArray[np.int64]
    c: npt.NDArray[np.int64]
    d: npt.NDArray[np.int64]
    confidence: float
    n: npt.NDArray[np.int64]
    #: Po = (a + d)/n, the share of entities both sides judge alike.
    agreement: F64
    vendor_only_rate: F64
    vendor_only_low: F64
    vendor_only_high: F64
    buyer_only_rate: F64
    buyer_only_low: F64
    buyer_only_high: F64
    #: (b - c)/n: the vendor's billed count minus the buyer's count, per entity judged.
    difference: F64
    difference_low: F64
    difference_high: F64
    mcnemar_p: F64
    kappa: F64
    kappa_se: F64
    kappa_low: F64
    kappa_high: F64
    #: (a + b)/(a + c): what the vendor bills for each outcome the buyer counts.
    ratio: F64

    def __len__(self) -> int:
        return int(self.n.size)

    def row(self, i: int) -> dict[str, Any]:
        """Table ``i`` as a flat JSON-ready mapping (NaN becomes None)."""

        def num(x: F64) -> float | None:
            v = float(x[i])
            return None if math.isnan(v) or math.isinf(v) else v

        return {
            "entities": int(self.n[i]),
            "agreed": int(self.a[i]),
            "vendor_only": int(self.b[i]),
            "buyer_only": int(self.c[i]),
            "neither": int(self.d[i]),
            "agreement": num(self.agreement),
            "vendor_only_rate": num(self.vendor_only_rate),
            "vendor_only_ci": [num(self.vendor_only_low), num(self.vendor_only_high)],
            "buyer_only_rate": num(self.buyer_only_rate),
            "buyer_only_ci": [num(self.buyer_only_low), num(self.buyer_only_high)],
            "difference": num(self.difference),
            "difference_ci": [num(self.difference_low), num(self.difference_high)],
            "mcnemar_p": num(self.mcnemar_p),
            "kappa": num(self.kappa),
            "kappa_ci": [num(self.kappa_low), num(self.kappa_high)],
            "ratio": num(self.ratio),
        }


def paired_stats(
    a: ArrayLike, b: ArrayLike, c: ArrayLike, d: ArrayLike, confidence: float = CONFIDENCE
) -> PairedStats:
    """All statistics of the paired tables (a[i], b[i], c[i], d[i]) at once."""
    ia, ib, ic, id_ = (np.asarray(x, dtype=np.int64) for x in (a, b, c, d))
    if ia.shape != ib.shape or ia.shape != ic.shape or ia.shape != id_.shape:
        raise ValueError("a, b, c and d must have the same shape")
    if (ia < 0).any() or (ib < 0).any() or (ic < 0).any() or (id_ < 0).any():
        raise ValueError("a paired table holds counts: a, b, c and d must be >= 0")
    n = ia + ib + ic + id_
    fn = n.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = np.where(n > 0, (ia + id_) / fn, np.nan)
        v_rate = np.where(n > 0, ib / fn, np.nan)
        b_rate = np.where(n > 0, ic / fn, np.nan)
        diff = np.where(n > 0, (ib - ic) / fn, np.nan)
        buyer = (ia + ic).astype(np.float64)
        ratio = np.where(buyer > 0, (ia + ib) / buyer, np.nan)
    v_low, v_high = clopper_pearson(ib, n, confidence)
    b_low, b_high = clopper_pearson(ic, n, confidence)
    d_low, d_high = newcombe_paired(ia, ib, ic, id_, confidence)
    kappa, se, k_low, k_high = cohens_kappa(ia, ib, ic, id_, confidence)
    return PairedStats(
        a=ia,
        b=ib,
        c=ic,
        d=id_,
        confidence=confidence,
        n=n,
        agreement=agreement,
        vendor_only_rate=v_rate,
        vendor_only_low=v_low,
        vendor_only_high=v_high,
        buyer_only_rate=b_rate,
        buyer_only_low=b_low,
        buyer_only_high=b_high,
        difference=diff,
        difference_low=d_low,
        difference_high=d_high,
        mcnemar_p=mcnemar_exact(ib, ic),
        kappa=kappa,
        kappa_se=se,
        kappa_low=k_low,
        kappa_high=k_high,
        ratio=ratio,
    )
