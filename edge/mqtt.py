"""Broker addresses and paho-mqtt clients set up the same way by every Gatepost process."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.contract import catalogue
from edge.contract.base import Payload
from edge.contract.topics import parse
from edge.errors import ContractError, PayloadInvalid

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class BrokerUrl:
    """Where the broker is: `mqtt://host[:port]` or `mqtts://host[:port]`."""

    host: str
    port: int
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        """Parse a broker URL.

        Raises:
            ValueError: not an mqtt:// or mqtts:// URL with a host.
        """
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"broker URL {url!r} is not mqtt://host[:port] or mqtts://host[:port]")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise ValueError(f"broker URL {url!r} has an invalid port") from None
        return cls(parts.hostname, port, parts.scheme == "mqtts")

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def new_client(client_id: str, broker: BrokerUrl) -> paho.Client:
    """An MQTT 5 client with the paho 2.x callback API; TLS with system CAs for mqtts://.

    Not yet connected: the caller sets its Last Will and callbacks first.
    """
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    if broker.tls:
        client.tls_set()
    # Backoff between reconnects, so a fleet does not stampede a broker that restarts,
    # short enough that receipts and alerts resume within seconds of its return.
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    return client


def publish(client: paho.Client, topic: str, payload: Payload) -> paho.MQTTMessageInfo:
    """Publish `payload` with the QoS and retain flag the contract gives its topic.

    Raises:
        ContractError: the topic is not in the contract or takes another payload model.
    """
    parsed = parse(topic, prefix=topic.partition("/")[0])
    spec = catalogue.CATALOGUE[parsed.kind]
    if type(payload) not in spec.models:
        raise ContractError(f"{topic} does not carry a {type(payload).__name__}")
    if problems := catalogue.contradictions(parsed, payload):
        raise PayloadInvalid(topic, type(payload).__name__, problems)
    return client.publish(topic, catalogue.encode(payload), qos=spec.qos, retain=spec.retained)
