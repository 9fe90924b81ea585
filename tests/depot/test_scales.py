"""Platform scales on a depot node: the weight contract, the config, which weights are reported,
and end to end (a simulated indicator on a pty, the node, a locked Mosquitto, the gateway's
store) only settled weights stored and each scale fault raised once and cleared once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from edge.configfile import ConfigError
from edge.contract import catalogue, topics
from edge.contract.events import WEIGHTS_MAX, DeviceFault, ScaleWeight, WeightBatch
from edge.contract.presence import Birth
from edge.contract.topics import EventKind, Role, Site
from edge.depot.config import load_config, write_config
from edge.depot.node import DepotNode
from edge.depot.scales import ScaleTrack
from edge.devices.scale.driver import WeightReading
from edge.devices.scale.profile import ScaleProfile
from edge.errors import UnknownTopic
from edge.mqtt import BrokerUrl, Endpoint
from firmware_tools.site_pki import IdentityRole
from gateway.config import AlarmSection, GatewayConfig, HttpSection, SiteSection
from gateway.store.settings import StoreSection
from simulators.broker import PrivateBroker, free_port
from simulators.devices.modbus_bus import SimulatedModbusBus, SimulatedSensor, constant
from simulators.devices.scale import SimulatedScale
from tests.conftest import (
    Subscriber,
    gateway_broker,
    locked_site,
    running_gateway,
    running_node,
)

SITE = Site("north")
D01 = SITE.node(Role.DEPOT, "d01")
G01 = SITE.node(Role.GATE, "g01")
AT = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "depot.yaml"


# --- the contract -----------------------------------------------------------------------


def weight(**change: Any) -> dict[str, Any]:
    fields = {"scale": "pallet-n95", "item": "n95-mask", "at": AT,
              "basis": "gross", "shown_kg": 1250.5, "tare_kg": 25.0, "net_kg": 1225.5}  # fmt: skip
    return {**fields, **change}


def test_weight_batch__goes_on_the_depots_weight_topic() -> None:
    batch = WeightBatch(event_id="01M81559A2KX0Q4TDZ0E3WJ7HB", seq=1, node_time=AT,
                        weights=(ScaleWeight.model_validate(weight()),))  # fmt: skip
    topic = catalogue.entry_topic(D01, batch)
    assert topic == "gatepost/v1/north/depot/d01/event/weight"
    assert catalogue.decode(topic, catalogue.encode(batch)).payload == batch


def test_weight_topic__a_gate_has_none() -> None:
    with pytest.raises(ValueError, match="weight events come from depot nodes"):
        topics.event(G01, EventKind.WEIGHT)
    with pytest.raises(UnknownTopic):
        topics.parse("gatepost/v1/north/gate/g01/event/weight")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"net_kg": 1200.0}, "net_kg must be shown_kg - tare_kg"),
        ({"shown_kg": 200_000.0, "net_kg": 199_975.0}, "shown_kg"),
        ({"shown_kg": -2000.0, "net_kg": -2025.0}, "shown_kg"),
        ({"tare_kg": -1.0, "net_kg": 1251.5}, "tare_kg"),
        ({"basis": "tare"}, "basis"),
        ({"scale": "Pallet N95"}, "scale"),
        ({"item": "x" * 200}, "item"),
        ({"at": AT.replace(tzinfo=None)}, "at"),  # no time zone
        ({"shown_kg": "heavy"}, "shown_kg"),
    ],
)
def test_scale_weight__bad_input_names_the_field(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ScaleWeight.model_validate(weight(**change))


def test_weight_batch__the_largest_fits_the_gateways_payload_limit() -> None:
    longest = ScaleWeight(
        scale="s" * 63, item="i" * 63, at=AT, basis="gross", shown_kg=-999.999,
        tare_kg=99_999.999, net_kg=-100_999.998,
    )  # fmt: skip
    batch = WeightBatch(event_id="01M81559A2KX0Q4TDZ0E3WJ7HB", seq=2**53 - 1, node_time=AT,
                        prev_hash="a" * 64, weights=(longest,) * WEIGHTS_MAX)  # fmt: skip
    assert len(catalogue.encode(batch)) < 64 * 1024


def test_weight_batch__bounded() -> None:
    with pytest.raises(ValidationError, match="weights"):
        WeightBatch(event_id="01M81559A2KX0Q4TDZ0E3WJ7HB", seq=1, node_time=AT, weights=())
    too_many = tuple(ScaleWeight.model_validate(weight()) for _ in range(WEIGHTS_MAX + 1))
    with pytest.raises(ValidationError, match="weights"):
        WeightBatch(event_id="01M81559A2KX0Q4TDZ0E3WJ7HB", seq=1, node_time=AT, weights=too_many)


# --- the config -------------------------------------------------------------------------

SCALE = {"name": "pallet-n95", "item": "n95-mask", "url": "/dev/gatepost-scale-1",
         "tare_kg": 25.0}  # fmt: skip


def with_scales(tmp_path: Path, *scales: dict[str, Any]) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["scales"] = list(scales)
    path = tmp_path / "depot.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_config__scales_default_and_profile_file_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "my-scale.yaml").write_text("part: scale-continuous\nformat: toledo\n")
    config = load_config(with_scales(
        tmp_path, SCALE, {**SCALE, "name": "pallet-gloves", "item": "latex-gloves",
                          "url": "/dev/ttyUSB3", "profile": "my-scale.yaml"},
    ))  # fmt: skip
    first, second = config.scales
    assert (first.profile, first.deadband_kg, first.max_interval_s) == ("scale-st-gs", 0.5, 300)
    assert first.load().format == "st-gs"
    assert second.load().format == "toledo"
    assert load_config(EXAMPLE).scales == ()  # a depot without scales, as before


@pytest.mark.parametrize(
    ("scales", "problem"),
    [
        ([{**SCALE, "name": "outbox"}], "scales.0.name: Value error, 'outbox' names one"),
        ([{**SCALE, "name": "cold-store-1"}], "cold-store-1 is named twice"),
        ([SCALE, {**SCALE, "url": "/dev/ttyUSB9"}], "pallet-n95 is named twice"),
        ([{**SCALE, "url": "/dev/gatepost-rs485"}], "which is taken already"),
        ([SCALE, {**SCALE, "name": "b"}], "which is taken already"),
        ([{**SCALE, "profile": "xy-md02"}], "is not a scale (scale-continuous)"),
        ([{**SCALE, "profile": "no-such-scale"}], "scales.0.profile: Value error"),
        ([{**SCALE, "tare_kg": -1}], "scales.0.tare_kg: Input should be greater than or equal"),
        ([{**SCALE, "item": "N95 masks"}], "scales.0.item: String should match"),
        ([{**SCALE, "deadband_kg": 5000}], "scales.0.deadband_kg: Input should be less"),
        ([{**SCALE, "max_interval_s": 0}], "scales.0.max_interval_s: Input should be greater"),
        ([{**SCALE, "url": ""}], "scales.0.url: String should have at least 1 character"),
        ([{**SCALE, "colour": "red"}], "scales.0.colour: Extra inputs are not permitted"),
        ([{**SCALE, "name": f"s{n}", "url": f"/dev/s{n}"} for n in range(17)],
         "scales: Tuple should have at most 16 items"),
    ],
)  # fmt: skip
def test_config__bad_scales_name_the_field(
    tmp_path: Path, scales: list[dict[str, Any]], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        load_config(with_scales(tmp_path, *scales))


# --- which weights are reported ---------------------------------------------------------


def track(tmp_path: Path, **change: Any) -> ScaleTrack:
    return ScaleTrack(load_config(with_scales(tmp_path, {**SCALE, **change})).scales[0])


def settled(kg: str | None, *, stable: bool = True, basis: str = "gross") -> WeightReading:
    weight_kg = Decimal(kg) if kg is not None else None
    return WeightReading("pallet-n95", 0.0, stable, False, basis, weight_kg)  # type: ignore[arg-type]


def reports(scale: ScaleTrack, steps: Sequence[tuple[float, WeightReading]]) -> list[float]:
    """The shown_kg of each weight reported, committing each at once."""
    out = []
    for seconds, reading in steps:
        weight = scale.step(reading, AT + timedelta(seconds=seconds))
        if weight is not None:
            scale.reported(weight)
            out.append(weight.shown_kg)
    return out


def test_track__unusable_readings_are_never_reported(tmp_path: Path) -> None:
    scale = track(tmp_path)
    unstable = WeightReading("pallet-n95", 0.0, False, False, "gross", None)
    overload = WeightReading("pallet-n95", 0.0, False, True, "gross", None)
    assert reports(scale, [(0, unstable), (1, overload), (2, unstable)]) == []


def test_track__first_moved_past_the_deadband_and_the_longest_interval(tmp_path: Path) -> None:
    scale = track(tmp_path, deadband_kg=0.5, max_interval_s=300)
    steps = [
        (0, settled("1250.50")),  # the first
        (10, settled("1250.80")),  # moved 0.3: within the deadband
        (20, settled("1251.00")),  # 0.5 from the last reported: reported
        (30, settled("1251.00")),
        (320, settled("1251.00")),  # 300 s since the last report
        (321, settled("1251.00", basis="net")),  # the indicator switched to net
        (100, settled("1251.00", basis="net")),  # the clock stepped back
    ]
    assert reports(scale, steps) == [1250.5, 1251.0, 1251.0, 1251.0, 1251.0]


def test_track__tare_and_rounding_to_the_gram(tmp_path: Path) -> None:
    scale = track(tmp_path, tare_kg=25.4)
    weight = scale.step(settled("0.45359237"), AT)  # a pound, exactly
    assert weight is not None
    assert (weight.shown_kg, weight.tare_kg, weight.net_kg) == (0.454, 25.4, -24.946)
    assert (weight.scale, weight.item, weight.at) == ("pallet-n95", "n95-mask", AT)


def test_track__not_committed_is_due_again(tmp_path: Path) -> None:
    scale = track(tmp_path)
    assert scale.step(settled("10"), AT) is not None
    assert scale.step(settled("10"), AT + timedelta(seconds=1)) is not None  # never reported


# --- end to end -------------------------------------------------------------------------


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[PrivateBroker]:
    with locked_site(
        tmp_path,
        SITE.name,
        [
            (IdentityRole.DEPOT, "d01"),
            (IdentityRole.GATEWAY, "gw-scales"),
            (IdentityRole.GATEWAY, "listener"),
        ],
    ) as broker:
        yield broker


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.05)


class Faults:
    """Device faults and births the listener received, decoded, each event once."""

    def __init__(self, sub: Subscriber) -> None:
        self.sub = sub
        self.events: dict[str, tuple[str, str, str]] = {}
        self.births: list[Birth] = []

    def drain(self) -> list[tuple[str, str, str]]:
        while True:
            try:
                message = self.sub.next(0.05)
            except AssertionError:
                break
            payload = catalogue.decode(message.topic, message.payload).payload
            if isinstance(payload, Birth):
                self.births.append(payload)
            elif getattr(payload, "kind", None) == "device-fault":
                self.events[payload.event_id] = (payload.device, payload.fault, payload.state)  # type: ignore[attr-defined]
        return [f for f in self.events.values() if f[0] == "pallet-n95"]


@pytest.mark.broker
def test_depot_node__stores_only_settled_weights_and_raises_each_scale_fault_once(
    tmp_path: Path, locked: PrivateBroker
) -> None:
    profile_path = tmp_path / "fast-scale.yaml"  # 20 frames/s, faults in a second
    profile_path.write_text(
        "part: scale-continuous\nformat: st-gs\nframes_per_s: 20\nsilence_fault_s: 1\n"
        "clean_after_s: 1\nstable_frames: 3\n"
    )
    profile = ScaleProfile.model_validate(yaml.safe_load(profile_path.read_text()))
    bus_profile = tmp_path / "fast-bus.yaml"
    bus_profile.write_text("part: xy-md02\nreply_timeout_s: 0.15\nretries: 1\n")
    rs485 = SimulatedModbusBus(tmp_path / "rs485", [SimulatedSensor(1, constant(4.0),
                                                                    constant(60.0))])  # fmt: skip
    scale = SimulatedScale(tmp_path / "scale", profile, settle_s=1.0, seed=7)
    scale.load(0, settle_s=0)
    config = write_config(
        tmp_path / "depot.yaml", site=SITE.name, name="d01",
        endpoint=locked.endpoint("depot-d01"),
        buses=[{"url": str(rs485.path), "profile": str(bus_profile), "poll_s": 1,
                "sensors": [{"zone": "cold-store-1", "slave_id": 1}]}],
        scales=[{"name": "pallet-n95", "item": "n95-mask", "url": str(scale.path),
                 "profile": str(profile_path), "tare_kg": 25.0, "deadband_kg": 0.5}],
        broker={"heartbeat_s": 1, "reconnect_max_s": 0.5},
    )  # fmt: skip
    gateway_config = GatewayConfig(
        sites=(SiteSection(name=SITE.name, depots=("d01",)),),
        broker=gateway_broker(locked, "gw-scales"),
        store=StoreSection(path=tmp_path / "gateway.db"),
        http=HttpSection(port=0),
        alarms=AlarmSection(check_every_s=0.2),
    )  # fmt: skip
    sub = Subscriber.connect(locked.endpoint("gateway-listener"), "listener")
    sub.subscribe(f"{SITE.root}/depot/#")
    seen = Faults(sub)
    began = datetime.now(UTC) - timedelta(minutes=1)

    with (
        rs485, scale,
        running_gateway(gateway_config) as gateway,
        running_node(DepotNode(load_config(config))) as node,
    ):  # fmt: skip

        def stored() -> list[float]:
            rows = gateway.store.scale_readings(
                SITE.name, "d01", began, datetime.now(UTC) + timedelta(minutes=1)
            )
            return [row.shown_kg for row in rows]

        def faults() -> list[tuple[str, str, str]]:
            return seen.drain()

        wait_for(lambda: stored() == [0.0], "the empty pallet's settled zero")
        scale.load("1250.5")  # a pallet put on: a second of swinging, then settled
        wait_for(lambda: stored() == [0.0, 1250.5], "the loaded pallet")
        scale.overload()
        wait_for(lambda: ("pallet-n95", "overload", "raised") in faults(), "overload raised")
        time.sleep(0.5)  # OL frames go on: raised once
        scale.load("812.25")
        wait_for(lambda: ("pallet-n95", "overload", "cleared") in faults(), "overload cleared")
        wait_for(lambda: stored()[-1:] == [812.25], "the weight after the overload")
        scale.faults.corrupt_next = 3
        wait_for(lambda: ("pallet-n95", "garbage", "cleared") in faults(), "garbage come and gone")
        frames = node.scales[0].frames
        assert frames["garbage"] == 3  # each damaged frame counted, the fault raised once
        assert frames["overload"] >= 10 and frames["unsettled"] >= 10 and frames["settled"]
        scale.faults.silent = True
        wait_for(lambda: ("pallet-n95", "timeout", "raised") in faults(), "a silent scale")
        assert node.devices()["pallet-n95"] == "fault"
        time.sleep(0.5)
        scale.faults.silent = False
        wait_for(lambda: ("pallet-n95", "timeout", "cleared") in faults(), "timeout cleared")
        wait_for(lambda: node.devices()["pallet-n95"] == "ok", "the scale back to ok")
        rows = gateway.store.scale_readings(
            SITE.name, "d01", began, datetime.now(UTC) + timedelta(minutes=1), scale="pallet-n95"
        )
        seen.drain()
    sub.close()

    # Only settled weights were stored: none of the swinging values, nothing while OL.
    assert [r.shown_kg for r in rows] == [0.0, 1250.5, 812.25]
    assert [r.net_kg for r in rows] == [-25.0, 1225.5, 787.25]
    assert {(r.item, r.tare_kg, r.basis) for r in rows} == {("n95-mask", 25.0, "gross")}
    assert [r.at for r in rows] == sorted(r.at for r in rows)
    # Each fault raised once and cleared once, in the order they happened.
    assert seen.drain() == [
        ("pallet-n95", "overload", "raised"), ("pallet-n95", "overload", "cleared"),
        ("pallet-n95", "garbage", "raised"), ("pallet-n95", "garbage", "cleared"),
        ("pallet-n95", "timeout", "raised"), ("pallet-n95", "timeout", "cleared"),
    ]  # fmt: skip
    assert any(b.devices.get("pallet-n95") == "ok" for b in seen.births)


def outbox_scale_faults(node: DepotNode) -> list[tuple[str, str, str | None]]:
    if not hasattr(node, "outbox"):
        return []  # not started yet
    events = [catalogue.decode(r.topic, r.payload).payload for r in node.outbox.after(0, 10_000)]
    return [
        (e.fault, e.state, e.detail if e.state == "cleared" else None)
        for e in events if isinstance(e, DeviceFault) and e.device == "pallet-n95"
    ]  # fmt: skip


def test_depot_node__a_scale_fault_is_raised_once_across_restarts_and_cleared_when_gone(
    tmp_path: Path,
) -> None:
    # No broker: what the node would tell the gateway is what its outbox holds.
    profile_path = tmp_path / "fast-scale.yaml"
    profile_path.write_text("part: scale-continuous\nframes_per_s: 20\nsilence_fault_s: 1\n")
    profile = ScaleProfile.model_validate(yaml.safe_load(profile_path.read_text()))
    bus_profile = tmp_path / "fast-bus.yaml"
    bus_profile.write_text("part: xy-md02\nreply_timeout_s: 0.15\nretries: 1\n")
    rs485 = SimulatedModbusBus(tmp_path / "rs485", [SimulatedSensor(1, constant(4.0),
                                                                    constant(60.0))])  # fmt: skip
    scale = SimulatedScale(tmp_path / "scale", profile, settle_s=0)
    endpoint = Endpoint(BrokerUrl.parse(f"mqtt://127.0.0.1:{free_port()}"))

    def node(*, with_scale: bool = True) -> DepotNode:
        scales = [{"name": "pallet-n95", "item": "n95-mask", "url": str(scale.path),
                   "profile": str(profile_path)}] if with_scale else None  # fmt: skip
        path = write_config(
            tmp_path / "depot.yaml", site=SITE.name, name="d01", endpoint=endpoint,
            buses=[{"url": str(rs485.path), "profile": str(bus_profile), "poll_s": 1,
                    "sensors": [{"zone": "cold-store-1", "slave_id": 1}]}],
            scales=scales,
        )  # fmt: skip
        return DepotNode(load_config(path))

    raised = ("timeout", "raised", None)
    with rs485, scale:
        scale.faults.silent = True
        with running_node(node()) as first:
            wait_for(lambda: raised in outbox_scale_faults(first), "timeout raised")
        with running_node(node()) as second:
            wait_for(lambda: second.devices().get("pallet-n95") == "fault", "in fault again")
            time.sleep(1.5)
            assert outbox_scale_faults(second) == [raised]  # not raised a second time
            scale.faults.silent = False
            wait_for(lambda: len(outbox_scale_faults(second)) == 2, "cleared")
            assert outbox_scale_faults(second)[1] == ("timeout", "cleared", None)
            scale.faults.silent = True
            wait_for(lambda: len(outbox_scale_faults(second)) == 3, "raised again")
        # The scale is taken out of the config while in fault: the node clears it once
        # the parts have had their time to raise it again.
        with running_node(node(with_scale=False)) as third:
            wait_for(lambda: len(outbox_scale_faults(third)) == 4, "cleared as gone", 30)
            assert outbox_scale_faults(third)[3] == (
                "timeout", "cleared", "not present after a restart"
            )  # fmt: skip
            assert "pallet-n95" not in third.devices()
