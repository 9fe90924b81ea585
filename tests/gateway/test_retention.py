"""Retention of checkpoint events (issue #16 part 4): personal fields removed after
personal_days, whole events after passage_days, in bounded batches; a depot batch's raw
copy after depot_raw_days once its readings are rolled up and gone; the chain audit still
clean afterwards, and the API showing scrubbed rows without their personal fields."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from edge.contract.base import chain_hash
from edge.contract.events import DepotReading, DepotReadingBatch
from gateway.api.context import GatewayContext
from gateway.depot_rollups import DepotRollups
from gateway.retention import RetentionRule
from gateway.store.records import InboundEvent
from gateway.store.settings import StoreSection
from gateway.store.sql_store import SqlStore
from tests.gateway.factory import ID_HASH, Gates, look_inside
from tests.gateway.test_api_access import bearer, open_api

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=400)  # past passage_days (365)
MIDDLE = NOW - timedelta(days=100)  # past personal_days (30), not passage_days
YOUNG = NOW - timedelta(days=2)
PLATE = "京A12345"


class ChainedGates(Gates):
    """Gates whose events link as a real outbox's do: each names its predecessor's hash."""

    def __init__(self, now: datetime) -> None:
        super().__init__("north", now)
        self._head: dict[str, str] = {}

    def inbound(self, node: str, event_type: type[Any], **fields: Any) -> InboundEvent:
        fields.setdefault("prev_hash", self._head.get(node))
        item = super().inbound(node, event_type, **fields)
        self._head[node] = chain_hash(item.raw)
        return item


def personal_stretch(gates: ChainedGates, at: datetime) -> list[InboundEvent]:
    """A passage, a vehicle with a plate, a hold and a registration, received at `at`."""
    gates.now = at
    held = gates.passage(outcome="hold", colour="yellow", subject_ref=ID_HASH)
    return [
        gates.passage(subject_ref=ID_HASH),
        gates.passage(subject="vehicle", occupants=2, vehicle_plate=PLATE, volunteer_id="v017"),
        held,
        gates.hold(held),
        gates.registration(origin="武汉", destination="北京", reason="home", vehicle_plate=PLATE),
        gates.shift(),
    ]


@pytest.fixture
def stored(store: SqlStore) -> dict[str, list[InboundEvent]]:
    gates = ChainedGates(OLD)
    stretches = {name: personal_stretch(gates, at)
                 for name, at in (("old", OLD), ("middle", MIDDLE), ("young", YOUNG))}  # fmt: skip
    for items in stretches.values():
        store.write(items)
    return stretches


def rule(store: SqlStore, **kwargs: Any) -> RetentionRule:
    return RetentionRule(store, StoreSection(personal_days=30, passage_days=365), lambda: NOW,
                         **kwargs)  # fmt: skip


def ids(items: list[InboundEvent]) -> set[str]:
    return {item.event.event_id for item in items}


def personal_values(store: SqlStore, event_ids: set[str]) -> list[Any]:
    """Every non-empty personal value of these events, in rows and payloads."""
    found: list[Any] = []
    for table, columns in (
        ("passages", "subject_ref, vehicle_plate"),
        ("holds", "subject_ref"),
        ("registrations", "name, id_hash, id_last4, phone, origin, destination, reason, "
         "vehicle_plate"),
    ):  # fmt: skip
        for row in look_inside(store, f"SELECT event_id, {columns} FROM {table}"):
            if row[0] in event_ids:
                found += [value for value in row[1:] if value]
    for event_id, payload in look_inside(store, "SELECT event_id, payload FROM events"):
        if event_id in event_ids:
            found += [v for v in (ID_HASH, PLATE, "张三", "13800138000", "武汉") if v in payload]
    return found


def test_config__personal_days_cannot_outlive_passage_days() -> None:
    with pytest.raises(ValueError, match="passage_days must be at least personal_days"):
        StoreSection(personal_days=400, passage_days=365)
    with pytest.raises(ValueError, match="passage_days must be at least depot_raw_days"):
        StoreSection(depot_raw_days=400, depot_minute_days=400, passage_days=365)
    assert (StoreSection().personal_days, StoreSection().passage_days) == (30, 365)


def test_step__old_rows_purged_middle_scrubbed_young_untouched(
    store: SqlStore, stored: dict[str, list[InboundEvent]]
) -> None:
    assert personal_values(store, ids(stored["middle"]))  # there before
    done = rule(store).step()
    kept = {row[0] for row in look_inside(store, "SELECT event_id FROM events")}
    assert kept == ids(stored["middle"]) | ids(stored["young"])
    assert done.purged == len(stored["old"])
    for table in ("passages", "holds", "registrations", "shifts"):
        rows = {r[0] for r in look_inside(store, f"SELECT event_id FROM {table}")}
        assert not rows & ids(stored["old"]), table
    assert personal_values(store, ids(stored["middle"])) == []
    young = personal_values(store, ids(stored["young"]))
    assert ID_HASH in young and PLATE in young and "张三" in young
    # Hashes of what was received stay; the scrubbed payloads are marked.
    for item in stored["middle"]:
        ((sha256, scrubbed_at),) = look_inside(
            store, "SELECT sha256, scrubbed_at FROM events WHERE event_id=?",
            (item.event.event_id,),
        )  # fmt: skip
        assert sha256 == item.sha256
        assert (scrubbed_at is None) == (item.event.kind == "shift")
    # Non-personal fields are still there for the counts.
    ((outcome, colour, temperature),) = look_inside(
        store, "SELECT outcome, colour, temperature_c FROM passages WHERE event_id=?",
        (stored["middle"][0].event.event_id,),
    )  # fmt: skip
    assert (outcome, colour, temperature) == ("allow", "green", 36.5)


def test_step__batches_are_bounded_and_resume(
    store: SqlStore, stored: dict[str, list[InboundEvent]]
) -> None:
    step = rule(store, batch=2, batches=1)
    first = step.step()
    assert (first.scrubbed, first.purged) == (2, 2)
    assert len(look_inside(store, "SELECT event_id FROM events")) == 18 - 2
    for _ in range(20):
        step.step()
    kept = {row[0] for row in look_inside(store, "SELECT event_id FROM events")}
    assert kept == ids(stored["middle"]) | ids(stored["young"])
    assert personal_values(store, ids(stored["middle"])) == []
    assert step.step().scrubbed == 0  # resting: nothing left


def test_scrub__skips_events_with_nothing_personal_past_a_full_batch(store: SqlStore) -> None:
    gates = ChainedGates(MIDDLE)
    store.write([gates.shift() for _ in range(5)] + [gates.passage(subject_ref=ID_HASH)])
    looked = [store.scrub_personal(NOW - timedelta(days=30), 2) for _ in range(4)]
    assert looked == [2, 2, 2, 0]
    ((payload,),) = look_inside(store, "SELECT payload FROM events WHERE kind='passage'")
    assert json.loads(payload)["subject_ref"] is None


def test_limits__bad_batch_is_an_error(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        store.scrub_personal(NOW, 0)
    with pytest.raises(ValueError, match="limit must be at least 1"):
        store.purge_checkpoint_rows(NOW, 0)


def test_audit__clean_after_scrub_and_purge(
    store: SqlStore, stored: dict[str, list[InboundEvent]]
) -> None:
    assert all(life.ok for life in store.audit_chain())
    rule(store).step()
    (life,) = store.audit_chain()
    assert life.ok, life.findings
    assert life.purged_through == len(stored["old"])
    assert life.scrubbed == len(stored["middle"]) - 1  # the shift held nothing personal
    assert "purged by retention through seq 6" in life.summary()


def test_audit__still_finds_tampering_in_a_scrubbed_stretch(
    store: SqlStore, stored: dict[str, list[InboundEvent]]
) -> None:
    rule(store).step()
    vehicle = stored["middle"][1].event.event_id
    look_inside(store, "UPDATE passages SET outcome='deny' WHERE event_id=?", (vehicle,))
    gone = stored["young"][0].event.event_id
    look_inside(store, "DELETE FROM passages WHERE event_id=?", (gone,))
    look_inside(store, "DELETE FROM events WHERE event_id=?", (gone,))
    (life,) = store.audit_chain()
    found = [str(f) for f in life.findings]
    assert any(f.startswith("seq 9: changed") for f in found), found
    assert any(f.startswith("seq 14: missing") for f in found), found


def test_api__scrubbed_rows_come_back_without_personal_fields(
    gateway_context: GatewayContext, stored: dict[str, list[InboundEvent]]
) -> None:
    RetentionRule(gateway_context.store, StoreSection(), lambda: NOW).step()
    api: TestClient = open_api(gateway_context)
    passages = api.get("/api/passages", params={"limit": 100}, headers=bearer("admin")).json()
    by_id = {p["event_id"]: p for p in passages}
    middle, young = stored["middle"][1].event.event_id, stored["young"][1].event.event_id
    assert by_id[middle].get("vehicle_plate") is None
    assert by_id[young]["vehicle_plate"] == PLATE
    registrations = api.get("/api/registrations", headers=bearer("registrar")).json()
    names = {r["event_id"]: r["name"] for r in registrations}
    assert names[stored["young"][4].event.event_id] == "张三"
    assert not names[stored["middle"][4].event.event_id]
    assert stored["old"][4].event.event_id not in names


# --- depot batches: their raw copy goes with their raw readings ---------------------------

DEPOT_OLD = NOW - timedelta(days=40)  # past depot_raw_days (30), far from passage_days


def depot_batch(gates: ChainedGates, at: datetime) -> InboundEvent:
    """A depot node's batch of two readings taken just before `at`, received at `at`."""
    gates.now = at
    readings = tuple(
        DepotReading(sensor="cold-store-1", bus_address=1, at=at - timedelta(seconds=s),
                     status="ok", temperature_c=4.0, humidity_pct=60.0)
        for s in (20, 10)
    )  # fmt: skip
    return gates.inbound("d01", DepotReadingBatch, readings=readings)


def event_ids(store: SqlStore) -> set[str]:
    return {row[0] for row in look_inside(store, "SELECT event_id FROM events")}


def depot_rules(store: SqlStore) -> tuple[RetentionRule, DepotRollups]:
    settings = StoreSection(personal_days=30, passage_days=365, depot_raw_days=30)
    return RetentionRule(store, settings, lambda: NOW), DepotRollups(store, settings, lambda: NOW)


def test_depot__an_old_batch_goes_after_its_readings_a_young_one_and_passages_stay(
    store: SqlStore,
) -> None:
    gates = ChainedGates(DEPOT_OLD)
    old = depot_batch(gates, DEPOT_OLD)
    gates.now = DEPOT_OLD
    passage = gates.passage(subject_ref=ID_HASH)
    young = depot_batch(gates, YOUNG)
    store.write([old, passage, young])
    retention, rollups = depot_rules(store)
    rollups.roll()
    assert rollups.purge_all() == (2, 0)  # the old batch's readings
    done = retention.step()
    assert done.depot_batches == 1
    assert event_ids(store) == {passage.event.event_id, young.event.event_id}
    readings = look_inside(store, "SELECT DISTINCT event_id FROM depot_readings")
    assert readings == [(young.event.event_id,)]


def test_depot__a_batch_is_kept_until_its_readings_are_rolled_up_and_deleted(
    store: SqlStore,
) -> None:
    gates = ChainedGates(DEPOT_OLD)
    first, second = depot_batch(gates, DEPOT_OLD), depot_batch(gates, DEPOT_OLD)
    store.write([first, second])
    retention, rollups = depot_rules(store)
    assert retention.step().depot_batches == 0  # not rolled up: its readings are all it has
    rollups.roll()
    retention, _ = depot_rules(store)  # a fresh rule: the first one rests
    assert retention.step().depot_batches == 0  # rolled, but its readings are still there
    assert event_ids(store) == {first.event.event_id, second.event.event_id}
    rollups.purge_all()
    retention, _ = depot_rules(store)
    assert retention.step().depot_batches == 2
    assert event_ids(store) == set()
    # The rollups keep what the readings said.
    ((count,),) = look_inside(
        store, "SELECT SUM(readings) FROM depot_rollups WHERE resolution='hour'"
    )  # fmt: skip
    assert count == 4


def test_depot__store_purge_stops_at_a_batch_held_back_and_resumes_there(
    store: SqlStore,
) -> None:
    gates = ChainedGates(DEPOT_OLD)
    held = depot_batch(gates, DEPOT_OLD)
    after = depot_batch(gates, DEPOT_OLD + timedelta(hours=1))
    store.write([held, after])
    look_inside(store, "DELETE FROM depot_readings WHERE event_id=?", (after.event.event_id,))
    cut = NOW - timedelta(days=30)
    assert store.purge_depot_batches(cut, 10) == 0  # the older one holds the walk
    look_inside(store, "DELETE FROM depot_readings WHERE event_id=?", (held.event.event_id,))
    assert store.purge_depot_batches(cut, 1) == 1
    assert store.purge_depot_batches(cut, 1) == 1
    assert store.purge_depot_batches(cut, 1) == 0
    assert event_ids(store) == set()
    with pytest.raises(ValueError, match="limit must be at least 1"):
        store.purge_depot_batches(cut, 0)


def test_depot__the_chain_audit_of_the_depot_node_is_clean_after_the_purge(
    store: SqlStore,
) -> None:
    gates = ChainedGates(DEPOT_OLD)
    batches = [depot_batch(gates, DEPOT_OLD + timedelta(minutes=m)) for m in range(3)]
    batches.append(depot_batch(gates, YOUNG))
    store.write(batches)
    retention, rollups = depot_rules(store)
    rollups.roll()
    rollups.purge_all()
    assert retention.step().depot_batches == 3
    (life,) = store.audit_chain()
    assert (life.node, life.events) == ("d01", 1)
    assert life.ok, life.findings
    assert life.purged_through == 3
    assert "purged by retention through seq 3" in life.summary()
    # A batch deleted past the purge's mark is still found missing.
    look_inside(store, "DELETE FROM events WHERE event_id=?", (batches[3].event.event_id,))
    newer = depot_batch(gates, YOUNG + timedelta(hours=1))
    store.write([newer])
    (life,) = store.audit_chain()
    assert any(str(f).startswith("seq 4: missing") for f in life.findings), life.findings
