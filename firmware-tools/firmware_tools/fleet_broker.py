"""The fleet from the broker, for when no gateway answers: the nodes' retained status and the
heartbeats heard while listening, read with a technician's admin identity."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from edge.contract import catalogue
from edge.contract.presence import Birth, Death, Health
from edge.contract.topics import Role, Site
from edge.errors import PayloadInvalid, UnknownTopic
from edge.mqtt import Endpoint, new_client
from gateway.store.records import NodeRecord

log = logging.getLogger(__name__)

NODES_MAX = 5000  # nodes kept; a broker sending more is not a site's
HEARTBEATS_MISSED = 2  # a retained birth with no heartbeat in this many intervals: silent


class BrokerFleetError(Exception):
    """The broker could not be read: the sentence says what to fix."""


@dataclass
class _Heard:
    """What one node said while we listened: its newest status and its newest heartbeat."""

    role: Role
    status: Birth | Death | None = None
    status_at: datetime | None = None
    status_live: bool = False  # published while we listened, not a retained copy
    health: Health | None = None
    health_at: datetime | None = None


class BrokerFleet:
    """Subscribes to a site's `status` and `health` topics and keeps each node's newest.

    `status` is retained with a Last Will, so one connect learns every node's birth or
    death; heartbeats are not retained, so the clock skew, the outbox depth and whether a
    node still speaks come from the heartbeats heard while listening.
    """

    def __init__(self, broker: Endpoint, site: str, prefix: str) -> None:
        self.broker = broker
        self.prefix = prefix
        root = Site(site, prefix).root
        self.filters = [f"{root}/+/+/status", f"{root}/+/+/health"]
        self._heard: dict[tuple[str, str], _Heard] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._refused = ""
        self.client = new_client(f"gatepost-fleet-{threading.get_native_id()}", broker)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def read(self, listen_s: float, connect_timeout_s: float = 10.0) -> list[NodeRecord]:
        """Listen `listen_s` seconds after subscribing; every node heard, as a NodeRecord.

        Raises:
            BrokerFleetError: no connection within `connect_timeout_s`, or the broker
                refused the connection or the subscriptions.
        """
        try:
            self.client.connect_async(self.broker.host, self.broker.port)
        except (OSError, ValueError) as exc:
            raise BrokerFleetError(f"--broker {self.broker}: {exc}") from None
        self.client.loop_start()
        try:
            if not self._subscribed.wait(connect_timeout_s):
                raise BrokerFleetError(
                    self._refused
                    or f"--broker {self.broker}: no connection in {connect_timeout_s:.0f} s"
                )
            if self._refused:
                raise BrokerFleetError(self._refused)
            time.sleep(listen_s)
        finally:
            self.client.disconnect()
            self.client.loop_stop()
        now = datetime.now(UTC)
        with self._lock:
            heard = dict(self._heard)
        return [_record(site, node, h, now) for (site, node), h in sorted(heard.items())]

    def _on_connect(
        self, client: paho.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if reason.is_failure:
            self._refused = f"--broker {self.broker} refused the connection: {reason}"
            self._subscribed.set()
            return
        client.subscribe([(topic_filter, 1) for topic_filter in self.filters])

    def _on_subscribe(
        self, _c: paho.Client, _u: Any, _mid: int, reasons: list[ReasonCode], _p: Any
    ) -> None:
        refused = [f for f, r in zip(self.filters, reasons, strict=False) if r.is_failure]
        if refused:
            self._refused = (
                f"the broker refused {', '.join(refused)} to this identity "
                "(an admin identity of the site reads status and health)"
            )
        self._subscribed.set()

    def _on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        try:
            decoded = catalogue.decode(message.topic, message.payload, self.prefix)
        except (UnknownTopic, PayloadInvalid) as exc:
            log.warning("ignored %s: %s", message.topic, exc)
            return
        parsed, payload, at = decoded.topic, decoded.payload, datetime.now(UTC)
        if parsed.node is None or parsed.role is None:
            return
        key = (parsed.site.name, parsed.node)
        with self._lock:
            if key not in self._heard and len(self._heard) >= NODES_MAX:
                return
            heard = self._heard.setdefault(key, _Heard(parsed.role))
            if isinstance(payload, Health):
                heard.health, heard.health_at = payload, at
            elif isinstance(payload, Birth | Death):
                heard.status, heard.status_at = payload, at
                heard.status_live = not message.retain


def _record(site: str, node: str, heard: _Heard, now: datetime) -> NodeRecord:
    """A node as the gateway would store it, from what the broker gave."""
    status, health = heard.status, heard.health
    birth = status if isinstance(status, Birth) else None
    online = birth is not None or (status is None and health is not None)
    reason: str | None = status.reason if isinstance(status, Death) else None
    # A retained birth outlives a node whose connection the broker has not yet seen drop;
    # with no heartbeat for two of its intervals it is not speaking.
    listened_s = (now - heard.status_at).total_seconds() if heard.status_at else 0.0
    if birth and health is None and listened_s >= HEARTBEATS_MISSED * birth.heartbeat_s:
        online, reason = False, "heartbeat"
    live = [t for t in (heard.health_at, heard.status_at if heard.status_live else None) if t]
    fields: dict[str, Any] = {
        "site": site, "node": node, "role": heard.role, "online": online,
        "offline_reason": reason, "last_seen": max(live) if live else None,
        "seq_contiguous": 0, "seq_max": 0,
    }  # fmt: skip
    if birth is not None:
        fields |= {
            "version": birth.version, "config_hash": birth.config_hash,
            "config_serial": birth.config_serial, "heartbeat_s": birth.heartbeat_s,
            "devices": dict(birth.devices), "trust_list_age_s": birth.trust_list_age_s,
            "trust_list_age_at": birth.node_time,
        }  # fmt: skip
    if health is not None and heard.health_at is not None:
        fields |= {
            "devices": dict(health.devices), "trust_list_age_s": health.trust_list_age_s,
            "trust_list_age_at": heard.health_at, "outbox_depth": health.outbox_depth,
            "last_seq": health.last_seq,
            "clock_skew_s": round((health.node_time - heard.health_at).total_seconds(), 3),
        }  # fmt: skip
        if health.config_serial is not None:
            fields["config_serial"] = health.config_serial
    return NodeRecord.model_validate(fields)
