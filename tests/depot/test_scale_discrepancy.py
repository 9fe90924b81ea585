"""End to end: masks taken off a weighed pallet without a ledger issue raise the stock
discrepancy alarm on MQTT, and the issue entered late clears it.

A simulated platform scale on a real pty, the depot node reading it, a locked Mosquitto,
the real gateway with its store and ledger, and the command center listening for alerts.
The difference must last `lasting_min`; here 3 s, with the node reporting every second.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from edge.contract.command import Alert
from edge.contract.topics import AlertKind, Site
from edge.depot.config import load_config, write_config
from edge.depot.node import DepotNode
from edge.devices.scale.profile import ScaleProfile
from firmware_tools.site_pki import IdentityRole
from gateway.config import AlarmSection, GatewayConfig, HttpSection, SiteSection
from gateway.stock.ledger import Movement
from gateway.store.settings import StoreSection
from simulators.broker import PrivateBroker
from simulators.devices.modbus_bus import SimulatedModbusBus, SimulatedSensor, constant
from simulators.devices.scale import SimulatedScale
from tests.conftest import (
    Subscriber,
    alerts_until,
    gateway_broker,
    locked_site,
    running_gateway,
    running_node,
)

SITE = Site("north")
TARE_KG = 25.0  # the empty pallet, taken off at the node
MASK_KG = 0.0125  # one N95 mask
LASTING_MIN = 0.05  # 3 s of the weights' own time


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[PrivateBroker]:
    with locked_site(
        tmp_path,
        SITE.name,
        [
            (IdentityRole.DEPOT, "d01"),
            (IdentityRole.GATEWAY, "gw-scales"),
            (IdentityRole.COMMAND, "center"),
        ],
    ) as broker:
        yield broker


def masks(kind: str, pieces: int, key: str) -> Movement:
    fields: dict[str, object] = (
        {"expires_on": date(2030, 6, 30), "source": "purchase"} if kind == "receipt"
        else {"applicant_unit": "clinic-3", "approver": "Li", "application_id": "A-17"}
    )  # fmt: skip
    return Movement(
        kind, SITE.name, "d01", key, item="n95-mask", unit="piece",  # type: ignore[arg-type]
        steps=pieces if kind == "receipt" else -pieces, lot="N95-2611", **fields,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.broker
def test_masks_unloaded_without_an_issue_raise_the_discrepancy_and_the_late_issue_clears_it(
    tmp_path: Path, locked: PrivateBroker
) -> None:
    profile_path = tmp_path / "fast-scale.yaml"
    profile_path.write_text(
        "part: scale-continuous\nformat: st-gs\nframes_per_s: 20\nstable_frames: 3\n"
    )
    profile = ScaleProfile.model_validate(yaml.safe_load(profile_path.read_text()))
    bus_profile = tmp_path / "fast-bus.yaml"
    bus_profile.write_text("part: xy-md02\nreply_timeout_s: 0.15\nretries: 1\n")
    rs485 = SimulatedModbusBus(
        tmp_path / "rs485", [SimulatedSensor(1, constant(20.0), constant(50.0))]
    )
    scale = SimulatedScale(tmp_path / "scale", profile, settle_s=0.5, seed=3)
    scale.load(TARE_KG + 2000 * MASK_KG, settle_s=0)  # a full pallet: 2000 masks, 50 kg
    node_config = write_config(
        tmp_path / "depot.yaml", site=SITE.name, name="d01",
        endpoint=locked.endpoint("depot-d01"),
        buses=[{"url": str(rs485.path), "profile": str(bus_profile), "poll_s": 1,
                "sensors": [{"zone": "shelf-a", "slave_id": 1}]}],
        scales=[{"name": "pallet-n95", "item": "n95-mask", "url": str(scale.path),
                 "profile": str(profile_path), "tare_kg": TARE_KG, "deadband_kg": 0.5,
                 "max_interval_s": 1}],
        broker={"heartbeat_s": 1, "reconnect_max_s": 0.5},
    )  # fmt: skip
    site = SiteSection.model_validate({
        "name": SITE.name, "depots": ["d01"],
        "scales": {"d01": {"pallet-n95": {
            "item": "n95-mask", "lot": "N95-2611", "unit_kg": MASK_KG, "tolerance_units": 20,
            "tolerance_pct": 2, "lasting_min": LASTING_MIN,
        }}},
    })  # fmt: skip
    gateway_config = GatewayConfig(
        sites=(site,), broker=gateway_broker(locked, "gw-scales"),
        store=StoreSection(path=tmp_path / "gateway.db"), http=HttpSection(port=0),
        alarms=AlarmSection(check_every_s=0.2),
    )  # fmt: skip
    center = Subscriber.connect(locked.endpoint("command-center"), "center")
    center.subscribe(f"{SITE.root}/alert/{AlertKind.STOCK_DISCREPANCY.value}")
    seen: list[Alert] = []
    began = datetime.now(UTC) - timedelta(minutes=1)

    def states() -> list[str]:
        return [alert.state for alert in seen]

    with (
        rs485, scale,
        running_gateway(gateway_config) as gateway,
    ):  # fmt: skip
        today = datetime.now(UTC).date()
        gateway.store.stock_write(masks("receipt", 2000, "receipt-0001"), "keeper", began, today)

        def weighed() -> list[float]:
            until = datetime.now(UTC) + timedelta(minutes=1)
            return [r.net_kg for r in gateway.store.scale_readings(SITE.name, "d01", began, until)]

        with running_node(DepotNode(load_config(node_config))):
            deadline = time.monotonic() + 20
            while weighed().count(50.0 - TARE_KG) < 5:  # 5 s of agreeing weights
                assert time.monotonic() < deadline, f"weights: {weighed()}"
                time.sleep(0.1)
            alerts_until(center, seen, lambda: True, timeout_s=1)
            assert states() == []  # weight and ledger agree: nothing
            scale.load(TARE_KG + 1600 * MASK_KG)  # 400 masks taken, no issue entered
            alerts_until(center, seen, lambda: "raised" in states())
            gateway.store.stock_write(masks("issue", 400, "issue-0001"), "keeper", began, today)
            alerts_until(center, seen, lambda: "cleared" in states())
            stored = weighed()
    center.close()

    assert states() == ["raised", "cleared"]  # raised once, cleared once
    raised = seen[0]
    assert (raised.kind, raised.node, raised.severity) == ("stock-discrepancy", "d01", "critical")
    assert raised.message.startswith(
        "north/d01 scale pallet-n95 weighs 1600 piece of n95-mask, the ledger says 2000, for "
    )
    # Raised only once the unloaded weight had lasted: at least two reports of 20 kg, and
    # the weights of the swinging pallet in between were never reported.
    assert stored.count(1600 * MASK_KG) >= 2
    assert set(stored) == {2000 * MASK_KG, 1600 * MASK_KG}
