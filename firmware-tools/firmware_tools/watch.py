"""`gatepost watch`: print every message under the project prefix, decoded and checked.

For technicians and the command center: one line per message, and a loud line for
anything that breaks the contract (unknown topic, invalid payload) instead of silence.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

import paho.mqtt.client as paho
from paho.mqtt.reasoncodes import ReasonCode

from edge.contract import catalogue
from edge.contract.topics import DEFAULT_PREFIX, Site, kind_filters
from edge.errors import PayloadInvalid, UnknownTopic
from edge.mqtt import Endpoint, new_client

log = logging.getLogger(__name__)


def describe(
    topic: str, payload: bytes | bytearray, retained: bool, prefix: str = DEFAULT_PREFIX
) -> str:
    """One line telling what a message is, or why it breaks the contract."""
    flag = " (retained)" if retained else ""
    try:
        message = catalogue.decode(topic, payload, prefix)
    except UnknownTopic as exc:
        return f"!! UNKNOWN TOPIC {topic}{flag}: {exc.why}"
    except PayloadInvalid as exc:
        return f"!! INVALID {topic}{flag}: {exc.model}: {'; '.join(exc.problems)}"
    body = message.payload.model_dump_json(exclude_none=True, exclude={"schema_version"})
    return f"{topic}{flag} {body}"


class Watcher:
    """Subscribes to `<prefix>/#` (or one site's branch) and writes a line per message to `out`.

    A site's broker grants an identity part of its site's branch only (docs/security.md:
    a technician reads everything but events) and refuses a subscription reaching past
    it. With `site`, the watcher subscribes to each kind of topic of that site on its own
    and says which the broker refuses; with none granted, or refused `<prefix>/#`, it
    prints `!!`, never silence.
    """

    def __init__(
        self, broker: Endpoint, out: TextIO, prefix: str = DEFAULT_PREFIX, site: str | None = None
    ) -> None:
        self.broker = broker
        self.out = out
        self.prefix = prefix
        # The whole prefix, not only v1: foreign topics under it are worth reporting.
        self.filters = list(kind_filters(Site(site, prefix)).values()) if site else [f"{prefix}/#"]
        self._lock = threading.Lock()
        self.client = new_client(f"gatepost-watch-{threading.get_native_id()}", broker)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def run(self, stop: threading.Event) -> None:
        """Watch until `stop` is set; reconnects on its own if the broker goes away."""
        self.client.connect_async(self.broker.host, self.broker.port)
        self.client.loop_start()
        try:
            stop.wait()
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    def _on_connect(
        self, client: paho.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if reason.is_failure:
            self._emit(f"!! broker {self.broker} refused the connection: {reason}")
            return
        client.subscribe([(topic_filter, 1) for topic_filter in self.filters])

    def _on_subscribe(
        self, _c: paho.Client, _u: Any, _mid: int, reasons: list[ReasonCode], _p: Any
    ) -> None:
        granted = [f for f, r in zip(self.filters, reasons, strict=False) if not r.is_failure]
        refused = [f for f, r in zip(self.filters, reasons, strict=False) if r.is_failure]
        if not granted:
            hint = "" if len(self.filters) > 1 else " (watch one site with --site)"
            self._emit(f"!! the broker refused every subscription ({', '.join(refused)}): "
                       f"{reasons[0] if reasons else 'no answer'}{hint}")  # fmt: skip
            return
        self._emit(f"-- watching {', '.join(granted)} on {self.broker}")
        if refused:
            self._emit(f"-- not ours to read: {', '.join(refused)}")

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        self._emit(describe(msg.topic, msg.payload, bool(msg.retain), self.prefix))

    def _emit(self, line: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S.%f")[:-3]
        with self._lock:
            self.out.write(f"{stamp} {line}\n")
            self.out.flush()
