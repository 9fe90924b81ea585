"""The supply alert level of a district (a site), from IV (一般, general) to I (特急, most urgent).

Three kinds of rule, each with a threshold per level, read from the plans: a category below
its reserve target for so many consecutive local days (supply tight), stock-outs in so many
categories, and the week-on-week price rise of a price group (grain and oil, pork). The
highest level any rule reaches is the level. The defaults are our reading of the plans; a
district sets its own in `stock.supply_levels` (docs/stock.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol, Self, runtime_checkable

from pydantic import Field, model_validator

from edge.configfile import Section
from edge.contract.base import Slug
from edge.contract.supply import Level
from gateway.stock.catalogue import built_in_items
from gateway.stock.prices import PriceDraft, PriceObservation

# Lowest first: a level's index is its rank.
LEVELS: tuple[Level, ...] = ("IV", "III", "II", "I")
LEVEL_ZH: dict[str, str] = {"IV": "Ⅳ级（一般）", "III": "Ⅲ级（较重）", "II": "Ⅱ级（严重）",
                            "I": "Ⅰ级（特急）"}  # fmt: skip
CATEGORY_NAMES: dict[str, tuple[str, str]] = {
    "protective": ("防护用品", "protective items"),
    "disinfection": ("消杀用品", "disinfection items"),
    "necessities": ("生活必需品", "daily necessities"),
}
GROUPS_MAX = 16


def rank(level: Level | None) -> int:
    """0 for no level, 1 for IV … 4 for I."""
    return 0 if level is None else LEVELS.index(level) + 1


class PriceGroup(Section):
    """Items whose prices are watched together (grain and oil; pork)."""

    name: Slug = Field(description="names the group in rules and payloads, e.g. grain-oil")
    items: tuple[Slug, ...] = Field(
        min_length=1, max_length=16, description="built-in catalogue items priced in it"
    )
    name_zh: str = Field("", max_length=20, description="for people; empty: the name")
    name_en: str = Field("", max_length=40, description="for people; empty: the name")


class LevelRule(Section):
    """What sets one level; any one of its thresholds reached does."""

    level: Level
    tight_days: int | None = Field(
        None, ge=1, le=365, description="a category below a target this many consecutive "
        "local days (today included); none: not a rule of this level",
    )  # fmt: skip
    stock_out_categories: int | None = Field(
        None, ge=1, le=16, description="stock-outs in at least this many categories"
    )
    price_rise_pct: dict[Slug, float] = Field(
        default_factory=dict, max_length=GROUPS_MAX,
        description="price group -> week-on-week rise in percent that sets this level",
    )  # fmt: skip

    @model_validator(mode="after")
    def _positive_rises(self) -> Self:
        for group, pct in self.price_rise_pct.items():
            if not 0 < pct <= 1000:
                raise ValueError(f"price_rise_pct.{group}: {pct} is not in (0, 1000]")
        return self


GRAIN_OIL = PriceGroup(name="grain-oil", items=("grain", "edible-oil"), name_zh="粮油",
                       name_en="grain and oil")  # fmt: skip
PORK = PriceGroup(name="pork", items=("pork",), name_zh="猪肉", name_en="pork")
# The plans' price steps (+20/30/50/80 % grain and oil, +20/30/40 % pork, none for pork at
# I); the days and stock-outs are our reading of "supply tight" and "for how long".
DEFAULT_LEVELS = (
    LevelRule(level="IV", tight_days=1, price_rise_pct={"grain-oil": 20, "pork": 20}),
    LevelRule(level="III", tight_days=3, stock_out_categories=1,
              price_rise_pct={"grain-oil": 30, "pork": 30}),
    LevelRule(level="II", tight_days=7, stock_out_categories=2,
              price_rise_pct={"grain-oil": 50, "pork": 40}),
    LevelRule(level="I", tight_days=15, stock_out_categories=3, price_rise_pct={"grain-oil": 80}),
)  # fmt: skip


class SupplyLevelSection(Section):
    """The supply alert level's rules, for every site of this gateway (`stock.supply_levels`)."""

    price_groups: tuple[PriceGroup, ...] = Field(
        (GRAIN_OIL, PORK), max_length=GROUPS_MAX, description="items priced together"
    )
    levels: tuple[LevelRule, ...] = Field(
        DEFAULT_LEVELS, max_length=4, description="one rule set per level, IV to I"
    )
    publish_every_s: float = Field(
        300.0, ge=10, le=3600,
        description="the retained level and stock summary are sent again this often unchanged",
    )  # fmt: skip

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [priced.name for priced in self.price_groups]
        known, seen_items = built_in_items(), set[str]()
        for i, priced in enumerate(self.price_groups):
            if names.count(priced.name) > 1:
                raise ValueError(f"price_groups.{i}.name: {priced.name} is named twice")
            for item in priced.items:
                if item not in known:
                    raise ValueError(f"price_groups.{i}.items: {item} is not a catalogue item")
                if item in seen_items:
                    raise ValueError(f"price_groups.{i}.items: {item} is in another group")
                seen_items.add(item)
        levels = [rule.level for rule in self.levels]
        for i, rule in enumerate(self.levels):
            if levels.count(rule.level) > 1:
                raise ValueError(f"levels.{i}.level: {rule.level} has two rule sets")
            for group in rule.price_rise_pct:
                if group not in names:
                    raise ValueError(f"levels.{i}.price_rise_pct.{group}: no such price group")
        self._higher_needs_more()
        return self

    def _higher_needs_more(self) -> None:
        """A higher level's threshold is never below a lower one's: else the lower would
        never be the level, which is a typo rather than a rule."""
        ordered = sorted(self.levels, key=lambda rule: rank(rule.level))
        for low_i, low in enumerate(ordered):
            for high in ordered[low_i + 1 :]:
                pairs: list[tuple[str, float | None, float | None]] = [
                         ("tight_days", low.tight_days, high.tight_days),
                         ("stock_out_categories", low.stock_out_categories,
                          high.stock_out_categories)]  # fmt: skip
                pairs += [(f"price_rise_pct.{g}", pct, high.price_rise_pct.get(g))
                          for g, pct in low.price_rise_pct.items()]  # fmt: skip
                for name, below, above in pairs:
                    if below is not None and above is not None and above < below:
                        raise ValueError(
                            f"levels.{high.level}.{name}: {above:g} is below level "
                            f"{low.level}'s {below:g}; a higher level needs more"
                        )

    def group(self, name: str) -> PriceGroup | None:
        return next((g for g in self.price_groups if g.name == name), None)


# --- the level, a pure function of its inputs -----------------------------------------


@dataclass(frozen=True)
class SupplyInputs:
    """What the level is figured from, for one site now."""

    tight_days: Mapping[str, int]  # category -> consecutive days below a target (0: not now)
    stock_outs: Mapping[str, tuple[str, ...]]  # category -> its items out of stock
    rises: Mapping[str, Decimal | None]  # price group -> week-on-week rise, percent


@dataclass(frozen=True)
class Finding:
    """The level and the rule that set it: a stable code, and the same in words."""

    level: Level
    rule: str
    zh: str
    en: str


def _names(categories: list[str]) -> tuple[str, str]:
    zh = "、".join(CATEGORY_NAMES.get(c, (c, c))[0] for c in categories)
    en = ", ".join(CATEGORY_NAMES.get(c, (c, c))[1] for c in categories)
    return zh, en


def _met(rule: LevelRule, inputs: SupplyInputs, rules: SupplyLevelSection) -> Finding | None:
    """The first of `rule`'s thresholds `inputs` reach: stock-outs, tight days, prices."""
    out = sorted(c for c, items in inputs.stock_outs.items() if items)
    if rule.stock_out_categories is not None and len(out) >= rule.stock_out_categories:
        zh, en = _names(out)
        return Finding(rule.level, f"stock-out:{'+'.join(out)}", f"缺货：{zh}",
                       f"out of stock: {en}")  # fmt: skip
    if rule.tight_days is not None and inputs.tight_days:
        category, days = max(inputs.tight_days.items(), key=lambda kv: (kv[1], kv[0]))
        if days >= rule.tight_days:
            zh, en = _names([category])
            return Finding(rule.level, f"tight:{category}:{days}d",
                           f"{zh}低于储备目标已连续{days}天",
                           f"{en} below a reserve target {days} days in a row")  # fmt: skip
    reached = [
        (rise, group) for group, pct in rule.price_rise_pct.items()
        if (rise := inputs.rises.get(group)) is not None and rise >= Decimal(str(pct))
    ]  # fmt: skip
    if reached:
        rise, name = max(reached)
        group = rules.group(name)
        zh = group.name_zh if group and group.name_zh else name
        en = group.name_en if group and group.name_en else name
        shown = f"{rise:+.0f}%"
        return Finding(rule.level, f"price-rise:{name}:{shown}",
                       f"{zh}价格周环比上涨{shown.lstrip('+')}",
                       f"{en} prices {shown} week on week")  # fmt: skip
    return None


def supply_level(rules: SupplyLevelSection, inputs: SupplyInputs) -> Finding | None:
    """The highest level any rule reaches, and that rule; None when none does.

    Args:
        rules: the thresholds per level.
        inputs: tight days per category, stock-outs per category, price rises per group.
    """
    for rule in sorted(rules.levels, key=lambda r: -rank(r.level)):
        found = _met(rule, inputs, rules)
        if found is not None:
            return found
    return None


def consecutive_days(history: set[date], today: date, tight_now: bool) -> int:
    """Days in a row below a target ending today: 0 if not below now, else 1 plus each day
    before today on record as below (a day with no check at all breaks the run)."""
    if not tight_now:
        return 0
    days, day = 1, date.fromordinal(today.toordinal() - 1)
    while day in history:
        days += 1
        day = date.fromordinal(day.toordinal() - 1)
    return days


# --- what the level keeps in the store --------------------------------------------------


@dataclass(frozen=True)
class SupplyState:
    """A site's level as last recorded: `since` survives a restart."""

    site: str
    level: Level | None
    rule: str | None
    since: datetime | None
    at: datetime


@runtime_checkable
class SupplyStore(Protocol):
    """Price observations, the days each category was below a target, the level's state."""

    def price_write(
        self, draft: PriceDraft, who: str, at: datetime
    ) -> tuple[PriceObservation, bool]:
        """Store `draft` once per key; (the observation, True if it was a repeat).

        Raises:
            StockRefused: 409 `idempotency-conflict`, the key used for another observation.
        """
        ...

    def prices(self, site: str, since: date, until: date) -> list[PriceObservation]:
        """Observations of days `since` to `until` (inclusive), any item."""
        ...

    def price_page(
        self, site: str, item: str | None, before_id: int | None, limit: int
    ) -> list[PriceObservation]:
        """Newest first."""
        ...

    def record_tight_days(self, site: str, day: date, categories: set[str]) -> None:
        """Note that each of `categories` was below a target on local day `day`."""
        ...

    def tight_history(self, site: str, since: date) -> dict[str, set[date]]:
        """Per category, the days since `since` it was on record as below a target."""
        ...

    def supply_state(self, site: str) -> SupplyState | None: ...

    def save_supply_state(self, state: SupplyState) -> None: ...
