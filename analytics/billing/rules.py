"""Invoice arithmetic: pure functions over Decimal, no database.

Rules (also in docs/analytics.md):

* A statement covers one calendar month in UTC, [first day 00:00, next month's first day 00:00).
* Proration: a subscription's share of a plan is the exact fraction of the month's
  seconds it spent on that plan (several spans on the same plan add up).
* Base fee = monthly_price x fraction, rounded ROUND_HALF_UP to the currency's minor unit.
* Included requests = included_requests x fraction, rounded ROUND_HALF_UP to a whole request.
* Tiers: tier 1 is the included requests, paid by the base fee; tier 2 is every
  admitted request beyond them, charged pro rata at overage_price_per_1000 / 1000
  each (not per started block of 1,000). The overage fee is rounded ROUND_HALF_UP to
  the minor unit once per line. A plan without an overage price does not bill tier 2.
* Line amount = rounded base fee + rounded overage fee; the invoice total is the
  sum of the line amounts, so a total always equals what the lines show.
* Late requests for a closed month are priced as the difference they make to that
  month's overage fee, and carried on a later invoice as an adjustment line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor units that differ from the usual 2.
_MINOR_UNITS = {
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}
DEFAULT_MINOR_UNITS = 2
THOUSAND = Decimal(1000)


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency.upper(), DEFAULT_MINOR_UNITS)


def money(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit, half away from zero."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


def month_start(day: date | datetime) -> date:
    return date(day.year, day.month, 1)


def next_month(month: date) -> date:
    return date(month.year + (month.month == 12), month.month % 12 + 1, 1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    nxt = next_month(month)
    return start, datetime(nxt.year, nxt.month, 1, tzinfo=UTC)


def span_fraction(start: datetime, end: datetime, month: date) -> Decimal:
    """Exact share of ``month`` covered by [start, end), clipped to the month."""
    m_start, m_end = month_bounds(month)
    lo, hi = max(start, m_start), min(end, m_end)
    if hi <= lo:
        return Decimal(0)
    covered = Decimal((hi - lo).total_seconds())
    return covered / Decimal((m_end - m_start).total_seconds())


@dataclass(frozen=True)
class PlanTerms:
    plan_id: int
    currency: str
    monthly_price: Decimal
    included_requests: int
    overage_price_per_1000: Decimal | None


@dataclass(frozen=True)
class LineAmounts:
    fraction: Decimal
    base_fee: Decimal
    included_requests: int
    used_requests: int
    overage_requests: int
    overage_fee: Decimal
    amount: Decimal


def included_for(terms: PlanTerms, fraction: Decimal) -> int:
    return int((Decimal(terms.included_requests) * fraction).to_integral_value(rounding=ROUND_HALF_UP))


def overage_fee(terms: PlanTerms, overage_requests: int) -> Decimal:
    if terms.overage_price_per_1000 is None or overage_requests <= 0:
        return money(Decimal(0), terms.currency)
    return money(Decimal(overage_requests) * terms.overage_price_per_1000 / THOUSAND, terms.currency)


def price_line(*, terms: PlanTerms, fraction: Decimal, used_requests: int) -> LineAmounts:
    """One subscription's charges for one plan over one month."""
    if not Decimal(0) <= fraction <= Decimal(1):
        raise ValueError(f"fraction {fraction} outside [0, 1]")
    if used_requests < 0:
        raise ValueError("used_requests must not be negative")
    base = money(terms.monthly_price * fraction, terms.currency)
    included = included_for(terms, fraction)
    overage = max(0, used_requests - included)
    fee = overage_fee(terms, overage)
    return LineAmounts(
        fraction=fraction,
        base_fee=base,
        included_requests=included,
        used_requests=used_requests,
        overage_requests=overage,
        overage_fee=fee,
        amount=base + fee,
    )


def price_adjustment(*, terms: PlanTerms, included: int, billed_used: int, late_requests: int) -> LineAmounts:
    """What ``late_requests`` add to a closed month whose line billed ``billed_used``
    requests against ``included``: the difference in the overage fee, nothing else."""
    before = max(0, billed_used - included)
    after = max(0, billed_used + late_requests - included)
    fee = overage_fee(terms, after) - overage_fee(terms, before)
    return LineAmounts(
        fraction=Decimal(0),
        base_fee=money(Decimal(0), terms.currency),
        included_requests=0,
        used_requests=late_requests,
        overage_requests=after - before,
        overage_fee=fee,
        amount=fee,
    )


def invoice_total(amounts: list[Decimal], currency: str) -> Decimal:
    return money(sum(amounts, Decimal(0)), currency)
