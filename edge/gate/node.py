"""`gatepost edge run`: a gate node, started as a flat list of steps and stopped in reverse."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from edge.configfile import ConfigError
from edge.contract import topics
from edge.contract.catalogue import Message
from edge.contract.documents import SignedNodeConfig, SignedRevocationList, SignedTrustList
from edge.contract.presence import Birth, DeviceState, Health
from edge.contract.topics import Role, TopicKind
from edge.credentials.store import TrustStore
from edge.credentials.trust import DocumentRefused, root_keys_for
from edge.credentials.verifier import Verifier
from edge.devices.link import REOPEN_EVERY_S, DeviceLink
from edge.devices.registry import DRIVERS
from edge.errors import ContractError
from edge.gate.checkpoint import GateCheckpoint
from edge.gate.config import GateConfig
from edge.gate.gpio.gateio import GateIO
from edge.gate.remote import NodeConfigStore
from edge.gate.views import NodeView
from edge.lifecycle import ProcessUsage
from edge.outbox import Outbox
from edge.uplink import Uplink

if TYPE_CHECKING:
    from edge.devices.camera.reader import CameraLink

log = logging.getLogger(__name__)

# A code waiting for a temperature and the report cut-off are checked this often.
TICK_S = 0.25
OUTBOX_CHECKPOINT_S = 2.0
# Faults reported before a restart and not raised again by then are cleared: this long
# after the slowest part would have timed out, so ports have opened and parts spoken.
FAULT_RECONCILE_MARGIN_S = 5.0
# A worker thread that died is started again after this long; its fault is cleared once
# it has run this much longer without dying (one that dies at once stays in fault).
WORKER_RESTART_S = 2.0
WORKER_HEALTHY_S = 10.0


class GateNode:
    """One gate: devices, decision, barrier, outbox, uplink and console.

    Args:
        config: the validated configuration.
        pin_factory: gpiozero pin factory (a test's MockFactory); None: from the config.
        clock: wall clock (aware).
    """

    def __init__(
        self, config: GateConfig, *, pin_factory: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self.config = config
        self.node = config.node_id
        self.clock = clock
        self.pin_factory = pin_factory
        self.started = time.monotonic()  # uptime: the wall clock may step at boot (NTP)
        self.usage = ProcessUsage()
        self.links: list[DeviceLink | CameraLink] = []
        self.io: GateIO | None = None
        self.console: Any = None
        self.console_url: str | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._outbox_faults: set[str] = set()
        self._worker_faults: set[str] = set()
        self._restarted: dict[str, float] = {}  # worker -> when it was started again
        self._shown: tuple[object, ...] = ()

    def run(self, stop: threading.Event) -> None:
        """Run until `stop` is set; every step that started is undone on the way out."""
        self._stop = stop
        try:
            self.init_outbox()
            self.init_trust()
            self.init_gpio()
            self.init_checkpoint()
            self.init_devices()
            self.init_uplink()
            self.init_console()
            log.info("gate %s running", self.node)
            next_checkpoint = 0.0
            reconcile_at = time.monotonic() + self._fault_settle_s()
            while not stop.wait(TICK_S):
                self.checkpoint.tick()
                self._watch_outbox()
                self._watch_workers()
                self._refresh_console()
                if time.monotonic() >= next_checkpoint:
                    self.outbox.checkpoint()
                    next_checkpoint = time.monotonic() + OUTBOX_CHECKPOINT_S
                if reconcile_at and time.monotonic() >= reconcile_at:
                    self.checkpoint.reconcile_faults(self.present_faults())
                    reconcile_at = 0.0
        finally:
            self.shutdown()

    def init_outbox(self) -> None:
        """The outbox, and the uplink that drains it (started last, once all is in place)."""
        state = self.config.node.state_dir
        self.outbox = Outbox(state / "outbox.db", self.node, self.config.outbox.capacity)
        site = self.node.site
        self.uplink = Uplink(
            self.config.broker.settings(), self.node, self.outbox,
            birth=self.birth, health=self.health,
            downlink=(topics.config(site, self.node.name), topics.trust(site),
                      topics.revocations(site)),
            on_document=self.on_document, on_refused=self.on_bad_document,
        )  # fmt: skip

    def init_trust(self) -> None:
        keys: list[Ed25519PublicKey] = []
        for path in self.config.trust.root_keys:
            try:
                key = load_pem_public_key(path.read_bytes())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"trust.root_keys: {path}: {exc}") from None
            if not isinstance(key, Ed25519PublicKey):
                raise ConfigError(f"trust.root_keys: {path} is not an Ed25519 public key")
            keys.append(key)
        root_keys = root_keys_for(keys)
        state = self.config.node.state_dir
        self.trust = TrustStore(root_keys, state / "trust")
        for refusal in self.trust.load(self.clock()):
            log.warning("kept trust state refused: %s", refusal)
        self.remote_config = NodeConfigStore(root_keys, state / "config.json", self.config)
        self.remote_config.load(self.clock())
        self.verifier = Verifier(self.trust, self.config.dcc_rules)

    def init_gpio(self) -> None:
        # The relay goes to rest first; the checkpoint it calls back into comes next.
        self.io = GateIO(
            self.config.gpio,
            on_exit=lambda: self.checkpoint.on_exit_button(),  # noqa: PLW0108
            on_fault=lambda change: self.checkpoint.on_fault(change),  # noqa: PLW0108
            pin_factory=self.pin_factory,
        )

    def init_checkpoint(self) -> None:
        assert self.io is not None
        effective = self.remote_config.effective
        self.checkpoint = GateCheckpoint(
            gate=self.node.name, outbox=self.outbox, verifier=self.verifier,
            policy=effective.policy, actions=self.io,
            direction=self.config.node.direction, zone=self.config.zone,
            cutoff_hour=effective.report.cutoff_hour,
            id_hash_key=self.config.secrets.id_hash_key(), node_view=self.node_view,
            on_event=self.uplink.wake,
            clock=self.clock,
        )  # fmt: skip

    def init_devices(self) -> None:
        devices = self.config.devices
        for name in ("scanner", "thermometer", "thermal_array"):
            section = getattr(devices, name)
            if section is None:
                continue
            profile = section.load()
            link = DeviceLink(
                name.replace("_", "-"), section.url, profile, DRIVERS[profile.part],
                on_reading=self.checkpoint.on_reading, on_fault=self.checkpoint.on_fault,
            )  # fmt: skip
            link.start(self._stop)
            self.links.append(link)
        if devices.camera is not None:
            # OpenCV costs a node without a camera some 30 MB: imported only when fitted.
            from edge.devices.camera.profile import CameraProfile
            from edge.devices.camera.reader import CameraLink

            profile = devices.camera.load()
            if not isinstance(profile, CameraProfile):
                raise ConfigError(f"devices.camera.profile: {profile.part} is not a camera")
            camera = CameraLink(
                "camera", devices.camera.source, profile,
                on_reading=self.checkpoint.on_reading, on_fault=self.checkpoint.on_fault,
            )  # fmt: skip
            camera.start(self._stop)
            self.links.append(camera)

    def init_uplink(self) -> None:
        self.uplink.settings.broker.check()  # a wrong certificate path stops the start, named
        self._start_thread("uplink", self.uplink.run)

    def init_console(self) -> None:
        settings = self.config.console
        if not settings.enabled:
            return
        from edge.gate.console.app import create_app
        from edge.gate.console.pairing import Pairing
        from edge.gate.console.routes_pairing import device_trust
        from edge.gate.console.server import ConsoleServer
        from edge.gate.console.sessions import VolunteerSessions

        try:
            app = create_app(
                self.checkpoint, language=settings.language, words_file=settings.words_file,
                stream_limits=settings.streams, sessions=VolunteerSessions(settings.sessions),
            )  # fmt: skip
        except (OSError, ValueError) as exc:  # the site's own wording file
            raise ConfigError(f"console.words_file: {exc}") from None
        # Beyond this machine only paired devices reach it, over HTTPS (config refuses else).
        pairing = Pairing.in_folder(self.config.node.state_dir, settings.paired_devices_max)
        self.console = ConsoleServer(
            app, settings.host, settings.port, allowed_hosts=settings.allowed_hosts,
            tls=settings.certificate(), guard=device_trust(pairing),
        )  # fmt: skip
        self.console.start()
        self.console_url = self.console.url
        log.info("volunteer console at %s", self.console_url)

    def shutdown(self) -> None:
        self._stop.set()
        if self.console is not None:
            self.console.stop()
        for thread in self._threads:
            thread.join(15)
        for link in self.links:
            link.join()
        if self.io is not None:
            self.io.close()
        if hasattr(self, "outbox"):
            self.outbox.close()
        log.info("gate %s stopped", self.node)

    def _start_thread(self, name: str, target: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(
            target=self._supervise, args=(name, target, self._stop), name=name
        )
        thread.start()
        self._threads.append(thread)

    def _supervise(
        self, name: str, target: Callable[[threading.Event], None], stop: threading.Event
    ) -> None:
        """Run a worker until `stop`; one that dies is a fault, and is started again."""
        while not stop.is_set():
            try:
                target(stop)
                return
            except Exception as exc:
                log.exception("%s worker died; starting it again", name)
                self._restarted.pop(name, None)
                self._worker_faults.add(name)
                self.checkpoint.record_fault(
                    name, "crashed", "raised", f"{type(exc).__name__}: {exc}"
                )
            if stop.wait(WORKER_RESTART_S):
                return
            self._restarted[name] = time.monotonic()

    def _watch_workers(self) -> None:
        """Clear the fault of a worker that has run WORKER_HEALTHY_S since it was restarted."""
        for name, since in list(self._restarted.items()):
            if time.monotonic() - since >= WORKER_HEALTHY_S:
                self._restarted.pop(name, None)
                self._worker_faults.discard(name)
                self.checkpoint.record_fault(name, "crashed", "cleared", None)

    # Presence.
    def devices(self) -> dict[str, DeviceState]:
        states: dict[str, DeviceState] = {link.name: link.state for link in self.links}
        if self.io is not None and self.io.door is not None:
            states["door"] = "fault" if self.io.door.held_open else "ok"
        states["outbox"] = "fault" if self._outbox_faults else "ok"
        for worker in self._worker_faults:
            states[worker] = "fault"
        return states

    def _fault_settle_s(self) -> float:
        links = [link for link in self.links if isinstance(link, DeviceLink)]
        silences = [link.profile.silence_fault_s or 0.0 for link in links]
        return max([REOPEN_EVERY_S, *silences]) + FAULT_RECONCILE_MARGIN_S

    def present_faults(self) -> set[tuple[str, str]]:
        """(device, fault) of every fault raised now, by whatever watches it."""
        present = {(link.name, fault) for link in self.links for fault in link.faults}
        if self.io is not None and self.io.door is not None and self.io.door.held_open:
            present.add(("door", "held-open"))
        present |= {("outbox", fault) for fault in self._outbox_faults}
        present |= {(worker, "crashed") for worker in self._worker_faults}
        # A refused document stays a fault until a valid one replaces it.
        present |= {
            (device, fault) for device, fault in self.checkpoint.reported_faults
            if fault == "refused"
        }  # fmt: skip
        return present

    def birth(self, session: int) -> Birth:
        now = self.clock()
        return Birth(
            session=session, node_time=now, role=Role.GATE, version=version("gatepost"),
            config_hash=self.remote_config.effective_hash(), devices=self.devices(),
            trust_list_age_s=self.trust.trust_list_age_s(now),
            heartbeat_s=self.config.broker.heartbeat_s,
        )  # fmt: skip

    def health(self, session: int) -> Health:
        now = self.clock()
        return Health(
            node_time=now, session=session,
            uptime_s=round(time.monotonic() - self.started, 1),
            last_seq=self.outbox.last_seq, outbox_depth=self.outbox.depth,
            outbox_capacity=self.outbox.capacity, devices=self.devices(),
            trust_list_age_s=self.trust.trust_list_age_s(now),
            rss_bytes=self.usage.rss_bytes(), cpu_percent=self.usage.cpu_percent(),
        )  # fmt: skip

    def node_view(self) -> NodeView:
        return NodeView(
            site=self.node.site.name, node=self.node.name,
            broker_connected=self.uplink.connected,
            devices=dict(self.devices()), outbox_depth=self.outbox.depth,
            outbox_capacity=self.outbox.capacity, volunteers_on_duty=self.checkpoint.on_duty,
            trust_list_age_s=self.trust.trust_list_age_s(self.clock()),
            zone=self.config.zone.key, override_allowed=self.checkpoint.policy.supervisor_override,
        )  # fmt: skip

    # Signed documents from the provisioning side.
    def on_document(self, message: Message) -> None:
        document = message.payload
        now = self.clock()
        try:
            if isinstance(document, SignedTrustList | SignedRevocationList):
                self.trust.apply(document, now)
            elif isinstance(document, SignedNodeConfig):
                self.remote_config.apply(document, now)
                self.checkpoint.policy = self.remote_config.effective.policy
                self.checkpoint.cutoff_hour = self.remote_config.effective.report.cutoff_hour
            else:
                return
        except DocumentRefused as refused:
            if refused.reason == "stale-serial" and self._held_serial(document) == refused.serial:
                return  # the retained copy of what we hold, delivered again on subscribe
            self._document_fault(_device_of(document), str(refused))
            return
        except ConfigError as refused:
            self._document_fault("config", str(refused))
            return
        # A valid document ends its kind's refusal, also one reported before a restart.
        self.checkpoint.record_fault(_device_of(document), "refused", "cleared", None)

    def on_bad_document(self, topic: str, error: ContractError) -> None:
        """A document the contract refuses (malformed, past a bound) is a refusal too."""
        kind = topics.parse(topic, self.node.site.prefix).kind
        refused = DocumentRefused(str(kind), None, "invalid", str(error))
        self._document_fault(_DOCUMENT_DEVICES[kind], str(refused))

    def _document_fault(self, device: str, detail: str) -> None:
        log.warning("%s", detail)
        self.checkpoint.record_fault(device, "refused", "raised", detail, each_incident=True)

    def _refresh_console(self) -> None:
        """Push the node's own state to the consoles when it changed (not only on events)."""
        shown = (self.outbox.depth, self.uplink.connected, tuple(self.devices().items()))
        if shown != self._shown:
            self._shown = shown
            self.checkpoint.refresh()

    def _held_serial(self, document: Any) -> int:
        if isinstance(document, SignedTrustList):
            return self.trust.trust_list.serial
        if isinstance(document, SignedRevocationList):
            return self.trust.revocations.serial
        return self.remote_config.serial

    def _watch_outbox(self) -> None:
        depth, capacity = self.outbox.depth, self.outbox.capacity
        warn = self.config.outbox.warn_fraction * capacity
        for fault, raised in (("nearly-full", depth >= warn), ("full", depth >= capacity)):
            state: Literal["raised", "cleared"] | None = None
            if raised and fault not in self._outbox_faults:
                self._outbox_faults.add(fault)
                state = "raised"
            elif not raised and fault in self._outbox_faults:
                self._outbox_faults.discard(fault)
                state = "cleared"
            if state:
                self.checkpoint.record_fault(
                    "outbox", fault, state, f"{depth} of {capacity} unsent"
                )


_DOCUMENT_DEVICES = {
    TopicKind.CONFIG: "config", TopicKind.TRUST: "trust-list",
    TopicKind.REVOCATIONS: "revocations",
}  # fmt: skip


def _device_of(document: Any) -> str:
    if isinstance(document, SignedNodeConfig):
        return "config"
    return "trust-list" if isinstance(document, SignedTrustList) else "revocations"
