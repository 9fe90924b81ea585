"""Broker endpoints and paho-mqtt clients set up the same way by every Gatepost process."""

from __future__ import annotations

import functools
import logging
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from cryptography import x509
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from edge.contract import catalogue
from edge.contract.base import Payload
from edge.contract.topics import parse
from edge.errors import ContractError, GatepostError, PayloadInvalid

log = logging.getLogger(__name__)

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


@functools.cache
def certificate_name(cert: Path) -> str:
    """The common name of the PEM certificate in `cert`: the identity the broker sees.

    Raises:
        ValueError: the file is not a PEM certificate with exactly one common name.
        OSError: it cannot be read.
    """
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(names) != 1:
        raise ValueError(f"{cert}: a client certificate names exactly one common name")
    return str(names[0].value)


def certificate_problem(cert: Path, now: datetime) -> str | None:
    """Why the broker would refuse the certificate in `cert` at `now` (expired, not yet
    valid), or None. The broker says only that the handshake failed; this says why.

    Raises:
        ValueError: the file is not a PEM certificate.
        OSError: it cannot be read.
    """
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    if now > certificate.not_valid_after_utc:
        return f"{cert} expired at {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    if now < certificate.not_valid_before_utc:
        return f"{cert} is valid only from {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    return None


@dataclass(frozen=True)
class Endpoint:
    """Everything a client needs to reach the broker as itself.

    On a locked site broker (docs/security.md) the client certificate is the identity:
    the broker takes its common name as the user name and as the client id, so a
    client's id is its certificate's name, whatever it asks for.

    Args:
        url: mqtt:// (tests of the plain protocol only) or mqtts://.
        ca: the site CA that signed the broker's certificate; None: the system's CAs.
        cert, key: this client's certificate and private key (PEM), given together.
        username, password: where a site also wants them (sent as given).
    """

    url: BrokerUrl
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError("a client certificate and its key are given together")
        if not self.url.tls and (self.ca or self.cert):
            raise ValueError(f"certificates need an mqtts:// broker, not {self.url}")
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a user name")

    @property
    def host(self) -> str:
        return self.url.host

    @property
    def port(self) -> int:
        return self.url.port

    def client_id(self, fallback: str) -> str:
        """The certificate's name when there is one (the broker enforces it), else `fallback`."""
        return certificate_name(self.cert) if self.cert is not None else fallback

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context verifying the broker against the CA and presenting our certificate.

        Raises:
            OSError, ssl.SSLError: a file is missing or is not what it should be.
        """
        if not self.url.tls:
            return None
        context = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert is not None and self.key is not None:
            context.load_cert_chain(self.cert, self.key)
        return context

    def check(self) -> None:
        """Load the CA, certificate and key once, so a wrong file stops a process at its
        start with a message, not each connection attempt for ever.

        Raises:
            GatepostError: one of them cannot be read or used; the message says which.
        """
        try:
            self.ssl_context()
            if self.cert is not None:
                certificate_name(self.cert)
                problem = certificate_problem(self.cert, datetime.now(UTC))
        except (OSError, ssl.SSLError, ValueError) as exc:
            files = ", ".join(str(f) for f in (self.ca, self.cert, self.key) if f)
            raise GatepostError(f"broker {self.url}: cannot use {files}: {exc}") from None
        if self.cert is not None and problem is not None:
            # Not a stop: a gate decides offline and its outbox keeps every event until
            # a technician installs a new certificate (gatepost fw provision).
            log.error("broker %s will refuse this client: %s", self.url, problem)

    def __str__(self) -> str:
        who = f" as {certificate_name(self.cert)}" if self.cert is not None else ""
        return f"{self.url}{who}"


def new_client(fallback_id: str, endpoint: Endpoint) -> paho.Client:
    """An MQTT 5 client with the paho 2.x callback API, set up to reach `endpoint` as itself.

    Its client id is the certificate's name, or `fallback_id` without a certificate.
    Not yet connected: the caller sets its Last Will and callbacks first, then connects
    to `endpoint.host` and `endpoint.port`.

    Raises:
        OSError, ssl.SSLError: a certificate, key or CA file cannot be used.
    """
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=endpoint.client_id(fallback_id),
        protocol=paho.MQTTv5,
    )  # fmt: skip
    if (context := endpoint.ssl_context()) is not None:
        client.tls_set_context(context)
    if endpoint.username is not None:
        client.username_pw_set(endpoint.username, endpoint.password)
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
