"""A depot config is checked whole at start, every error names its field, and its role picks the node."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.configfile import ConfigError
from edge.contract.topics import Role
from edge.depot.config import SENSORS_MAX, load_config, node_role
from edge.gate.config import load_config as load_gate_config
from simulators.processes import python_module

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "depot.yaml"


def write(tmp_path: Path, change: dict[str, Any] | None = None) -> Path:
    """The example with `change`: dotted paths, list items by index (one past the end adds
    one), None removes."""
    data = yaml.safe_load(EXAMPLE.read_text())
    for dotted, value in (change or {}).items():
        *parents, leaf = dotted.split(".")
        section: Any = data
        for part in parents:
            section = section[int(part)] if isinstance(section, list) else section[part]
        key: Any = int(leaf) if isinstance(section, list) else leaf
        if value is None:
            section.pop(key)
        elif isinstance(section, list) and key == len(section):
            section.append(value)
        else:
            section[key] = value
    path = tmp_path / "depot.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def sensors(count: int, first: int = 1) -> list[dict[str, Any]]:
    return [{"zone": f"z{n}", "slave_id": n} for n in range(first, first + count)]


def test_config__the_documented_example_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert config.node_id.role is Role.DEPOT
    assert config.node_id.name == "d01"
    bus = config.buses[0]
    assert [s.zone for s in bus.sensors] == ["cold-store-1", "cold-store-2", "dry-store"]
    assert bus.load().reply_timeout_s == 0.3
    cold = bus.sensors[0]
    assert (cold.calibration_offsets().temperature_c, cold.deadband_c) == (-0.3, 0.2)
    # Defaults where the example says nothing.
    assert (bus.sensors[1].deadband_pct, bus.sensors[1].max_interval_s) == (1.0, 300)
    assert len(config.config_hash()) == 16


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"node.role": None}, "node.role: Field required"),
        ({"node.role": "gate"}, "node.role: Input should be 'depot'"),
        ({"node.direction": "in"}, "node.direction: Extra inputs are not permitted"),
        ({"node.name": "D 01"}, "node.name: String should match pattern"),
        ({"node.timezone": "Mars/Olympus"}, "node.timezone: Value error, 'Mars/Olympus' is not"),
        ({"broker.url": "http://x"}, "broker.url: Value error, broker URL 'http://x' is not"),
        ({"outbox.capacity": 1}, "outbox.capacity: Input should be greater than or equal to 10"),
        ({"trust": {"root_keys": ["root.pem"]}}, "trust: Extra inputs are not permitted"),
        ({"buses": []}, "buses: Tuple should have at least 1 item"),
        ({"buses": [{"url": f"/dev/ttyUSB{n}", "sensors": sensors(1, n + 1)} for n in range(9)]},
         "buses: Tuple should have at most 8 items"),
        ({"buses.0.url": ""}, "buses.0.url: String should have at least 1 character"),
        ({"buses.0.colour": "red"}, "buses.0.colour: Extra inputs are not permitted"),
        ({"buses.0.profile": "no-such-part"}, "buses.0.profile: Value error, "),
        ({"buses.0.profile": "gm65-scanner"}, "buses.0.profile: Value error, "),
        ({"buses.0.poll_s": 0.5}, "buses.0.poll_s: Input should be greater than or equal to 1"),
        ({"buses.0.poll_s": 1}, "poll_s 1 is shorter than a round of 3 sensors when none answers"),
        ({"buses.0.fault_after": 0}, "buses.0.fault_after: Input should be greater than or equal"),
        ({"buses.0.fault_after": 11}, "buses.0.fault_after: Input should be less than or equal"),
        ({"buses.0.sensors": []}, "buses.0.sensors: Tuple should have at least 1 item"),
        ({"buses.0.sensors": sensors(SENSORS_MAX + 1)},
         f"buses.0.sensors: Tuple should have at most {SENSORS_MAX} items"),
        ({"buses.0.sensors.0.zone": "Cold Store"}, "buses.0.sensors.0.zone: String should match"),
        ({"buses.0.sensors.0.zone": "outbox"}, "buses.0.sensors.0.zone: Value error, 'outbox'"),
        ({"buses.0.sensors.0.zone": "bus-2"}, "buses.0.sensors.0.zone: Value error, 'bus-2'"),
        ({"buses.0.sensors.1.zone": "cold-store-1"}, "zone cold-store-1 is named twice"),
        ({"buses.0.sensors.0.slave_id": 0}, "buses.0.sensors.0.slave_id: Input should be greater"),
        ({"buses.0.sensors.0.slave_id": 248}, "buses.0.sensors.0.slave_id: Input should be less"),
        ({"buses.0.sensors.1.slave_id": 1},
         "sensors cold-store-1 and cold-store-2 both have slave_id 1"),
        ({"buses.0.sensors.0.calibration": {"temperature_c": 11}},
         "buses.0.sensors.0.calibration.temperature_c: Input should be less than or equal to 10"),
        ({"buses.0.sensors.0.calibration": {"humidity_rh": 1}},
         "buses.0.sensors.0.calibration.humidity_rh: Extra inputs are not permitted"),
        ({"buses.0.sensors.0.deadband_c": -0.1}, "buses.0.sensors.0.deadband_c: Input should be"),
        ({"buses.0.sensors.0.deadband_pct": 51}, "buses.0.sensors.0.deadband_pct: Input should be"),
        ({"buses.0.sensors.0.max_interval_s": 0}, "buses.0.sensors.0.max_interval_s: Input should"),
        ({"buses.0.sensors.0.max_interval_s": 5},
         "sensors.cold-store-1.max_interval_s 5 is shorter than poll_s 10"),
    ],
)  # fmt: skip
def test_config__invalid(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, change))
    assert message in str(refused.value)
    assert str(tmp_path / "depot.yaml") in str(refused.value)


def test_config__two_buses_on_one_port_and_one_zone_on_two_buses_are_refused(
    tmp_path: Path,
) -> None:
    second = {"url": "/dev/gatepost-rs485", "sensors": sensors(1, 5)}
    with pytest.raises(ConfigError, match="two buses on /dev/gatepost-rs485"):
        load_config(write(tmp_path, {"buses.1": second}))
    again = {"url": "/dev/ttyUSB1", "sensors": [{"zone": "dry-store", "slave_id": 3}]}
    with pytest.raises(ConfigError, match="zone dry-store is named twice"):
        load_config(write(tmp_path, {"buses.1": again}))
    # The same slave id on another bus is another sensor.
    config = load_config(write(tmp_path, {"buses.1": {**again, "sensors": sensors(1, 3)}}))
    assert [b.sensors[-1].slave_id for b in config.buses] == [3, 3]


def test_config__more_sensors_than_a_heartbeat_can_name_are_refused(tmp_path: Path) -> None:
    half = SENSORS_MAX // 2 + 1
    buses = [
        {"url": "/dev/ttyUSB0", "poll_s": 60, "sensors": sensors(half)},
        {"url": "/dev/ttyUSB1", "poll_s": 60, "sensors": sensors(half, 100)},
    ]
    with pytest.raises(ConfigError, match=f"a depot node reports at most {SENSORS_MAX}"):
        load_config(write(tmp_path, {"buses": buses}))


def test_config__relative_paths_are_the_config_files(tmp_path: Path) -> None:
    profile = tmp_path / "profiles" / "site-8e1.yaml"
    profile.parent.mkdir()
    profile.write_text("part: xy-md02\nparity: E\nbaudrate: 19200\n")
    config = load_config(
        write(tmp_path, {"buses.0.profile": "profiles/site-8e1.yaml", "node.state_dir": "state"})
    )
    assert (config.buses[0].load().parity, config.buses[0].load().baudrate) == ("E", 19200)
    assert config.node.state_dir == tmp_path / "state"


def test_node_role__depot_by_its_role_a_gate_without_one(tmp_path: Path) -> None:
    assert node_role(EXAMPLE) is Role.DEPOT
    assert node_role(EXAMPLE.with_name("gate.yaml")) is Role.GATE
    with pytest.raises(ConfigError, match=r"node.role: 'warehouse' is not a node role"):
        node_role(write(tmp_path, {"node.role": "warehouse"}))


def test_edge_check__a_depot_config_is_checked_as_a_depot_and_bad_fields_named(
    tmp_path: Path,
) -> None:
    good = subprocess.run(
        python_module("edge.cli", "edge", "check", "--config", str(EXAMPLE)),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert good.returncode == 0, good.stderr
    assert "valid, config hash" in good.stdout
    assert "(depot node)" in good.stdout
    bad = subprocess.run(
        python_module("edge.cli", "edge", "check", "--config",
                      str(write(tmp_path, {"buses.0.sensors.1.slave_id": 1}))),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "both have slave_id 1" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_edge_check__a_depot_config_that_says_role_gate_is_refused_naming_the_role(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, {"node.role": "gate"})
    assert node_role(path) is Role.GATE
    checked = subprocess.run(
        python_module("edge.cli", "edge", "check", "--config", str(path)),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 1
    assert "buses: Extra inputs are not permitted" in checked.stderr
    assert "node.role: read as a gate's config" in checked.stderr
    assert "a depot node's config says role: depot" in checked.stderr
    assert "Traceback" not in checked.stderr
    # A gate's config refused for its own reasons is not told about depots.
    gate = EXAMPLE.with_name("gate.yaml").read_text().replace("name: g01", "name: G 01")
    (tmp_path / "gate.yaml").write_text(gate)
    with pytest.raises(ConfigError) as refused:
        load_gate_config(tmp_path / "gate.yaml")
    assert "node.name: String should match pattern" in str(refused.value)
    assert "node.role" not in str(refused.value)
