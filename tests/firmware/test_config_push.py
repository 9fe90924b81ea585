"""`gatepost fw config push`: a real gate node on a site's locked broker, pushed to by a
technician's identity; the node's answer is read from its health and status, as the tool
does. The gate's heartbeat is 30 s and the tool waits 20 s: an answer in time is the one
the node sends right after it handles the document."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gpiozero.pins.mock import MockFactory

from edge.cli import endpoint_args, main
from edge.contract import catalogue, topics
from edge.contract.documents import SignedNodeConfig
from edge.contract.topics import Site
from edge.credentials.keys import write_private_key
from edge.devices.base import Reading, TemperatureReading
from edge.devices.link import DeviceLink
from edge.gate.config import load_config
from edge.gate.node import GateNode
from edge.mqtt import Endpoint
from firmware_tools.config_push import push_config
from firmware_tools.config_sections import ConfigPushError, load_sections, parse_sets
from firmware_tools.site_pki import IdentityRole
from simulators.broker import PrivateBroker
from simulators.devices.scanner import SimulatedScanner
from simulators.devices.thermometer import SimulatedThermometer
from simulators.site import SiteKit
from tests.conftest import Subscriber, locked_site

SITE = "north"
CONFIG_TOPIC = topics.config(Site(SITE), "g01")
ANSWER_WAIT_S = "20"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[PrivateBroker]:
    identities = [
        (IdentityRole.GATE, "g01"), (IdentityRole.ADMIN, "tech"),
        (IdentityRole.ADMIN, "provisioning"), (IdentityRole.ADMIN, "auditor"),
    ]  # fmt: skip
    with locked_site(tmp_path, SITE, identities) as broker:
        yield broker


@pytest.fixture
def kit(tmp_path: Path, site: PrivateBroker) -> SiteKit:
    kit = SiteKit(tmp_path / "site", SITE)
    kit.publish_trust_list(site.endpoint("admin-provisioning"))
    return kit


@pytest.fixture
def scanner(tmp_path: Path) -> Iterator[SimulatedScanner]:
    running = SimulatedScanner(tmp_path / "scanner").start()
    yield running
    running.stop()


@pytest.fixture
def gate_config(kit: SiteKit, site: PrivateBroker, scanner: SimulatedScanner) -> Path:
    devices = {"scanner": {"url": str(scanner.path), "profile": "gm65-scanner"}}
    return kit.gate_config(
        "g01", site.endpoint("gate-g01"), devices,
        broker={"heartbeat_s": 30, "reconnect_max_s": 0.5}, console={"enabled": False},
    )  # fmt: skip


def key_file(folder: Path, key: Ed25519PrivateKey, name: str) -> Path:
    path = folder / name
    write_private_key(path, key, replace=True)
    return path


@pytest.fixture
def root_key(kit: SiteKit) -> Path:
    return key_file(kit.folder, kit.root_key, "root-key.pem")


def wait_until(condition: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


@contextmanager
def gate(config: Path) -> Iterator[GateNode]:
    """The gate of `config` on its own thread, once online and holding the trust list."""
    node = GateNode(load_config(config), pin_factory=MockFactory())
    stop = threading.Event()
    runner = threading.Thread(target=node.run, args=(stop,))
    runner.start()
    try:
        wait_until(lambda: hasattr(node, "uplink") and node.uplink.connected)
        wait_until(lambda: node.trust.trust_list.serial == 1)
        yield node
    finally:
        stop.set()
        runner.join(15)
        assert not runner.is_alive()


def push(
    capsys: pytest.CaptureFixture[str], broker: Endpoint, key: Path, *args: str
) -> tuple[int, str]:
    """Run `gatepost fw config push g01` as a technician would; its exit code and output."""
    code = main([
        "fw", "config", "push", "g01", "--site", SITE, "--root-key", str(key),
        "--wait", ANSWER_WAIT_S, *args, *endpoint_args(broker),
    ])  # fmt: skip
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def retained_config(broker: Endpoint) -> SignedNodeConfig | None:
    """The config the broker holds for g01, as a node subscribing now would get it."""
    reader = Subscriber.connect(broker)
    try:
        reader.subscribe(CONFIG_TOPIC)
        try:
            message = reader.next(1.5)
        except AssertionError:
            return None
    finally:
        reader.close()
    document = catalogue.decode(message.topic, message.payload).payload
    assert isinstance(document, SignedNodeConfig)
    return document


def test_a_push_is_applied_and_printed_keeps_the_other_fields_and_survives_a_restart(
    capsys: pytest.CaptureFixture[str], site: PrivateBroker, kit: SiteKit, gate_config: Path,
    root_key: Path,
) -> None:  # fmt: skip
    tech = site.endpoint("admin-tech")
    with gate(gate_config) as node:
        code, out = push(capsys, tech, root_key, "--set", "policy.fever_c=38.5")
        assert (code, out.splitlines()[-1]) == (0, "g01: applied config serial 1")
        assert "g01 is online, running its config file only" in out
        assert node.checkpoint.policy.fever_c == 38.5

        sections = kit.folder / "sections.yaml"
        sections.write_text("report:\n  cutoff_hour: 18\n")
        code, out = push(capsys, tech, root_key, "--file", str(sections))
        assert (code, out.splitlines()[-1]) == (0, "g01: applied config serial 2")
        assert "keeping the other fields of serial 1" in out
        assert (node.checkpoint.policy.fever_c, node.checkpoint.cutoff_hour) == (38.5, 18)

    with gate(gate_config) as node:
        # The applied config is taken up again from the state directory, not from the broker.
        assert (node.remote_config.serial, node.checkpoint.policy.fever_c) == (2, 38.5)
        lines: list[str] = []
        result = push_config(
            tech, Site(SITE), "g01", {"policy": {"fever_c": 37.8}}, kit.root_key,
            wait_s=20, progress=lines.append,
        )  # fmt: skip
        assert (result.outcome, result.serial, result.exit_code) == ("applied", 3, 0)
        assert "g01 is online, running config serial 2" in lines
        assert node.checkpoint.policy.fever_c == 37.8
        assert node.checkpoint.cutoff_hour == 18


def test_a_forged_or_older_config_is_refused_printed_and_taken_back_off_the_broker(
    capsys: pytest.CaptureFixture[str], site: PrivateBroker, gate_config: Path, root_key: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    tech, auditor = site.endpoint("admin-tech"), site.endpoint("admin-auditor")
    forger = key_file(tmp_path, Ed25519PrivateKey.generate(), "forged-root.pem")
    with gate(gate_config) as node:
        assert push(capsys, tech, root_key, "--set", "policy.fever_c=38.5")[0] == 0
        assert push(capsys, tech, root_key, "--set", "policy.fever_c=38.2")[0] == 0

        code, out = push(capsys, tech, forger, "--set", "policy.fever_c=36.0")
        assert code == 1
        assert out.splitlines()[-1].startswith("g01: refused config serial 3 (unknown-signer)")
        assert "taken back off the broker" in out

        code, out = push(capsys, tech, root_key, "--serial", "1", "--set", "policy.fever_c=36.0")
        assert code == 1
        assert out.splitlines()[-1].startswith("g01: refused config serial 1 (stale-serial)")

        assert (node.remote_config.serial, node.checkpoint.policy.fever_c) == (2, 38.2)
        kept = retained_config(auditor)
        assert kept is not None
        assert (kept.serial, kept.body.config) == (2, {"policy": {"fever_c": 38.2}})
        # Once a valid one applies, the refusal is no longer reported.
        assert push(capsys, tech, root_key, "--set", "policy.fever_c=38.0")[0] == 0
        assert node.config_refused is None


def test_a_refused_first_config_is_cleared_off_the_broker_and_the_gate_ignores_the_clearing(
    capsys: pytest.CaptureFixture[str], site: PrivateBroker, gate_config: Path, tmp_path: Path
) -> None:
    forger = key_file(tmp_path, Ed25519PrivateKey.generate(), "forged-root.pem")
    with gate(gate_config) as node:
        code, out = push(capsys, site.endpoint("admin-tech"), forger, "--set", "policy.fever_c=36")
        assert code == 1
        assert "refused config serial 1 (unknown-signer)" in out
        assert retained_config(site.endpoint("admin-auditor")) is None
        time.sleep(1.0)  # the empty retained message has reached the gate by now
        # An empty message clears a retained document; it is no document to refuse.
        assert node.config_refused is not None
        assert (node.config_refused.serial, node.config_refused.reason) == (1, "unknown-signer")
        assert node.remote_config.serial == 0


def test_with_no_gate_to_answer_it_exits_2_and_the_gate_takes_it_when_it_comes_back(
    capsys: pytest.CaptureFixture[str], site: PrivateBroker, kit: SiteKit, gate_config: Path,
    root_key: Path,
) -> None:  # fmt: skip
    tech = site.endpoint("admin-tech")
    code, out = main_push_short(capsys, tech, root_key)
    assert code == 2
    assert "g01 has never said it is online on this broker" in out
    assert out.splitlines()[-1] == (
        "g01: no answer in time; config serial 1 stays retained on the broker and the node "
        "takes it when it comes back"
    )
    with gate(gate_config) as node:
        wait_until(lambda: node.remote_config.serial == 1)
        assert node.checkpoint.policy.fever_c == 38.5


def main_push_short(
    capsys: pytest.CaptureFixture[str], broker: Endpoint, key: Path
) -> tuple[int, str]:
    code = main([
        "fw", "config", "push", "g01", "--site", SITE, "--root-key", str(key), "--wait", "1",
        "--set", "policy.fever_c=38.5", *endpoint_args(broker),
    ])  # fmt: skip
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture
def thermometer(tmp_path: Path) -> Iterator[SimulatedThermometer]:
    running = SimulatedThermometer(tmp_path / "thermometer").start()
    yield running
    running.stop()


@pytest.fixture
def gate_with_thermometer(
    kit: SiteKit, site: PrivateBroker, scanner: SimulatedScanner, thermometer: SimulatedThermometer
) -> Path:
    devices = {
        "scanner": {"url": str(scanner.path), "profile": "gm65-scanner"},
        "thermometer": {"url": str(thermometer.path), "profile": "gy-mcu90614"},
    }
    return kit.gate_config(
        "g01", site.endpoint("gate-g01"), devices,
        broker={"heartbeat_s": 30, "reconnect_max_s": 0.5}, console={"enabled": False},
    )  # fmt: skip


def test_a_pushed_thermometer_calibration_is_read_with_from_the_next_person_on(
    capsys: pytest.CaptureFixture[str], site: PrivateBroker, root_key: Path,
    thermometer: SimulatedThermometer, gate_with_thermometer: Path,
) -> None:  # fmt: skip
    with gate(gate_with_thermometer) as node:
        (link,) = [one for one in node.links if one.name == "thermometer"]
        assert isinstance(link, DeviceLink)
        seen: list[TemperatureReading] = []
        passes_on = link._on_reading  # the checkpoint's; the test listens beside it

        def listen(reading: Reading) -> None:
            if isinstance(reading, TemperatureReading):
                seen.append(reading)
            passes_on(reading)

        link._on_reading = listen

        def object_c_of_one_person() -> float | None:
            seen.clear()
            thermometer.present(36.6, duration_s=0.8)
            wait_until(lambda: bool(seen))
            time.sleep(1.0)  # the person steps away before the next one
            return seen[0].object_c

        # The sensor sees 36.6; a reading is the median of frames within 0.3 °C (the
        # profile's settle_spread_c), so within half of that of what it sees.
        assert object_c_of_one_person() == pytest.approx(36.6, abs=0.15)
        code, out = push(
            capsys, site.endpoint("admin-tech"), root_key,
            "--set", "calibration.thermometer_object_offset_c=0.5",
        )  # fmt: skip
        assert code == 0, out
        assert object_c_of_one_person() == pytest.approx(37.1, abs=0.15)


@pytest.mark.parametrize(
    ("sets", "error"),
    [
        (["policy"], "--set 'policy': give section.key=value"),
        (["fever_c=38"], "--set 'fever_c=38': give section.key=value"),
        (["policy.fever_c"], "--set 'policy.fever_c': give section.key=value"),
        (["gpio.relay_pin=5"], "gpio: not a section a gate changes while it runs"),
        (["policy.fever=38"], "policy.fever: Extra inputs are not permitted"),
        (["policy.fever_c=hot"], "policy.fever_c: Input should be a valid number"),
        (["policy.fever_c=50"], "policy.fever_c: Input should be less than or equal to 40"),
        (["report.cutoff_hour=24"], "report.cutoff_hour: Input should be less than or equal"),
        ([], "nothing to push"),
    ],
)
def test_bad_input_is_named_and_nothing_is_published(
    capsys: pytest.CaptureFixture[str], site: PrivateBroker, root_key: Path, sets: list[str],
    error: str,
) -> None:  # fmt: skip
    args = [arg for item in sets for arg in ("--set", item)]
    code, out = push(capsys, site.endpoint("admin-tech"), root_key, *args)
    assert code == 1
    assert f"gatepost fw: error: {error}" in out
    assert retained_config(site.endpoint("admin-auditor")) is None


def test_an_equal_serial_is_refused_before_publishing_since_the_gate_would_ignore_it(
    site: PrivateBroker, kit: SiteKit, gate_config: Path
) -> None:
    tech = site.endpoint("admin-tech")
    with gate(gate_config):
        applied = push_config(tech, Site(SITE), "g01", {"policy": {"fever_c": 38.5}}, kit.root_key)
        assert applied.outcome == "applied"
        with pytest.raises(
            ConfigPushError, match="g01 runs or the broker holds that serial already"
        ):
            push_config(tech, Site(SITE), "g01", {"policy": {"fever_c": 37.0}}, kit.root_key,
                        serial=1)  # fmt: skip
    kept = retained_config(site.endpoint("admin-auditor"))
    assert kept is not None
    assert kept.body.config == {"policy": {"fever_c": 38.5}}


def test_set_values_are_json_where_they_parse_and_text_otherwise() -> None:
    sets = ["policy.fever_c=37.5", "policy.supervisor_override=true",
            "policy.test_proof_h=null", "console.language=zh"]  # fmt: skip
    assert parse_sets(sets) == {
        "policy": {"fever_c": 37.5, "supervisor_override": True, "test_proof_h": None},
        "console": {"language": "zh"},
    }


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("policy: [1, 2]\n", "give a mapping of sections, each a mapping"),
        ("- policy\n", "give a mapping of sections, each a mapping"),
        ("policy: {fever_c: 37.5\n", "not YAML"),
        ("policy:\n  note: " + "x" * 70_000 + "\n", "more than 65536 bytes"),
    ],
)
def test_a_sections_file_that_is_no_mapping_of_mappings_is_refused_by_name(
    tmp_path: Path, text: str, error: str
) -> None:
    path = tmp_path / "sections.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigPushError, match=f"--file {path}: {error}"):
        load_sections(path)


def test_a_sections_file_gives_typed_fields(tmp_path: Path) -> None:
    path = tmp_path / "sections.yaml"
    path.write_text(
        "policy:\n  fever_c: 37.5\n  supervisor_override: false\n"
        "calibration:\n  thermometer_object_offset_c: -0.3\n"
    )
    assert load_sections(path) == {
        "policy": {"fever_c": 37.5, "supervisor_override": False},
        "calibration": {"thermometer_object_offset_c": -0.3},
    }
