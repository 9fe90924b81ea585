"""A cold store's excursion end to end: sensors on a pty, the depot node, a locked Mosquitto,
the gateway's excursion rules, and the command center's alerts.

One compressed clock drives the simulated sensors, the depot node's readings and the
gateway's rule clock, so a compressor failure of simulated hours runs in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.contract.command import Alert
from edge.contract.topics import AlertKind, Site
from edge.depot.config import load_config, write_config
from edge.depot.node import DepotNode
from firmware_tools.site_pki import IdentityRole
from gateway.config import AlarmSection, GatewayConfig, HttpSection, SiteSection
from gateway.storage_classes import StorageClass
from gateway.store.settings import StoreSection
from simulators.broker import PrivateBroker
from simulators.devices.depot_scenarios import (
    HOUR_S,
    CompressorFailure,
    Depot,
    DepotZone,
    Occurrence,
)
from simulators.devices.modbus_bus import CompressedClock, SimulatedModbusBus
from tests.conftest import (
    PostgresDatabases,
    Subscriber,
    alerts_until,
    gateway_broker,
    locked_site,
    running_gateway,
    running_node,
)

pytestmark = [pytest.mark.broker, pytest.mark.slow]

SITE = Site("north")
# Simulated seconds per real second: an hour passes in 5 s.
SPEEDUP = 720.0
POLL_S = 1.0  # real seconds between polling rounds: 12 simulated minutes
POLL_SIM = timedelta(seconds=POLL_S * SPEEDUP)
DELAY = timedelta(minutes=60)  # the class's heat alarm: 8.0 °C or above for an hour
SET_POINT_C = 5.0  # where depot_scenarios holds a cold store
# The compressor stops 6 simulated minutes in and is back two hours later; the store
# warms toward 25 °C (the gap shrinking by e every 3 h), so it crosses 8 °C after 29 min
# and reaches 14.7 °C, then cools back (the gap halving every 42 min).
FAILURE = CompressorFailure(
    zone="cold-store-1", occurrence=Occurrence(0.1 * HOUR_S, 2 * HOUR_S), warming_s=3 * HOUR_S
)
COLD_FAST = StorageClass.model_validate({
    "description": "cold store, 2 to 8 °C, heat alarm after an hour",
    "conditions": [{"name": "heat", "direction": "above", "threshold": 8.0,
                    "delay_min": DELAY.total_seconds() / 60, "hysteresis": 0.5}],
})  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
def store_section(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSection:
    """The gateway's store: a SQLite file, then a fresh PostgreSQL database (the session's
    private cluster), as the gateway tests' own fixture gives them."""
    if request.param == "postgresql":
        databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
        return StoreSection(path=tmp_path / "gateway.db", url=databases.new())
    return StoreSection(path=tmp_path / "gateway.db")


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[PrivateBroker]:
    with locked_site(
        tmp_path,
        SITE.name,
        [
            (IdentityRole.DEPOT, "d01"),
            (IdentityRole.GATEWAY, "gw-e2e"),
            (IdentityRole.COMMAND, "center"),
        ],
    ) as broker:
        yield broker


def test_a_failed_compressor_alarms_an_hour_after_the_store_crossed_8_c_and_clears_once_cold(
    tmp_path: Path, locked: PrivateBroker, store_section: StoreSection
) -> None:
    sim = CompressedClock(SPEEDUP)
    began = datetime.now(UTC)

    def wall() -> datetime:  # the same compressed time, as a date (node and gateway)
        return began + timedelta(seconds=sim())

    zones = [DepotZone("cold-store-1", 1, "cold"), DepotZone("dry-store", 2, "room")]
    bus: SimulatedModbusBus = Depot(zones, [FAILURE]).bus(tmp_path / "rs485", clock=sim)
    profile = tmp_path / "fast-bus.yaml"  # short waits, so one round takes little real time
    profile.write_text("part: xy-md02\nreply_timeout_s: 0.15\nretries: 1\n")
    node_config = write_config(
        tmp_path / "depot.yaml", site=SITE.name, name="d01",
        endpoint=locked.endpoint("depot-d01"),
        buses=[{"url": str(bus.path), "profile": str(profile), "poll_s": POLL_S, "sensors": [
            # Every poll reported: the alarm's timing is then the rule's, not the deadband's.
            {"zone": zone.name, "slave_id": zone.slave_id, "deadband_c": 0, "deadband_pct": 0}
            for zone in zones
        ]}],
        broker={"heartbeat_s": 1, "reconnect_max_s": 0.5},
    )  # fmt: skip
    gateway_config = GatewayConfig(
        sites=(SiteSection(
            name=SITE.name, depots=("d01",), storage_classes={"cold-fast": COLD_FAST},
            zones={"d01": {"cold-store-1": "cold-fast", "dry-store": "room"}},
            depot_stale_after_min=0,  # heartbeats are real seconds: compressed, they lag
        ),),
        broker=gateway_broker(locked, "gw-e2e"),
        store=store_section,
        http=HttpSection(port=0),
        alarms=AlarmSection(check_every_s=0.2),
    )  # fmt: skip
    center = Subscriber.connect(locked.endpoint("command-center"), "center")
    center.subscribe(f"{SITE.root}/alert/{AlertKind.DEPOT_CLIMATE.value}")
    seen: list[Alert] = []

    def states() -> list[str]:
        return [alert.state for alert in seen]

    with (
        bus,
        running_gateway(gateway_config, wall) as gateway,
        running_node(DepotNode(load_config(node_config), clock=wall)),
    ):
        alerts_until(center, seen, lambda: "raised" in states())
        alerts_until(center, seen, lambda: "cleared" in states())
        readings = gateway.store.depot_readings(
            SITE.name, "d01", began, wall(), zone="cold-store-1"
        )
    center.close()

    # One alarm, raised once and cleared once: no flapping while the store was warm.
    assert states() == ["raised", "cleared"]
    raised, cleared = seen
    assert raised.node == "d01" and "cold-store-1" in raised.message
    # The store crossed 8 °C where the scenario says; the first reading at or past it
    # came within one polling round, and the alarm within one more round after the hour.
    crossed = began + timedelta(
        seconds=FAILURE.occurrence.start_s + FAILURE.reaches(8.0, SET_POINT_C)
    )
    ok = [(r.at, r.temperature_c) for r in readings if r.status == "ok"]
    assert ok == sorted(ok)
    first_out = next(at for at, value in ok if value is not None and value >= 8.0)
    assert crossed - POLL_SIM * 0.1 <= first_out <= crossed + POLL_SIM * 1.5
    assert first_out + DELAY <= raised.raised_at
    assert raised.raised_at <= first_out + DELAY + POLL_SIM * 2
    # Cleared by the first reading back under 7.5 °C (the band), after the compressor
    # returned, and not before.
    back = began + timedelta(seconds=FAILURE.occurrence.start_s + 2 * HOUR_S)
    first_cold = next(at for at, value in ok if at > back and value is not None and value <= 7.5)
    assert first_cold <= cleared.at <= first_cold + POLL_SIM * 2
    assert math.isclose(max(v for _, v in ok if v is not None), 14.7, abs_tol=0.6)
