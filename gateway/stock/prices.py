"""Market price observations and their week-on-week rise, which feeds the supply alert level.

A price is what one unit of an item (a kg of pork, a litre of oil) cost in CNY at a market
on a day, as someone at the command center saw it. Observations are immutable. The rise of
an item is the mean of its observations of the last 7 local days (today included) against
the mean of the 7 days before, in percent; a price group's rise is its items' largest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from gateway.stock.ledger import Record

WEEK_DAYS = 7
PRICES_PAGE_MAX = 500
FEN = Decimal("0.01")
ZERO = Decimal(0)


@dataclass(frozen=True)
class PriceDraft:
    """One observation as the API hands it to the store (the key makes it idempotent)."""

    site: str
    item: str
    unit: str
    price_fen: int  # CNY x 100: exact, as the ledger keeps steps
    observed_on: date
    market: str
    key: str

    def fingerprint(self) -> str:
        """SHA-256 of what was asked: the same key with another observation is a conflict."""
        fields = {"site": self.site, "item": self.item, "unit": self.unit,
                  "price_fen": self.price_fen, "observed_on": self.observed_on.isoformat(),
                  "market": self.market}  # fmt: skip
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


class PriceObservation(Record):
    """A stored observation."""

    id: int
    site: str
    item: str
    unit: str
    price: Decimal
    observed_on: date
    market: str
    who: str
    at: datetime


def fen_of(price: Decimal) -> int:
    """CNY to whole fen (the API allows 2 decimals, so this is exact)."""
    return int(price.quantize(FEN) * 100)


def yuan_of(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(FEN)


def weeks(today: date) -> tuple[tuple[date, date], tuple[date, date]]:
    """(this week, the week before) as inclusive day ranges ending `today`."""
    start = today - timedelta(days=WEEK_DAYS - 1)
    before = start - timedelta(days=WEEK_DAYS)
    return (start, today), (before, start - timedelta(days=1))


def item_rises(observations: Iterable[PriceObservation], today: date) -> dict[str, Decimal]:
    """Per item, the rise in percent of this week's mean price over last week's; an item
    without an observation in both weeks has none."""
    (start, end), (before, last) = weeks(today)
    this: dict[str, list[Decimal]] = {}
    prior: dict[str, list[Decimal]] = {}
    for seen in observations:
        if start <= seen.observed_on <= end:
            this.setdefault(seen.item, []).append(seen.price)
        elif before <= seen.observed_on <= last:
            prior.setdefault(seen.item, []).append(seen.price)
    rises: dict[str, Decimal] = {}
    for item, now in this.items():
        if item in prior:
            mean_now = sum(now, ZERO) / len(now)
            mean_prior = sum(prior[item], ZERO) / len(prior[item])
            rises[item] = (mean_now / mean_prior - 1) * 100
    return rises


def group_rise(items: Iterable[str], rises: Mapping[str, Decimal]) -> Decimal | None:
    """A group's rise: its items' largest (grain and oil are priced in different units, so
    their means do not mix); None when none of them has one."""
    found = [rises[item] for item in items if item in rises]
    return max(found) if found else None
