"""`gatepost fw provision`: the node bundle, its units and rules, install.sh, sd_notify, and a
node started from its bundle that the gateway sees online."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import stat
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edge.cli import main
from edge.configfile import BrokerSection as NodeBrokerSection
from edge.configfile import OutboxSection
from edge.contract.topics import Role, Site
from edge.runtime import NodeRuntime
from edge.sd_notify import Notifier
from firmware_tools.node_bundle import unpack
from firmware_tools.site_pki import IdentityRole, SitePki
from gateway.access import hash_token
from gateway.config import BrokerSection, GatewayConfig, HttpSection, SiteSection, broker_config
from gateway.store.settings import StoreSection
from simulators.broker import PrivateBroker
from simulators.devices.scanner import SimulatedScanner
from simulators.devices.thermometer import SimulatedThermometer
from simulators.processes import python_module, spawn, stop
from tests.conftest import OutputLines, running_gateway

ROOT = Path(__file__).resolve().parents[2]
GATEPOST = shutil.which("gatepost") or str(ROOT / ".venv" / "bin" / "gatepost")
GATE_FILES = {
    "MANIFEST.sha256", "install.sh", "etc/gatepost/node.yaml", "etc/gatepost/ca.crt",
    "etc/gatepost/cert.pem", "etc/gatepost/key.pem", "etc/gatepost/id-hash.key",
    "etc/gatepost/root.pub.pem", "var/lib/gatepost/trust/trust.json",
    "etc/systemd/system/gatepost-node.service", "etc/systemd/system/gatepost-kiosk.service",
    "etc/udev/rules.d/70-gatepost.rules",
}  # fmt: skip


@dataclass
class SiteDir:
    """A site folder as `fw site init` leaves it, with a root key and a signed trust list."""

    folder: Path

    @property
    def pki(self) -> SitePki:
        return SitePki.open(self.folder)

    def bundle(self, role: str, node: str) -> Path:
        return self.folder / "bundles" / f"gatepost-{role}-{node}.tar.gz"


def gatepost(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> SiteDir:
    folder = tmp_path / "site"
    trust = folder / "trust"
    for args in (
        ("fw", "site", "init", str(folder), "--site", "demo", "--port", "18883"),
        ("fw", "keygen", "--alg", "eddsa", "--out", str(trust / "root.pem")),
        ("fw", "keygen", "--alg", "es256", "--out", str(tmp_path / "signer.pem")),
        ("fw", "trust-list", "--root-key", str(trust / "root.pem"), "--signer",
         f"{tmp_path / 'signer.pem'}:health-code,badge", "--issuer", "demo", "--serial", "3",
         "--out", str(trust / "trust-list.json")),
    ):  # fmt: skip
        if args[1] == "keygen":
            trust.mkdir(parents=True, exist_ok=True)
        code, _, err = gatepost(*args, capsys=capsys)
        assert code == 0, err
    return SiteDir(folder)


def provision_gate(
    site: SiteDir, capsys: pytest.CaptureFixture[str], *extra: str, node: str = "g01"
) -> str:
    code, out, err = gatepost(
        "fw", "provision", node, "--role", "gate", "--site-dir", str(site.folder),
        "--scanner-serial", "AB12CD", "--thermometer-serial", "1a86:7523:TH-7",
        "--exec", GATEPOST, "--compositor", "", *extra, capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    return out


def members(bundle: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(bundle, "r:gz") as tar:
        return {m.name.split("/", 1)[1]: m for m in tar.getmembers()}


def unpacked(site: SiteDir, tmp_path: Path, role: str = "gate", node: str = "g01") -> Path:
    return unpack(site.bundle(role, node), tmp_path / f"unpacked-{node}")


# --- the bundle ---------------------------------------------------------------------------


def test_bundle__files_modes_manifest_and_identity(
    site: SiteDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = provision_gate(site, capsys)
    bundle = site.bundle("gate", "g01")
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600  # it holds the node's key
    listed = members(bundle)
    assert set(listed) == GATE_FILES
    modes = {name: stat.S_IMODE(info.mode) for name, info in listed.items()}
    assert modes["etc/gatepost/key.pem"] == 0o600
    assert modes["etc/gatepost/id-hash.key"] == 0o600
    assert modes["install.sh"] == 0o755
    assert modes["etc/gatepost/node.yaml"] == 0o644

    top = unpacked(site, tmp_path)
    manifest = (top / "MANIFEST.sha256").read_text().splitlines()
    hashes = {name: digest for digest, name in (line.split("  ", 1) for line in manifest)}
    assert set(hashes) == GATE_FILES - {"MANIFEST.sha256"}
    for name, digest in hashes.items():
        assert hashlib.sha256((top / name).read_bytes()).hexdigest() == digest, name

    cert = x509.load_pem_x509_certificate((top / "etc/gatepost/cert.pem").read_bytes())
    key = serialization.load_pem_private_key(
        (top / "etc/gatepost/key.pem").read_bytes(), password=None
    )
    assert cert.public_key() == key.public_key()
    assert cert.subject.rfc4514_string().startswith("CN=gate-g01,OU=gate")
    assert (top / "etc/gatepost/ca.crt").read_bytes() == site.pki.ca_cert_path.read_bytes()
    assert [i.cn for i in site.pki.identities()] == ["gate-g01"]
    held = site.folder / "trust" / "trust-list.json"
    assert (top / "var/lib/gatepost/trust/trust.json").read_bytes() == held.read_bytes()

    config = yaml.safe_load((top / "etc/gatepost/node.yaml").read_text())
    assert config["devices"]["scanner"]["url"] == "/dev/gatepost-scanner"
    assert config["devices"]["thermometer"]["url"] == "/dev/gatepost-thermometer"
    assert config["broker"] == {"url": "mqtts://localhost:18883", "ca": "ca.crt",
                                "cert": "cert.pem", "key": "key.pem"}  # fmt: skip
    # What the broker and the gateway need, printed.
    assert "gate-g01 (gate)" in out and "write     gatepost/v1/demo/gate/g01/#" in out
    assert "gates: [g01]" in out
    for step in range(1, 6):
        assert f"[{step}/5]" in out


def test_bundle_depot__buses_scales_no_kiosk(
    site: SiteDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = gatepost(
        "fw", "provision", "d01", "--role", "depot", "--site-dir", str(site.folder),
        "--rs485-serial", "RS1", "--rs485-serial", "0403:6015:RS2", "--sensor", "cold-1:1",
        "--sensor", "2/dry-1:7", "--scale", "pallet-1:n95-mask", "--scale-serial", "SC1",
        capsys=capsys,
    )  # fmt: skip
    assert code == 0, err
    top = unpacked(site, tmp_path, "depot", "d01")
    assert not (top / "etc/systemd/system/gatepost-kiosk.service").exists()
    assert not (top / "etc/gatepost/id-hash.key").exists()
    config = yaml.safe_load((top / "etc/gatepost/node.yaml").read_text())
    assert [(b["url"], [s["zone"] for s in b["sensors"]]) for b in config["buses"]] == [
        ("/dev/gatepost-rs485-1", ["cold-1"]), ("/dev/gatepost-rs485-2", ["dry-1"]),
    ]  # fmt: skip
    assert config["scales"][0]["url"] == "/dev/gatepost-scale-1"
    rules = (top / "etc/udev/rules.d/70-gatepost.rules").read_text()
    for name in ("gatepost-rs485-1", "gatepost-rs485-2", "gatepost-scale-1"):
        assert f'SYMLINK+="{name}"' in rules
    assert "depots: [d01]" in out
    assert "no adapter serial for /dev/gatepost" not in out  # every port has its rule


def test_bundle__a_port_without_an_adapter_serial_is_pointed_out(
    site: SiteDir, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = gatepost("fw", "provision", "g02", "--role", "gate", "--site-dir",
                              str(site.folder), "--scanner-serial", "AB12CD", capsys=capsys)  # fmt: skip
    assert code == 0, err
    assert "no adapter serial for /dev/gatepost-thermometer" in out
    assert "/dev/gatepost-scanner," not in out


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("--scanner-serial", 'AB"12'), "--scanner-serial"),
        (("--scanner-serial", "04:03:AB"), "VID and PID are 4 hex digits"),
        (("--sensor", "cold:1"), "depot only"),
        (("--role", "depot", "--sensor", "cold:300"), "--sensor 'cold:300'"),
        (("--role", "depot"), "buses"),  # a depot with no sensor: the model names the field
        (("--root-key", "/nonexistent/root.pem"), "--root-key /nonexistent/root.pem"),
    ],
)
def test_provision__invalid__names_it_and_changes_nothing(
    site: SiteDir, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], problem: str
) -> None:
    role = ("--role", "gate") if "--role" not in args else ()
    before = sorted(p.relative_to(site.folder) for p in site.folder.rglob("*"))
    code, _, err = gatepost(
        "fw", "provision", "n01", *role, "--site-dir", str(site.folder), *args, capsys=capsys
    )
    assert code == 2
    assert problem in err and "Traceback" not in err
    assert sorted(p.relative_to(site.folder) for p in site.folder.rglob("*")) == before
    assert site.pki.identities() == []


def test_provision_sections_that_fail_the_model__invalid(
    site: SiteDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sections = tmp_path / "sections.yaml"
    sections.write_text("console:\n  port: 99999\n")
    code, _, err = gatepost("fw", "provision", "g01", "--role", "gate", "--site-dir",
                            str(site.folder), "--sections", str(sections), capsys=capsys)  # fmt: skip
    assert code == 2 and "console.port" in err
    assert not site.bundle("gate", "g01").exists() and site.pki.identities() == []


def test_provision_trust_list_of_another_root__invalid(
    site: SiteDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other-root.pem"
    assert gatepost("fw", "keygen", "--alg", "eddsa", "--out", str(other), capsys=capsys)[0] == 0
    code, _, err = gatepost("fw", "provision", "g01", "--role", "gate", "--site-dir",
                            str(site.folder), "--root-key", f"{other}.pub.pem", capsys=capsys)  # fmt: skip
    assert code == 2 and "trust-list.json" in err
    assert site.pki.identities() == []


def test_reprovision__replaces_the_certificate_and_revokes_the_old(
    site: SiteDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provision_gate(site, capsys)
    first = site.pki.files("gate-g01").cert.read_bytes()
    old = x509.load_pem_x509_certificate(first).serial_number
    out = provision_gate(site, capsys)
    new = x509.load_pem_x509_certificate(site.pki.files("gate-g01").cert.read_bytes())
    assert new.serial_number != old
    crl = x509.load_pem_x509_crl(site.pki.crl_path.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(old) is not None
    assert crl.get_revoked_certificate_by_serial_number(new.serial_number) is None
    assert f"its certificate {old:x} is revoked" in out
    top = unpacked(site, tmp_path)
    assert (top / "etc/gatepost/cert.pem").read_bytes() == site.pki.files(
        "gate-g01"
    ).cert.read_bytes()


# --- units and rules ----------------------------------------------------------------------


def unit(top: Path, name: str) -> dict[str, str]:
    settings: dict[str, str] = {}
    for line in (top / "etc/systemd/system" / name).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings[key] = value
    return settings


def test_units__sandboxed_node_above_the_kiosk(
    site: SiteDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provision_gate(site, capsys)
    top = unpacked(site, tmp_path)
    node = unit(top, "gatepost-node.service")
    assert node | {
        "Type": "notify", "NotifyAccess": "main", "Restart": "on-failure", "WatchdogSec": "30",
        "User": "gatepost", "StateDirectory": "gatepost", "ProtectSystem": "strict",
        "ReadWritePaths": "/var/lib/gatepost", "ProtectHome": "yes", "PrivateTmp": "yes",
        "NoNewPrivileges": "yes", "SupplementaryGroups": "dialout gpio", "Nice": "-5",
        "CPUWeight": "1000", "IOSchedulingClass": "best-effort", "IOSchedulingPriority": "0",
    } == node  # fmt: skip
    assert node["ExecStart"] == f"{GATEPOST} edge run --config /etc/gatepost/node.yaml"
    kiosk = unit(top, "gatepost-kiosk.service")
    assert (kiosk["Nice"], kiosk["CPUWeight"], kiosk["IOSchedulingClass"]) == ("10", "20", "idle")
    assert kiosk["User"] == "gatepost-kiosk"
    assert "--kiosk" in kiosk["ExecStart"] and "http://127.0.0.1:8080/" in kiosk["ExecStart"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_units__systemd_analyze_verify(
    site: SiteDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or "/bin/true"
    provision_gate(site, capsys, "--chromium", chromium)
    top = unpacked(site, tmp_path)
    units = sorted((top / "etc/systemd/system").glob("*.service"))
    checked = subprocess.run(["systemd-analyze", "verify", *map(str, units)],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    # Only what concerns our units: the host's own units may have warnings of their own.
    ours = [line for line in checked.stderr.splitlines() if "gatepost-" in line]
    assert ours == [] and checked.returncode == 0, checked.stderr


# udev(7): KEY[{attr}] op "value", comma-separated; matches with ==/!=, assignments =/+=/:=.
_RULE = re.compile(
    r'(?P<key>[A-Z_]+)(?:\{(?P<attr>[A-Za-z0-9_]+)\})?(?P<op>==|!=|\+=|:=|=)"(?P<value>[^"\\]*)"'
)
_MATCH_KEYS = {"ACTION", "SUBSYSTEM", "KERNEL", "DRIVER", "DRIVERS", "ATTRS", "ATTR"}
_ASSIGN_KEYS = {"SYMLINK", "GROUP", "MODE", "OWNER", "ATTR"}


def parse_udev(text: str) -> list[list[tuple[str, str | None, str, str]]]:
    """Each rule as (key, attr, op, value) tuples; AssertionError on anything udev would not read."""
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = []
        for item in line.split(", "):
            found = _RULE.fullmatch(item)
            assert found, f'line {number}: {item!r} is not KEY{{attr}}op"value"'
            key, op = found["key"], found["op"]
            known = _MATCH_KEYS if op in ("==", "!=") else _ASSIGN_KEYS
            assert key in known, f"line {number}: {key} with {op}"
            assert (found["attr"] is not None) == (key in ("ATTR", "ATTRS")), line
            parts.append((key, found["attr"], op, found["value"]))
        rules.append(parts)
    return rules


def test_udev_rules__stable_names_and_ftdi_latency(
    site: SiteDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provision_gate(site, capsys)
    text = (unpacked(site, tmp_path) / "etc/udev/rules.d/70-gatepost.rules").read_text()
    if shutil.which("udevadm") is not None and subprocess.run(
        ["udevadm", "verify", "--help"], capture_output=True).returncode == 0:  # fmt: skip
        rules_file = tmp_path / "70-gatepost.rules"
        rules_file.write_text(text)
        checked = subprocess.run(["udevadm", "verify", str(rules_file)], capture_output=True)
        assert checked.returncode == 0, checked.stderr
    rules = parse_udev(text)
    names = {v: r for r in rules for k, _, _, v in r if k == "SYMLINK"}
    assert set(names) == {"gatepost-scanner", "gatepost-thermometer"}
    assert ("ATTRS", "serial", "==", "AB12CD") in names["gatepost-scanner"]
    assert ("ATTRS", "idVendor", "==", "1a86") in names["gatepost-thermometer"]
    latency = [r for r in rules if ("ATTR", "latency_timer", "=", "1") in r]
    # The scanner's adapter is the BOM's FTDI one; the thermometer's CH340 has no such timer.
    assert len(latency) == 1 and ("ATTRS", "serial", "==", "AB12CD") in latency[0]
    assert ("ATTRS", "idVendor", "==", "0403") in latency[0]


def test_udev_parser__invalid() -> None:
    for bad in ('SUBSYSTEM=="tty" SYMLINK+="x"', 'SYMLINK+="a"b"', 'FOO=="x"', 'ATTR=="x"'):
        with pytest.raises(AssertionError):
            parse_udev(bad)


# --- install.sh ---------------------------------------------------------------------------


def install(top: Path, destdir: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "DESTDIR": str(destdir)}
    return subprocess.run(["sh", str(top / "install.sh")], capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip


def test_install__into_destdir_twice_keeps_a_newer_trust_list(
    site: SiteDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provision_gate(site, capsys)
    top, target = unpacked(site, tmp_path), tmp_path / "pi"
    done = install(top, target)
    assert done.returncode == 0, done.stderr
    assert "skipped creating users gatepost gatepost-kiosk, chown, udevadm and systemctl" in (
        done.stdout
    )
    for name in GATE_FILES - {"MANIFEST.sha256", "install.sh"}:
        assert (target / name).read_bytes() == (top / name).read_bytes(), name
    assert stat.S_IMODE((target / "etc/gatepost/key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((target / "var/lib/gatepost").stat().st_mode) == 0o750
    held = target / "var/lib/gatepost/trust/trust.json"
    held.write_text("a newer list the node took from the broker")
    again = install(top, target)
    assert again.returncode == 0, again.stderr
    assert held.read_text() == "a newer list the node took from the broker"
    assert not list(target.rglob("*.new"))


def test_install__a_file_that_cannot_be_written__installs_nothing(
    site: SiteDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provision_gate(site, capsys)
    top, target = unpacked(site, tmp_path), tmp_path / "pi"
    (target / "etc").mkdir(parents=True)
    (target / "etc" / "udev").write_text("a file where the rules' folder goes")  # as a full disk
    done = install(top, target)
    assert done.returncode == 1
    assert f"could not write {target}/etc/udev/rules.d/70-gatepost.rules" in done.stdout
    assert "nothing installed" in done.stdout
    # Files staged before it are gone again, none reached its place.
    left = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert left == ["etc/udev"]


def test_install__damaged_bundle__installs_nothing(
    site: SiteDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provision_gate(site, capsys)
    top, target = unpacked(site, tmp_path), tmp_path / "pi"
    config = top / "etc/gatepost/node.yaml"
    config.write_text(config.read_text().replace("g01", "g99"))
    done = install(top, target)
    assert done.returncode != 0 and "the bundle is damaged" in done.stdout
    assert not target.exists()


# --- sd_notify and the watchdog -----------------------------------------------------------


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "notify"))
    listener.settimeout(0.2)
    yield listener
    listener.close()


def received(listener: socket.socket, for_s: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + for_s
    while time.monotonic() < deadline:
        try:
            seen += listener.recv(4096).decode().splitlines()
        except TimeoutError:
            continue
    return seen


def test_notifier__path_abstract_and_unset(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Notifier(notify_socket.getsockname()).ready()
    assert received(notify_socket, 0.3) == ["READY=1", "STATUS=running"]
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    abstract.bind(f"\0gatepost-test-{os.getpid()}")
    abstract.settimeout(0.2)
    try:
        assert Notifier(f"@gatepost-test-{os.getpid()}").watchdog()
        assert received(abstract, 0.3) == ["WATCHDOG=1"]
    finally:
        abstract.close()
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not Notifier().enabled and not Notifier().ready()
    assert not Notifier("/nonexistent/notify").watchdog()  # logged, never raised


class Faults:
    def record_fault(self, *args: Any) -> None:
        pass

    def reconcile_faults(self, *args: Any) -> None:
        pass


class WorkerNode(NodeRuntime):
    """A node whose one worker runs until told to die."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(Site("demo").node(Role.GATE, "w01"), state_dir=state_dir,
                         broker=NodeBrokerSection(), outbox=OutboxSection())  # fmt: skip
        self.faults = Faults()  # type: ignore[assignment]
        self.die = threading.Event()

    def start(self) -> None:
        self.start_worker("reader", self._work)

    def _work(self, stop: threading.Event) -> None:
        while not stop.wait(0.05):
            if self.die.is_set():
                self.die.clear()
                raise RuntimeError("the reader died")

    def tick(self) -> None:
        pass


def test_watchdog__ready_then_fed_only_while_workers_live(
    notify_socket: socket.socket, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.getsockname())
    node = WorkerNode(tmp_path)
    stop = threading.Event()
    thread = threading.Thread(target=node.run, args=(stop,))
    thread.start()
    try:
        first = received(notify_socket, 2.6)
        assert first[:2] == ["READY=1", "STATUS=running"]
        assert first[2:].count("WATCHDOG=1") >= 2
        node.die.set()
        time.sleep(0.5)
        received(notify_socket, 0.2)  # a pet sent before the death was seen
        assert "WATCHDOG=1" not in received(notify_socket, 3.0)  # restarted, not yet healthy
    finally:
        stop.set()
        thread.join(15)
    assert "STOPPING=1" in received(notify_socket, 0.5)


# --- end to end ---------------------------------------------------------------------------


def test_provisioned_gate__starts_from_its_bundle_and_is_online_at_the_gateway(
    site: SiteDir, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    notify_socket: socket.socket,
) -> None:  # fmt: skip
    pki = site.pki
    pki.issue(IdentityRole.GATEWAY, "gw")  # before the broker starts: it reads grants then
    provision_gate(site, capsys)
    top = unpacked(site, tmp_path)
    with PrivateBroker(tmp_path / "broker", pki=pki) as broker:  # the site's locked broker
        ingest, publisher = (files.endpoint(broker.url) for files in pki.gateway_pair("gw"))
        config = GatewayConfig(
            sites=(SiteSection(name="demo", gates=("g01",)),),
            broker=BrokerSection(**broker_config(ingest, publisher), client_id="gw"),
            store=StoreSection(path=tmp_path / "gateway.db"), http=HttpSection(port=0),
        )  # fmt: skip
        scanner = SimulatedScanner(tmp_path / "scanner").start()
        thermometer = SimulatedThermometer(tmp_path / "thermometer").start()
        node_config = top / "etc/gatepost/node.yaml"
        settings = yaml.safe_load(node_config.read_text())
        # Only what differs from a Pi: the broker's port, the ptys, the pins and the state.
        settings["broker"] |= {"url": str(broker.url), "heartbeat_s": 1}
        settings["devices"]["scanner"]["url"] = str(scanner.path)
        settings["devices"]["thermometer"]["url"] = str(thermometer.path)
        settings["node"]["state_dir"] = str(tmp_path / "state")
        shutil.copytree(top / "var/lib/gatepost", tmp_path / "state")
        settings |= {"gpio": {"pin_factory": "mock", "door": None}, "console": {"enabled": False}}
        node_config.write_text(yaml.safe_dump(settings))
        env = {**os.environ, "NOTIFY_SOCKET": notify_socket.getsockname()}
        try:
            with running_gateway(config) as gateway:
                token = "gpt_provision_test_command_token"
                gateway.store.add_token(hash_token(token), "command-desk", "command",
                                        datetime.now(UTC))  # fmt: skip
                process = spawn(python_module("edge.cli", "edge", "run", "--config",
                                              str(node_config)), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
                output = OutputLines(process)
                try:
                    assert "READY=1" in received(notify_socket, 20), output.lines[-20:]
                    deadline = time.monotonic() + 20
                    while True:
                        nodes = httpx.get(f"{gateway.url}/api/nodes", timeout=5,
                                          headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
                        g01 = [n for n in nodes if n["node"] == "g01"]
                        if g01 and g01[0]["online"]:
                            break
                        assert time.monotonic() < deadline, (nodes, output.lines[-20:])
                        time.sleep(0.3)
                    assert g01[0]["site"] == "demo" and g01[0]["expected"] is True
                finally:
                    assert stop(process, "gate g01") == 0, output.finish()[-20:]
        finally:
            scanner.stop()
            thermometer.stop()
