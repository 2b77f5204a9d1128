"""Contract terms: validation with file:line:key, and money computed by hand."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from truecount.billing.reconcile import PeriodResult
from truecount.billing.terms import apply_terms, load_terms, parse_terms
from truecount.errors import TermsError

BASE = "truecount_terms: 1\ncurrency: USD\nunit_price: 0.99\ntolerance: 2%\n"


def period(
    name: str,
    billed: int,
    counted: int,
    beyond: bool,
    amount: str | None = None,
    lines: int | None = None,
) -> PeriodResult:
    return PeriodResult(
        period=name,
        vendor_billed=billed,
        buyer_counted=counted,
        beyond_tolerance=beyond,
        vendor_lines=billed if lines is None else lines,
        amount_billed=None if amount is None else Decimal(amount),
    )


def test_buyer_count_is_the_billing_source_beyond_tolerance() -> None:
    t = parse_terms(BASE)
    out = apply_terms(
        t,
        [
            period("2026-01", 1000, 900, True, "990.00"),
            period("2026-02", 1000, 990, False, "990.00"),
        ],
    )
    # 900 x 0.99 = 891.00 ; within tolerance the vendor's 1000 x 0.99 = 990.00 is due
    assert [(p.billing_source, p.amount_due, p.credit) for p in out] == [
        ("buyer", Decimal("891.00"), Decimal("99.00")),
        ("vendor", Decimal("990.00"), Decimal("0.00")),
    ]


def test_duplicate_lines_are_credited_even_within_tolerance() -> None:
    t = parse_terms(BASE)
    (p,) = apply_terms(t, [period("2026-01", 100, 100, False, "100.98", lines=102)])
    assert p.amount_due == Decimal("99.00") and p.credit == Decimal("1.98")


def test_discount_fee_cap_and_rounding() -> None:
    t = parse_terms(
        "truecount_terms: 1\ncurrency: USD\nunit_price: 0.995\ntolerance: 0%\n"
        "billing_source: buyer\nplatform_fee: 100\nannual_cap: 1500\ndiscount: 10%\n"
    )
    out = apply_terms(
        t,
        [
            period("2026-01", 1000, 1001, True, "995.00"),
            period("2026-02", 1000, 1001, True, "995.00"),
            period("2027-01", 10, 10, False, "9.95"),
        ],
    )
    # 1001 x 0.995 x 0.9 = 896.4045 -> capped by year: 896.4045, then 1500 - 896.4045 = 603.5955
    assert out[0].amount_due == Decimal("996.40")  # 896.4045 + 100, half up
    assert out[1].amount_due == Decimal("703.60")  # 603.5955 + 100
    assert out[2].amount_due == Decimal("108.96")  # new year: 10 x 0.995 x 0.9 = 8.955 + 100
    assert out[0].amount_billed == Decimal("1095.00")  # the fee is billed besides the lines
    assert out[0].credit == Decimal("98.60")


def test_yen_has_no_minor_units_and_lines_without_amounts_use_the_price() -> None:
    t = parse_terms("truecount_terms: 1\ncurrency: JPY\nunit_price: 150.5\ntolerance: 5%\n")
    (p,) = apply_terms(t, [period("2026-01", 3, 3, False)])
    assert p.amount_billed == Decimal("452") and p.amount_due == Decimal("452")
    assert t.summary()["unit_price"] == "150.5"


def test_errors_name_file_line_and_key(tmp_path: Path) -> None:
    f = tmp_path / "terms.yaml"
    f.write_text(
        "truecount_terms: 1\ncurrency: USD\nunit_price: -1\ntolerance: 150%\n"
        "discount: 0.1\nbiling_source: vendor\n",
        encoding="utf-8",
    )
    with pytest.raises(TermsError) as err:
        load_terms(f)
    lines = str(err.value).splitlines()
    assert any(f"{f}:3, key 'unit_price'" in x and "negative" in x for x in lines)
    assert any(f"{f}:4, key 'tolerance'" in x and "outside 0% to 100%" in x for x in lines)
    assert any(f"{f}:5, key 'discount'" in x and "'2%'" in x for x in lines)
    assert any(":6, key 'biling_source'" in x and "billing_source" in x for x in lines)


def test_missing_version_and_bad_currency() -> None:
    with pytest.raises(TermsError, match="truecount_terms"):
        parse_terms("currency: USD\nunit_price: 1\n")
    with pytest.raises(TermsError, match="ISO 4217"):
        parse_terms("truecount_terms: 1\ncurrency: dollars\nunit_price: 1\n")


def test_terms_are_frozen() -> None:
    t = parse_terms(BASE)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises its own error type
        t.unit_price = Decimal(2)  # type: ignore[misc]


def test_letter_section_is_optional_and_outside_the_hash() -> None:
    plain = parse_terms(BASE)
    t = parse_terms(
        BASE + "letter:\n  buyer: Acme\n  vendor: Botco\n  invoice_number: 42\n"
        "  invoice_date: 2026-04-02\n  contract: MSA 17\n"
    )
    assert (t.letter.buyer, t.letter.vendor, t.letter.invoice_number) == ("Acme", "Botco", "42")
    assert t.letter.invoice_date is not None and t.letter.invoice_date.isoformat() == "2026-04-02"
    assert plain.letter.vendor is None and plain.summary() == t.summary()
    merged = t.letter.merged(vendor="Other", contract=None)
    assert (merged.vendor, merged.contract) == ("Other", "MSA 17")


def test_letter_errors_name_file_line_and_key(tmp_path: Path) -> None:
    f = tmp_path / "terms.yaml"
    f.write_text(
        BASE + "letter:\n  buyer: Acme\n  invoice_date: 02/04/2026\n  vendr: Botco\n",
        encoding="utf-8",
    )
    with pytest.raises(TermsError) as err:
        load_terms(f)
    lines = str(err.value).splitlines()
    assert any(f"{f}:7, key 'letter.invoice_date'" in x and "YYYY-MM-DD" in x for x in lines)
    assert any(f"{f}:8, key 'letter.vendr'" in x and "did you mean 'vendor'" in x for x in lines)
    with pytest.raises(TermsError, match="letter is a mapping"):
        parse_terms(BASE + "letter: Acme\n")


@pytest.mark.parametrize(
    ("code", "digits"), [("XOF", 0), ("UGX", 0), ("KWD", 3), ("CLF", 4), ("EUR", 2)]
)
def test_every_iso_currency_rounds_to_its_own_minor_unit(code: str, digits: int) -> None:
    """3 x 0.5 was shown as 1.50 XOF: a currency missing from the table fell back to cents."""
    t = parse_terms(f"truecount_terms: 1\ncurrency: {code}\nunit_price: 0.5\n")
    (p,) = apply_terms(t, [period("2026-01", 3, 3, False)])
    assert t.digits == digits
    assert p.amount_due == (Decimal("1.5")).quantize(Decimal(1).scaleb(-digits), "ROUND_HALF_UP")


def test_a_code_outside_iso_4217_needs_its_minor_units() -> None:
    with pytest.raises(TermsError) as err:
        parse_terms("truecount_terms: 1\ncurrency: XYZ\nunit_price: 1\n")
    said = str(err.value)
    assert "key 'currency'" in said and "'XYZ' is not a currency of ISO 4217's list" in said
    t = parse_terms("truecount_terms: 1\ncurrency: XYZ\nunit_price: 1\nminor_units: 1\n")
    assert t.digits == 1
