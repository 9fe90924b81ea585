"""A gate config is checked whole at start, and every error names its field path."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from edge.configfile import ConfigError
from edge.contract.topics import Role
from edge.depot.config import node_role
from edge.gate.config import load_config
from simulators.processes import python_module

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "gate.yaml"


def write(tmp_path: Path, change: dict[str, object] | None = None) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    for dotted, value in (change or {}).items():
        *parents, leaf = dotted.split(".")
        section = data
        for part in parents:
            section = section.setdefault(part, {})
        if value is None:
            section.pop(leaf, None)
        else:
            section[leaf] = value
    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_config__the_documented_example_is_valid(tmp_path: Path) -> None:
    config = load_config(EXAMPLE)
    assert config.node_id.name == "g01"
    assert config.policy.test_proof_h == 48
    scanner = config.devices.scanner
    assert scanner is not None
    assert scanner.load().baudrate == 115200
    assert len(config.config_hash()) == 16


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"node.colour": "red"}, "node.colour: Extra inputs are not permitted"),
        ({"node.role": "depot-ish"}, "node.role: Input should be 'gate'"),
        ({"node.timezone": "Mars/Olympus"}, "node.timezone: Value error, 'Mars/Olympus' is not"),
        ({"broker.url": "http://x"}, "broker.url: Value error, broker URL 'http://x' is not"),
        ({"policy.fever_c": 30}, "policy.fever_c: Input should be greater than or equal to"),
        ({"devices.thermometer.url": "/dev/gatepost-scanner"},
         "scanner and thermometer are both on /dev/gatepost-scanner"),
        ({"devices.scanner": None, "devices.camera": None}, "needs a scanner or a camera"),
        ({"gpio.buzzer": {"pin": 17}}, "barrier.relay_pin and buzzer.pin"),
        ({"devices.scanner.settings": {"baudrate": 7}}, "devices.scanner.profile: "),
        ({"devices.scanner.profile": "no-such-part"}, "devices.scanner.profile: "),
        ({"trust": None}, "trust: Field required"),
        ({"broker.key": None}, "broker: Value error, a client certificate and its key are given"),
        ({"broker.url": "mqtt://gw:1883"}, "broker: Value error, certificates need an mqtts://"),
        ({"broker.password_file": "pw"}, "broker: Value error, a password_file needs a username"),
        ({"console.allowed_hosts": ["gate-01.lan:8080"]}, "console.allowed_hosts.0: String should"),
        ({"console.allowed_hosts": ["evil.example/x"]}, "console.allowed_hosts.0: String should"),
        ({"console.streams": {"total": 0}}, "console.streams.total: Input should be greater"),
        ({"console.streams": {"total": 100}}, "console.streams.total: Input should be less"),
        ({"console.streams": {"per_client": 0}}, "console.streams.per_client: Input should be"),
        ({"console.host": "0.0.0.0"}, "console: Value error, a console on 0.0.0.0 reaches beyond"),
        ({"console.host": "192.168.1.20"}, "give it tls_cert and tls_key (HTTPS; tablets pair"),
        ({"console.host": "::", "console.tls_cert": "web/cert.pem"},
         "give tls_cert and tls_key together"),
    ],
)  # fmt: skip
def test_config__invalid(tmp_path: Path, change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, change))
    assert message in str(refused.value)
    assert str(tmp_path / "gate.yaml") in str(refused.value)


def test_config__the_console_listens_on_this_machine_unless_told(tmp_path: Path) -> None:
    assert load_config(EXAMPLE).console.host == "127.0.0.1"
    assert load_config(EXAMPLE).console.certificate() is None
    beyond: dict[str, object] = {
        "console.host": "0.0.0.0", "console.allowed_hosts": ["gate-01.lan"],
        "console.tls_cert": "web/cert.pem", "console.tls_key": "web/key.pem",
    }  # fmt: skip
    console = load_config(write(tmp_path, beyond)).console
    assert (console.host, console.allowed_hosts) == ("0.0.0.0", ("gate-01.lan",))
    assert (console.streams.per_client, console.streams.total) == (4, 32)
    # Relative to the config file, like every path in it.
    assert (console.tls_cert, console.tls_key) == (
        tmp_path / "web/cert.pem",
        tmp_path / "web/key.pem",
    )
    # Turned off, it listens nowhere: nothing to refuse.
    assert load_config(write(tmp_path, {"console.host": "0.0.0.0", "console.enabled": False}))


def test_config__the_role_may_be_written_or_left_out(tmp_path: Path) -> None:
    left_out = load_config(EXAMPLE)
    path = write(tmp_path, {"node.role": "gate"})
    written = load_config(path)
    assert node_role(path) is Role.GATE
    assert written.node_id == left_out.node_id
    assert written.node_id.role is Role.GATE
    # The same gate either way: its births carry the same config hash.
    assert written.config_hash() == left_out.config_hash()
    checked = subprocess.run(
        python_module("edge.cli", "edge", "check", "--config", str(path)),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "(gate node)" in checked.stdout


def test_config__a_file_that_is_not_yaml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text("node: [unclosed")
    with pytest.raises(ConfigError, match=r"gate\.yaml"):
        load_config(path)


def test_edge_check__prints_the_hash_or_names_the_fields(tmp_path: Path) -> None:
    good = subprocess.run(
        python_module("edge.cli", "edge", "check", "--config", str(EXAMPLE)),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert good.returncode == 0, good.stderr
    assert "valid, config hash" in good.stdout
    bad = subprocess.run(
        python_module("edge.cli", "edge", "check", "--config",
                      str(write(tmp_path, {"outbox.capacity": 1}))),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1
    assert "outbox.capacity: Input should be greater than or equal to 10" in bad.stderr


def test_edge_run__a_missing_root_key_is_named_and_nothing_is_left_running(
    tmp_path: Path,
) -> None:
    config = write(tmp_path, {"node.state_dir": str(tmp_path / "state"),
                              "trust.root_keys": [str(tmp_path / "missing.pem")],
                              "gpio.pin_factory": "mock"})  # fmt: skip
    run = subprocess.run(
        python_module("edge.cli", "edge", "run", "--config", str(config)),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1
    assert f"trust.root_keys: {tmp_path / 'missing.pem'}" in run.stderr


def test_config__broker_files_are_taken_from_the_config_folder(tmp_path: Path) -> None:
    path = write(tmp_path, {"broker.ca": "pki/ca.crt", "broker.cert": "pki/cert.pem",
                            "broker.key": "/etc/gatepost/key.pem"})  # fmt: skip
    endpoint = load_config(path).broker.endpoint()
    assert (endpoint.ca, endpoint.cert) == (tmp_path / "pki/ca.crt", tmp_path / "pki/cert.pem")
    assert endpoint.key == Path("/etc/gatepost/key.pem")
    assert endpoint.url.tls


def test_config__a_password_file_is_read_when_the_node_connects(tmp_path: Path) -> None:
    path = write(tmp_path, {"broker.username": "gate-g01", "broker.password_file": "pw"})
    config = load_config(path)
    with pytest.raises(ConfigError, match=r"broker\.password_file"):
        config.broker.endpoint()
    (tmp_path / "pw").write_text("s3cret\n")
    endpoint = config.broker.endpoint()
    assert (endpoint.username, endpoint.password) == ("gate-g01", "s3cret")
    assert "s3cret" not in repr(endpoint)
