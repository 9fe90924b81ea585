"""What the stock ledger and its cover cost at a district's size: writes/s and query times.

A real SQLite file in a temporary folder holds a district's year: DEPOTS depots, the 23
built-in items and ITEMS of the site's own (generated, half of them tracked by lot with a
lot a month), PER_DAY movements a day per depot for DAYS days (receipts by purchase,
allocation and donation; issues from the first-expiring lot; transfers to another depot,
received the next day; stocktake adjustments; reversals of issues), each written through
`SqliteStore.stock_write` at its past time. The history is written with the file's
`synchronous` at OFF (about a minute instead of four); everything measured after
it runs at the store's own FULL, one transaction per write, as the gateway writes.

Measured on the full file: writes/s of a receipt, an issue of the first-expiring lot, a
transfer out and its receipt at the other depot; median and p95 ms of one depot's on hand,
its transfers in transit, a page of entries, its cover, the site's cover over every depot
(`GET /api/stock/{site}/cover` through the real app, as the command center asks it), its
expiring lots, and the reserve targets' shortage check (`StockRules.check`). Then the file's
size. `--small` runs a small district in seconds, to check a change.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args

from fastapi.testclient import TestClient

from bench.common import record
from gateway.access import hash_token
from gateway.alarms import AlarmBook
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.config import GatewayConfig, SiteSection
from gateway.live import LiveFeed
from gateway.stock.catalogue import Category, StockItem, site_catalogue
from gateway.stock.cover import (
    StockRules,
    StockSection,
    StockTarget,
    depot_cover,
    depot_stock,
    expiring,
)
from gateway.stock.ledger import Movement, ReceiptSource, StockRefused
from gateway.store import SqliteStore
from gateway.store.settings import StoreSection

SITE = "bench"
DEPOTS, ITEMS, DAYS, PER_DAY = 50, 200, 365, 20
WRITES = 300  # timed writes of each kind
READS = 30  # timed repeats of each depot read
SITE_READS = 10  # timed repeats of the site's cover and check
SHELF_DAYS = 270  # a lot expires this long after its month begins
TOKEN = "gpt_bench-command-center-token"
# Of a depot's movements: receipts, issues, transfers out, adjustments, reversals.
MIX: tuple[tuple[str, float], ...] = (
    ("receipt", 0.2), ("issue", 0.6), ("transfer-out", 0.1), ("adjustment", 0.05),
    ("reversal", 0.05),
)  # fmt: skip
SOURCES: tuple[ReceiptSource, ...] = get_args(ReceiptSource)
TARGETS = (
    StockTarget(item="grain", days=15, per_person_daily=Decimal("0.4")),
    StockTarget(item="pork", days=3, per_person_daily=Decimal("0.1")),
    StockTarget(category="protective", days=7),
    StockTarget(category="disinfection", days=7),
)


def site_items(count: int) -> tuple[StockItem, ...]:
    """`count` generated items of the site's own, across categories and units."""
    categories: tuple[Category, ...] = get_args(Category)
    units = ("piece", "box", "kg", "L", "bottle")
    return tuple(
        StockItem(key=f"site-item-{n:03d}", category=categories[n % 3], unit=units[n % 5],
                  name_zh=f"物资{n}", name_en=f"Item {n}", storage_class="room",
                  lot_tracked=n % 2 == 0)
        for n in range(count)
    )  # fmt: skip


class District:
    """The site, its store, and what each depot holds (to write only valid movements)."""

    def __init__(self, path: Path, depots: int, items: int, now: datetime, seed: int = 7) -> None:
        self.site = SiteSection(
            name=SITE, depots=tuple(f"d{n:02d}" for n in range(1, depots + 1)),
            stock_items=site_items(items), population=200_000, stock_targets=TARGETS,
        )  # fmt: skip
        self.config = GatewayConfig(sites=(self.site,), store=StoreSection(path=path),
                                    stock=StockSection())  # fmt: skip
        self.catalogue = site_catalogue(self.site.stock_items)
        self.store = SqliteStore(path)
        self.now = now
        self.rng = random.Random(seed)
        # depot -> item -> lot -> steps on hand; lot -> expiry
        self.held: dict[str, dict[str, dict[str, int]]] = {d: {} for d in self.site.depots}
        self.expiry: dict[str, date] = {}
        self.last_issue: dict[str, tuple[int, str, str, int] | None] = {}
        self.transit: list[
            tuple[int, str, str, str, int, int]
        ] = []  # id, to, item, lot, steps, day
        self.keys = 0
        self.written = 0

    # --- movements ------------------------------------------------------------------

    def write(self, movement: Movement, at: datetime) -> int:
        entry, _ = self.store.stock_write(movement, "bench", at, at.date())
        self.written += 1
        return entry.id

    def key(self) -> str:
        self.keys += 1
        return f"bench-{self.keys:09d}"

    def receipt(self, depot: str, at: datetime) -> Movement:
        item = self.rng.choice(list(self.catalogue.values()))
        lot, expires = "", None
        if item.lot_tracked:
            lot = f"L{at:%Y%m}"
            expires = self.expiry.setdefault(
                f"{item.key}/{lot}", at.date().replace(day=1) + timedelta(days=SHELF_DAYS)
            )
        steps = self.rng.randint(500, 5000) * 10**item.decimals
        self._add(depot, item.key, lot, steps)
        return Movement("receipt", SITE, depot, self.key(), item=item.key, unit=item.unit,
                        steps=steps, lot=lot, expires_on=expires,
                        source=self.rng.choice(SOURCES))  # fmt: skip

    def first_expiring(self, depot: str, today: date) -> tuple[str, str, int] | None:
        """A random item's first-expiring usable lot at `depot`, and its steps."""
        held = self.held[depot]
        for item in self.rng.sample(list(held), min(5, len(held))):
            usable = [(self._expires(item, lot), lot, steps) for lot, steps in held[item].items()
                      if steps > 0 and self._expires(item, lot) >= today]  # fmt: skip
            if usable:
                _, lot, steps = min(usable)
                return item, lot, steps
        return None

    def issue(self, depot: str, at: datetime) -> Movement | None:
        found = self.first_expiring(depot, at.date())
        if found is None:
            return None
        item, lot, held = found
        steps = min(held, self.rng.randint(10, 200) * 10 ** self.catalogue[item].decimals)
        self._add(depot, item, lot, -steps)
        return Movement("issue", SITE, depot, self.key(), item=item,
                        unit=self.catalogue[item].unit, steps=-steps, lot=lot,
                        applicant_unit=f"unit-{self.rng.randint(1, 40)}", approver="Li",
                        application_id=f"A-{self.keys}")  # fmt: skip

    def transfer(self, depot: str, at: datetime) -> tuple[Movement, str] | None:
        found = self.first_expiring(depot, at.date())
        if found is None:
            return None
        item, lot, held = found
        steps = max(1, held // 4)
        to = self.rng.choice([d for d in self.site.depots if d != depot])
        self._add(depot, item, lot, -steps)
        return Movement("transfer-out", SITE, depot, self.key(), item=item,
                        unit=self.catalogue[item].unit, steps=-steps, lot=lot,
                        to_depot=to), to  # fmt: skip

    def adjustment(self, depot: str, at: datetime) -> Movement | None:
        found = self.first_expiring(depot, at.date())
        if found is None:
            return None
        item, lot, held = found
        steps = self.rng.choice((-1, 1)) * min(held, 3 * 10 ** self.catalogue[item].decimals)
        self._add(depot, item, lot, steps)
        return Movement("adjustment", SITE, depot, self.key(), item=item,
                        unit=self.catalogue[item].unit, steps=steps, lot=lot,
                        reason="stocktake")  # fmt: skip

    def _add(self, depot: str, item: str, lot: str, steps: int) -> None:
        lots = self.held[depot].setdefault(item, {})
        lots[lot] = lots.get(lot, 0) + steps

    def _expires(self, item: str, lot: str) -> date:
        return self.expiry.get(f"{item}/{lot}", date.max)

    # --- a day of each depot ---------------------------------------------------------

    def day(self, day: int, per_day: int, start: datetime) -> None:
        """`per_day` movements at each depot on `day` after `start`, and the transfers due."""
        midnight = start + timedelta(days=day)
        due = [t for t in self.transit if t[5] <= day]
        self.transit = [t for t in self.transit if t[5] > day]
        for entry_id, to, item, lot, steps, _ in due:
            self._add(to, item, lot, steps)
            self.write(Movement("transfer-in", SITE, to, self.key(), transfer_of=entry_id),
                       midnight + timedelta(minutes=30))  # fmt: skip
        kinds, weights = zip(*MIX, strict=True)
        for depot in self.site.depots:
            for n in range(per_day):
                at = midnight + timedelta(hours=7, seconds=n * 36_000 // per_day)
                self.one(depot, self.rng.choices(kinds, weights)[0], at, day)

    def one(self, depot: str, kind: str, at: datetime, day: int) -> None:
        if kind == "reversal" and (last := self.last_issue.get(depot)):
            entry_id, item, lot, steps = last
            self._add(depot, item, lot, steps)
            self.last_issue[depot] = None
            self.write(Movement("reversal", SITE, depot, self.key(), reverses=entry_id,
                                reason="entered twice"), at)  # fmt: skip
            return
        if kind == "transfer-out" and (moving := self.transfer(depot, at)):
            out, to = moving
            entry_id = self.write(out, at)
            self.transit.append((entry_id, to, out.item, out.lot, -out.steps, day + 1))
            return
        if kind == "adjustment" and (adjust := self.adjustment(depot, at)):
            self.write(adjust, at)
            return
        if kind != "receipt" and (issue := self.issue(depot, at)):
            entry_id = self.write(issue, at)
            self.last_issue[depot] = (entry_id, issue.item, issue.lot, -issue.steps)
            return
        self.write(self.receipt(depot, at), at)


def seed(district: District, days: int, per_day: int) -> float:
    """The history, written at past times with synchronous OFF; seconds it took."""
    began = time.perf_counter()
    start = (district.now - timedelta(days=days)).replace(hour=0, minute=0, second=0)
    district.store.db.execute("PRAGMA synchronous = OFF")
    for day in range(days):
        district.day(day, per_day, start)
        district.store.checkpoint()
        if day % 30 == 29:
            print(f"  day {day + 1}: {district.written:,} entries, "
                  f"{time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
    district.store.db.execute("PRAGMA synchronous = FULL")
    return time.perf_counter() - began


def timed_writes(district: District, kind: str, count: int) -> dict[str, Any]:
    """`count` writes of `kind` at random depots, now, each its own transaction."""
    ms: list[float] = []
    at, rng = district.now, district.rng
    for _ in range(count):
        depot = rng.choice(district.site.depots)
        if kind == "transfer-in":
            if not district.transit:
                district.transit.append(_outbound(district, depot, at))
            entry_id, to, item, lot, steps, _ = district.transit.pop()
            district._add(to, item, lot, steps)
            movement: Movement | None = Movement("transfer-in", SITE, to, district.key(),
                                                 transfer_of=entry_id)  # fmt: skip
        elif kind == "transfer-out":
            moving = district.transfer(depot, at)
            movement, to = moving if moving else (None, "")
        else:
            movement = district.issue(depot, at) if kind == "issue" else district.receipt(depot, at)
        if movement is None:
            continue
        began = time.perf_counter()
        entry_id = district.write(movement, at)
        ms.append(1000 * (time.perf_counter() - began))
        if kind == "transfer-out":
            district.transit.append((entry_id, to, movement.item, movement.lot, -movement.steps, 0))
    return _row(f"write: {kind}", ms, writes=True)


def _outbound(district: District, depot: str, at: datetime) -> tuple[int, str, str, str, int, int]:
    moving = district.transfer(depot, at)
    if moving is None:
        raise RuntimeError(f"{depot} holds nothing to transfer")
    out, to = moving
    return district.write(out, at), to, out.item, out.lot, -out.steps, 0


def timed(part: str, repeats: int, call: Callable[[], Any]) -> dict[str, Any]:
    ms = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        ms.append(1000 * (time.perf_counter() - began))
    return _row(part, ms)


def _row(part: str, ms: list[float], *, writes: bool = False) -> dict[str, Any]:
    ms = sorted(ms)
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[18] if len(ms) > 1 else ms[0]
    return {
        "part": part, "n": len(ms), "median ms": round(statistics.median(ms), 2),
        "p95 ms": round(p95, 2),
        "writes/s": round(len(ms) / (sum(ms) / 1000)) if writes else "-",
    }  # fmt: skip


def reads(district: District) -> list[dict[str, Any]]:
    store, site, now, rng = district.store, district.site, district.now, district.rng
    window = district.config.stock.issue_window_days
    today = now.astimezone(site.zone).date()

    def depot() -> str:
        return rng.choice(site.depots)

    store.add_token(hash_token(TOKEN), "bench-command", "command", now)
    context = GatewayContext(district.config, store, AlarmBook(store, lambda _a: None,
                             LiveFeed()), LiveFeed(), clock=lambda: now)  # fmt: skip
    client = TestClient(create_app(context))
    header = {"Authorization": f"Bearer {TOKEN}"}

    def site_cover() -> None:
        answer = client.get(f"/api/stock/{SITE}/cover", headers=header)
        assert answer.status_code == 200, answer.text

    def shortage_check() -> None:
        rules = StockRules(district.config, store, context.alarms, lambda: now,
                           store.live_conditions)  # fmt: skip
        rules.check()

    return [
        timed("one depot's on hand", READS, lambda: store.stock_on_hand(SITE, depot())),
        timed("one depot's transfers in transit", READS,
              lambda: store.stock_in_transit(SITE, depot())),
        timed("a page of 100 entries", READS,
              lambda: store.stock_entries(SITE, depot(), None, 100)),
        timed("one depot's cover", READS,
              lambda: depot_cover(site, depot_stock(store, site, depot(), now, window), window)),
        timed(f"the site's cover, {len(site.depots)} depots (GET …/cover)", SITE_READS,
              site_cover),
        timed("one depot's expiring lots", READS,
              lambda: expiring(store.stock_on_hand(SITE, depot()), today,
                               district.config.stock.expiring_within_days)),
        timed(f"shortage check, {len(TARGETS)} targets (StockRules.check)", SITE_READS,
              shortage_check),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small",
        action="store_true",
        help="5 depots, 20 items, 30 days: seconds, to check a change",
    )
    parser.add_argument("--per-day", type=int, default=PER_DAY,
                        help=f"movements a day per depot (default: {PER_DAY})")  # fmt: skip
    args = parser.parse_args()
    depots, items, days = (5, 20, 30) if args.small else (DEPOTS, ITEMS, DAYS)
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="gatepost-bench-", dir=Path.cwd()) as tmp:
        path = Path(tmp) / "stock.db"
        district = District(path, depots, items, now)
        seconds = seed(district, days, args.per_day)
        history = district.written
        print(f"history: {history:,} entries in {seconds:.0f} s", file=sys.stderr)
        rows = [timed_writes(district, kind, WRITES)
                for kind in ("receipt", "issue", "transfer-out", "transfer-in")]  # fmt: skip
        rows += reads(district)
        district.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size_mb = path.stat().st_size / 2**20
        district.store.close()
    record(
        "stock_ledger", rows, args=vars(args),
        district={"depots": depots, "site_items": items, "catalogue": len(district.catalogue),
                  "days": days, "entries": history, "seed_s": round(seconds),
                  "file_mb": round(size_mb, 1)},
    )  # fmt: skip
    print(f"{depots} depots, {len(district.catalogue)} items, {days} days: {history:,} entries, "
          f"file {size_mb:.1f} MiB")  # fmt: skip


if __name__ == "__main__":
    try:
        main()
    except StockRefused as refused:  # a bug in the bench's model of the ledger
        raise SystemExit(f"refused: {refused}") from None
