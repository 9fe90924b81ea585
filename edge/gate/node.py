"""`gatepost edge run`: a gate node, started as a flat list of steps and stopped in reverse."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from edge.configfile import ConfigError
from edge.contract import topics
from edge.contract.catalogue import Message
from edge.contract.documents import (
    RefusalReason,
    SignedNodeConfig,
    SignedRevocationList,
    SignedTrustList,
)
from edge.contract.presence import Birth, ConfigRefusal, DeviceState, Health
from edge.contract.topics import TopicKind
from edge.credentials.store import TrustStore
from edge.credentials.trust import DocumentRefused, root_keys_for
from edge.credentials.verifier import Verifier
from edge.devices.base import DeviceProfile
from edge.devices.link import REOPEN_EVERY_S, DeviceLink
from edge.devices.registry import DRIVERS
from edge.errors import ContractError
from edge.gate.checkpoint import GateCheckpoint
from edge.gate.config import GateConfig
from edge.gate.gpio.gateio import GateIO
from edge.gate.remote import NodeConfigStore
from edge.gate.views import NodeView
from edge.runtime import NodeRuntime

if TYPE_CHECKING:
    from edge.devices.camera.reader import CameraLink

log = logging.getLogger(__name__)


class GateNode(NodeRuntime):
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
        super().__init__(
            config.node_id, state_dir=config.node.state_dir, broker=config.broker,
            outbox=config.outbox, clock=clock,
        )  # fmt: skip
        self.config = config
        self.pin_factory = pin_factory
        self.links: list[DeviceLink | CameraLink] = []
        self.io: GateIO | None = None
        self.console: Any = None
        self.console_url: str | None = None
        self._shown: tuple[object, ...] = ()
        # The last signed config refused, reported in births and heartbeats until a newer
        # one applies: `gatepost fw config push` waits for one or the other.
        self.config_refused: ConfigRefusal | None = None

    def start(self) -> None:
        self.init_outbox()
        self.init_trust()
        self.init_gpio()
        self.init_checkpoint()
        self.init_devices()
        self.init_uplink()
        self.init_console()

    def tick(self) -> None:
        self.checkpoint.tick()  # a code waiting for a temperature, the report cut-off
        super().tick()
        self._refresh_console()

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
        self.faults = self.checkpoint.faults

    def init_devices(self) -> None:
        devices = self.config.devices
        for name in ("scanner", "thermometer", "thermal_array"):
            section = getattr(devices, name)
            if section is None:
                continue
            profile = self._calibrated(name, section.load())
            link = DeviceLink(
                name.replace("_", "-"), section.url, profile, DRIVERS[profile.part],
                on_reading=self.checkpoint.on_reading, on_fault=self.checkpoint.on_fault,
            )  # fmt: skip
            # The scanner's and thermometer's threads sleep on their ports and decide when
            # a reading comes; the thermal array is as light. The camera decodes images
            # for tens of ms: real-time, it would starve the Pi, so it stays normal.
            link.start(self._stop, realtime_priority=self.config.node.decision_priority)
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

    def _calibrated(self, name: str, profile: DeviceProfile) -> DeviceProfile:
        """`profile` with the live calibration laid over it (only the thermometer has one)."""
        offset = self.remote_config.effective.calibration.thermometer_object_offset_c
        if name != "thermometer" or offset is None:
            return profile
        return profile.model_copy(update={"object_offset_c": offset})

    def _recalibrate(self) -> None:
        """Hand the thermometer its calibration when a signed config changed it."""
        section = self.config.devices.thermometer
        for link in self.links:
            if link.name == "thermometer" and isinstance(link, DeviceLink) and section:
                profile = self._calibrated("thermometer", section.load())
                if profile != link.profile:
                    link.use_profile(profile)

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
        super().shutdown()

    def close_parts(self) -> None:
        for link in self.links:
            link.join()
        if self.io is not None:
            self.io.close()

    # Presence.
    def part_states(self) -> dict[str, DeviceState]:
        states: dict[str, DeviceState] = {link.name: link.state for link in self.links}
        if self.io is not None and self.io.door is not None:
            states["door"] = "fault" if self.io.door.held_open else "ok"
        return states

    def parts_settle_s(self) -> float:
        links = [link for link in self.links if isinstance(link, DeviceLink)]
        silences = [link.profile.silence_fault_s or 0.0 for link in links]
        return max([REOPEN_EVERY_S, *silences])

    def part_faults(self) -> set[tuple[str, str]]:
        present = {(link.name, fault) for link in self.links for fault in link.faults}
        if self.io is not None and self.io.door is not None and self.io.door.held_open:
            present.add(("door", "held-open"))
        # A refused document stays a fault until a valid one replaces it.
        present |= {
            (device, fault) for device, fault in self.faults.reported_faults
            if fault == "refused"
        }  # fmt: skip
        return present

    def config_hash(self) -> str:
        return self.remote_config.effective_hash()

    def birth(self, session: int) -> Birth:
        return super().birth(session).model_copy(update=self._config_report())

    def health(self, session: int) -> Health:
        return super().health(session).model_copy(update=self._config_report())

    def _config_report(self) -> dict[str, object]:
        return {"config_serial": self.remote_config.serial, "config_refused": self.config_refused}

    def trust_list_age_s(self, now: datetime) -> float | None:
        return self.trust.trust_list_age_s(now)

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
    def downlink(self) -> tuple[str, ...]:
        site = self.node.site
        return (topics.config(site, self.node.name), topics.trust(site), topics.revocations(site))

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
                self.config_refused = None
                self._recalibrate()
            else:
                return
        except DocumentRefused as refused:
            if refused.reason == "stale-serial" and self._held_serial(document) == refused.serial:
                return  # the retained copy of what we hold, delivered again on subscribe
            self._document_fault(_device_of(document), str(refused))
            self._config_refusal(document, refused.reason, str(refused))
            return
        except ConfigError as refused:
            self._document_fault("config", str(refused))
            self._config_refusal(document, "invalid", str(refused))
            return
        # A valid document ends its kind's refusal, also one reported before a restart.
        self.faults.record_fault(_device_of(document), "refused", "cleared", None)

    def on_bad_document(self, topic: str, error: ContractError) -> None:
        """A document the contract refuses (malformed, past a bound) is a refusal too."""
        kind = topics.parse(topic, self.node.site.prefix).kind
        refused = DocumentRefused(str(kind), None, "invalid", str(error))
        self._document_fault(_DOCUMENT_DEVICES[kind], str(refused))
        if kind is TopicKind.CONFIG:
            self.config_refused = ConfigRefusal(reason="invalid", detail=_short(str(refused)))

    def _config_refusal(self, document: Any, reason: RefusalReason, detail: str) -> None:
        if isinstance(document, SignedNodeConfig):
            self.config_refused = ConfigRefusal(
                serial=document.serial, issued_at=document.issued_at, reason=reason,
                detail=_short(detail),
            )  # fmt: skip

    def _document_fault(self, device: str, detail: str) -> None:
        log.warning("%s", detail)
        self.faults.record_fault(device, "refused", "raised", detail, each_incident=True)

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


_DOCUMENT_DEVICES = {
    TopicKind.CONFIG: "config", TopicKind.TRUST: "trust-list",
    TopicKind.REVOCATIONS: "revocations",
}  # fmt: skip


def _short(text: str, most: int = 200) -> str:
    """`text` cut to the contract's ShortText bound, marked where it was cut."""
    return text if len(text) <= most else text[: most - 1] + "…"


def _device_of(document: Any) -> str:
    if isinstance(document, SignedNodeConfig):
        return "config"
    return "trust-list" if isinstance(document, SignedTrustList) else "revocations"
