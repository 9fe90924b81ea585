"""The stock API as depot keepers and the command center use it: movements in, on hand and
entries out; every bad input named and refused without a change; roles, depot scoping,
idempotency over HTTP and the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.access import hash_token
from gateway.alarms import AlarmBook
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.config import GatewayConfig, SiteSection
from gateway.live import LiveFeed
from gateway.stock.catalogue import StockItem, built_in_items
from gateway.store import SqlStore, open_store
from gateway.store.records import AccessRole
from gateway.store.settings import StoreSection
from tests.gateway.factory import look_inside

START = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TOKENS: dict[str, tuple[AccessRole, tuple[str, ...]]] = {
    "keeper": ("depot", ("north/d01", "north/d02")),
    "keeper-d03": ("depot", ("north/d03",)),
    "command": ("command", ()),
    "registrar": ("registrar", ()),
    "admin": ("admin", ()),
}
MASKS = {"item": "n95-mask", "quantity": "100", "unit": "piece", "lot": "N95-2611",
         "expires_on": "2027-11-30", "source": "purchase"}  # fmt: skip
GRAIN = {"item": "grain", "quantity": "250.5", "unit": "kg", "source": "allocation"}
ISSUE = {"item": "n95-mask", "quantity": "30", "unit": "piece", "lot": "N95-2611",
         "applicant_unit": "Clinic 3", "approver": "Li Wei", "application_id": "APP-0017"}  # fmt: skip
NOODLES = StockItem(key="rice-noodles", category="necessities", unit="kg", name_zh="米粉",
                    name_en="Rice noodles", storage_class="room")  # fmt: skip


class Clock:
    """The gateway's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Desk:
    """The API as each token's holder calls it; keys are fresh unless given."""

    def __init__(self, client: TestClient, store: SqlStore) -> None:
        self.client = client
        self.store = store
        self.count = 0

    def post(
        self, path: str, body: dict[str, Any] | None = None, *, who: str = "keeper",
        key: str | None = None, depot: str = "north/d01",
    ) -> Any:  # fmt: skip
        self.count += 1
        headers = {"Authorization": f"Bearer gpt_{who}-secret"}
        headers["Idempotency-Key"] = key or f"test-key-{self.count:06d}"
        return self.client.post(f"/api/stock/{depot}{path}", json=body, headers=headers)

    def get(self, path: str, *, who: str = "keeper") -> Any:
        return self.client.get(path, headers={"Authorization": f"Bearer gpt_{who}-secret"})

    def held(self, depot: str = "north/d01") -> dict[tuple[str, str], str]:
        answer = self.get(f"/api/stock/{depot}/on-hand", who="admin")
        assert answer.status_code == 200, answer.text
        return {(h["item"], h["lot"]): h["quantity"] for h in answer.json()["on_hand"]}

    def ledger(self) -> tuple[list[Any], list[Any], int]:
        """Every entry, every lot and the number of audit entries: what a refusal leaves."""
        entries = look_inside(self.store, "SELECT * FROM stock_entries ORDER BY id")
        lots = look_inside(self.store, "SELECT * FROM stock_lots ORDER BY item, lot")
        return entries, lots, len(self.store.audit_log(10_000))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def desk(store_section: StoreSection, clock: Clock) -> Iterator[Desk]:
    site = SiteSection(name="north", gates=("g01",), depots=("d01", "d02", "d03"),
                       stock_items=(NOODLES,))  # fmt: skip
    config = GatewayConfig(sites=(site,), store=store_section)
    store = open_store(config.store)
    live = LiveFeed()
    context = GatewayContext(
        config=config, store=store, alarms=AlarmBook(store, lambda alert: None, live),
        live=live, clock=clock,
    )  # fmt: skip
    for name, (role, depots) in TOKENS.items():
        store.add_token(hash_token(f"gpt_{name}-secret"), name, role, START, depots)
    yield Desk(TestClient(create_app(context)), store)
    store.close()


def ok(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


# --- movements ----------------------------------------------------------------------------


def test_stock__a_keeper_receives_and_issues(desk: Desk) -> None:
    received = ok(desk.post("/receipts", MASKS))
    assert (received["kind"], received["quantity"], received["who"]) == ("receipt", "100", "keeper")
    assert received["expires_on"] == "2027-11-30"
    ok(desk.post("/receipts", GRAIN))
    issued = ok(desk.post("/issues", ISSUE))
    assert (issued["quantity"], issued["applicant_unit"], issued["application_id"]) == (
        "-30", "Clinic 3", "APP-0017",
    )  # fmt: skip
    assert desk.held() == {("grain", ""): "250.500", ("n95-mask", "N95-2611"): "70"}
    entries = ok_list(desk.get("/api/stock/north/d01/entries"))
    assert [e["kind"] for e in entries] == ["issue", "receipt", "receipt"]  # newest first


def test_stock__a_site_item_is_received_like_the_others(desk: Desk) -> None:
    ok(desk.post("/receipts", {"item": "rice-noodles", "quantity": "12", "unit": "kg",
                               "source": "donation"}))  # fmt: skip
    assert desk.held() == {("rice-noodles", ""): "12.000"}


def test_stock__a_transfer_leaves_at_once_and_arrives_when_received(desk: Desk) -> None:
    ok(desk.post("/receipts", MASKS))
    sent = ok(desk.post("/transfers", {**_line(MASKS, "40"), "to_depot": "d02"}))
    assert desk.held() == {("n95-mask", "N95-2611"): "60"}
    waiting = ok(desk.get("/api/stock/north/d02/on-hand"))
    assert waiting["on_hand"] == []
    assert [(t["entry_id"], t["quantity"]) for t in waiting["in_transit"]] == [(sent["id"], "40")]
    arrived = ok(desk.post(f"/transfers/{sent['id']}/receipt", depot="north/d02"))
    assert (arrived["kind"], arrived["peer_depot"], arrived["quantity"]) == (
        "transfer-in", "d01", "40",
    )  # fmt: skip
    assert desk.held("north/d02") == {("n95-mask", "N95-2611"): "40"}
    assert ok(desk.get("/api/stock/north/d02/on-hand"))["in_transit"] == []


def test_stock__a_correction_is_a_reversal_and_a_new_entry(desk: Desk) -> None:
    wrong = ok(desk.post("/receipts", {**GRAIN, "quantity": "25.05"}))
    undone = ok(desk.post(f"/entries/{wrong['id']}/reversal", {"reason": "typed 25.05, not 250.5"}))
    assert (undone["kind"], undone["reverses"], undone["quantity"]) == (
        "reversal", wrong["id"], "-25.050",
    )  # fmt: skip
    ok(desk.post("/receipts", GRAIN))
    assert desk.held() == {("grain", ""): "250.500"}
    [*_, first] = ok_list(desk.get("/api/stock/north/d01/entries"))
    assert first["reversed_by"] == undone["id"]


def test_stock__a_stocktake_adjusts_both_ways(desk: Desk) -> None:
    ok(desk.post("/receipts", GRAIN))
    ok(desk.post("/adjustments", {"item": "grain", "quantity": "-0.5", "unit": "kg",
                                  "reason": "one sack torn"}))  # fmt: skip
    ok(desk.post("/adjustments", {"item": "grain", "quantity": "1.25", "unit": "kg",
                                  "reason": "recount"}))  # fmt: skip
    assert desk.held() == {("grain", ""): "251.250"}


def test_stock__a_designated_donation_is_issued_to_its_designee(desk: Desk) -> None:
    gift = {**MASKS, "source": "donation", "designated_to": "Isolation site 2"}
    ok(desk.post("/receipts", gift))
    to_designee = {
        **ISSUE,
        "designated_to": "Isolation site 2",
        "applicant_unit": "Isolation site 2",
    }
    ok(desk.post("/issues", to_designee))
    held = ok(desk.get("/api/stock/north/d01/on-hand"))["on_hand"]
    assert [(h["designated_to"], h["quantity"]) for h in held] == [("Isolation site 2", "70")]


def test_stock__entries_page_by_id(desk: Desk) -> None:
    ids = [ok(desk.post("/receipts", GRAIN))["id"] for _ in range(5)]
    page = ok_list(desk.get("/api/stock/north/d01/entries?limit=2"))
    assert [e["id"] for e in page] == ids[::-1][:2]
    rest = ok_list(desk.get(f"/api/stock/north/d01/entries?before_id={page[-1]['id']}"))
    assert [e["id"] for e in rest] == ids[::-1][2:]


# --- idempotency ----------------------------------------------------------------------------


def test_stock__a_repeated_submission_returns_the_first_result(desk: Desk) -> None:
    first = desk.post("/receipts", MASKS, key="tablet-7-000123")
    again = desk.post("/receipts", MASKS, key="tablet-7-000123")
    assert ok(again) == ok(first)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert desk.held() == {("n95-mask", "N95-2611"): "100"}
    assert len(ok_list(desk.get("/api/stock/north/d01/entries"))) == 1


def test_stock__a_reused_key_with_another_body_is_a_conflict(desk: Desk) -> None:
    ok(desk.post("/receipts", MASKS, key="tablet-7-000123"))
    before = desk.ledger()
    answer = desk.post("/receipts", {**MASKS, "quantity": "1000"}, key="tablet-7-000123")
    assert answer.status_code == 409
    assert answer.json()["reason"] == "idempotency-conflict"
    assert "idempotency_key" in answer.json()["detail"]
    assert "tablet-7-000123" in answer.json()["detail"]
    assert desk.ledger() == before


# --- bad input: named, and nothing changes ----------------------------------------------------


def _line(body: dict[str, Any], quantity: str) -> dict[str, Any]:
    return {k: body[k] for k in ("item", "unit", "lot") if k in body} | {"quantity": quantity}


Bad = tuple[str, dict[str, Any] | None, dict[str, Any]]
# (path, body, what the answer says): status, reason and the field it names.
BAD_INPUT: dict[str, Bad] = {
    "negative quantity": ("/receipts", {**MASKS, "quantity": "-5"}, {"field": "body.quantity"}),
    "zero quantity": ("/receipts", {**MASKS, "quantity": "0"}, {"field": "body.quantity"}),
    "non-numeric quantity": ("/issues", {**ISSUE, "quantity": "ten"}, {"field": "body.quantity"}),
    "a float of pieces": ("/issues", {**ISSUE, "quantity": 1.5}, {"field": "body.quantity"}),
    "grams past the gram": ("/receipts", {**GRAIN, "quantity": "1.0005"},
                            {"field": "body.quantity"}),
    "zero adjustment": ("/adjustments", {"item": "grain", "quantity": "0", "unit": "kg",
                                         "reason": "x"}, {"field": "body.quantity"}),
    "unit not the item's": ("/receipts", {**MASKS, "unit": "box"}, {"field": "body.unit"}),
    "unknown unit": ("/receipts", {**MASKS, "unit": "crate"}, {"field": "body.unit"}),
    "unknown item": ("/receipts", {**MASKS, "item": "unicorn-horn"}, {"field": "body.item"}),
    "lot missing": ("/receipts", {**MASKS, "lot": ""}, {"field": "body.lot"}),
    "lot of an untracked item": ("/receipts", {**GRAIN, "lot": "G1"}, {"field": "body.lot"}),
    "expiry missing": ("/receipts", {k: v for k, v in MASKS.items() if k != "expires_on"},
                       {"field": "body.expires_on"}),
    "lot received expired": ("/receipts", {**MASKS, "expires_on": "2026-12-05"},
                             {"field": "body.expires_on"}),
    "known lot, other expiry": ("/receipts", {**MASKS, "expires_on": "2028-01-01"},
                                {"field": "body.expires_on"}),
    "designated purchase": ("/receipts", {**MASKS, "designated_to": "Clinic 3"},
                            {"field": "body.designated_to"}),
    "unknown lot": ("/issues", {**ISSUE, "lot": "N95-9999"}, {"field": "body.lot"}),
    "more than on hand": ("/issues", {**ISSUE, "quantity": "101"},
                          {"status": 409, "reason": "insufficient-stock", "names": "quantity"}),
    "designated to another unit": ("/issues", {**ISSUE, "designated_to": "Isolation site 2"},
                                   {"field": "body.applicant_unit"}),
    "transfer to the same depot": ("/transfers", {**_line(MASKS, "1"), "to_depot": "d01"},
                                   {"field": "body.to_depot"}),
    "transfer to a depot not in the config": (
        "/transfers", {**_line(MASKS, "1"), "to_depot": "d99"}, {"field": "body.to_depot"}
    ),
    "transfer to another site's depot": (
        "/transfers", {**_line(MASKS, "1"), "to_depot": "South/d01"}, {"field": "body.to_depot"}
    ),
    "adjustment without a reason": ("/adjustments", {**_line(GRAIN, "1")},
                                    {"field": "body.reason"}),
    "unknown entry reversed": ("/entries/999/reversal", {"reason": "x"},
                               {"status": 404, "reason": "unknown-entry", "names": "entry_id"}),
    "reversal of a reversal": ("/entries/{reversal}/reversal", {"reason": "x"},
                               {"status": 409, "reason": "reversal-of-reversal",
                                "names": "entry_id"}),
    "entry reversed twice": ("/entries/{reversed}/reversal", {"reason": "x"},
                             {"status": 409, "reason": "already-reversed", "names": "entry_id"}),
    "unknown transfer received": ("/transfers/{receipt}/receipt", None,
                                  {"status": 404, "reason": "unknown-transfer"}),
    "a long text": ("/issues", {**ISSUE, "applicant_unit": "x" * 81},
                    {"field": "body.applicant_unit"}),
}  # fmt: skip


def _stocked(desk: Desk) -> dict[str, int]:
    """100 masks of lot N95-2611 (expiring 2027-11-30), 100 designated ones of another lot,
    grain; a reversed receipt and its reversal. Their ids by name."""
    receipt = ok(desk.post("/receipts", MASKS))["id"]
    ok(desk.post("/receipts", {**MASKS, "lot": "N95-2612", "source": "donation",
                               "designated_to": "Isolation site 2"}))  # fmt: skip
    ok(desk.post("/receipts", {**MASKS, "source": "donation",
                               "designated_to": "Isolation site 2"}))  # fmt: skip
    ok(desk.post("/receipts", GRAIN))
    reversed_id = ok(desk.post("/receipts", GRAIN))["id"]
    reversal = ok(desk.post(f"/entries/{reversed_id}/reversal", {"reason": "twice"}))["id"]
    return {"receipt": receipt, "reversed": reversed_id, "reversal": reversal}


@pytest.mark.parametrize(("path", "body", "expected"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_stock__bad_input_is_named_and_changes_nothing(
    desk: Desk, path: str, body: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    ids = _stocked(desk)
    before = desk.ledger()
    answer = desk.post(path.format(**ids), body)
    assert answer.status_code == expected.get("status", 422), answer.text
    found = answer.json()
    if "field" in expected:
        assert found["reason"] == "invalid-input"
        assert [f["field"] for f in found["fields"]] == [expected["field"]]
    else:
        assert found["reason"] == expected["reason"]
        assert expected.get("names", "") in found["detail"]
    assert desk.ledger() == before


def test_stock__an_expired_lot_is_not_issued(desk: Desk, clock: Clock) -> None:
    ok(desk.post("/receipts", {**MASKS, "expires_on": "2026-12-07"}))
    clock.now = START + timedelta(days=1)  # 2026-12-07, its last day
    ok(desk.post("/issues", {**ISSUE, "quantity": "1"}))
    clock.now = START + timedelta(days=2)
    before = desk.ledger()
    answer = desk.post("/issues", {**ISSUE, "quantity": "1"})
    assert answer.status_code == 422
    assert [f["field"] for f in answer.json()["fields"]] == ["body.lot"]
    assert "expired" in answer.json()["detail"]
    assert desk.ledger() == before


@pytest.mark.parametrize(
    "key", [None, "short", "x" * 65, "has space 123", "key/with/slash"], ids=repr
)
def test_stock__a_write_without_a_fitting_key_is_refused(desk: Desk, key: str | None) -> None:
    headers = {"Authorization": "Bearer gpt_keeper-secret"}
    if key is not None:
        headers["Idempotency-Key"] = key
    answer = desk.client.post("/api/stock/north/d01/receipts", json=MASKS, headers=headers)
    assert answer.status_code == 422
    assert [f["field"] for f in answer.json()["fields"]] == ["header.Idempotency-Key"]
    assert desk.ledger() == ([], [], 0)


def test_stock__a_depot_not_in_the_config_is_unknown(desk: Desk) -> None:
    for depot in ("north/d99", "south/d01"):
        answer = desk.post("/receipts", MASKS, who="admin", depot=depot)
        assert answer.status_code == 404
        assert answer.json()["reason"] == "unknown-depot"
    assert desk.ledger() == ([], [], 0)


# --- roles and scope ------------------------------------------------------------------------

WRITES: list[tuple[str, dict[str, Any] | None]] = [
    ("/receipts", MASKS), ("/issues", ISSUE), ("/transfers", {**_line(MASKS, "1"), "to_depot": "d02"}),
    ("/adjustments", {**_line(MASKS, "1"), "reason": "x"}), ("/entries/1/reversal", {"reason": "x"}),
    ("/transfers/1/receipt", None),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body"), WRITES, ids=[p for p, _ in WRITES])
@pytest.mark.parametrize("who", ["command", "registrar"])
def test_stock__only_depot_tokens_and_admin_write(
    desk: Desk, who: str, path: str, body: dict[str, Any] | None
) -> None:
    answer = desk.post(path, body, who=who)
    assert answer.status_code == 403
    assert answer.json()["reason"] == "role-forbidden"
    assert desk.ledger() == ([], [], 0)


def test_stock__admin_writes_any_depot(desk: Desk) -> None:
    ok(desk.post("/receipts", MASKS, who="admin", depot="north/d03"))
    assert desk.held("north/d03") == {("n95-mask", "N95-2611"): "100"}


@pytest.mark.parametrize(("path", "body"), WRITES, ids=[p for p, _ in WRITES])
def test_stock__a_depot_token_does_not_write_another_depot(
    desk: Desk, path: str, body: dict[str, Any] | None
) -> None:
    ok(desk.post("/receipts", MASKS, who="keeper-d03", depot="north/d03"))
    before = desk.ledger()
    other = desk.post(path, body, who="keeper", depot="north/d03")
    assert other.status_code == 404
    assert other.json() == {
        "reason": "unknown-depot", "detail": "'d03' is not a depot of site 'north'",
    }  # fmt: skip
    nowhere = desk.post(path, body, who="keeper", depot="north/d99")
    assert nowhere.json() == {
        "reason": "unknown-depot", "detail": "'d99' is not a depot of site 'north'",
    }  # fmt: skip
    assert desk.ledger() == before


@pytest.mark.parametrize("path", ["on-hand", "entries"])
def test_stock__reads_are_scoped_like_depots(desk: Desk, path: str) -> None:
    ok(desk.post("/receipts", MASKS, who="keeper-d03", depot="north/d03"))
    assert ok(desk.get(f"/api/stock/north/d03/{path}", who="keeper-d03"))
    assert ok(desk.get(f"/api/stock/north/d03/{path}", who="command"))
    hidden = desk.get(f"/api/stock/north/d03/{path}", who="keeper")
    assert hidden.status_code == 404
    assert hidden.json()["reason"] == "unknown-depot"
    assert desk.get(f"/api/stock/north/d03/{path}", who="registrar").status_code == 403


# --- the catalogue and the audit log ------------------------------------------------------


def test_stock__the_catalogue_in_chinese_and_english(desk: Desk) -> None:
    items = {i["key"]: i for i in ok_list(desk.get("/api/stock/items", who="command"))}
    assert set(items) == set(built_in_items())
    assert (items["surgical-mask"]["name_zh"], items["surgical-mask"]["name_en"]) == (
        "医用外科口罩", "Surgical mask",
    )  # fmt: skip
    assert items["pork"]["storage_class"] == "cold"
    with_site = {i["key"] for i in ok_list(desk.get("/api/stock/items?site=north"))}
    assert with_site == set(built_in_items()) | {"rice-noodles"}
    unknown = desk.get("/api/stock/items?site=south")
    assert (unknown.status_code, unknown.json()["reason"]) == (404, "unknown-site")


def ok_list(answer: Any) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


def test_stock__every_write_is_audited_once(desk: Desk) -> None:
    entry = ok(desk.post("/receipts", MASKS, key="tablet-7-000001"))
    ok(desk.post("/receipts", MASKS, key="tablet-7-000001"))  # a repeat: no second entry
    ok(desk.post("/issues", ISSUE))
    log = [a for a in desk.store.audit_log(100) if a.resource == "stock"]
    assert [(a.action, a.who, a.role) for a in log] == [
        ("stock-issue", "keeper", "depot"), ("stock-receipt", "keeper", "depot"),
    ]  # fmt: skip
    detail = json.loads(log[-1].detail or "{}")
    assert detail == {
        "entry_id": entry["id"], "kind": "receipt", "site": "north", "depot": "d01",
        "item": "n95-mask", "lot": "N95-2611", "quantity": "100", "unit": "piece",
    }  # fmt: skip
    # Who applied and who approved are not copied into the audit log.
    assert "Clinic 3" not in (log[0].detail or "") and "Li Wei" not in (log[0].detail or "")


def test_stock__a_nul_character_in_a_reason_is_never_a_server_error(desk: Desk) -> None:
    # Found by the fuzz test below: PostgreSQL keeps no NUL in text, SQLite does.
    ok(desk.post("/receipts", MASKS))
    before = desk.ledger()
    answer = desk.post("/entries/1/reversal", {"reason": "entered twice\x00"})
    if desk.store.engine == "postgresql":
        assert answer.status_code == 422, answer.text
        assert answer.json()["reason"] == "unstorable-value"
        assert desk.ledger() == before
    else:
        assert ok(answer)["reason"] == "entered twice\x00"


# --- anything a client sends ----------------------------------------------------------------

FIELDS = ["item", "quantity", "unit", "lot", "expires_on", "source", "designated_to",
          "applicant_unit", "approver", "application_id", "to_depot", "reason"]  # fmt: skip
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=90),
    st.sampled_from(["n95-mask", "grain", "piece", "kg", "N95-2611", "2027-11-30", "2026-12-01",
                     "purchase", "donation", "d02", "d01", "NaN", "1e3", "-0", "0.0001", "1",
                     "Isolation site 2", "Clinic 3"]),
)  # fmt: skip
BODIES = st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=len(FIELDS))
PATHS = ["/receipts", "/issues", "/transfers", "/adjustments", "/entries/1/reversal",
         "/entries/2/reversal", "/transfers/3/receipt"]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.sampled_from(PATHS), body=BODIES, same_key=st.booleans())
def test_stock__no_body_is_a_server_error_and_a_refusal_changes_nothing(
    desk: Desk, path: str, body: dict[str, Any], same_key: bool
) -> None:
    if not desk.ledger()[0]:
        ok(desk.post("/receipts", MASKS))
        ok(desk.post("/receipts", GRAIN))
        ok(desk.post("/transfers", {**_line(GRAIN, "1"), "to_depot": "d02"}))
    before = desk.ledger()
    # Some writes reuse a key of an earlier one: a repeat or a conflict, never a 500.
    answer = desk.post(path, body, key="fuzz-key-0001" if same_key else None)
    assert answer.status_code in {200, 404, 409, 422}, answer.text
    if answer.status_code != 200:
        assert desk.ledger() == before
    for depot in ("north/d01", "north/d02"):
        assert all(Decimal(q) > 0 for q in desk.held(depot).values())
