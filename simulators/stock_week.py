"""The demo's stock: a week of one depot's ledger, its keeper at the API, a weighed pallet.

`seed_week` writes a week of movements into the gateway's store before it starts, at past
times (receipts by purchase, allocation and a donation designated to a hospital, issues
against applications drawing the first-expiring lot, a stocktake adjustment, an issue
entered twice and reversed), so that cover is meaningful from the first minute: every
reserve target of `site_config` is met, pork only just (3.45 days of a 3-day target). The
`Keeper` then issues pork to communities through the REST API with the depot's token,
every few seconds, the way a keeper's tablet does: pork drifts below its target and the
gateway raises `stock-shortage`; when it is down to `FLOOR_KG` an allocation arrives and
the alarm clears, and the drift starts again. Some 30 s in the keeper submits the day's
stock report (after 17:30 local time it is late, and clears `stock-report-missing`). The
platform scale under the N95 pallet weighs what the ledger holds: no discrepancy is raised.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from gateway.stock.catalogue import built_in_items
from gateway.stock.cover import fefo
from gateway.stock.ledger import Movement, StockStore

POPULATION = 1000  # people the demo depot supplies: the targets are days of their needs
TIMEZONE = "Asia/Shanghai"
REPORT_AFTER = 8  # the keeper's movements before it submits the day's stock report
ISSUE_EVERY_S = 4.0  # the keeper's pace at the tablet
PORK_ISSUE_KG = Decimal(6)
FLOOR_KG = Decimal(200)  # 2 days of pork: the keeper asks for an allocation
RESTOCK_KG = Decimal(260)  # which lifts pork past its target and its 10 % margin
PALLET = "pallet-n95"  # the scale's name on the depot node
MASK_LOT = "N95-DEMO-2611"
MASK_KG = Decimal("0.0125")  # one N95 mask
PALLET_TARE_KG = Decimal(25)  # the empty pallet, taken off at the node
HOSPITAL = "市第一人民医院 First People's Hospital"
COMMUNITIES = (
    "东街社区 East Street community",
    "河西社区 Hexi community",
    "北门社区 North Gate community",
)
FEVER_CLINIC = "发热门诊 Fever clinic"


def site_config(depot: str) -> dict[str, Any]:
    """The demo site's population, reserve targets (the example's figures) and the scale."""
    return {
        "timezone": TIMEZONE,
        "population": POPULATION,
        "stock_targets": [
            {"item": "grain", "days": 15, "per_person_daily": "0.4"},
            {"item": "edible-oil", "days": 15, "per_person_daily": "0.025"},
            {"item": "pork", "days": 3, "per_person_daily": "0.1"},
            {"item": "storable-vegetables", "days": 7, "per_person_daily": "0.5"},
            {"category": "protective", "days": 7},
            {"category": "disinfection", "days": 7},
        ],
        "scales": {
            depot: {
                PALLET: {"item": "n95-mask", "lot": MASK_LOT, "unit_kg": float(MASK_KG),
                         "tolerance_units": 20, "lasting_min": 2},
            }
        },
    }  # fmt: skip


def node_scale(url: str) -> dict[str, Any]:
    """The depot node's `scales` entry for the pallet's scale at `url`."""
    return {"name": PALLET, "item": "n95-mask", "url": url, "profile": "scale-st-gs",
            "tare_kg": float(PALLET_TARE_KG), "deadband_kg": 0.5,
            "max_interval_s": 60}  # fmt: skip


def pallet_kg(masks: Decimal) -> Decimal:
    """What the platform shows with `masks` N95 masks on the pallet (tare included)."""
    return PALLET_TARE_KG + masks * MASK_KG


@dataclass(frozen=True)
class Seeded:
    """What `seed_week` left: the entries written, and the N95 masks on the pallet."""

    entries: int
    masks: Decimal


class _Week:
    """Writes movements of one depot at past times, each with its own idempotency key."""

    def __init__(self, store: StockStore, site: str, depot: str, now: datetime) -> None:
        self.store, self.site, self.depot, self.now = store, site, depot, now
        self.entries = 0

    def at(self, days_ago: int, hour: int) -> datetime:
        return (self.now - timedelta(days=days_ago)).replace(hour=hour, minute=0, second=0)

    def write(self, movement: Movement, at: datetime) -> int:
        entry, _ = self.store.stock_write(movement, f"demo-keeper-{self.depot}", at, at.date())
        self.entries += 1
        return entry.id

    def key(self) -> str:
        return f"demo-week-{self.entries:05d}"  # one write per movement: a key each

    def movement(self, kind: str, item: str, quantity: Decimal, **fields: Any) -> Movement:
        stocked = built_in_items()[item]
        return Movement(kind, self.site, self.depot, self.key(), item=item,  # type: ignore[arg-type]
                        unit=stocked.unit, steps=stocked.to_steps(quantity), **fields)  # fmt: skip

    def receive(self, at: datetime, item: str, quantity: int, *, source: str, lot: str = "",
                expires_on: date | None = None, designated_to: str = "") -> None:  # fmt: skip
        self.write(self.movement("receipt", item, Decimal(quantity), lot=lot,
                                 expires_on=expires_on, source=source,
                                 designated_to=designated_to), at)  # fmt: skip

    def issue(self, at: datetime, item: str, quantity: int, applicant: str,
              designee: str = "") -> int:  # fmt: skip
        """Issue `quantity` from the first-expiring lots, one entry per lot; the last id."""
        draws, missing = fefo(self.store.stock_on_hand(self.site, self.depot), item,
                              Decimal(quantity), at.date(), designee)  # fmt: skip
        if missing:
            raise ValueError(f"the demo week issues more {item} than it received")
        entry_id = 0
        for n, draw in enumerate(draws):
            entry_id = self.write(self.movement(
                "issue", item, -draw.quantity, lot=draw.lot, designated_to=draw.designated_to,
                applicant_unit=applicant, approver="王主任 Director Wang",
                application_id=f"SQ-{at:%m%d}-{self.entries:03d}-{n}",
            ), at)  # fmt: skip
        return entry_id


def seed_week(store: StockStore, site: str, depot: str, now: datetime) -> Seeded:
    """A week of `depot`'s ledger, written at past times through the store's one write.

    Args:
        store: the gateway's store, before the gateway opens it.
        site, depot: the demo's.
        now: the demo's start (UTC); the week ends the day before.

    Returns:
        How many entries, and the N95 masks left on the weighed pallet.
    """
    week = _Week(store, site, depot, now)
    today = now.date()
    first = week.at(7, 8)

    def lasting(days: int) -> date:
        return today + timedelta(days=days)

    week.receive(first, "grain", 10_000, source="purchase")
    week.receive(
        first, "edible-oil", 600, source="allocation", lot="OIL-2611", expires_on=lasting(300)
    )
    week.receive(first, "storable-vegetables", 7000, source="purchase")
    week.receive(first, "pork", 500, source="allocation", lot="PORK-2611-A", expires_on=lasting(3))
    week.receive(first, "n95-mask", 2400, source="purchase", lot=MASK_LOT, expires_on=lasting(700))
    week.receive(
        first, "disinfectant-84", 200, source="donation", lot="84-2611", expires_on=lasting(500)
    )
    week.receive(
        first,
        "surgical-mask",
        5000,
        source="donation",
        lot="SM-2611",
        expires_on=lasting(600),
        designated_to=HOSPITAL,
    )
    week.receive(
        week.at(4, 8), "pork", 400, source="allocation", lot="PORK-2611-B", expires_on=lasting(9)
    )
    week.receive(week.at(3, 8), "storable-vegetables", 3000, source="allocation")
    for days_ago in range(7, 0, -1):
        community = COMMUNITIES[days_ago % len(COMMUNITIES)]
        morning, afternoon = week.at(days_ago, 10), week.at(days_ago, 15)
        week.issue(morning, "grain", 380, community)
        week.issue(morning, "storable-vegetables", 450, community)
        week.issue(morning, "edible-oil", 20, community)
        week.issue(afternoon, "pork", 80 if days_ago > 1 else 75, community)
        week.issue(afternoon, "n95-mask", 120, FEVER_CLINIC)
        week.issue(afternoon, "disinfectant-84", 10, community)
        if days_ago % 2:
            week.issue(afternoon, "surgical-mask", 500, HOSPITAL, designee=HOSPITAL)
    # A stocktake finds two bottles broken; an issue entered twice is reversed.
    week.write(week.movement("adjustment", "disinfectant-84", Decimal(-2), lot="84-2611",
                             reason="盘点：2 瓶破损 stocktake: 2 bottles broken"),
               week.at(3, 17))  # fmt: skip
    twice = week.issue(week.at(2, 16), "n95-mask", 120, FEVER_CLINIC)
    week.write(Movement("reversal", site, depot, week.key(), reverses=twice,
                        reason="重复录入 entered twice"), week.at(2, 17))  # fmt: skip
    masks = sum(p.quantity for p in store.stock_on_hand(site, depot) if p.lot == MASK_LOT)
    return Seeded(week.entries, Decimal(masks))


class Keeper:
    """The depot keeper at the gateway's REST API with a depot token: every `every_s` pork
    is issued to a community, from the lot the API suggests (first expiry first out); at
    `FLOOR_KG` an allocation is received instead. After REPORT_AFTER movements it submits
    the day's stock report, once.

    Args:
        url: the gateway's address.
        token: a depot token naming `site/depot`.
        every_s: seconds between two movements.
    """

    def __init__(
        self, url: str, token: str, site: str, depot: str, every_s: float = ISSUE_EVERY_S
    ) -> None:
        self.base = f"{url}/api/stock/{site}/{depot}"
        self.token = token
        self.every_s = every_s
        self.issued = self.received = self.failed = 0
        self.reported: date | None = None
        self.last_error = ""
        self._lots = 0

    def run(self, stop: threading.Event) -> None:
        """Write a movement every `every_s` until `stop` is set; failures are counted."""
        while not stop.wait(self.every_s):
            try:
                self.step()
            except (OSError, ValueError, KeyError) as failure:  # URLError is an OSError
                self.failed += 1
                self.last_error = _described(failure)

    def step(self) -> None:
        """One movement: an issue of pork, or an allocation when it is down to the floor;
        the day's report once there were REPORT_AFTER."""
        if self.reported is None and self.issued + self.received >= REPORT_AFTER:
            today = datetime.now(ZoneInfo(TIMEZONE)).date()
            self._call("POST", f"/daily-reports/{today}", {"note": "演示 demo"})
            self.reported = today
        pork = sum(
            Decimal(p["quantity"]) for p in self._call("GET", "/on-hand")["on_hand"]
            if p["item"] == "pork"
        )  # fmt: skip
        if pork <= FLOOR_KG:
            self._lots += 1
            expires = date.today() + timedelta(days=10)
            self._call("POST", "/receipts", {
                "item": "pork", "quantity": str(RESTOCK_KG), "unit": "kg", "source": "allocation",
                "lot": f"PORK-DEMO-{self._lots:03d}", "expires_on": expires.isoformat(),
            })  # fmt: skip
            self.received += 1
            return
        suggested = self._call("GET", f"/items/pork/fefo?quantity={PORK_ISSUE_KG}")
        community = COMMUNITIES[self.issued % len(COMMUNITIES)]
        for draw in suggested["draws"]:
            self._call("POST", "/issues", {
                "item": "pork", "quantity": draw["quantity"], "unit": "kg", "lot": draw["lot"],
                "applicant_unit": community, "approver": "王主任 Director Wang",
                "application_id": f"SQ-LIVE-{self.issued:05d}",
            })  # fmt: skip
        self.issued += 1

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers |= {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
        # The gateway's own http address, from the demo: no other scheme reaches here.
        request = urllib.request.Request(self.base + path, data, headers, method=method)  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.load(response)

    def summary(self) -> str:
        line = f"keeper: pork issued {self.issued} times, allocations received {self.received}"
        if self.reported is not None:
            line += f", daily stock report of {self.reported} submitted"
        return f"{line}, {self.failed} failed (last: {self.last_error})" if self.failed else line


def _described(failure: Exception) -> str:
    if isinstance(failure, urllib.error.HTTPError):
        return f"{failure.code} {failure.read(300).decode(errors='replace')}"
    return str(failure)[:300]
