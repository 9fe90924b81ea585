"""What the tools that publish signed documents share: a client's answers, waited for."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from edge.mqtt import Endpoint, new_client


class BrokerExchange:
    """CONNACK, SUBACK and PUBACKs, gathered on paho's thread and waited for on the caller's.

    Subclasses add `on_message`; every callback holds `changed` and notifies it.
    """

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.connected: ReasonCode | None = None
        self.subscribed: list[ReasonCode] | None = None
        self.acked: dict[int, ReasonCode] = {}  # PUBACK reason by message id

    def on_connect(self, _c: paho.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        with self.changed:
            self.connected = reason
            self.changed.notify_all()

    def on_subscribe(
        self, _c: paho.Client, _u: Any, _mid: int, reasons: list[ReasonCode], _p: Any
    ) -> None:
        with self.changed:
            self.subscribed = reasons
            self.changed.notify_all()

    def on_publish(self, _c: paho.Client, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        with self.changed:
            self.acked[mid] = reason
            self.changed.notify_all()

    def on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        """Ignored here."""

    def wait(self, ready: Callable[[], bool], timeout_s: float) -> bool:
        """Whether `ready()` held within `timeout_s` (checked each time a callback ran)."""
        with self.changed:
            return self.changed.wait_for(ready, timeout_s)

    def start(self, fallback_id: str, broker: Endpoint) -> paho.Client:
        """A client with these callbacks, connecting to `broker` on its own thread.

        Raises:
            OSError, ssl.SSLError: the broker cannot be reached, or a TLS file cannot be used.
        """
        client = new_client(fallback_id, broker)
        client.on_connect = self.on_connect
        client.on_subscribe = self.on_subscribe
        client.on_publish = self.on_publish
        client.on_message = self.on_message
        client.connect(broker.host, broker.port)
        client.loop_start()
        return client
