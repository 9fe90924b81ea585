"""The daily stock report's figures: a depot's day read from the ledger, in the site's zone.

Each figure must equal what the ledger holds and moved: on hand at the day's start and end,
receipts, issues, transfers, adjustments (a reversal counted under the kind it cancels),
days of cover at the day's end; and opening + movements = closing for every depot, item
and day, whatever the movements (a hypothesis property).
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.config import SiteSection
from gateway.stock.cover import StockSection
from gateway.stock.daily_report import (
    FIGURES,
    DepotFigures,
    ItemDay,
    StockReportSection,
    day_bounds,
    deadline_of,
    depot_figures,
)
from gateway.stock.ledger import Movement, StockEntry, StockRefused
from gateway.stock.site_report import site_report
from gateway.store import SqlStore
from gateway.web.stock_report import report_html

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 12, 5)
START = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)  # 2026-12-05 00:00 in Shanghai
SITE = SiteSection(name="north", depots=("d01", "d02"))
WINDOW = 14


class Ledger:
    """A real store; each movement written at the time the test says."""

    def __init__(self, store: SqlStore, site: SiteSection = SITE) -> None:
        self.store = store
        self.site = site
        self.keys = 0

    def write(self, at: datetime, kind: str, depot: str = "d01", **fields: object) -> StockEntry:
        self.keys += 1
        movement = Movement(kind, self.site.name, depot, f"test-key-{self.keys:06d}", **fields)  # type: ignore[arg-type]
        entry, _ = self.store.stock_write(movement, "keeper", at, at.astimezone(SHANGHAI).date())
        return entry

    def receive(self, at: datetime, item: str, steps: int, depot: str = "d01") -> StockEntry:
        unit = "kg" if item == "grain" else "piece"
        return self.write(at, "receipt", depot, item=item, unit=unit, steps=steps,
                          source="purchase")  # fmt: skip

    def issue(self, at: datetime, item: str, steps: int, depot: str = "d01") -> StockEntry:
        unit = "kg" if item == "grain" else "piece"
        return self.write(at, "issue", depot, item=item, unit=unit, steps=-steps,
                          applicant_unit="Clinic 3", approver="Li Wei", application_id="A-1")  # fmt: skip

    def day(self, day: date = DAY, depot: str = "d01") -> DepotFigures:
        return depot_figures(self.store, self.site, depot, day, WINDOW)


@pytest.fixture
def ledger(store: SqlStore) -> Ledger:
    return Ledger(store)


def item_of(figures: DepotFigures, key: str) -> ItemDay:
    (found,) = [i for i in figures.items if i.item == key]
    return found


def num(*values: int | str) -> tuple[Decimal, ...]:
    return tuple(Decimal(v) for v in values)


def balance(f: ItemDay) -> Decimal:
    return (f.opening + f.receipts - f.issues + f.transfers_in - f.transfers_out
            + f.adjustments)  # fmt: skip


# --- the figures equal the ledger's --------------------------------------------------------


def test_figures__each_kind_of_movement_of_the_day_and_on_hand_at_its_start_and_end(
    ledger: Ledger,
) -> None:
    ledger.receive(START - timedelta(days=1), "grain", 500_000)  # 500 kg the day before
    ledger.receive(START + timedelta(hours=1), "grain", 200_000)
    ledger.issue(START + timedelta(hours=2), "grain", 50_000)
    wrong = ledger.issue(START + timedelta(hours=3), "grain", 70_000)
    ledger.write(START + timedelta(hours=4), "reversal", reverses=wrong.id, reason="typo")
    out = ledger.write(START + timedelta(hours=5), "transfer-out", item="grain", unit="kg",
                       steps=-100_000, to_depot="d02")  # fmt: skip
    ledger.write(START + timedelta(hours=6), "transfer-in", "d02", transfer_of=out.id)
    ledger.write(START + timedelta(hours=7), "adjustment", item="grain", unit="kg",
                 steps=-1_500, reason="stocktake")  # fmt: skip
    ledger.receive(START + timedelta(days=1), "grain", 9_000_000)  # the next day: not counted

    grain = item_of(ledger.day(), "grain")
    assert (grain.opening, grain.receipts, grain.issues) == num(500, 200, 50)  # the reversal nets
    assert (grain.transfers_in, grain.transfers_out, grain.adjustments) == num(0, 100, "-1.5")
    assert grain.closing == Decimal("548.5") == balance(grain)
    assert (grain.unit, grain.category, grain.name_zh) == ("kg", "necessities", "成品粮")
    d02 = item_of(ledger.day(depot="d02"), "grain")
    assert (d02.opening, d02.transfers_in, d02.closing) == num(0, 100, 100)
    # The next day opens with what this one closed with, and ends with the ledger's on hand.
    after = item_of(ledger.day(DAY + timedelta(days=1)), "grain")
    assert after.opening == grain.closing
    assert after.closing == sum(p.quantity for p in ledger.store.stock_on_hand("north", "d01"))


def test_figures__a_reversal_the_next_day_is_counted_that_day_under_the_kind_it_cancels(
    ledger: Ledger,
) -> None:
    ledger.receive(START, "goggles", 10)
    issued = ledger.issue(START + timedelta(hours=1), "goggles", 4)
    ledger.write(START + timedelta(days=1, hours=1), "reversal", reverses=issued.id, reason="x")
    first = item_of(ledger.day(), "goggles")
    second = item_of(ledger.day(DAY + timedelta(days=1)), "goggles")
    assert (first.issues, first.closing) == num(4, 6)
    assert (second.opening, second.issues, second.closing) == num(6, -4, 10)


def test_figures__the_days_boundaries_are_the_sites_midnights(ledger: Ledger) -> None:
    ledger.receive(START - timedelta(microseconds=1), "goggles", 1)  # 23:59:59.999999 the 4th
    ledger.receive(START, "goggles", 2)  # 00:00 the 5th, Shanghai
    ledger.receive(START + timedelta(days=1) - timedelta(microseconds=1), "goggles", 4)
    ledger.receive(START + timedelta(days=1), "goggles", 8)  # 00:00 the 6th
    goggles = item_of(ledger.day(), "goggles")
    assert (goggles.opening, goggles.receipts, goggles.closing) == num(1, 6, 7)
    assert day_bounds(DAY, SHANGHAI) == (START, START + timedelta(days=1))


def test_figures__a_day_the_clocks_change_has_23_hours() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start, end = day_bounds(date(2026, 3, 29), berlin)
    assert end - start == timedelta(hours=23)
    assert start == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert deadline_of(date(2026, 3, 29), berlin, "17:30") == datetime(2026, 3, 29, 15, 30,
                                                                       tzinfo=UTC)  # fmt: skip


def test_figures__days_of_cover_at_the_days_end_and_categories_per_unit(ledger: Ledger) -> None:
    ledger.receive(START - timedelta(days=10), "grain", 3_000_000)
    ledger.issue(START - timedelta(days=5), "grain", 700_000)
    ledger.issue(START + timedelta(hours=2), "grain", 700_000)  # 1,400 kg in 14 days: 100 a day
    ledger.issue(START + timedelta(days=2), "grain", 1_000_000)  # after the day: not counted
    ledger.receive(START, "goggles", 30)
    figures = ledger.day()
    grain = item_of(figures, "grain")
    assert (grain.closing, grain.daily_issue, grain.days) == num(1600, 100, 16)
    assert item_of(figures, "goggles").days is None  # never issued: no bound
    rows = {(c.category, c.unit): c for c in figures.categories}
    assert set(rows) == {("necessities", "kg"), ("protective", "piece")}
    assert rows["necessities", "kg"].days == 16
    assert rows["protective", "piece"].closing == 30
    assert rows["protective", "piece"].days is None


def test_figures__an_item_no_longer_in_the_catalogue_is_shown_by_its_key_and_unit(
    ledger: Ledger,
) -> None:
    # A site's own item, since removed from its config: its entries stay in the ledger.
    ledger.write(START, "receipt", item="rice-noodles", unit="kg", steps=2_500, source="purchase")
    figures = ledger.day()
    (noodles,) = figures.items
    assert (noodles.item, noodles.name_zh, noodles.category, noodles.unit) == (
        "rice-noodles", "rice-noodles", "", "kg",
    )  # fmt: skip
    assert noodles.closing == Decimal("2.5")
    report = site_report(ledger.store, ledger.store, site=SITE, depots=["d01"], day=DAY,
                         now=START + timedelta(days=1), settings=StockSection())  # fmt: skip
    page = report_html(report)
    assert "<th>—</th><td>kg</td>" in page and "rice-noodles" in page


def test_figures__a_depot_without_stock_or_movement_has_no_rows(ledger: Ledger) -> None:
    assert ledger.day() == DepotFigures(depot="d01", categories=[], items=[])


# --- the property -----------------------------------------------------------------------

Move = tuple[str, str, str, int, int]  # kind, depot, item, steps, minute


@st.composite
def movements(draw: st.DrawFn) -> list[Move]:
    kinds = st.sampled_from(["receipt", "receipt", "issue", "transfer", "adjustment", "reversal"])
    minute = st.integers(0, 3 * 24 * 60 - 1)  # three Shanghai days from START
    return draw(st.lists(st.tuples(kinds, st.sampled_from(["d01", "d02"]),
                                   st.sampled_from(("grain", "goggles")),
                                   st.integers(1, 50), minute), max_size=25))  # fmt: skip


_sites = itertools.count(1)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
@given(moves=movements())
def test_property__opening_plus_the_days_movements_is_closing_per_depot_item_and_day(
    store: SqlStore,
    moves: list[Move],
) -> None:
    # One store for every example (on either engine), a site of its own for each: a site's
    # depots see no other site's stock.
    site = SiteSection(name=f"p{next(_sites):04d}", depots=("d01", "d02"))
    ledger = Ledger(store, site)
    written: list[StockEntry] = []
    for kind, depot, item, steps, minute in sorted(moves, key=lambda m: m[4]):
        at = START + timedelta(minutes=minute)
        unit = "kg" if item == "grain" else "piece"
        try:
            if kind == "receipt":
                written.append(ledger.receive(at, item, steps, depot))
            elif kind == "issue":
                written.append(ledger.issue(at, item, steps, depot))
            elif kind == "transfer":
                other = "d02" if depot == "d01" else "d01"
                out = ledger.write(at, "transfer-out", depot, item=item, unit=unit,
                                   steps=-steps, to_depot=other)  # fmt: skip
                if steps % 2:  # half are received, the rest stay in transit
                    ledger.write(at, "transfer-in", other, transfer_of=out.id)
            elif kind == "adjustment":
                ledger.write(at, kind, depot, item=item, unit=unit,
                             steps=steps if steps % 3 else -steps, reason="count")  # fmt: skip
            elif written:
                target = written[steps % len(written)]
                ledger.write(at, "reversal", target.depot, reverses=target.id, reason="x")
        except StockRefused:
            pass  # more than on hand, reversed already: refused, nothing written
    for depot in ("d01", "d02"):
        closed: dict[str, Decimal] = {}
        for offset in range(3):
            for f in ledger.day(DAY + timedelta(days=offset), depot).items:
                assert balance(f) == f.closing, (depot, offset, f)
                assert f.opening == closed.get(f.item, 0), (depot, offset, f)
                assert f.closing >= 0
                closed[f.item] = f.closing
        on_hand = ledger.store.stock_on_hand(site.name, depot)
        for item in {*closed, *(p.item for p in on_hand)}:
            held = sum((p.quantity for p in on_hand if p.item == item), Decimal(0))
            assert closed.get(item, 0) == held, (depot, item)


# --- the deadlines' config ----------------------------------------------------------------


@pytest.mark.parametrize(
    "given_", [{}, {"demand": "09:00", "allocation": "12:30", "report": "23:59"},
               {"enabled": False}],
)  # fmt: skip
def test_config__valid(given_: dict[str, object]) -> None:
    section = StockSection.model_validate({"report": given_})
    assert section.report.demand < section.report.allocation < section.report.report


@pytest.mark.parametrize(
    ("given_", "field", "words"),
    [
        ({"report": "7:30"}, "report.report", "pattern"),
        ({"report": "24:00"}, "report.report", "pattern"),
        ({"demand": "11:60"}, "report.demand", "pattern"),
        ({"allocation": "17:00:00"}, "report.allocation", "pattern"),
        ({"demand": "18:00"}, "report", "demand < allocation < report"),
        ({"allocation": "17:30"}, "report", "demand < allocation < report"),
        ({"deadline": "17:30"}, "report.deadline", "Extra inputs"),
    ],
)
def test_config__invalid(given_: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(ValidationError) as failed:
        StockSection.model_validate({"report": given_})
    (error,) = failed.value.errors()
    assert ".".join(str(p) for p in error["loc"]) == field
    assert words in str(failed.value)


def test_config__defaults_are_the_plans() -> None:
    assert StockReportSection() == StockReportSection(
        demand="11:00", allocation="17:00", report="17:30", enabled=True
    )
    assert FIGURES[0] == "opening" and FIGURES[-1] == "closing"
