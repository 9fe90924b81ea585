"""The stock ledger in a real store (a SQLite file and a PostgreSQL database): its rules, one
by one, and its invariants over any sequence of attempted writes (hypothesis), as an auditor
checking the books would."""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import SiteSection
from gateway.stock.catalogue import UNIT_DECIMALS, StockItem, built_in_items, site_catalogue
from gateway.stock.ledger import Movement, StockRefused, StockStore
from gateway.store import SqliteStore, SqlStore, open_store
from gateway.store.migrations import MIGRATIONS, apply_migrations
from gateway.store.settings import StoreSection
from gateway.store.sql import INTEGRITY_ERRORS
from tests.conftest import PostgresDatabases
from tests.gateway.factory import look_inside

AT = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
TODAY = date(2026, 12, 6)
EXPIRES = date(2027, 6, 30)
_keys = iter(range(10**9))


def key() -> str:
    return f"key-{next(_keys):08d}"


def receipt(depot: str = "d01", item: str = "n95-mask", steps: int = 100, lot: str = "L1",
            **fields: object) -> Movement:  # fmt: skip
    expires = fields.pop("expires_on", EXPIRES if lot else None)
    return Movement("receipt", "north", depot, key(), item=item, unit=_unit(item), steps=steps,
                    lot=lot, expires_on=expires, source="purchase", **fields)  # type: ignore[arg-type]  # fmt: skip


def issue(depot: str = "d01", item: str = "n95-mask", steps: int = 10, lot: str = "L1",
          **fields: object) -> Movement:  # fmt: skip
    values: dict[str, object] = {"applicant_unit": "clinic-3", "approver": "Li",
                                 "application_id": "A-17"} | fields  # fmt: skip
    return Movement("issue", "north", depot, key(), item=item, unit=_unit(item), steps=-steps,
                    lot=lot, **values)  # type: ignore[arg-type]  # fmt: skip


def _unit(item: str) -> str:
    return built_in_items()[item].unit


def write(store: SqlStore, movement: Movement, today: date = TODAY) -> int:
    entry, _ = store.stock_write(movement, "keeper-d01", AT, today)
    return entry.id


def on_hand(store: SqlStore, depot: str = "d01") -> dict[tuple[str, str, str], Decimal]:
    return {(h.item, h.lot, h.designated_to): h.quantity for h in store.stock_on_hand("north", depot)}  # fmt: skip


def refused(store: SqlStore, movement: Movement, today: date = TODAY) -> StockRefused:
    """The refusal of `movement`, after checking it wrote nothing."""
    before = _all_entries(store)
    with pytest.raises(StockRefused) as caught:
        store.stock_write(movement, "keeper-d01", AT, today)
    assert _all_entries(store) == before
    return caught.value


ENTRY_COLUMNS = (
    "kind, site, depot, item, lot, designated_to, steps, unit, source, applicant_unit, "
    "approver, application_id, reason, peer_depot, transfer_of, reverses, who, at, idem_key, "
    "request_sha256"
)


def _all_entries(store: SqlStore) -> list[tuple[object, ...]]:
    return look_inside(store, "SELECT * FROM stock_entries ORDER BY id")


# --- the catalogue ----------------------------------------------------------------------


def test_catalogue__holds_the_plans_items_in_both_languages() -> None:
    items = built_in_items()
    by_category = defaultdict(set)
    for item in items.values():
        by_category[item.category].add(item.key)
        assert item.name_zh and item.name_en
    assert {"protective-suit", "isolation-gown", "n95-mask", "surgical-mask", "disposable-mask",
            "goggles", "face-shield", "latex-gloves", "shoe-covers", "medical-cap", "film-gloves",
            "mercury-thermometer", "infrared-thermometer"} == by_category["protective"]  # fmt: skip
    assert {"disinfectant-84", "hand-sanitiser", "alcohol-75"} == by_category["disinfection"]
    assert {"grain", "edible-oil", "pork", "eggs", "milk", "storable-vegetables",
            "salt"} == by_category["necessities"]  # fmt: skip
    assert items["surgical-mask"].name_zh == "医用外科口罩"
    assert items["protective-suit"].name_zh == "医用防护服"


def test_catalogue__a_site_adds_its_own_items() -> None:
    own = StockItem(key="rice-noodles", category="necessities", unit="kg", name_zh="米粉",
                    name_en="Rice noodles", storage_class="room")  # fmt: skip
    site = SiteSection(name="north", stock_items=(own,))
    assert site_catalogue(site.stock_items)["rice-noodles"] == own
    assert "grain" in site_catalogue(site.stock_items)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"key": "grain"}, "stock_items.0.key: grain is already in the catalogue"),
        ({"storage_class": "frozen"}, "stock_items.0.storage_class: unknown storage class frozen"),
        ({"unit": "tonne"}, "unit"),
        ({"name_zh": ""}, "name_zh"),
        ({"category": "vaccines"}, "category"),
    ],
)
def test_catalogue__a_site_item_that_does_not_fit_is_refused(
    item: dict[str, object], message: str
) -> None:
    fields = {"key": "rice-noodles", "category": "necessities", "unit": "kg", "name_zh": "米粉",
              "name_en": "Rice noodles", "storage_class": "room"} | item  # fmt: skip
    with pytest.raises(ValueError, match=message):
        SiteSection.model_validate({"name": "north", "stock_items": [fields]})


def test_catalogue__quantities_are_whole_steps_of_the_unit() -> None:
    grain, mask = built_in_items()["grain"], built_in_items()["n95-mask"]
    assert grain.to_steps(Decimal("12.345")) == 12345
    assert grain.of_steps(12345) == Decimal("12.345")
    assert mask.to_steps(Decimal(7)) == 7
    with pytest.raises(ValueError, match="at most 3 decimals"):
        grain.to_steps(Decimal("0.0005"))
    with pytest.raises(ValueError, match="whole number"):
        mask.to_steps(Decimal("1.5"))


# --- the rules, one by one --------------------------------------------------------------


def test_ledger__receipts_and_issues_make_on_hand(store: SqlStore) -> None:
    write(store, receipt(steps=100))
    write(store, receipt(steps=50, lot="L2"))
    write(store, issue(steps=30))
    assert on_hand(store) == {("n95-mask", "L1", ""): 70, ("n95-mask", "L2", ""): 50}
    held = store.stock_on_hand("north", "d01")
    assert [h.expires_on for h in held] == [EXPIRES, EXPIRES]


def test_ledger__kg_are_exact_to_the_gram(store: SqlStore) -> None:
    for _ in range(10):
        write(store, receipt(item="grain", lot="", steps=100))  # 0.1 kg ten times
    assert on_hand(store) == {("grain", "", ""): Decimal("1.000")}


def test_ledger__an_issue_of_more_than_on_hand_is_refused(store: SqlStore) -> None:
    write(store, receipt(steps=5))
    problem = refused(store, issue(steps=6))
    assert (problem.status, problem.reason, problem.field) == (
        409,
        "insufficient-stock",
        "quantity",
    )
    assert on_hand(store) == {("n95-mask", "L1", ""): 5}


def test_ledger__stock_of_another_depot_is_not_on_hand_here(store: SqlStore) -> None:
    write(store, receipt(depot="d02", steps=5))
    assert refused(store, issue(steps=1)).reason == "insufficient-stock"


def test_ledger__an_unknown_lot_is_refused(store: SqlStore) -> None:
    write(store, receipt(steps=5))
    problem = refused(store, issue(lot="L9"))
    assert (problem.status, problem.reason, problem.field) == (422, "unknown-lot", "lot")


def test_ledger__an_expired_lot_is_not_issued(store: SqlStore) -> None:
    write(store, receipt(steps=5))
    problem = refused(store, issue(steps=1), today=EXPIRES + timedelta(days=1))
    assert (problem.reason, problem.field) == ("lot-expired", "lot")
    write(store, issue(steps=1), today=EXPIRES)  # its last day still counts


def test_ledger__a_known_lot_keeps_its_expiry(store: SqlStore) -> None:
    write(store, receipt(steps=5))
    problem = refused(store, receipt(steps=5, expires_on=EXPIRES + timedelta(days=1)))
    assert (problem.reason, problem.field) == ("lot-expiry-differs", "expires_on")


def test_ledger__a_designated_donation_goes_to_its_designee_only(store: SqlStore) -> None:
    write(store, replace(receipt(steps=20), source="donation", designated_to="hospital-2"))
    write(store, receipt(steps=20))  # the same lot, not designated
    problem = refused(store, issue(designated_to="hospital-2", applicant_unit="clinic-3"))
    assert (problem.status, problem.reason, problem.field) == (
        422, "designated-elsewhere", "applicant_unit",
    )  # fmt: skip
    write(store, issue(steps=5, designated_to="hospital-2", applicant_unit="hospital-2"))
    write(store, issue(steps=5, applicant_unit="clinic-3"))
    assert on_hand(store) == {("n95-mask", "L1", "hospital-2"): 15, ("n95-mask", "L1", ""): 15}


def test_ledger__a_transfer_is_in_transit_until_received(store: SqlStore) -> None:
    write(store, receipt(steps=30))
    out = write(store, Movement("transfer-out", "north", "d01", key(), item="n95-mask",
                                unit="piece", steps=-10, lot="L1", to_depot="d02"))  # fmt: skip
    assert on_hand(store) == {("n95-mask", "L1", ""): 20}
    assert on_hand(store, "d02") == {}
    [moving] = store.stock_in_transit("north", "d02")
    assert (moving.entry_id, moving.from_depot, moving.quantity) == (out, "d01", Decimal(10))
    wrong = Movement("transfer-in", "north", "d01", key(), transfer_of=out)
    assert refused(store, wrong).reason == "unknown-transfer"  # d01 is where it left
    write(store, Movement("transfer-in", "north", "d02", key(), transfer_of=out))
    assert on_hand(store, "d02") == {("n95-mask", "L1", ""): 10}
    assert store.stock_in_transit("north", "d02") == []
    again = Movement("transfer-in", "north", "d02", key(), transfer_of=out)
    assert refused(store, again).reason == "transfer-received"
    cancel = Movement("reversal", "north", "d01", key(), reverses=out, reason="x")
    assert refused(store, cancel).reason == "transfer-received"


def test_ledger__a_transfer_reversed_before_arrival_returns_home(store: SqlStore) -> None:
    write(store, receipt(steps=30))
    out = write(store, Movement("transfer-out", "north", "d01", key(), item="n95-mask",
                                unit="piece", steps=-10, lot="L1", to_depot="d02"))  # fmt: skip
    write(store, Movement("reversal", "north", "d01", key(), reverses=out, reason="truck broke"))
    assert on_hand(store) == {("n95-mask", "L1", ""): 30}
    late = Movement("transfer-in", "north", "d02", key(), transfer_of=out)
    assert refused(store, late).reason == "transfer-cancelled"


def test_ledger__reversals(store: SqlStore) -> None:
    first = write(store, receipt(steps=30))
    issued = write(store, issue(steps=10))
    undo = write(store, Movement("reversal", "north", "d01", key(), reverses=issued, reason="x"))
    assert on_hand(store) == {("n95-mask", "L1", ""): 30}
    entry = store.stock_entry(issued)
    assert entry is not None and entry.reversed_by == undo
    twice = Movement("reversal", "north", "d01", key(), reverses=issued, reason="x")
    assert (refused(store, twice).reason, refused(store, twice).field) == (
        "already-reversed", "entry_id",
    )  # fmt: skip
    of_reversal = Movement("reversal", "north", "d01", key(), reverses=undo, reason="x")
    assert refused(store, of_reversal).reason == "reversal-of-reversal"
    elsewhere = Movement("reversal", "north", "d02", key(), reverses=first, reason="x")
    assert refused(store, elsewhere).reason == "unknown-entry"
    write(store, issue(steps=25))
    # Reversing the receipt now would take on hand below 0.
    spent = Movement("reversal", "north", "d01", key(), reverses=first, reason="x")
    assert refused(store, spent).reason == "insufficient-stock"


def test_ledger__an_adjustment_never_takes_stock_below_zero(store: SqlStore) -> None:
    write(store, receipt(steps=10))
    down = Movement("adjustment", "north", "d01", key(), item="n95-mask", unit="piece",
                    steps=-11, lot="L1", reason="counted 0 and one torn")  # fmt: skip
    assert refused(store, down).reason == "insufficient-stock"
    write(store, replace(down, key=key(), steps=-3))
    write(store, replace(down, key=key(), steps=1, reason="found one"))
    assert on_hand(store) == {("n95-mask", "L1", ""): 8}


def test_ledger__the_same_key_with_the_same_movement_writes_once(store: SqlStore) -> None:
    first = receipt(steps=10)
    entry, repeat = store.stock_write(first, "keeper-d01", AT, TODAY)
    again, repeat_again = store.stock_write(first, "keeper-d01", AT + timedelta(hours=1), TODAY)
    assert (repeat, repeat_again) == (False, True)
    assert again == entry
    assert on_hand(store) == {("n95-mask", "L1", ""): 10}


def test_ledger__the_same_key_with_another_movement_is_a_conflict(store: SqlStore) -> None:
    first = receipt(steps=10)
    write(store, first)
    problem = refused(store, replace(first, steps=11))
    assert (problem.status, problem.reason, problem.field) == (
        409, "idempotency-conflict", "idempotency_key",
    )  # fmt: skip
    assert first.key in problem.message
    # Keys are per depot: d02 may use the same one for its own movement.
    write(store, replace(first, depot="d02"))


def test_ledger__a_refused_movement_keeps_no_key(store: SqlStore) -> None:
    early = issue(steps=5)
    assert refused(store, early).reason == "unknown-lot"  # nothing received yet
    write(store, receipt(steps=10))
    entry, repeat = store.stock_write(early, "keeper-d01", AT, TODAY)  # the same key, retried
    assert (entry.quantity, repeat) == (Decimal(-5), False)


def test_ledger__a_second_row_for_a_key_fails_loudly(store: SqlStore) -> None:
    write(store, receipt(steps=10))
    columns = ENTRY_COLUMNS  # all but id: the copy gets its own
    with pytest.raises(INTEGRITY_ERRORS, match=r"(?i)unique"):
        look_inside(
            store,
            f"INSERT INTO stock_entries ({columns}) SELECT {columns} FROM stock_entries",
        )


def test_ledger__entries_and_lots_are_immutable(store: SqlStore) -> None:
    write(store, receipt(steps=10))
    for sql in ("UPDATE stock_entries SET steps = 1000", "DELETE FROM stock_entries",
                "UPDATE stock_lots SET expires_on = '2099-01-01'", "DELETE FROM stock_lots"):  # fmt: skip
        with pytest.raises(INTEGRITY_ERRORS, match="immutable"):
            look_inside(store, sql)
    assert on_hand(store) == {("n95-mask", "L1", ""): 10}


def test_ledger__the_migration_is_named_and_the_store_implements_the_protocol(
    store: SqlStore,
) -> None:
    assert "0014-stock-ledger" in {m.name for m in MIGRATIONS}
    assert isinstance(store, StockStore)


def test_ledger__entries_page_newest_first(store: SqlStore) -> None:
    ids = [write(store, receipt(steps=1)) for _ in range(5)]
    page = store.stock_entries("north", "d01", None, 2)
    assert [e.id for e in page] == ids[::-1][:2]
    rest = store.stock_entries("north", "d01", page[-1].id, 10)
    assert [e.id for e in rest] == ids[::-1][2:]


# --- the invariants, over any sequence of attempted writes ------------------------------

DEPOTS = ("d01", "d02")
Position = tuple[str, str, str]  # depot, item, lot


@dataclass
class Booked:
    """An entry as the model remembers it."""

    kind: str
    position: Position
    steps: int
    reversed: bool = False
    received: int | None = None  # a transfer-out: the transfer-in that received it


@dataclass(frozen=True)
class Attempt:
    """One write hypothesis tries; `pick` chooses the entry a reversal or transfer-in names
    among the newest (a transfer-in: among the transfers out)."""

    kind: str
    depot: str
    item: str
    lot: str
    steps: int
    up: bool
    pick: int


# Few positions and small amounts: stock runs out, transfers meet, reversals collide.
# Receipts and transfers twice as likely: stock to move, transfers to receive twice.
KINDS = ["receipt", "receipt", "issue", "transfer-out", "transfer-out", "transfer-in",
         "transfer-in", "adjustment", "reversal"]  # fmt: skip
attempts = st.lists(
    st.builds(
        Attempt,
        kind=st.sampled_from(KINDS),
        depot=st.sampled_from(DEPOTS),
        item=st.just("n95-mask"),
        lot=st.just("L1"),
        steps=st.integers(min_value=1, max_value=5),
        up=st.booleans(),
        pick=st.integers(min_value=0, max_value=4),
    )
    | st.builds(
        Attempt,
        kind=st.sampled_from(KINDS),
        depot=st.sampled_from(DEPOTS),
        item=st.just("grain"),
        lot=st.just(""),
        steps=st.integers(min_value=1, max_value=5),
        up=st.booleans(),
        pick=st.integers(min_value=0, max_value=4),
    ),
    max_size=40,
)


FreshStore = Callable[[], AbstractContextManager[SqlStore]]


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_store(request: pytest.FixtureRequest) -> Iterator[FreshStore]:
    """An empty ledger for each hypothesis example: a SQLite file in a folder of its own, or
    one PostgreSQL database for the test with its ledger emptied before each example (a
    database per example would cost a CREATE DATABASE each)."""
    if request.param == "postgresql":
        databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
        store = open_store(StoreSection(url=databases.new()))

        @contextmanager
        def on_postgres() -> Iterator[SqlStore]:
            # TRUNCATE fires no row trigger: the immutable tables empty, ids from 1 again.
            look_inside(store, "TRUNCATE stock_entries, stock_lots RESTART IDENTITY")
            yield store

        yield on_postgres
        store.close()
        return

    @contextmanager
    def on_sqlite() -> Iterator[SqlStore]:
        with tempfile.TemporaryDirectory() as folder:
            store = SqliteStore(Path(folder) / "gateway.db")
            try:
                yield store
            finally:
                store.close()

    yield on_sqlite


@settings(
    max_examples=200, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # fmt: skip
@given(plan=attempts)
def test_ledger__invariants_hold_whatever_is_attempted(
    fresh_store: FreshStore, plan: list[Attempt]
) -> None:
    # fresh_store only makes stores (one per example): nothing of it is shared between them.
    with fresh_store() as store:
        Books(store).run(plan)


class Books:
    """The ledger kept by hand beside the store: what each attempt should do, and checks."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.held: dict[Position, int] = defaultdict(int)
        self.booked: dict[int, Booked] = {}
        self.lots: set[tuple[str, str]] = {("grain", "")}  # known from a lot's first receipt

    def run(self, plan: list[Attempt]) -> None:
        for attempt in plan:
            movement, target = self.movement(attempt)
            allowed, booked = self.predict(attempt, movement, target)
            count = len(_all_entries(self.store))
            try:
                entry, _ = self.store.stock_write(movement, "keeper", AT, TODAY)
            except StockRefused:
                assert not allowed, movement
                assert len(_all_entries(self.store)) == count  # a refusal changes nothing
                continue
            assert allowed, movement
            assert booked is not None
            assert entry.quantity.scaleb(UNIT_DECIMALS[entry.unit]) == booked.steps
            self.book(entry.id, booked, target)
            # A repeat of the same key is the same entry and changes nothing.
            assert self.store.stock_write(movement, "keeper", AT, TODAY) == (entry, True)
            self.check()
        self.check()

    def movement(self, a: Attempt) -> tuple[Movement, int]:
        """The movement of `a`, and the entry it names (a reversal, a transfer-in)."""
        among = [
            i for i, b in self.booked.items() if a.kind != "transfer-in" or b.kind == "transfer-out"
        ]
        target = sorted(among)[-1 - a.pick % len(among)] if among else 1
        line = {"item": a.item, "unit": _unit(a.item), "lot": a.lot}
        made: Movement
        if a.kind == "receipt":
            expires = EXPIRES if a.lot else None
            made = Movement("receipt", "north", a.depot, key(), steps=a.steps, source="purchase",
                            expires_on=expires, **line)  # type: ignore[arg-type]  # fmt: skip
        elif a.kind == "issue":
            made = Movement("issue", "north", a.depot, key(), steps=-a.steps, applicant_unit="u",
                            approver="a", application_id="x", **line)  # type: ignore[arg-type]  # fmt: skip
        elif a.kind == "transfer-out":
            other = DEPOTS[1 - DEPOTS.index(a.depot)]
            made = Movement("transfer-out", "north", a.depot, key(), steps=-a.steps,
                            to_depot=other, **line)  # type: ignore[arg-type]  # fmt: skip
        elif a.kind == "adjustment":
            made = Movement("adjustment", "north", a.depot, key(),
                            steps=a.steps if a.up else -a.steps, reason="count", **line)  # type: ignore[arg-type]  # fmt: skip
        elif a.kind == "transfer-in":
            out = self.booked.get(target)
            depot = DEPOTS[1 - DEPOTS.index(out.position[0])] if out else a.depot
            made = Movement("transfer-in", "north", depot, key(), transfer_of=target)
        else:
            named = self.booked.get(target)
            depot = named.position[0] if named else a.depot
            made = Movement("reversal", "north", depot, key(), reverses=target, reason="wrong")
        return made, target

    def predict(self, a: Attempt, m: Movement, target: int) -> tuple[bool, Booked | None]:
        """Whether the rules allow `m`, by the model alone, and the entry it would book."""
        named = self.booked.get(target)
        if a.kind == "transfer-in":
            if named is None or named.kind != "transfer-out" or named.reversed or named.received:
                return False, None
            _, item, lot = named.position
            booked = Booked("transfer-in", (m.depot, item, lot), -named.steps)
        elif a.kind == "reversal":
            if named is None or named.kind == "reversal" or named.reversed:
                return False, None
            if named.kind == "transfer-out" and named.received is not None:
                return False, None
            booked = Booked("reversal", named.position, -named.steps)
        else:
            if a.kind != "receipt" and (a.item, a.lot) not in self.lots:
                return False, None
            booked = Booked(a.kind, (a.depot, a.item, a.lot), m.steps)
        return self.held[booked.position] + booked.steps >= 0, booked

    def book(self, entry_id: int, booked: Booked, target: int) -> None:
        self.held[booked.position] += booked.steps
        self.booked[entry_id] = booked
        if booked.kind == "receipt":
            self.lots.add(booked.position[1:])
        if booked.kind == "transfer-in":
            self.booked[target].received = entry_id
        if booked.kind == "reversal":
            self.booked[target].reversed = True
            for out in self.booked.values():
                if out.received == target:  # a transfer-in reversed: on its way again
                    out.received = None

    def check(self) -> None:
        for depot in DEPOTS:
            held = {(item, lot): q for (item, lot, _), q in on_hand(self.store, depot).items()}
            expected = {
                (item, lot): Decimal(steps).scaleb(-UNIT_DECIMALS[_unit(item)])
                for (where, item, lot), steps in self.held.items()
                if where == depot and steps
            }
            assert held == expected
            assert all(q > 0 for q in held.values())  # never negative (and 0 is not listed)
            # On hand = receipts - issues +- transfers +- adjustments +- reversals.
            sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
            for row in self.store.stock_entries("north", depot, None, 10_000):
                sums[row.item, row.lot] += row.quantity
            assert {position: total for position, total in sums.items() if total} == held
        # A reversal cancels its entry exactly.
        for entry_id, booked in self.booked.items():
            if booked.reversed:
                found = self.store.stock_entry(entry_id)
                assert found is not None and found.reversed_by is not None
                pair = self.booked[found.reversed_by]
                assert pair.steps + booked.steps == 0 and pair.position == booked.position


def test_ledger__two_writers_never_issue_the_same_stock_twice(store_section: StoreSection) -> None:
    """Two store objects on one database (two gateway processes, or two replicas on one
    PostgreSQL) race for the last pieces of a lot, twenty times (a fresh lot of 5 each
    round, 3 asked by each): one race can miss the moment both check what is on hand,
    twenty do not."""
    rounds = 20
    stores = [open_store(store_section), open_store(store_section)]
    outcomes: list[list[str]] = [[], []]

    def next_round() -> None:
        """Run by one writer once both wait at the start: the round's lot received."""
        write(stores[0], receipt(steps=5, lot=f"R{len(outcomes[0]):02d}"))

    start = threading.Barrier(2, action=next_round, timeout=30)

    def take(n: int) -> None:
        try:
            take_rounds(n)
        except BaseException:
            start.abort()  # the other writer fails at once, not after the barrier's timeout
            raise

    def take_rounds(n: int) -> None:
        store = stores[n]
        on_hand(store)  # this thread's connection, before the start
        for r in range(rounds):
            start.wait()
            try:
                store.stock_write(issue(steps=3, lot=f"R{r:02d}"), "keeper", AT, TODAY)
                outcomes[n].append("issued")
            except StockRefused as exc:
                outcomes[n].append(exc.reason)

    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(take, (0, 1)))  # a writer's error is raised here
        for r, pair in enumerate(zip(*outcomes, strict=True)):
            assert sorted(pair) == ["insufficient-stock", "issued"], f"round {r}: {pair}"
        assert on_hand(stores[1]) == {("n95-mask", f"R{r:02d}", ""): 2 for r in range(rounds)}
    finally:
        for store in stores:
            store.close()


def test_ledger__a_database_of_the_step_before_gains_the_ledger(tmp_path: Path) -> None:
    # SQLite only: an old SQLite file migrated forward (PostgreSQL starts at its baseline).
    path = tmp_path / "gateway.db"
    conn = sqlite3.connect(path, isolation_level=None)
    before = tuple(m for m in MIGRATIONS if m.name < "0014")
    apply_migrations(conn, before)
    conn.close()
    store = SqliteStore(path)
    try:
        write(store, receipt(steps=3))
        assert on_hand(store) == {("n95-mask", "L1", ""): 3}
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            store.db.execute("DELETE FROM stock_entries")
    finally:
        store.close()
