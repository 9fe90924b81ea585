"""Applications and their allocation over the API, on a real store (each test on a SQLite
file and on PostgreSQL): the command center
files applications, asks for the plan, approves exactly what it was shown; the keepers see
what their depots are to issue and issue it, never more; every bad input named and refused
without a change; roles, depot scoping, idempotency and the audit log."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.access import hash_token
from gateway.alarms import AlarmBook
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.config import GatewayConfig, SiteSection
from gateway.live import LiveFeed
from gateway.stock.applications import Location
from gateway.stock.ledger import Movement, StockRefused
from gateway.store import SqlStore, open_store
from gateway.store.records import AccessRole
from gateway.store.settings import StoreSection
from gateway.store.sql import INTEGRITY_ERRORS
from tests.gateway.factory import look_inside

NOW = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TOKENS: dict[str, tuple[AccessRole, tuple[str, ...]]] = {
    "keeper": ("depot", ("north/d01", "north/d02")),
    "keeper-d03": ("depot", ("north/d03",)),
    "keeper-south": ("depot", ("south/d01",)),
    "command": ("command", ()),
    "registrar": ("registrar", ()),
    "admin": ("admin", ()),
}
# d01 in the centre, d02 15 km east of it; the hospital is beside d02.
LOCATIONS = {"d01": Location(lat=31.23, lon=121.47), "d02": Location(lat=31.23, lon=121.63)}
HOSPITAL = {"lat": 31.23, "lon": 121.64}
MASKS = {"item": "n95-mask", "quantity": "100", "unit": "piece", "lot": "N95-2611",
         "expires_on": "2027-11-30", "source": "purchase"}  # fmt: skip
CLINIC = {"applicant_unit": "Clinic 3", "place_kind": "other", "urgency": "routine",
          "medical": False, "item": "n95-mask", "quantity": "80", "unit": "piece"}  # fmt: skip
FEVER_HOSPITAL = {**CLINIC, "applicant_unit": "Fever Hospital", "place_kind": "hospital",
                  "urgency": "urgent", "medical": True, "quantity": "120",
                  "location": HOSPITAL}  # fmt: skip
MARKET = {**CLINIC, "applicant_unit": "Market Office", "quantity": "50"}


class Desk:
    """The API as each token's holder calls it; keys are fresh unless given."""

    def __init__(self, client: TestClient, store: SqlStore) -> None:
        self.client = client
        self.store = store
        self.count = 0

    def post(
        self, path: str, body: dict[str, Any] | None = None, *, who: str = "command",
        key: str | None = None,
    ) -> Any:  # fmt: skip
        self.count += 1
        headers = {"Authorization": f"Bearer gpt_{who}-secret"}
        headers["Idempotency-Key"] = key or f"test-key-{self.count:06d}"
        return self.client.post(f"/api/stock/north{path}", json=body, headers=headers)

    def get(self, path: str, *, who: str = "command", **params: str) -> Any:
        headers = {"Authorization": f"Bearer gpt_{who}-secret"}
        return self.client.get(f"/api/stock/north{path}", headers=headers, params=params)

    def file(self, body: dict[str, Any]) -> str:
        return str(ok(self.post("/applications", body))["id"])

    def plan(self, item: str = "n95-mask") -> dict[str, Any]:
        found: dict[str, Any] = ok(self.get("/allocation", item=item))
        return found

    def approve(self, plan: dict[str, Any], who: str = "command") -> Any:
        body = {"item": plan["item"], "fingerprint": plan["fingerprint"]}
        return self.post("/allocation/approve", body, who=who)

    def issue(self, depot: str, name: str, quantity: str, **extra: str) -> Any:
        """Issue against application `name` as its approval says (`extra` changes that)."""
        found = ok(self.get("/applications", limit="500"))
        approved = next((a for a in found if a["id"] == name), None)
        body = {"item": "n95-mask", "quantity": quantity, "unit": "piece", "lot": "N95-2611",
                "applicant_unit": approved["applicant_unit"] if approved else "Clinic 3",
                "approver": approved["decided_by"] if approved else "command",
                "application_id": name, **extra}  # fmt: skip
        return self.post(f"/{depot}/issues", body, who="keeper")

    def state(self) -> tuple[list[Any], ...]:
        """Every application, decision, allocation, entry and audit line: what a refusal leaves."""
        store = self.store
        return (
            look_inside(store, "SELECT * FROM stock_applications ORDER BY id"),
            look_inside(store, "SELECT * FROM stock_application_decisions ORDER BY 1"),
            look_inside(store, "SELECT * FROM stock_allocations ORDER BY id"),
            look_inside(store, "SELECT * FROM stock_entries ORDER BY id"),
            [(a.action, a.detail) for a in self.store.audit_log(10_000)],
        )


def ok(answer: Any) -> Any:
    assert answer.status_code == 200, answer.text
    return answer.json()


def fields(answer: Any) -> list[str]:
    assert answer.status_code == 422, answer.text
    return [f["field"] for f in answer.json()["fields"]]


def reason(answer: Any, status: int) -> str:
    assert answer.status_code == status, answer.text
    return str(answer.json()["reason"])


@pytest.fixture
def desk(store_section: StoreSection) -> Iterator[Desk]:
    site = SiteSection(name="north", gates=("g01",), depots=("d01", "d02", "d03"),
                       depot_locations=LOCATIONS)  # fmt: skip
    config = GatewayConfig(sites=(site,), store=store_section)
    store = open_store(config.store)
    live = LiveFeed()
    context = GatewayContext(
        config=config, store=store, alarms=AlarmBook(store, lambda alert: None, live),
        live=live, clock=lambda: NOW,
    )  # fmt: skip
    for name, (role, depots) in TOKENS.items():
        store.add_token(hash_token(f"gpt_{name}-secret"), name, role, NOW, depots)
    desk = Desk(TestClient(create_app(context)), store)
    for depot in ("d01", "d02"):
        ok(desk.post(f"/{depot}/receipts", MASKS, who="keeper"))
    yield desk
    store.close()


@pytest.fixture
def approved(desk: Desk) -> dict[str, str]:
    """The clinic (APL-1), the fever hospital (APL-2) and the market office (APL-3) filed
    in that order, and the plan of 200 masks approved: the hospital 100 at d02 and 20 at
    d01, the clinic 80 at d01, the market nothing (still pending)."""
    names = {"clinic": desk.file(CLINIC), "hospital": desk.file(FEVER_HOSPITAL),
             "market": desk.file(MARKET)}  # fmt: skip
    ok(desk.approve(desk.plan()))
    return names


# --- the whole path ----------------------------------------------------------------------


def test_applications__filed_planned_approved_issued(desk: Desk) -> None:
    clinic, hospital, market = desk.file(CLINIC), desk.file(FEVER_HOSPITAL), desk.file(MARKET)
    assert (clinic, hospital, market) == ("APL-1", "APL-2", "APL-3")
    plan = desk.plan()
    # Urgent, medical, a hospital first, in full from its nearest depot (d02) then d01;
    # the clinic (filed first) what is left; the market office nothing. No equal shares.
    assert [(a["application_id"], a["allocated"], a["short"]) for a in plan["applications"]] == [
        ("APL-2", "120", "0"), ("APL-1", "80", "0"), ("APL-3", "0", "50"),
    ]  # fmt: skip
    assert [(ln["application_id"], ln["depot"], ln["quantity"]) for ln in plan["lines"]] == [
        ("APL-2", "d02", "100"), ("APL-2", "d01", "20"), ("APL-1", "d01", "80"),
    ]  # fmt: skip
    assert plan["available"] == {"d01": "100", "d02": "100", "d03": "0"}
    # Asking for the plan writes nothing; approving it is not an issue either.
    ok(desk.approve(plan))
    assert desk.plan()["available"] == {"d01": "0", "d02": "0", "d03": "0"}
    assert ok(desk.get("/d01/on-hand", who="keeper"))["on_hand"][0]["quantity"] == "100"

    shown = {a["id"]: a for a in ok(desk.get("/applications"))}
    assert [shown[n]["state"] for n in (clinic, hospital, market)] == [
        "approved", "approved", "pending"]  # fmt: skip
    assert shown[hospital]["decided_by"] == "command"
    assert shown[hospital]["allocated"] == "120"

    # The keepers issue what was allocated at their depot, against the application's id.
    assert ok(desk.issue("d02", hospital, "100"))["application_id"] == hospital
    assert reason(desk.issue("d02", hospital, "1"), 409) == "over-allocation"
    ok(desk.issue("d01", hospital, "20"))
    ok(desk.issue("d01", clinic, "80"))
    shown = {a["id"]: a for a in ok(desk.get("/applications"))}
    assert [(shown[n]["state"], shown[n]["issued"]) for n in (clinic, hospital)] == [
        ("fulfilled", "80"), ("fulfilled", "120")]  # fmt: skip


def test_applications__never_more_than_allocated_at_that_depot(
    desk: Desk, approved: dict[str, str]
) -> None:
    hospital, clinic = approved["hospital"], approved["clinic"]
    ok(desk.issue("d01", hospital, "15"))
    before = desk.state()
    over = desk.issue("d01", hospital, "6")  # 15 + 6 > 20 allocated at d01
    assert reason(over, 409) == "over-allocation"
    assert "quantity" in over.json()["detail"]
    # The clinic has nothing at d02, even though d02 has stock (the hospital's).
    assert reason(desk.issue("d02", clinic, "1"), 409) == "not-allocated-here"
    assert desk.state() == before
    ok(desk.issue("d01", hospital, "5"))  # exactly what is left


def test_applications__a_reversed_issue_can_be_issued_again(
    desk: Desk, approved: dict[str, str]
) -> None:
    clinic = approved["clinic"]
    entry = ok(desk.issue("d01", clinic, "80"))
    assert reason(desk.issue("d01", clinic, "1"), 409) == "over-allocation"
    ok(desk.post(f"/d01/entries/{entry['id']}/reversal", {"reason": "wrong lot"}, who="keeper"))
    ok(desk.issue("d01", clinic, "80"))


@pytest.mark.parametrize(
    ("change", "field", "status", "code"),
    [
        ({"application_id": "APL-99"}, "body.application_id", 422, None),
        ({"application_id": "APL-0"}, "body.application_id", 422, None),
        ({"application_id": "APL-3"}, "application_id", 409, "application-not-approved"),
        ({"applicant_unit": "Clinic 4"}, "body.applicant_unit", 422, None),
        ({"approver": "someone else"}, "body.approver", 422, None),
        ({"item": "grain", "unit": "kg", "lot": ""}, "body.item", 422, None),
    ],
    ids=["unknown", "malformed", "pending", "applicant", "approver", "item"],
)
def test_applications__an_issue_against_an_application_is_checked(
    *, desk: Desk, approved: dict[str, str], change: dict[str, str], field: str, status: int,
    code: str | None,
) -> None:  # fmt: skip
    ok(desk.post("/d01/receipts", {"item": "grain", "quantity": "10", "unit": "kg",
                                   "source": "purchase"}, who="keeper"))  # fmt: skip
    before = desk.state()
    answer = desk.issue("d01", approved["clinic"], "1", **change)
    if status == 422:
        assert fields(answer) == [field]
    else:
        assert reason(answer, status) == code
        assert field in answer.json()["detail"]
    assert desk.state() == before


def test_applications__other_ids_are_paper_applications(desk: Desk) -> None:
    body = {"item": "n95-mask", "quantity": "3", "unit": "piece", "lot": "N95-2611",
            "applicant_unit": "Clinic 3", "approver": "Li Wei",
            "application_id": "APP-0017"}  # fmt: skip
    assert ok(desk.post("/d01/issues", body, who="keeper"))["application_id"] == "APP-0017"


# --- the plan and its approval -----------------------------------------------------------


def test_allocation__approval_is_of_the_plan_shown_only(desk: Desk) -> None:
    desk.file(CLINIC)
    plan = desk.plan()
    ok(desk.post("/d03/receipts", MASKS, who="admin"))  # the stock changed since
    before = desk.state()
    changed = desk.approve(plan)
    assert reason(changed, 409) == "plan-changed"
    assert "fingerprint" in changed.json()["detail"]
    assert desk.state() == before
    desk.file(MARKET)  # so did the applications
    fresh = desk.plan()
    assert fresh["fingerprint"] != plan["fingerprint"]
    ok(desk.approve(fresh))
    assert reason(desk.approve(fresh), 409) == "plan-approved"


def test_allocation__approved_stock_is_not_allocated_again(
    desk: Desk, approved: dict[str, str]
) -> None:
    later = desk.file({**CLINIC, "applicant_unit": "Clinic 9", "urgency": "urgent"})
    plan = desk.plan()
    # Every mask is held back for the approved applications: the market office and the
    # later urgent clinic get nothing, and there is nothing to approve.
    assert {a["application_id"]: a["allocated"] for a in plan["applications"]} == {
        later: "0", approved["market"]: "0"}  # fmt: skip
    assert reason(desk.approve(plan), 409) == "plan-empty"
    # An issue against an approval still holds nothing more back than what is left of it.
    ok(desk.issue("d01", approved["clinic"], "30"))
    assert desk.plan()["available"]["d01"] == "0"
    ok(desk.post("/d01/receipts", {**MASKS, "quantity": "7"}, who="keeper"))
    assert {a["application_id"]: a["allocated"] for a in desk.plan()["applications"]} == {
        later: "7", approved["market"]: "0"}  # fmt: skip


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "query.item"), ({"item": "caviar"}, "query.item"), ({"item": "N95!"}, "query.item")],
    ids=["missing", "unknown", "malformed"],
)
def test_allocation__bad_item(desk: Desk, params: dict[str, str], field: str) -> None:
    assert fields(desk.get("/allocation", **params)) == [field]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"item": "caviar", "fingerprint": "0" * 64}, "body.item"),
        ({"item": "n95-mask", "fingerprint": "abc"}, "body.fingerprint"),
        ({"item": "n95-mask"}, "body.fingerprint"),
    ],
    ids=["unknown-item", "malformed-fingerprint", "no-fingerprint"],
)
def test_allocation__bad_approval(desk: Desk, body: dict[str, str], field: str) -> None:
    desk.file(CLINIC)
    before = desk.state()
    assert fields(desk.post("/allocation/approve", body)) == [field]
    assert desk.state() == before


# --- filing, rejecting -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"item": "caviar"}, "body.item"),
        ({"unit": "box"}, "body.unit"),
        ({"quantity": "0"}, "body.quantity"),
        ({"quantity": "-5"}, "body.quantity"),
        ({"quantity": "many"}, "body.quantity"),
        ({"quantity": "1.5"}, "body.quantity"),
        ({"place_kind": "school"}, "body.place_kind"),
        ({"urgency": "soon"}, "body.urgency"),
        ({"applicant_unit": ""}, "body.applicant_unit"),
        ({"applicant_unit": "x" * 81}, "body.applicant_unit"),
        ({"note": "x" * 201}, "body.note"),
        ({"location": {"lat": 91, "lon": 0}}, "body.location.lat"),
        ({"location": {"lat": 0, "lon": 181}}, "body.location.lon"),
    ],
    ids=lambda v: v if isinstance(v, str) else "-".join(map(str, v))[:30],
)
def test_applications__bad_input_is_named_and_changes_nothing(
    desk: Desk, change: dict[str, Any], field: str
) -> None:
    before = desk.state()
    assert fields(desk.post("/applications", {**CLINIC, **change})) == [field]
    assert desk.state() == before


def test_applications__idempotent_by_key(desk: Desk) -> None:
    first = desk.post("/applications", CLINIC, key="form-0001-clinic")
    again = desk.post("/applications", CLINIC, key="form-0001-clinic")
    assert ok(again) == ok(first)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(ok(desk.get("/applications"))) == 1
    before = desk.state()
    other = desk.post("/applications", MARKET, key="form-0001-clinic")
    assert reason(other, 409) == "idempotency-conflict"
    assert desk.state() == before
    assert fields(desk.post("/applications", CLINIC, key="short")) == ["header.Idempotency-Key"]


def test_applications__reject(desk: Desk, approved: dict[str, str]) -> None:
    market = approved["market"]
    rejected = ok(desk.post(f"/applications/{market}/reject", {"reason": "not a priority"}))
    assert (rejected["state"], rejected["reason"], rejected["decided_by"]) == (
        "rejected", "not a priority", "command")  # fmt: skip
    before = desk.state()
    again = desk.post(f"/applications/{market}/reject", {"reason": "twice"})
    assert reason(again, 409) == "application-decided"
    assert reason(desk.post(f"/applications/{approved['clinic']}/reject", {"reason": "late"}),
                  409) == "application-decided"  # fmt: skip
    assert reason(desk.post("/applications/APL-77/reject", {"reason": "x"}), 404) == (
        "unknown-application")  # fmt: skip
    assert fields(desk.post("/applications/APL-x/reject", {"reason": "x"})) == [
        "path.application_id"]  # fmt: skip
    assert fields(desk.post(f"/applications/{market}/reject", {"reason": ""})) == ["body.reason"]
    assert desk.state() == before
    assert [a["state"] for a in ok(desk.get("/applications", state="rejected"))] == ["rejected"]


# --- roles, depot scoping, audit ---------------------------------------------------------


@pytest.mark.parametrize("who", ["keeper", "registrar"])
def test_applications__only_command_and_admin_file_plan_approve_reject(
    desk: Desk, who: str
) -> None:
    name = desk.file(CLINIC)
    plan = desk.plan()
    before = desk.state()
    assert reason(desk.post("/applications", MARKET, who=who), 403) == "role-forbidden"
    assert reason(desk.get("/allocation", who=who, item="n95-mask"), 403) == "role-forbidden"
    assert reason(desk.approve(plan, who=who), 403) == "role-forbidden"
    assert reason(desk.post(f"/applications/{name}/reject", {"reason": "x"}, who=who),
                  403) == "role-forbidden"  # fmt: skip
    assert desk.state() == before
    ok(desk.approve(plan, who="admin"))
    assert ok(desk.get("/applications", who="admin"))[0]["decided_by"] == "admin"


def test_applications__a_keeper_sees_what_its_depots_are_to_issue(
    desk: Desk, approved: dict[str, str]
) -> None:
    seen = ok(desk.get("/applications", who="keeper"))
    assert {a["id"] for a in seen} == {approved["hospital"], approved["clinic"]}
    assert all(line["depot"] in ("d01", "d02") for a in seen for line in a["allocations"])
    assert ok(desk.get("/applications", who="keeper-d03")) == []
    assert reason(desk.get("/applications", who="keeper-south"), 404) == "unknown-site"
    assert reason(desk.get("/applications", who="registrar"), 403) == "role-forbidden"


def test_applications__a_keeper_sees_its_own_lines_only(desk: Desk) -> None:
    desk.post("/d01/receipts", MASKS, who="keeper")  # d01: 200, d02: 100
    ok(desk.post("/d03/receipts", MASKS, who="admin"))
    hospital = desk.file({**FEVER_HOSPITAL, "quantity": "350"})
    ok(desk.approve(desk.plan()))
    everything = ok(desk.get("/applications"))[0]["allocations"]
    assert {line["depot"] for line in everything} == {"d01", "d02", "d03"}
    mine = ok(desk.get("/applications", who="keeper-d03"))
    assert [(a["id"], [ln["depot"] for ln in a["allocations"]], a["allocated"]) for a in mine] == [
        (hospital, ["d03"], "50")]  # fmt: skip


def test_applications__every_write_is_audited(desk: Desk, approved: dict[str, str]) -> None:
    ok(desk.post(f"/applications/{approved['market']}/reject", {"reason": "no stock"}))
    log = [(a.action, a.who) for a in desk.store.audit_log(100)
           if a.action.startswith("stock-a")]  # fmt: skip
    assert sorted(log) == sorted([
        ("stock-application-file", "command"), ("stock-application-file", "command"),
        ("stock-application-file", "command"), ("stock-allocation-approve", "command"),
        ("stock-application-reject", "command"),
    ])  # fmt: skip
    approval = next(a for a in desk.store.audit_log(100) if a.action == "stock-allocation-approve")
    assert '"applications": ["APL-2", "APL-1"]' in (approval.detail or "")


def test_applications__the_records_cannot_be_changed(desk: Desk, approved: dict[str, str]) -> None:
    for sql in ("UPDATE stock_applications SET steps = 1", "DELETE FROM stock_allocations",
                "UPDATE stock_application_decisions SET who = 'x'"):  # fmt: skip
        with pytest.raises(INTEGRITY_ERRORS, match="immutable"):
            look_inside(desk.store, sql)


def test_applications__two_keepers_cannot_both_issue_the_last_allocated_box(
    desk: Desk, approved: dict[str, str], store_section: StoreSection
) -> None:
    """Two gateways on the desk's database (two processes on one SQLite file, or two
    replicas on one PostgreSQL database, where the store's write lock must pick the one
    winner) race for the clinic's last allocated box, twenty times: one race can miss the
    moment both check the allocation, twenty do not. Each round the winner's issue is
    reversed, so the box is the last one again."""
    clinic = approved["clinic"]
    ok(desk.issue("d01", clinic, "79"))  # 1 of its 80 at d01 left
    rounds = 20
    stores = [open_store(store_section), open_store(store_section)]
    answers: list[list[str]] = [[], []]
    winners: list[int] = []

    def next_round() -> None:
        """Run by one racer once both wait at the start (both of the last round's writes
        done): the last round's winning issue is reversed."""
        if winners:
            undo = Movement("reversal", "north", "d01", f"undo-{len(winners):04d}",
                            reverses=winners[-1], reason="the race's next round")  # fmt: skip
            desk.store.stock_write(undo, "keeper", NOW, NOW.date())

    start = threading.Barrier(2, action=next_round, timeout=30)

    def race(n: int) -> None:
        try:
            race_rounds(n)
        except BaseException:
            start.abort()  # the other racer fails at once, not after the barrier's timeout
            raise

    def race_rounds(n: int) -> None:
        store = stores[n]
        store.stock_on_hand("north", "d01")  # this thread's connection, before the start
        for r in range(rounds):
            movement = Movement(
                "issue", "north", "d01", f"last-box-{r:04d}-{n}", item="n95-mask",
                unit="piece", steps=-1, lot="N95-2611", applicant_unit="Clinic 3",
                approver="command", application_id=clinic,
            )  # fmt: skip
            start.wait()
            try:
                entry, _ = store.stock_write(movement, "keeper", NOW, NOW.date())
            except StockRefused as refused:
                answers[n].append(refused.reason)
            else:
                answers[n].append("issued")
                winners.append(entry.id)

    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(race, (0, 1)))  # a racer's error is raised here
    finally:
        for store in stores:
            store.close()
    for r, pair in enumerate(zip(*answers, strict=True)):
        assert sorted(pair) == ["issued", "over-allocation"], f"round {r}: {pair}"
    assert ok(desk.get("/applications", state="fulfilled"))[0]["id"] == clinic
