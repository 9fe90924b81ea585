"""The stock catalogue: what a depot keeps, in which unit, at which storage class, by lot.

The built-in items are in items.yaml beside this module (the source plans' protective
items, disinfection items and daily necessities); a site adds its own in the gateway config
(`sites[].stock_items`). Quantities are exact: each unit has a fixed number of decimals and
the ledger stores whole steps of it (a kg to the gram, a piece whole), never a float.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, TypeAdapter

from edge.configfile import Section
from edge.contract.base import Slug

Category = Literal["protective", "disinfection", "necessities"]
Unit = Literal["piece", "box", "pair", "bottle", "bag", "kg", "L"]
# Decimals each unit is counted to: the ledger stores whole steps of 10**-decimals.
UNIT_DECIMALS: dict[str, int] = {
    "piece": 0, "box": 0, "pair": 0, "bottle": 0, "bag": 0, "kg": 3, "L": 3,
}  # fmt: skip
SITE_ITEMS_MAX = 200
ITEMS_FILE = Path(__file__).with_name("items.yaml")


class StockItem(Section):
    """One item of the catalogue (a kind of supply, not a lot of it)."""

    key: Slug = Field(description="names the item in the ledger and the API, e.g. n95-mask")
    category: Category = Field(description="protective, disinfection or necessities")
    unit: Unit = Field(description="what a quantity counts: piece, box, pair, bottle, bag, kg, L")
    name_zh: str = Field(min_length=1, max_length=40, description="Simplified Chinese name")
    name_en: str = Field(min_length=1, max_length=80, description="English name")
    storage_class: Slug = Field(
        description="a storage class (gateway/storage_classes.py or the site's) it is kept at"
    )
    lot_tracked: bool = Field(
        False, description="each receipt names a lot and its expiry date; expired lots are "
        "never issued",
    )  # fmt: skip
    shelf_life_days: int | None = Field(
        None, ge=1, le=3650, description="shelf life from production, for people; none: not set"
    )

    @property
    def decimals(self) -> int:
        return UNIT_DECIMALS[self.unit]

    def to_steps(self, quantity: Decimal) -> int:
        """`quantity` in whole steps of this item's unit.

        Raises:
            ValueError: more decimals than the unit is counted to (e.g. 1.5 pieces).
        """
        steps = quantity.scaleb(self.decimals)
        if steps != steps.to_integral_value():
            raise ValueError(
                f"a quantity in {self.unit} has at most {self.decimals} decimals"
                if self.decimals else f"a quantity in {self.unit} is a whole number"
            )  # fmt: skip
        return int(steps)

    def of_steps(self, steps: int) -> Decimal:
        """Whole steps back to a quantity in this item's unit (exact)."""
        return Decimal(steps).scaleb(-self.decimals)


_ITEMS = TypeAdapter(tuple[StockItem, ...])


@cache
def built_in_items() -> dict[str, StockItem]:
    """The built-in catalogue (items.yaml), by key; read and validated once."""
    items = _ITEMS.validate_python(yaml.safe_load(ITEMS_FILE.read_text(encoding="utf-8")))
    return {item.key: item for item in items}


def check_site_items(items: Iterable[StockItem], storage_classes: Iterable[str]) -> None:
    """Refuse a site's items that reuse a key or name an unknown storage class.

    Args:
        items: the site's own items (`sites[].stock_items`).
        storage_classes: every class name the site knows (built-in and its own).

    Raises:
        ValueError: naming the item's field (as the config's other checks do).
    """
    known = set(storage_classes)
    seen: set[str] = set(built_in_items())
    for index, item in enumerate(items):
        if item.key in seen:
            raise ValueError(f"stock_items.{index}.key: {item.key} is already in the catalogue")
        seen.add(item.key)
        if item.storage_class not in known:
            raise ValueError(
                f"stock_items.{index}.storage_class: unknown storage class {item.storage_class} "
                f"(known: {', '.join(sorted(known))})"
            )


def site_catalogue(site_items: Iterable[StockItem] = ()) -> Mapping[str, StockItem]:
    """A site's catalogue: the built-in items and its own, by key."""
    return {**built_in_items(), **{item.key: item for item in site_items}}
