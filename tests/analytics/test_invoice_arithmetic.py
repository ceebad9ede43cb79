"""Invoice arithmetic, pure: zero usage, exactly included, overage, proration, rounding."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from analytics.billing.rules import (
    PlanTerms,
    invoice_total,
    money,
    price_adjustment,
    price_line,
    span_fraction,
)

PRO = PlanTerms(plan_id=1, currency="EUR", monthly_price=Decimal("49.00"), included_requests=100_000,
                overage_price_per_1000=Decimal("0.50"))


def test_zero_usage_pays_the_base_fee_only():
    line = price_line(terms=PRO, fraction=Decimal(1), used_requests=0)
    assert line.base_fee == Decimal("49.00")
    assert line.overage_requests == 0
    assert line.overage_fee == Decimal("0.00")
    assert line.amount == Decimal("49.00")


def test_exactly_the_included_requests_cost_nothing_extra():
    line = price_line(terms=PRO, fraction=Decimal(1), used_requests=100_000)
    assert line.included_requests == 100_000
    assert line.overage_requests == 0
    assert line.amount == Decimal("49.00")


def test_one_request_over_is_charged_pro_rata_and_rounded_half_up():
    line = price_line(terms=PRO, fraction=Decimal(1), used_requests=100_001)
    assert line.overage_requests == 1
    assert line.overage_fee == Decimal("0.00")  # 1 x 0.0005 = 0.0005, below half a cent
    line = price_line(terms=PRO, fraction=Decimal(1), used_requests=100_010)
    assert line.overage_fee == Decimal("0.01")  # 10 x 0.0005 = 0.005 -> half up -> 0.01


def test_overage_is_priced_per_thousand():
    line = price_line(terms=PRO, fraction=Decimal(1), used_requests=250_000)
    assert line.overage_requests == 150_000
    assert line.overage_fee == Decimal("75.00")
    assert line.amount == Decimal("124.00")


def test_a_plan_without_overage_price_does_not_bill_beyond_included():
    free = PlanTerms(plan_id=2, currency="EUR", monthly_price=Decimal("0"), included_requests=1000,
                     overage_price_per_1000=None)
    line = price_line(terms=free, fraction=Decimal(1), used_requests=5000)
    assert line.overage_requests == 4000
    assert line.amount == Decimal("0.00")


def test_a_mid_month_plan_change_prorates_fee_and_allowance():
    nov = date(2026, 11, 1)
    change = datetime(2026, 11, 16, tzinfo=UTC)  # 15 of 30 days on each plan
    before = span_fraction(datetime(2026, 10, 20, tzinfo=UTC), change, nov)
    after = span_fraction(change, datetime(2027, 1, 1, tzinfo=UTC), nov)
    assert before == after == Decimal("0.5")
    basic = PlanTerms(plan_id=3, currency="EUR", monthly_price=Decimal("10.00"), included_requests=10_000,
                      overage_price_per_1000=Decimal("2.00"))
    first = price_line(terms=basic, fraction=before, used_requests=6_000)
    second = price_line(terms=PRO, fraction=after, used_requests=60_000)
    assert (first.base_fee, first.included_requests, first.overage_requests, first.overage_fee) == (
        Decimal("5.00"), 5_000, 1_000, Decimal("2.00"))
    assert (second.base_fee, second.included_requests, second.overage_requests, second.overage_fee) == (
        Decimal("24.50"), 50_000, 10_000, Decimal("5.00"))
    assert invoice_total([first.amount, second.amount], "EUR") == Decimal("36.50")


def test_a_third_of_a_month_rounds_half_up_to_the_minor_unit():
    # 10 of 30 days of 49.00 is 16.3333... -> 16.33; 100,000 included x 1/3 -> 33,333.
    fraction = span_fraction(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 11, tzinfo=UTC), date(2026, 11, 1))
    line = price_line(terms=PRO, fraction=fraction, used_requests=0)
    assert line.base_fee == Decimal("16.33")
    assert line.included_requests == 33_333


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (Decimal("0.005"), "EUR", Decimal("0.01")),
        (Decimal("0.0049"), "EUR", Decimal("0.00")),
        (Decimal("2.675"), "USD", Decimal("2.68")),  # a float would give 2.67
        (Decimal("1234.5"), "JPY", Decimal("1235")),
        (Decimal("1.0005"), "KWD", Decimal("1.001")),
    ],
)
def test_currency_rounding_uses_the_minor_unit_and_half_up(amount, currency, expected):
    assert money(amount, currency) == expected


def test_yen_plans_have_no_minor_unit():
    yen = PlanTerms(plan_id=4, currency="JPY", monthly_price=Decimal("1000"), included_requests=0,
                    overage_price_per_1000=Decimal("1.5"))
    line = price_line(terms=yen, fraction=Decimal(1), used_requests=1_001)
    assert line.overage_fee == Decimal("2")  # 1.5015 -> 2
    assert line.amount == Decimal("1002")


def test_late_requests_are_priced_as_the_difference_they_make():
    # The closed month billed 99,990 of 100,000 included; 20 late requests make 10 overage.
    adj = price_adjustment(terms=PRO, included=100_000, billed_used=99_990, late_requests=20)
    assert adj.overage_requests == 10
    assert adj.amount == Decimal("0.01")
    assert adj.base_fee == Decimal("0.00")


def test_a_negative_or_overfull_fraction_is_refused():
    with pytest.raises(ValueError, match="fraction"):
        price_line(terms=PRO, fraction=Decimal("1.01"), used_requests=0)
