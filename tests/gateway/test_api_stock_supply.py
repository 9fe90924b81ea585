"""Price observations and the supply level over HTTP: each bad input named and nothing
stored, roles and depot scoping, idempotency, the audit line, and the level the dashboard
reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
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
from gateway.stock.cover import StockTarget
from gateway.stock.ledger import Movement
from gateway.store import SqlStore, open_store
from gateway.store.records import AccessRole
from gateway.store.settings import StoreSection
from gateway.store.sql import INTEGRITY_ERRORS
from tests.gateway.factory import look_inside

START = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TODAY = date(2026, 12, 6)
TOKENS: dict[str, tuple[AccessRole, tuple[str, ...]]] = {
    "keeper": ("depot", ("north/d01",)),
    "keeper-south": ("depot", ("south/s01",)),
    "command": ("command", ()),
    "registrar": ("registrar", ()),
    "admin": ("admin", ()),
}
PORK = {"item": "pork", "unit": "kg", "price": "32.50", "observed_on": "2026-12-06",
        "market": "东门农贸市场"}  # fmt: skip


class Desk:
    def __init__(self, client: TestClient, store: SqlStore) -> None:
        self.client = client
        self.store = store
        self.count = 0

    def post(self, body: Any, *, who: str = "command", key: str | None = None,
             site: str = "north") -> Any:  # fmt: skip
        self.count += 1
        headers = {"Authorization": f"Bearer gpt_{who}-secret",
                   "Idempotency-Key": key or f"price-key-{self.count:06d}"}  # fmt: skip
        return self.client.post(f"/api/stock/{site}/prices", json=body, headers=headers)

    def get(self, path: str, *, who: str = "command") -> Any:
        return self.client.get(path, headers={"Authorization": f"Bearer gpt_{who}-secret"})

    def stored(self) -> tuple[list[Any], int]:
        rows = look_inside(self.store, "SELECT * FROM stock_prices ORDER BY id")
        return rows, len(self.store.audit_log(10_000))


@pytest.fixture
def desk(store_section: StoreSection) -> Iterator[Desk]:
    north = SiteSection(
        name="north", depots=("d01", "d02"), population=1000,
        stock_targets=(StockTarget(item="grain", days=15, per_person_daily=Decimal("0.4")),),
    )  # fmt: skip
    south = SiteSection(name="south", depots=("s01",))
    config = GatewayConfig(sites=(north, south), store=store_section)
    store = open_store(config.store)
    live = LiveFeed()
    context = GatewayContext(
        config=config, store=store, alarms=AlarmBook(store, lambda alert: None, live),
        live=live, clock=lambda: START,
    )  # fmt: skip
    for name, (role, depots) in TOKENS.items():
        store.add_token(hash_token(f"gpt_{name}-secret"), name, role, START, depots)
    yield Desk(TestClient(create_app(context)), store)
    store.close()


def ok(answer: Any) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()


# --- prices in ----------------------------------------------------------------------------


def test_prices__the_command_center_records_one_and_it_is_audited(desk: Desk) -> None:
    seen = ok(desk.post(PORK))
    assert (seen["item"], seen["unit"], seen["price"], seen["who"]) == ("pork", "kg", "32.50",
                                                                        "command")  # fmt: skip
    assert (seen["observed_on"], seen["market"]) == ("2026-12-06", "东门农贸市场")
    (line,) = desk.store.audit_log(10)
    assert (line.action, line.resource, line.who) == ("stock-price", "stock", "command")
    assert '"price": "32.50"' in (line.detail or "")
    assert [p["id"] for p in ok(desk.get("/api/stock/north/prices", who="keeper"))] == [seen["id"]]


def test_prices__the_same_key_again_is_the_first_and_another_body_a_conflict(desk: Desk) -> None:
    first = desk.post(PORK, key="pork-2026-12-06-east")
    again = desk.post(PORK, key="pork-2026-12-06-east")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = desk.post({**PORK, "price": "33.00"}, key="pork-2026-12-06-east")
    assert other.status_code == 409
    assert other.json()["reason"] == "idempotency-conflict"
    rows, audited = desk.stored()
    assert (len(rows), audited) == (1, 1)
    # Keys are per site: the same key at another site is another observation.
    assert desk.post(PORK, key="pork-2026-12-06-east", site="south").status_code == 200


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"price": "0"}, "price"),
        ({"price": "-3"}, "price"),
        ({"price": "abc"}, "price"),
        ({"price": "32.505"}, "price"),
        ({"price": "100000.01"}, "price"),
        ({"item": "caviar"}, "item"),
        ({"item": "Pork!"}, "item"),
        ({"unit": "L"}, "unit"),
        ({"unit": "jin"}, "unit"),
        ({"observed_on": "2026-12-07"}, "observed_on"),  # tomorrow in Shanghai
        ({"observed_on": "2024-01-01"}, "observed_on"),
        ({"observed_on": "yesterday"}, "observed_on"),
        ({"market": ""}, "market"),
        ({"market": "市" * 81}, "market"),
        ({"who": "Li Wei"}, "who"),
    ],
)
def test_prices__bad_input_is_named_and_nothing_stored(
    desk: Desk, change: dict[str, str], where: str
) -> None:
    answer = desk.post({**PORK, **change})
    assert answer.status_code == 422, answer.text
    assert f"body.{where}" in {p["field"] for p in answer.json()["fields"]}
    assert desk.stored() == ([], 0)


@pytest.mark.parametrize("key", [None, "short", "has space in it", "x" * 65])
def test_prices__a_missing_or_malformed_key_is_refused(desk: Desk, key: str | None) -> None:
    headers = {"Authorization": "Bearer gpt_command-secret"}
    if key is not None:
        headers["Idempotency-Key"] = key
    answer = desk.client.post("/api/stock/north/prices", json=PORK, headers=headers)
    assert answer.status_code == 422
    assert "header.Idempotency-Key" in [p["field"] for p in answer.json()["fields"]]
    assert desk.stored() == ([], 0)


@pytest.mark.parametrize(("who", "status"), [("keeper", 403), ("registrar", 403), ("admin", 200)])
def test_prices__only_the_command_center_and_admin_record(
    desk: Desk, who: str, status: int
) -> None:
    assert desk.post(PORK, who=who).status_code == status


def test_prices__an_unknown_site_or_one_without_depots_is_404(desk: Desk) -> None:
    assert desk.post(PORK, site="east").json()["reason"] == "unknown-site"
    assert desk.get("/api/stock/south/prices", who="keeper").json()["reason"] == "unknown-site"
    assert desk.get("/api/stock/north/supply-level", who="keeper-south").status_code == 404


def test_prices__listed_newest_first_by_item_and_in_pages(desk: Desk) -> None:
    for day, yuan in ((3, "30"), (2, "31"), (1, "32")):
        on = (TODAY - timedelta(days=day)).isoformat()
        ok(desk.post({**PORK, "price": yuan, "observed_on": on}))
    ok(desk.post({**PORK, "item": "grain", "price": "5.20"}))
    pork = ok(desk.get("/api/stock/north/prices?item=pork&limit=2"))
    assert [p["price"] for p in pork] == ["32.00", "31.00"]
    rest = ok(desk.get(f"/api/stock/north/prices?item=pork&before_id={pork[-1]['id']}"))
    assert [p["price"] for p in rest] == ["30.00"]
    assert desk.get("/api/stock/north/prices?limit=501").status_code == 422


def test_prices__stored_rows_cannot_be_changed(desk: Desk) -> None:
    ok(desk.post(PORK))
    with pytest.raises(INTEGRITY_ERRORS, match="immutable"):
        look_inside(desk.store, "UPDATE stock_prices SET price_fen = 1")
    with pytest.raises(INTEGRITY_ERRORS, match="immutable"):
        look_inside(desk.store, "DELETE FROM stock_prices")


# --- the level the dashboard reads ---------------------------------------------------------


def test_supply_level__shape_rule_and_price_rises(desk: Desk) -> None:
    quiet = ok(desk.get("/api/stock/north/supply-level"))
    assert quiet == {
        "site": "north", "level": "III", "rule": "stock-out:necessities",
        "rule_zh": "缺货：生活必需品", "rule_en": "out of stock: daily necessities",
        "since": quiet["computed_at"], "computed_at": "2026-12-06T02:00:00Z",
        "categories": [
            {"category": "protective", "tight_days": 0, "stock_out": False},
            {"category": "disinfection", "tight_days": 0, "stock_out": False},
            {"category": "necessities", "tight_days": 1, "stock_out": True},
        ],
        "prices": [{"group": "grain-oil", "rise_pct": None}, {"group": "pork", "rise_pct": None}],
    }  # fmt: skip
    grain = Movement("receipt", "north", "d02", "receipt-0001", item="grain", unit="kg",
                     steps=9_000_000, source="purchase")  # fmt: skip
    desk.store.stock_write(grain, "keeper", START, TODAY)  # 22.5 days: not tight, not out
    ok(desk.post({**PORK, "price": "30", "observed_on": "2026-11-28"}))
    ok(desk.post({**PORK, "price": "39"}))
    found = ok(desk.get("/api/stock/north/supply-level", who="keeper"))
    assert (found["level"], found["rule"]) == ("III", "price-rise:pork:+30%")
    assert found["prices"] == [{"group": "grain-oil", "rise_pct": None},
                               {"group": "pork", "rise_pct": 30.0}]  # fmt: skip
    assert [c["tight_days"] for c in found["categories"]] == [0, 0, 0]


@pytest.mark.parametrize(("who", "status"), [("registrar", 403), ("keeper", 200), ("admin", 200)])
def test_supply_level__roles(desk: Desk, who: str, status: int) -> None:
    assert desk.get("/api/stock/north/supply-level", who=who).status_code == status
