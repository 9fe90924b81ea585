"""What the gateway publishes about a district's supplies: its alert level and its stock.

Counts only: categories, units, days. Never an applicant unit, an approver or a keeper's
name, so the command center's own tools may read them (docs/mqtt.md).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field

from edge.contract.base import STRICT, Payload, Slug

# The plans' four levels, from 一般 (general) to 特急 (most urgent).
Level = Literal["IV", "III", "II", "I"]
CATEGORIES_MAX = 16
PRICE_GROUPS_MAX = 16
UNITS_MAX = 8
TARGETS_MAX = 64
RuleCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9:+%.-]{0,79}$", max_length=80)]
# Days of cover to 0.1, as a number: a view, not a quantity anything is summed from.
Days = Annotated[float, Field(ge=0, le=1_000_000)]
# A quantity in its unit, exact, as decimal text (the ledger's steps, never a float).
Quantity = Annotated[str, Field(pattern=r"^[0-9]{1,15}(\.[0-9]{1,3})?$")]


class CategorySupply(BaseModel):
    """How long a category has been below its reserve target, and whether it ran out."""

    model_config = STRICT

    category: Slug
    tight_days: int = Field(
        ge=0, le=3660, description="consecutive local days below a target, today included; "
        "0: not below one now",
    )  # fmt: skip
    stock_out: bool = Field(description="an item of it that counts has none usable")


class PriceRise(BaseModel):
    """A price group's week-on-week rise."""

    model_config = STRICT

    group: Slug
    rise_pct: float | None = Field(
        None, ge=-100, le=100_000, description="percent, to 0.1; null: no observations to compare"
    )


class SupplyLevel(Payload):
    """A site's (a district's) supply alert level, the rule that set it and its inputs."""

    site: Slug
    level: Level | None = Field(None, description="IV (一般) to I (特急); null: none")
    rule: RuleCode | None = Field(None, description="the rule that set it, e.g. price-rise:pork")
    rule_zh: str | None = Field(None, max_length=120)
    rule_en: str | None = Field(None, max_length=200)
    since: AwareDatetime | None = Field(None, description="when the site entered this level")
    at: AwareDatetime = Field(description="when it was computed")
    categories: tuple[CategorySupply, ...] = Field(max_length=CATEGORIES_MAX)
    prices: tuple[PriceRise, ...] = Field(max_length=PRICE_GROUPS_MAX)


class UnitQuantity(BaseModel):
    """On hand in one unit (a category's items are counted in kg, L, boxes…)."""

    model_config = STRICT

    unit: Literal["piece", "box", "pair", "bottle", "bag", "kg", "L"]
    quantity: Quantity


class TargetCover(BaseModel):
    """One reserve target of the category: its days of cover against the days to hold."""

    model_config = STRICT

    subject: Annotated[str, Field(pattern=r"^(item|category):[a-z0-9][a-z0-9_-]{0,62}$")]
    days: Days | None = Field(None, description="null: no issue in the window (no bound)")
    target_days: float = Field(gt=0, le=365)
    below: bool


class CategoryStock(BaseModel):
    """A category's stock over every depot of the site."""

    model_config = STRICT

    category: Slug
    on_hand: tuple[UnitQuantity, ...] = Field(
        max_length=UNITS_MAX, description="usable on hand, per unit"
    )
    days: Days | None = Field(None, description="its weakest issued item's days; null: none issued")
    targets: tuple[TargetCover, ...] = Field(max_length=TARGETS_MAX)
    tight: bool = Field(description="a target of it is below")


class StockSummary(Payload):
    """A site's stock per category: on hand, days of cover and its targets."""

    site: Slug
    at: AwareDatetime
    categories: tuple[CategoryStock, ...] = Field(max_length=CATEGORIES_MAX)
