"""A/B install of a verified bundle: journal, slot, switch, restart, health check, rollback.

Layout under the root (default /opt/gatepost):

    a/  b/           slots: bundle/ (lock and wheels), venv/, VERSION (written last)
    current          symlink to the running slot, replaced by rename (atomic)
    update.journal   the step in progress; absent when no update is under way
    update.lock      held while an updater runs

Each step is written to the journal before it starts. A run that finds a journal left by
an updater that died (SIGKILL, power cut) first brings the node back to the old slot and
removes the half-installed one; docs/update.md draws the state machine.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.errors import GatepostError
from edge.updater.bundle import (
    WHEELS,
    BundleError,
    Manifest,
    VerifiedBundle,
    verify_bundle,
    version_key,
)
from edge.updater.health import read_health_file

log = logging.getLogger(__name__)

SLOTS = ("a", "b")
CURRENT = "current"
JOURNAL = "update.journal"
LOCK = "update.lock"
VERSION = "VERSION"
# Unpacked wheels and a venv take about three times the wheels' size; and some room left.
SPACE_FACTOR = 4
SPACE_MARGIN = 64 * 1024 * 1024
HEALTH_POLL_S = 0.5
RESTART_TIMEOUT_S = 120.0

Step = Literal["installing", "switching", "restarting", "health-check", "rolling-back"]
Result = Literal["installed", "rolled-back", "refused", "failed"]


class UpdateRefused(GatepostError):
    """A bundle this node will not install; nothing was changed.

    `version` is the bundle's once its signature was found good, else None.
    """

    def __init__(self, message: str, version: str | None = None) -> None:
        super().__init__(message)
        self.version = version


class Installer(Protocol):
    def install(self, slot: Path, manifest: Manifest) -> None:
        """Make `slot/venv` from the wheels in `slot/bundle/wheels`, offline."""


@dataclass(frozen=True)
class PipInstaller:
    """pip from the bundle's wheels only (`--no-index`), into a venv of the slot's own.

    Args:
        deps: install every dependency from the bundle, pinned by its lock; False installs
            the project's wheel alone (`--no-deps`), for bundles built with --project-only.
        system_site_packages: let the venv see the base interpreter's packages.
        with_pip: give the venv pip of its own (the next update runs from it); False
            drives this interpreter's pip at the venv (`pip --python`), which is faster.
    """

    deps: bool = True
    system_site_packages: bool = False
    with_pip: bool = True
    python: str = sys.executable

    def install(self, slot: Path, manifest: Manifest) -> None:
        venv = slot / "venv"
        options = ["--system-site-packages"] * self.system_site_packages
        options += [] if self.with_pip else ["--without-pip"]
        _run([self.python, "-m", "venv", *options, str(venv)], "creating the slot's venv")
        target = str(venv / "bin" / "python")
        pip = [target, "-m", "pip"] if self.with_pip else [self.python, "-m", "pip", "--python",
                                                          target]  # fmt: skip
        wheels = slot / "bundle" / WHEELS
        args = [*pip, "install", "--quiet", "--disable-pip-version-check", "--no-index",
                "--find-links", str(wheels)]  # fmt: skip
        if self.deps:
            lock = slot / "bundle" / "requirements.lock"
            args += ["--constraint", str(lock), f"gatepost=={manifest.version}"]
        else:
            args += ["--no-deps", str(slot / "bundle" / manifest.project_wheel)]
        _run(args, "installing the wheels")


def _run(argv: Sequence[str], what: str, timeout_s: float = 1800) -> None:
    try:
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GatepostError(f"{what}: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise GatepostError(f"{what} failed (exit {done.returncode}): {tail[0]}")


@dataclass(frozen=True)
class Outcome:
    """What an update did; `running` is the version running after it."""

    result: Result
    version: str | None
    running: str | None
    previous: str | None
    reason: str | None = None


def disk_free(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


@dataclass
class Updater:
    """Installs bundles into the idle slot under `root`; one updater at a time (a lock file).

    Args:
        root: the A/B root.
        keys: release keys the node trusts.
        restart: argv that restarts the node's service (it runs `root/current`).
        state_dir: where the node writes its health file.
        health_timeout_s: how long the new version has to come up healthy.
        installer: makes a slot's venv; PipInstaller by default.
        free_bytes: free space at a path (tests give a full disk).
        before_step: called with each step's name as it starts (tests stop here).
    """

    root: Path
    keys: Sequence[Ed25519PublicKey]
    restart: Sequence[str]
    state_dir: Path
    health_timeout_s: float
    installer: Installer = field(default_factory=PipInstaller)
    free_bytes: Callable[[Path], int] = disk_free
    before_step: Callable[[str], None] = lambda step: None

    # Slots.
    def current_slot(self) -> str | None:
        try:
            target = os.readlink(self.root / CURRENT)
        except OSError:
            return None
        return target if target in SLOTS else None

    def slot_version(self, slot: str | None) -> str | None:
        if slot is None:
            return None
        try:
            return (self.root / slot / VERSION).read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def running_version(self) -> str | None:
        return self.slot_version(self.current_slot())

    def _switch(self, slot: str | None) -> None:
        """Point `current` at `slot` (None: at nothing) in one rename."""
        link = self.root / CURRENT
        if slot is None:
            link.unlink(missing_ok=True)
        else:
            temp = self.root / f".{CURRENT}.new"
            temp.unlink(missing_ok=True)
            temp.symlink_to(slot)
            temp.replace(link)
        _sync_dir(self.root)

    # Journal.
    def _journal(self, step: Step, **facts: str | None) -> None:
        path = self.root / JOURNAL
        old = self._read_journal() or {}
        _write_atomic(path, json.dumps({**old, **facts, "step": step}).encode())
        self.before_step(step)

    def _read_journal(self) -> dict[str, str | None] | None:
        try:
            data = json.loads((self.root / JOURNAL).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _end_journal(self) -> None:
        (self.root / JOURNAL).unlink(missing_ok=True)
        _sync_dir(self.root)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK).open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UpdateRefused(f"{self.root}: another update is running") from None
            yield

    # The state machine.
    def recover(self) -> str | None:
        """Finish what a dead updater left: the old slot current again, the new one removed.

        Returns:
            What was done, or None when there was nothing to do.
        """
        journal = self._read_journal()
        if journal is None:
            return None
        slot, previous = journal.get("slot"), journal.get("previous")
        step = journal.get("step")
        # Before the switch the old slot still runs. After it (or if it may have happened)
        # the old slot is made current and its service started again.
        if step != "installing" and (step != "switching" or self.current_slot() != previous):
            self._switch(previous)
            self._restart_or_why()
        if slot in SLOTS and slot != self.current_slot():
            shutil.rmtree(self.root / slot, ignore_errors=True)
        self._end_journal()
        done = f"an update to {journal.get('version')} stopped at {step}: slot {slot} removed"
        log.warning("%s; %s is current", done, previous)
        return done

    def install(self, bundle: Path) -> Outcome:
        """Verify `bundle`, install it into the idle slot, switch, and keep it if healthy.

        Returns:
            The outcome; a refusal (`UpdateRefused`) changes nothing.

        Raises:
            UpdateRefused: bad signature or hash, not newer, no room, another updater.
        """
        with self._locked():
            self.recover()
            return self._install(bundle)

    def _install(self, bundle: Path) -> Outcome:
        try:
            manifest = verify_bundle(bundle, self.keys).manifest
        except BundleError as exc:
            raise UpdateRefused(str(exc)) from None
        previous_slot = self.current_slot()
        running = self.slot_version(previous_slot)
        self._check(manifest, running)
        slot = "b" if previous_slot == "a" else "a"
        self._journal("installing", slot=slot, previous=previous_slot, version=manifest.version)
        try:
            self._fill_slot(bundle, slot, manifest)
        except (GatepostError, OSError) as exc:
            shutil.rmtree(self.root / slot, ignore_errors=True)
            self._end_journal()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return Outcome("failed", manifest.version, running, running, f"slot {slot}: {reason}")
        self._journal("switching")
        self._switch(slot)
        self._journal("restarting")
        started = datetime.now(UTC)
        unhealthy = self._restart_or_why()
        self._journal("health-check")
        if unhealthy is None:
            unhealthy = self._wait_healthy(manifest.version, started)
        if unhealthy is None:
            self._end_journal()
            log.info("installed %s in slot %s (was %s)", manifest.version, slot, running)
            return Outcome("installed", manifest.version, manifest.version, running)
        self._journal("rolling-back")
        self._switch(previous_slot)
        if failed := self._restart_or_why():
            unhealthy += f"; then {failed}"
        self._end_journal()
        log.warning("%s did not come up (%s): back to %s", manifest.version, unhealthy, running)
        return Outcome("rolled-back", manifest.version, running, running, unhealthy)

    def _check(self, manifest: Manifest, running: str | None) -> None:
        if not manifest.complete and getattr(self.installer, "deps", True):
            raise UpdateRefused(
                f"bundle {manifest.version} holds only the project's wheel (--project-only); "
                "this node installs complete bundles",
                manifest.version,
            )
        older = running and version_key(manifest.version) <= version_key(running)
        if older and not manifest.downgrade:
            raise UpdateRefused(
                f"version {manifest.version} is not newer than the running {running}; "
                "installing it needs a bundle built with --allow-downgrade",
                manifest.version,
            )
        need = manifest.payload_bytes * SPACE_FACTOR + SPACE_MARGIN
        free = self.free_bytes(self.root)
        if free < need:
            raise UpdateRefused(f"{self.root}: {free // 2**20} MiB free, installing "
                                f"{manifest.version} needs {need // 2**20} MiB",
                                manifest.version)  # fmt: skip

    def _fill_slot(self, bundle: Path, slot: str, manifest: Manifest) -> None:
        place = self.root / slot
        shutil.rmtree(place, ignore_errors=True)
        place.mkdir()
        # Each file is checked against the verified manifest again as it is written: the
        # bundle on disk may have changed since it was verified.
        VerifiedBundle(bundle, manifest).extract(place / "bundle")
        self.installer.install(place, manifest)
        _write_atomic(place / VERSION, f"{manifest.version}\n".encode())

    def _restart_or_why(self) -> str | None:
        """Restart the node's service; None when the command succeeded, else why not."""
        try:
            _run(self.restart, "restarting the node's service", RESTART_TIMEOUT_S)
        except GatepostError as exc:
            log.warning("%s", exc)
            return str(exc)
        return None

    def _wait_healthy(self, version: str, since: datetime) -> str | None:
        """None once the node runs `version`, connected, devices answering; else why not."""
        deadline = time.monotonic() + self.health_timeout_s
        why = "the node wrote no health file since its restart"
        while time.monotonic() < deadline:
            health = read_health_file(self.state_dir)
            if health is not None and health.at >= since:
                if health.version != version:
                    why = f"the node runs {health.version}, not {version}"
                elif not health.connected:
                    why = "the node is not connected to the broker"
                elif failed := health.failed_devices():
                    why = f"devices not answering: {', '.join(failed)}"
                else:
                    return None
            time.sleep(HEALTH_POLL_S)
        return f"{why} within {self.health_timeout_s:g} s"


def _write_atomic(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.new")
    with temp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    temp.replace(path)
    _sync_dir(path.parent)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
