"""Stale depot sensors: a zone with a class and no ok reading for a while, judged by the gateway's
clock in AlarmRules.check; none for a node that is offline altogether."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from edge.contract.base import new_event_id
from edge.contract.catalogue import encode
from edge.contract.command import Alert
from edge.contract.events import DepotReading, DepotReadingBatch
from edge.contract.presence import Birth, Death
from edge.contract.topics import AlertKind, Role
from gateway.alarm_cases import alarm_cases
from gateway.alarms import AlarmBook
from gateway.config import GatewayConfig, SiteSection
from gateway.live import LiveFeed
from gateway.rules import AlarmRules
from gateway.store import open_store
from gateway.store.records import InboundEvent, InboundPresence
from gateway.store.settings import StoreSection
from tests.gateway.test_depot_rules import T0

COLD, SHELF = "cold-store-1", "shelf-a"


class Depots:
    """Depot nodes d01 (cold-store-1, shelf-a) and d02 (fridge-9) of site north, a real store,
    and the gateway's rules on a clock the test moves."""

    def __init__(self, section: StoreSection, stale_after_min: float = 15.0) -> None:
        site = SiteSection.model_validate({
            "name": "north", "depots": ["d01", "d02"], "depot_stale_after_min": stale_after_min,
            "zones": {"d01": {COLD: "cold", SHELF: "room"}, "d02": {"fridge-9": "cold"}},
        })  # fmt: skip
        self.config = GatewayConfig(sites=(site,), store=section)
        self.now = T0
        self.alerts: list[Alert] = []
        self.seq = 0
        self.open(started_at=T0)

    def open(self, started_at: datetime) -> None:
        self.store = open_store(self.config.store)
        self.book = AlarmBook(self.store, self.alerts.append, LiveFeed(), lambda: self.now)
        self.rules = AlarmRules(self.config, self.store, self.book, lambda: self.now, started_at)

    def at(self, minutes: float) -> Depots:
        self.now = T0 + timedelta(minutes=minutes)
        return self

    def presence(self, node: str, payload: Birth | Death) -> None:
        item = InboundPresence("north", node, Role.DEPOT, payload, self.now)
        self.rules.on_stored(self.store.write([], presence=[item]))

    def birth(self, node: str, heartbeat_s: int = 600) -> None:
        self.presence(node, Birth(session=1, node_time=self.now, role=Role.DEPOT,
                                  version="1.0", config_hash="ab" * 8, heartbeat_s=heartbeat_s))  # fmt: skip

    def death(self, node: str) -> None:
        self.presence(node, Death(session=1, node_time=self.now, reason="lost"))

    def readings(self, node: str, **zones: Any) -> None:
        """One sample per zone now: a temperature, or a status without values."""
        samples = [
            DepotReading(sensor=zone.replace("_", "-"), bus_address=1, at=self.now, status="ok",
                         temperature_c=value, humidity_pct=50.0)
            if isinstance(value, float) else
            DepotReading(sensor=zone.replace("_", "-"), bus_address=1, at=self.now, status=value)
            for zone, value in zones.items()
        ]  # fmt: skip
        self.seq += 1
        event = DepotReadingBatch(
            event_id=new_event_id(self.now),
            seq=self.seq,
            node_time=self.now,
            readings=tuple(samples),
        )
        item = InboundEvent("north", node, Role.DEPOT, event, encode(event), self.now)
        self.rules.on_stored(self.store.write([item], cases=alarm_cases))

    def check(self) -> list[str]:
        """Check now; the live stale alarms as node/zone, and any node-offline as node."""
        self.rules.check()
        live = self.store.alarms()
        return sorted(
            f"{a.node}/{a.subject}" if a.kind == AlertKind.DEPOT_SENSOR_STALE else f"{a.node}!"
            for a in live
            if a.kind in (AlertKind.DEPOT_SENSOR_STALE, AlertKind.NODE_OFFLINE)
        )


@pytest.fixture
def depots(store_section: StoreSection) -> Iterator[Depots]:
    made = Depots(store_section)
    yield made
    made.store.close()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("quiet 14 min", []),
        ("quiet 15 min", ["d01/cold-store-1"]),  # at the limit
        ("sensor faults only", ["d01/cold-store-1"]),  # timeouts are no reading
        ("node shut down", ["d01!"]),  # its node-offline alarm, no stale zone beside it
        ("node silent", ["d01!"]),  # missed heartbeats: found offline in the same check
        ("never a reading", ["d01/cold-store-1"]),  # up 20 min, nothing from that zone
    ],
)
def test_stale__raised_by_the_gateways_clock_for_an_online_node_only(
    depots: Depots, case: str, expected: list[str]
) -> None:
    # d02 is never heard of in any case: a node that never came online has no stale zones.
    depots.birth("d01", heartbeat_s=60 if case == "node silent" else 600)
    if case != "never a reading":
        depots.readings("d01", cold_store_1=5.0, shelf_a=20.0)
    quiet = 14 if case == "quiet 14 min" else 15
    for minute in range(1, quiet, 5):  # shelf-a goes on reporting, cold-store-1 does not
        depots.at(minute).readings(
            "d01", shelf_a=20.0, **({"cold_store_1": "timeout"} if "faults" in case else {})
        )
        if case == "node silent":
            break
    if case == "node shut down":
        depots.death("d01")
    assert depots.at(quiet if case != "never a reading" else 20).check() == expected


def test_stale__cleared_by_the_next_ok_reading_and_raised_once(depots: Depots) -> None:
    depots.birth("d01")
    depots.readings("d01", cold_store_1=5.0, shelf_a=20.0)
    depots.at(10).readings("d01", shelf_a=20.0)
    assert depots.at(16).check() == ["d01/cold-store-1"]
    assert depots.at(17).check() == ["d01/cold-store-1"]
    stale = [a for a in depots.alerts if a.kind == AlertKind.DEPOT_SENSOR_STALE]
    assert [(a.state, a.severity, a.message) for a in stale] == [
        ("raised", "warning", "north/d01 zone cold-store-1 sent no reading for 16 min")
    ]
    depots.at(18).readings("d01", cold_store_1="crc")  # still no value
    assert depots.at(18).check() == ["d01/cold-store-1"]
    depots.at(19).readings("d01", cold_store_1=5.1)
    assert depots.at(19).check() == []
    assert [a.state for a in depots.alerts if a.kind == AlertKind.DEPOT_SENSOR_STALE] == [
        "raised", "cleared",
    ]  # fmt: skip


def test_stale__a_restarted_gateway_waits_its_own_limit_and_keeps_a_live_one(
    depots: Depots,
) -> None:
    depots.birth("d01")
    depots.readings("d01", cold_store_1=5.0, shelf_a=20.0)
    assert depots.at(20).check() == ["d01/cold-store-1", "d01/shelf-a"]
    depots.store.close()
    depots.at(120).open(started_at=depots.now)  # down for 100 min
    depots.birth("d01")
    depots.readings("d01", shelf_a=20.0)
    assert depots.check() == ["d01/cold-store-1"]  # still live; shelf-a reported
    depots.store.close()
    depots.at(200).open(started_at=depots.now)
    depots.birth("d01")
    depots.readings("d01", cold_store_1=4.0)
    depots.at(210).readings("d01", cold_store_1=4.0)
    # cold-store-1 came back; shelf-a's last reading is older than the limit, but this
    # gateway has not run for 15 min yet: it says nothing of it.
    assert depots.at(210).check() == []
    assert depots.at(215).check() == ["d01/shelf-a"]


def test_stale__off_when_the_site_sets_zero(store_section: StoreSection) -> None:
    depots = Depots(store_section, stale_after_min=0)
    depots.birth("d01", heartbeat_s=3600)
    depots.readings("d01", cold_store_1=5.0)
    assert depots.at(150).check() == []
    depots.store.close()
