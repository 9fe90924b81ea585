"""The stock cover API as the command center and depot keepers read it: days of cover per
depot, item and category against the site's targets, expiring lots, what to issue first;
roles, depot scoping and every bad input."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.access import hash_token
from gateway.alarms import AlarmBook
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.config import GatewayConfig, SiteSection
from gateway.live import LiveFeed
from gateway.stock.cover import StockSection, StockTarget
from gateway.store import open_store
from gateway.store.records import AccessRole
from gateway.store.settings import StoreSection

START = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TOKENS: dict[str, tuple[AccessRole, tuple[str, ...]]] = {
    "keeper": ("depot", ("north/d01", "north/d02")),
    "keeper-all": ("depot", ("north/d01", "north/d02", "north/d03")),
    "keeper-south": ("depot", ("south/s01",)),
    "command": ("command", ()),
    "registrar": ("registrar", ()),
}
TARGETS = (
    StockTarget(item="grain", days=15, per_person_daily=Decimal("0.4")),
    StockTarget(category="protective", days=7),
)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Desk:
    """The API as each token's holder calls it."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.keys = itertools.count()

    def post(self, depot: str, path: str, body: dict[str, Any]) -> None:
        answer = self.client.post(
            f"/api/stock/north/{depot}{path}", json=body,
            headers={"Authorization": "Bearer gpt_keeper-all-secret",
                     "Idempotency-Key": f"test-key-{next(self.keys):06d}"},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text

    def get(self, path: str, *, who: str = "command", **params: str) -> Any:
        return self.client.get(path, params=params or None,
                               headers={"Authorization": f"Bearer gpt_{who}-secret"})  # fmt: skip


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def desk(store_section: StoreSection, clock: Clock) -> Iterator[Desk]:
    north = SiteSection(name="north", gates=("g01",), depots=("d01", "d02", "d03"),
                        population=1000, stock_targets=TARGETS)  # fmt: skip
    south = SiteSection(name="south", depots=("s01",))
    config = GatewayConfig(sites=(north, south), store=store_section,
                           stock=StockSection(issue_window_days=14, expiring_within_days=30))  # fmt: skip
    store = open_store(config.store)
    live = LiveFeed()
    context = GatewayContext(
        config=config, store=store, alarms=AlarmBook(store, lambda alert: None, live),
        live=live, clock=clock,
    )  # fmt: skip
    for name, (role, depots) in TOKENS.items():
        store.add_token(hash_token(f"gpt_{name}-secret"), name, role, START, depots)
    yield Desk(TestClient(create_app(context)))
    store.close()


def receive(desk: Desk, depot: str, item: str, quantity: str, *, unit: str, lot: str = "",
            expires: str | None = None) -> None:  # fmt: skip
    desk.post(depot, "/receipts", {"item": item, "quantity": quantity, "unit": unit, "lot": lot,
                                   "expires_on": expires, "source": "purchase"})  # fmt: skip


def issue(desk: Desk, depot: str, item: str, quantity: str, *, unit: str, lot: str = "",
          designee: str = "", applicant: str = "Clinic 3") -> None:  # fmt: skip
    desk.post(depot, "/issues", {"item": item, "quantity": quantity, "unit": unit, "lot": lot,
                                 "designated_to": designee, "applicant_unit": applicant,
                                 "approver": "Li Wei", "application_id": "APP-1"})  # fmt: skip


def ok(answer: Any) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()


# --- cover --------------------------------------------------------------------------------


def test_cover__per_depot_item_and_category_and_the_sites_targets(desk: Desk) -> None:
    receive(desk, "d01", "grain", "3000", unit="kg")
    issue(desk, "d01", "grain", "1400", unit="kg")  # 100 kg a day over 14 days; 1,600 left
    receive(desk, "d02", "n95-mask", "50", unit="piece", lot="N1", expires="2027-06-30")
    issue(desk, "d02", "n95-mask", "28", unit="piece", lot="N1")  # 2 a day; 22 left
    receive(desk, "d02", "goggles", "10", unit="piece")  # never issued: no bound
    found = ok(desk.get("/api/stock/north/cover"))
    assert found["window_days"] == 14
    d01, d02, d03 = found["depots"]
    assert d01["items"] == [
        {
            "item": "grain",
            "category": "necessities",
            "unit": "kg",
            "on_hand": "1600.000",
            "daily_issue": "100.000",
            "days": "16.0",
        }
    ]
    assert {i["item"]: i["days"] for i in d02["items"]} == {"n95-mask": "11.0", "goggles": None}
    assert d02["categories"] == [{"category": "protective", "days": "11.0"}]
    assert d03 == {"depot": "d03", "items": [], "categories": []}
    # 1,000 people at 0.4 kg a day: 1,600 kg is 4 days of a 15-day target.
    assert found["targets"] == [
        {"subject": "item:grain", "target_days": 15, "basis": "population", "days": "4.0",
         "below": True},
        {"subject": "category:protective", "target_days": 7, "basis": "issue", "days": "11.0",
         "below": False},
    ]  # fmt: skip


def test_cover__reversed_issues_and_transfers_are_not_consumption(desk: Desk) -> None:
    receive(desk, "d01", "grain", "1000", unit="kg")
    issue(desk, "d01", "grain", "140", unit="kg")
    desk.post("d01", "/transfers", {"item": "grain", "quantity": "500", "unit": "kg",
                                    "to_depot": "d02"})  # fmt: skip
    found = ok(desk.get("/api/stock/north/cover"))
    d01 = found["depots"][0]["items"][0]
    assert (d01["on_hand"], d01["daily_issue"], d01["days"]) == ("360.000", "10.000", "36.0")
    site = found["site_items"][0]  # the 500 kg in transit are still the site's
    assert (site["on_hand"], site["days"]) == ("860.000", "86.0")


def test_cover__a_depot_token_sees_its_depots_and_no_site_totals(desk: Desk) -> None:
    receive(desk, "d03", "grain", "10", unit="kg")
    found = ok(desk.get("/api/stock/north/cover", who="keeper"))
    assert [d["depot"] for d in found["depots"]] == ["d01", "d02"]
    assert (found["site_items"], found["targets"]) == (None, None)
    every = ok(desk.get("/api/stock/north/cover", who="keeper-all"))
    assert every["site_items"][0]["on_hand"] == "10.000"


@pytest.mark.parametrize(
    ("path", "who", "status", "reason"),
    [
        ("/api/stock/east/cover", "command", 404, "unknown-site"),
        ("/api/stock/north/cover", "keeper-south", 404, "unknown-site"),
        ("/api/stock/north/cover", "registrar", 403, "role-forbidden"),
        ("/api/stock/north/d09/expiring", "command", 404, "unknown-depot"),
        ("/api/stock/north/d03/expiring", "keeper", 404, "unknown-depot"),
        ("/api/stock/north/d01/expiring", "registrar", 403, "role-forbidden"),
        ("/api/stock/north/d03/items/grain/fefo?quantity=1", "keeper", 404, "unknown-depot"),
    ],
)
def test_cover__roles_and_scoping(desk: Desk, path: str, who: str, status: int,
                                  reason: str) -> None:  # fmt: skip
    answer = desk.get(path, who=who)
    assert answer.status_code == status, answer.text
    assert answer.json()["reason"] == reason


# --- expiring -------------------------------------------------------------------------------


def test_expiring__within_the_window_and_expired_ones(desk: Desk, clock: Clock) -> None:
    receive(desk, "d01", "edible-oil", "20", unit="L", lot="OIL-A", expires="2026-12-08")
    receive(
        desk, "d01", "edible-oil", "30", unit="L", lot="OIL-B", expires="2027-01-05"
    )  # 30 days on the 6th
    receive(desk, "d01", "edible-oil", "40", unit="L", lot="OIL-C", expires="2027-01-06")
    receive(desk, "d01", "grain", "100", unit="kg")
    clock.now += timedelta(days=3)  # the 9th: OIL-A expired yesterday
    found = ok(desk.get("/api/stock/north/d01/expiring", who="keeper"))
    assert [(e["lot"], e["days_left"], e["expired"], e["quantity"]) for e in found] == [
        ("OIL-A", -1, True, "20.000"), ("OIL-B", 27, False, "30.000"),
        ("OIL-C", 28, False, "40.000"),
    ]  # fmt: skip
    assert ok(desk.get("/api/stock/north/d02/expiring", who="keeper")) == []


# --- first expiry first out -----------------------------------------------------------------


def test_fefo__earliest_first_never_expired_designated_only_for_its_unit(
    desk: Desk, clock: Clock
) -> None:
    receive(desk, "d01", "n95-mask", "10", unit="piece", lot="OLD", expires="2026-12-07")
    receive(desk, "d01", "n95-mask", "30", unit="piece", lot="MID", expires="2027-03-01")
    receive(desk, "d01", "n95-mask", "50", unit="piece", lot="LATE", expires="2027-09-01")
    desk.post("d01", "/receipts", {"item": "n95-mask", "quantity": "20", "unit": "piece",
                                   "lot": "GIFT", "expires_on": "2027-02-01",
                                   "source": "donation", "designated_to": "Clinic 3"})  # fmt: skip
    clock.now += timedelta(days=2)  # OLD expired
    path = "/api/stock/north/d01/items/n95-mask/fefo"
    plain = ok(desk.get(path, quantity="60"))
    assert [(d["lot"], d["quantity"]) for d in plain["draws"]] == [("MID", "30"), ("LATE", "30")]
    assert plain["missing"] == "0"
    clinic = ok(desk.get(path, quantity="60", designated_to="Clinic 3"))
    assert [(d["lot"], d["quantity"]) for d in clinic["draws"]] == [
        ("GIFT", "20"), ("MID", "30"), ("LATE", "10")]  # fmt: skip
    short = ok(desk.get(path, quantity="100"))
    assert short["missing"] == "20"
    assert sum(Decimal(d["quantity"]) for d in short["draws"]) == 80


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("grain/fefo", {"quantity": "0"}, "query.quantity"),
        ("grain/fefo", {"quantity": "-5"}, "query.quantity"),
        ("grain/fefo", {"quantity": "lots"}, "query.quantity"),
        ("grain/fefo", {"quantity": "1.0001"}, "query.quantity"),
        ("grain/fefo", {}, "query.quantity"),
        ("n95-mask/fefo", {"quantity": "1.5"}, "query.quantity"),  # whole pieces
        ("flour/fefo", {"quantity": "1"}, "path.item"),
        ("Grain!/fefo", {"quantity": "1"}, "path.item"),
        ("grain/fefo", {"quantity": "1", "designated_to": "x" * 81},
         "query.designated_to"),
    ],
)  # fmt: skip
def test_fefo__bad_input_is_named(
    desk: Desk, path: str, params: dict[str, str], field: str
) -> None:
    answer = desk.get(f"/api/stock/north/d01/items/{path}", **params)
    assert answer.status_code == 422, answer.text
    assert [f["field"] for f in answer.json()["fields"]] == [field]
