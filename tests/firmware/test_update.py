"""Signed update bundles: `fw bundle build` and the node's A/B updater (edge/updater).

Bundles hold the project's real wheel (built here at a few versions) and nothing else, and
each slot's venv gets it with `--no-deps`: a full offline install of the lock takes
minutes. The node's service is a fake that, on restart, reads the version installed in
`current` and writes the node's health file as a running node would.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.cli import main
from edge.contract import catalogue, topics
from edge.contract.presence import UpdateReport
from edge.contract.topics import Role, Site
from edge.credentials.issuer import Signer
from edge.updater.bundle import BundleError, b64url, verify_bundle
from edge.updater.health import UPDATE_REPORT, NodeReporter, read_health_file
from edge.updater.install import JOURNAL, PipInstaller, Updater, UpdateRefused

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "edge", "gateway", "simulators", "firmware-tools")
OLD, NEW, NEWER = "0.2.0", "0.3.0", "0.4.0"

# The node's service: "restarting" it starts the slot `current` points at, which reports
# the version installed there; versions listed in <state>/sick come up with a dead scanner.
FAKE_SERVICE = """
import json, os, subprocess, sys
from datetime import UTC, datetime
from pathlib import Path
root, state = Path(sys.argv[1]), Path(sys.argv[2])
python = root / "current" / "venv" / "bin" / "python"
version = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('gatepost'))"],
                         capture_output=True, text=True, check=True).stdout.strip()
sick = (state / "sick").read_text().split() if (state / "sick").exists() else []
health = {"version": version, "pid": os.getpid(), "at": datetime.now(UTC).isoformat(),
          "connected": True, "devices": {"scanner": "fault" if version in sick else "ok"}}
(state / "health.json").write_text(json.dumps(health))
with (state / "restarts").open("a") as log:
    log.write(version + "\\n")
"""


def _build_wheel(version: str, into: Path, work: Path) -> None:
    source = work / f"src-{version}"
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / name, source / name)
    pyproject = source / "pyproject.toml"
    text = re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', pyproject.read_text())
    pyproject.write_text(text)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(into), str(source)], check=True,
    )  # fmt: skip


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel at 0.2.0, 0.3.0 and 0.4.0, built from this tree."""
    folder = tmp_path_factory.mktemp("wheels")
    work = tmp_path_factory.mktemp("sources")
    for version in (OLD, NEW, NEWER):
        _build_wheel(version, folder, work)
    return folder


@pytest.fixture(scope="module")
def release_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("release") / "release.pem"
    assert main(["fw", "keygen", "--alg", "eddsa", "--out", str(path)]) == 0
    return path


def build(wheels: Path, key: Path, version: str, out: Path, *extra: str) -> Path:
    argv = ["fw", "bundle", "build", "--version", version, "--release-key", str(key),
            "--wheels", str(wheels), "--project-only", "--out", str(out), *extra]  # fmt: skip
    assert main(argv) == 0
    return out


def private_key(key: Path) -> Ed25519PrivateKey:
    private = Signer.load(key, issuer="").key
    assert isinstance(private, Ed25519PrivateKey)
    return private


def updater(root: Path, key: Path, **changes: object) -> Updater:
    state = root.parent / "state"
    state.mkdir(exist_ok=True)
    service = root.parent / "service.py"
    service.write_text(FAKE_SERVICE)
    settings: dict[str, object] = {
        "keys": [private_key(key).public_key()],
        "restart": [sys.executable, str(service), str(root), str(state)],
        "state_dir": state, "health_timeout_s": 10.0,
        "installer": PipInstaller(deps=False, with_pip=False),
    }  # fmt: skip
    settings.update(changes)
    return Updater(root, **settings)  # type: ignore[arg-type]


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root with its link target or size: what 'nothing changed' compares."""
    seen = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        seen[rel] = os.readlink(path) if path.is_symlink() else str(path.lstat().st_size)
    return seen


@pytest.fixture(scope="module")
def installed(wheels: Path, release_key: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A node root with 0.2.0 installed and current (slot a)."""
    base = tmp_path_factory.mktemp("installed")
    bundle = build(wheels, release_key, OLD, base / "old.tar")
    outcome = updater(base / "root", release_key).install(bundle)
    assert outcome.result == "installed"
    return base / "root"


@pytest.fixture
def root(installed: Path, tmp_path: Path) -> Path:
    """A copy of the installed node root of this test's own."""
    copy = tmp_path / "root"
    shutil.copytree(installed, copy, symlinks=True)
    return copy


@pytest.fixture
def new_bundle(wheels: Path, release_key: Path, tmp_path: Path) -> Path:
    """A bundle of 0.3.0, signed by the release key."""
    return build(wheels, release_key, NEW, tmp_path / "new.tar")


def current(root: Path) -> str:
    return os.readlink(root / "current")


def installed_version(root: Path, slot: str) -> str:
    python = root / slot / "venv" / "bin" / "python"
    code = "import importlib.metadata as m; print(m.version('gatepost'))"
    return subprocess.run([python, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


# --- install ---------------------------------------------------------------------


def test_install__new_version_goes_into_the_idle_slot_and_comes_up(
    root: Path, wheels: Path, release_key: Path, tmp_path: Path
) -> None:
    bundle = build(wheels, release_key, NEW, tmp_path / "new.tar")
    node = updater(root, release_key)
    assert (current(root), node.running_version()) == ("a", OLD)

    outcome = node.install(bundle)

    assert (outcome.result, outcome.running, outcome.previous) == ("installed", NEW, OLD)
    assert current(root) == "b"
    assert installed_version(root, "b") == NEW
    assert installed_version(root, "a") == OLD  # the old slot is kept for the next rollback
    health = read_health_file(node.state_dir)
    assert health is not None and health.version == NEW
    assert not (root / JOURNAL).exists()


def test_bundle__holds_the_signed_manifest_the_wheel_and_the_lock(
    wheels: Path, release_key: Path, tmp_path: Path
) -> None:
    bundle = build(wheels, release_key, NEW, tmp_path / "new.tar")
    with tarfile.open(bundle) as tar:
        names = set(tar.getnames())
    assert names == {"manifest.json", "manifest.sig", "requirements.lock",
                     f"wheels/gatepost-{NEW}-py3-none-any.whl"}  # fmt: skip
    manifest = verify_bundle(bundle, [private_key(release_key).public_key()]).manifest
    assert (manifest.version, manifest.downgrade, manifest.complete) == (NEW, False, False)


def test_bundle_build__refuses_a_version_it_has_no_wheel_of(
    wheels: Path, release_key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["fw", "bundle", "build", "--version", "9.9.9", "--release-key", str(release_key),
            "--wheels", str(wheels), "--project-only", "--out", str(tmp_path / "x.tar")]  # fmt: skip
    assert main(argv) == 1
    assert "--version 9.9.9: no gatepost wheel of it" in capsys.readouterr().err
    assert not (tmp_path / "x.tar").exists()


def test_bundle_build__without_project_only_needs_every_pinned_wheel(
    wheels: Path, release_key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["fw", "bundle", "build", "--version", NEW, "--release-key", str(release_key),
            "--wheels", str(wheels), "--out", str(tmp_path / "x.tar")]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert re.search(r"no wheel for \d+ pins: .*anyio==4", err), err
    assert not (tmp_path / "x.tar").exists()


# --- refused, nothing changed ---------------------------------------------------------


def _rewrite(bundle: Path, out: Path, change: dict[str, bytes]) -> Path:
    """A copy of `bundle` with some members' bytes replaced (sizes kept as given)."""
    with tarfile.open(bundle) as source, tarfile.open(out, "w") as target:
        for member in source.getmembers():
            stream = source.extractfile(member)
            assert stream is not None
            data = change.get(member.name, stream.read())
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    return out


def _flip_a_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


def _member(bundle: Path, name: str) -> bytes:
    with tarfile.open(bundle) as tar:
        stream = tar.extractfile(name)
        assert stream is not None
        return stream.read()


@pytest.mark.parametrize("tamper", ["wheel", "manifest", "other-key", "truncated", "not-a-tar"])
def test_install__a_bad_bundle_is_refused_and_nothing_changes(
    root: Path, wheels: Path, release_key: Path, tmp_path: Path, tamper: str
) -> None:
    good = build(wheels, release_key, NEW, tmp_path / "new.tar")
    wheel = f"wheels/gatepost-{NEW}-py3-none-any.whl"
    bad = tmp_path / "bad.tar"
    expected = {
        "wheel": "does not match its sha256",
        "manifest": "not by a release key this node trusts",
        "other-key": "not by a release key this node trusts",
        "truncated": "truncated",
        "not-a-tar": "not a readable bundle",
    }[tamper]
    if tamper == "wheel":
        _rewrite(good, bad, {wheel: _flip_a_byte(_member(good, wheel))})
    elif tamper == "manifest":
        text = _member(good, "manifest.json").replace(b'"downgrade": false', b'"downgrade": true')
        _rewrite(good, bad, {"manifest.json": text})
    elif tamper == "other-key":
        other = tmp_path / "other.pem"
        assert main(["fw", "keygen", "--alg", "eddsa", "--out", str(other)]) == 0
        build(wheels, other, NEW, bad)
    elif tamper == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    else:
        bad.write_bytes(b"PK\x03\x04 not a tar at all")
    before = snapshot(root)

    with pytest.raises(UpdateRefused, match=expected):
        updater(root, release_key).install(bad)

    assert snapshot(root) == before
    assert not (root.parent / "state" / "restarts").exists()


def test_install__a_bundle_swapped_after_its_check_fails_and_the_old_version_runs_on(
    root: Path, new_bundle: Path, release_key: Path
) -> None:
    wheel = f"wheels/gatepost-{NEW}-py3-none-any.whl"
    swapped = _rewrite(new_bundle, root.parent / "swapped.tar",
                       {wheel: _flip_a_byte(_member(new_bundle, wheel))})  # fmt: skip

    def swap(step: str) -> None:
        if step == "installing":  # verified already: now the file on disk changes
            swapped.replace(new_bundle)

    node = updater(root, release_key, before_step=swap)
    before = snapshot(root)

    outcome = node.install(new_bundle)

    assert outcome.result == "failed"
    assert outcome.reason == f"slot b: {new_bundle}: {wheel} changed since it was verified"
    assert snapshot(root) == before and current(root) == "a"


def test_install__an_older_version_is_refused_unless_signed_as_a_downgrade(
    root: Path, wheels: Path, release_key: Path, tmp_path: Path
) -> None:
    node = updater(root, release_key)
    older = build(wheels, release_key, OLD, tmp_path / "same.tar")
    before = snapshot(root)

    with pytest.raises(UpdateRefused, match=r"0\.2\.0 is not newer than the running 0\.2\.0"):
        node.install(older)
    assert snapshot(root) == before

    # Up to 0.4.0, then back to 0.3.0 with the signed flag.
    assert node.install(build(wheels, release_key, NEWER, tmp_path / "newer.tar")).result == (
        "installed"
    )
    plain = build(wheels, release_key, NEW, tmp_path / "plain.tar")
    with pytest.raises(UpdateRefused, match="--allow-downgrade"):
        node.install(plain)
    downgrade = build(wheels, release_key, NEW, tmp_path / "down.tar", "--allow-downgrade")
    outcome = node.install(downgrade)
    assert (outcome.result, outcome.running, outcome.previous) == ("installed", NEW, NEWER)
    assert installed_version(root, current(root)) == NEW


def test_install__a_full_disk_is_refused_before_anything_is_written(
    root: Path, wheels: Path, release_key: Path, tmp_path: Path
) -> None:
    bundle = build(wheels, release_key, NEW, tmp_path / "new.tar")
    before = snapshot(root)
    node = updater(root, release_key, free_bytes=lambda path: 10 * 2**20)

    with pytest.raises(UpdateRefused, match=r"10 MiB free, installing 0\.3\.0 needs \d+ MiB"):
        node.install(bundle)

    assert snapshot(root) == before


def test_install__a_project_only_bundle_is_refused_by_a_node_that_installs_dependencies(
    root: Path, wheels: Path, release_key: Path, tmp_path: Path
) -> None:
    bundle = build(wheels, release_key, NEW, tmp_path / "new.tar")
    before = snapshot(root)
    with pytest.raises(UpdateRefused, match="holds only the project's wheel"):
        updater(root, release_key, installer=PipInstaller()).install(bundle)
    assert snapshot(root) == before


# --- health check and rollback -------------------------------------------------------


def test_install__a_version_that_does_not_come_up_healthy_is_rolled_back(
    root: Path, wheels: Path, release_key: Path, tmp_path: Path
) -> None:
    node = updater(root, release_key, health_timeout_s=2.0)
    (node.state_dir / "sick").write_text(NEW)

    outcome = node.install(build(wheels, release_key, NEW, tmp_path / "new.tar"))

    assert outcome.result == "rolled-back"
    assert outcome.reason == "devices not answering: scanner within 2 s"
    assert (outcome.running, outcome.previous) == (OLD, OLD)
    assert current(root) == "a"
    # The service was restarted on the new version, then on the old one, which runs now.
    assert (node.state_dir / "restarts").read_text().split() == [NEW, OLD]
    health = read_health_file(node.state_dir)
    assert health is not None and health.version == OLD
    assert not (root / JOURNAL).exists()


def test_install__a_service_that_writes_no_health_file_is_rolled_back(
    root: Path, wheels: Path, release_key: Path, tmp_path: Path
) -> None:
    node = updater(root, release_key, health_timeout_s=1.0, restart=["true"])
    outcome = node.install(build(wheels, release_key, NEW, tmp_path / "new.tar"))
    assert outcome.result == "rolled-back"
    assert outcome.reason == "the node wrote no health file since its restart within 1 s"
    assert current(root) == "a"


def test_install__a_restart_command_that_fails_is_rolled_back(
    root: Path, new_bundle: Path, release_key: Path
) -> None:
    node = updater(root, release_key, restart=["false"])
    outcome = node.install(new_bundle)
    assert outcome.result == "rolled-back"
    assert outcome.reason == (
        "restarting the node's service failed (exit 1): no output; "
        "then restarting the node's service failed (exit 1): no output"
    )
    assert current(root) == "a" and not (root / JOURNAL).exists()


# --- crash safety ---------------------------------------------------------------------

KILLED_UPDATER = """
import sys, time
from pathlib import Path
sys.path[:0] = {paths!r}
from tests.firmware.test_update import updater

def block(step):
    if step == {step!r}:
        Path({reached!r}).write_text(step)
        time.sleep(600)

updater(Path({root!r}), Path({key!r}), before_step=block).install(Path({bundle!r}))
"""


@pytest.mark.parametrize(("step", "current_when_killed"), [("switching", "a"),
                                                           ("health-check", "b")])  # fmt: skip
def test_install__sigkill_mid_install_leaves_the_old_version_and_a_rerun_cleans_up(
    root: Path, new_bundle: Path, release_key: Path, step: str, current_when_killed: str
) -> None:
    bundle = new_bundle
    reached = root.parent / "reached"
    script = KILLED_UPDATER.format(
        paths=[str(REPO), str(REPO / "firmware-tools")], step=step, reached=str(reached),
        root=str(root), key=str(release_key), bundle=str(bundle),
    )  # fmt: skip
    process = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while not reached.exists():
            assert process.poll() is None, "the updater ended before the step"
            assert time.monotonic() < deadline, f"the updater never reached {step}"
            time.sleep(0.1)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    # Killed before the switch: the old slot is current. After it: what the next run undoes.
    assert current(root) == current_when_killed
    assert json.loads((root / JOURNAL).read_text())["step"] == step
    assert (root / "b").exists()

    node = updater(root, release_key)
    assert node.recover() is not None
    assert current(root) == "a" and node.running_version() == OLD
    assert not (root / "b").exists() and not (root / JOURNAL).exists()
    restarts = node.state_dir / "restarts"
    if current_when_killed == "a":  # never stopped: no restart was needed
        assert not restarts.exists()
    else:  # the new version had been started: the old one is started again
        assert restarts.read_text().split() == [NEW, OLD]

    assert node.install(bundle).result == "installed"
    assert current(root) == "b" and installed_version(root, "b") == NEW


# --- the command and the report ------------------------------------------------------------


def test_edge_update__installs_from_the_config_and_leaves_the_report(
    root: Path, new_bundle: Path, release_key: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    node = updater(root, release_key)
    bundle = new_bundle
    config = root.parent / "gate.yaml"
    config.write_text(json.dumps({
        "node": {"site": "north", "name": "g01", "state_dir": str(node.state_dir)},
        "update": {"release_keys": [b64url(private_key(release_key).public_key().public_bytes_raw())],
                   "restart_command": list(node.restart), "health_timeout_s": 10},
    }))  # fmt: skip
    # The command installs dependencies too; this bench has only the project's wheel.
    bench = functools.partial(Updater, installer=PipInstaller(deps=False, with_pip=False))
    monkeypatch.setattr("edge.updater.cli.Updater", bench)
    capsys.readouterr()

    code = main(["edge", "update", str(bundle), "--config", str(config), "--root", str(root)])

    assert (code, capsys.readouterr().out.strip()) == (0, f"installed (running {NEW})")
    report = UpdateReport.model_validate_json((node.state_dir / UPDATE_REPORT).read_bytes())
    assert (report.result, report.version, report.previous_version) == ("installed", NEW, OLD)

    code = main(["edge", "update", str(bundle), "--config", str(config), "--root", str(root)])
    assert code == 1
    assert "refused (running 0.3.0): version 0.3.0 is not newer" in capsys.readouterr().out
    report = UpdateReport.model_validate_json((node.state_dir / UPDATE_REPORT).read_bytes())
    assert (report.result, report.version, report.running_version) == ("refused", NEW, NEW)


def test_edge_update__a_bad_release_key_in_the_config_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gate.yaml"
    config.write_text(json.dumps({"update": {"release_keys": ["A" * 43 + "!"]}}))
    code = main(["edge", "update", str(tmp_path / "x.tar"), "--config", str(config),
                 "--root", str(tmp_path / "root")])  # fmt: skip
    assert code == 1
    assert "update.release_keys.0" in capsys.readouterr().err
    assert not (tmp_path / "root").exists()


class _Uplink:
    """What NodeReporter needs of the uplink: whether it is connected, and a publish."""

    def __init__(self) -> None:
        self.connected = True
        self.sent: list[tuple[str, bytes]] = []

    def publish_now(self, topic: str, payload: UpdateReport) -> bool:
        self.sent.append((topic, catalogue.encode(payload)))
        return True


def test_node_reporter__publishes_each_new_report_once_retained(tmp_path: Path) -> None:
    node = Site("north").node(Role.GATE, "g01")
    reporter, uplink = NodeReporter(tmp_path, "0.3.0"), _Uplink()
    report = UpdateReport(node_time=datetime.now(UTC), result="installed", version="0.3.0",
                          running_version="0.3.0", previous_version="0.2.0")  # fmt: skip
    (tmp_path / UPDATE_REPORT).write_text(report.model_dump_json())

    for _ in range(2):
        reporter._next = 0.0
        reporter.tick(uplink, node, {"scanner": "ok"})  # type: ignore[arg-type]

    assert len(uplink.sent) == 1
    topic, payload = uplink.sent[0]
    assert topic == topics.update(node) == "gatepost/v1/north/gate/g01/update"
    message = catalogue.decode(topic, payload)
    assert message.payload == report and message.spec.retained
    health = read_health_file(tmp_path)
    assert health is not None and (health.version, health.connected) == ("0.3.0", True)


# --- a real node against a locked site broker ------------------------------------------------


@pytest.mark.broker
@pytest.mark.slow
def test_a_running_depot_node_writes_its_health_file_and_publishes_the_update_report(
    tmp_path: Path,
) -> None:
    from edge.depot.config import load_config, write_config
    from edge.depot.node import DepotNode
    from firmware_tools.site_pki import IdentityRole
    from simulators.devices.depot_scenarios import Depot, DepotZone
    from simulators.devices.modbus_bus import CompressedClock
    from tests.conftest import Subscriber, locked_site, running_node

    site = Site("north")
    node = site.node(Role.DEPOT, "d01")
    identities = [(IdentityRole.DEPOT, "d01"), (IdentityRole.ADMIN, "tech")]
    with locked_site(tmp_path, site.name, identities) as broker:
        bus = Depot([DepotZone("dry-store", 1, "room")], []).bus(
            tmp_path / "rs485", clock=CompressedClock(1.0)
        )
        config = write_config(
            tmp_path / "depot.yaml", site=site.name, name="d01",
            endpoint=broker.endpoint("depot-d01"),
            buses=[{"url": str(bus.path), "poll_s": 1.0,
                    "sensors": [{"zone": "dry-store", "slave_id": 1}]}],
        )  # fmt: skip
        state = tmp_path / "state-d01"
        state.mkdir()
        report = UpdateReport(node_time=datetime.now(UTC), result="rolled-back", version="0.3.0",
                              running_version="0.2.0", previous_version="0.2.0",
                              reason="devices not answering: dry-store within 120 s")  # fmt: skip
        (state / UPDATE_REPORT).write_text(report.model_dump_json(exclude_none=True))
        tech = Subscriber.connect(broker.endpoint("admin-tech"), "tech")
        tech.subscribe(topics.update(node))
        with bus, running_node(DepotNode(load_config(config))):
            message = tech.next(timeout_s=20)
            deadline = time.monotonic() + 20
            health = read_health_file(state)
            while not (health and health.connected and health.devices.get("dry-store") == "ok"):
                assert time.monotonic() < deadline, f"no healthy health file: {health}"
                time.sleep(0.2)
                health = read_health_file(state)
        tech.close()
        # Retained: a technician who looks later still finds it.
        later = Subscriber.connect(broker.endpoint("admin-tech"), "tech-later")
        later.subscribe(topics.update(node))
        kept = later.next(timeout_s=5)
        later.close()
    assert message.topic == topics.update(node)
    assert catalogue.decode(message.topic, message.payload).payload == report
    assert kept.retain and kept.payload == message.payload
    from importlib.metadata import version

    assert health.version == version("gatepost")


@pytest.fixture
def tiny_disk(tmp_path: Path, installed: Path) -> Iterator[Path]:
    """A tmpfs with the installed root on it and 1 MiB to spare (root and mount needed)."""
    used = sum(path.lstat().st_size for path in installed.rglob("*"))
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    size_kib = used // 1024 + 2048  # tmpfs rounds each file up to a page
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs",
                           str(mountpoint)], capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        shutil.copytree(installed, mountpoint / "root", symlinks=True)
        yield mountpoint / "root"
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def test_install__a_tiny_disk_is_refused_by_its_real_free_space(
    tiny_disk: Path, new_bundle: Path, release_key: Path
) -> None:
    before = snapshot(tiny_disk)
    with pytest.raises(UpdateRefused, match=r"[0-9] MiB free, installing 0\.3\.0 needs"):
        updater(tiny_disk, release_key).install(new_bundle)
    assert snapshot(tiny_disk) == before


def test_install__a_disk_that_fills_up_mid_install_fails_and_the_old_version_runs_on(
    tiny_disk: Path, new_bundle: Path, release_key: Path
) -> None:
    # statvfs says there is room (another process then takes it), so the install starts.
    node = updater(tiny_disk, release_key, free_bytes=lambda path: 2**40)
    before = snapshot(tiny_disk)

    outcome = node.install(new_bundle)

    assert outcome.result == "failed"
    assert outcome.reason is not None and "No space left on device" in outcome.reason
    assert (outcome.running, outcome.previous) == (OLD, OLD)
    assert snapshot(tiny_disk) == before  # the half-written slot b is gone again
    assert not (node.state_dir / "restarts").exists()


# --- properties of the bundle check ------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    data: bytes
    key: Ed25519PrivateKey
    files: dict[str, bytes]


@pytest.fixture(scope="module")
def signed(wheels: Path, release_key: Path, tmp_path_factory: pytest.TempPathFactory) -> Signed:
    """A bundle's bytes, its key, and the files it gives when intact."""
    folder = tmp_path_factory.mktemp("property")
    path = build(wheels, release_key, NEW, folder / "new.tar")
    key = private_key(release_key)
    return Signed(path.read_bytes(), key, _extracted(path, key, folder / "files"))


def _extracted(bundle: Path, key: Ed25519PrivateKey, into: Path) -> dict[str, bytes]:
    verified = verify_bundle(bundle, [key.public_key()])
    verified.extract(into)
    return {str(path.relative_to(into)): path.read_bytes()
            for path in sorted(into.rglob("*")) if path.is_file()}  # fmt: skip


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(where=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7), cut=st.booleans())
def test_verify__a_flipped_bit_or_a_cut_never_yields_other_files(
    signed: Signed, tmp_path: Path, where: float, bit: int, cut: bool
) -> None:
    """Whatever bit is flipped or wherever the file ends, the bundle is refused, or (a bit of
    tar padding or an unread header field) it gives exactly the files that were signed."""
    data = signed.data
    position = int(where * len(data))
    if cut:
        damaged = data[:position]
    else:
        damaged = data[:position] + bytes([data[position] ^ (1 << bit)]) + data[position + 1 :]
    bad = tmp_path / "bad.tar"
    bad.write_bytes(damaged)
    into = tmp_path / f"bad-{position}-{bit}-{cut}"
    try:
        files = _extracted(bad, signed.key, into)
    except BundleError:
        return
    finally:
        shutil.rmtree(into, ignore_errors=True)
    assert files == signed.files
