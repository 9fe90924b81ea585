"""A lean MQTT 5 subscriber for ingest: large reads, packets parsed in bulk, PUBACKs on request.

paho-mqtt reads a packet with three or more system calls and hands it over one callback
at a time; measured here it receives about 7,000 messages/s, half of what the broker
delivers (bench/gateway_ingest.py). Ingest only needs a QoS 1 subscriber with a
persistent session and acknowledgements it sends itself once a batch is stored, so this
module speaks exactly that part of MQTT 5.0 (OASIS standard, sections 2-3) and no more.
Everything the gateway publishes still goes through paho.
"""

# Wire format. Every packet: byte 0 = type << 4 | flags, then the Remaining Length as a
# variable byte integer (7 bits a byte, high bit = more), then the rest.
#   CONNECT     0x10  "MQTT", level 5, flags (0x80 user name, 0x40 password; never a
#                     will; clean start off), keep alive u16, properties (0x11 session
#                     expiry u32, 0x21 receive maximum u16), client id, user name, password
#   CONNACK     0x20  flags (bit 0: session present), reason code, properties
#   SUBSCRIBE   0x82  packet id, properties (none), (filter, options = max QoS)...
#   SUBACK      0x90  packet id, properties, one reason code per filter (< 0x80 granted)
#   PUBLISH     0x3f  flags: dup << 3 | qos << 1 | retain; topic, packet id if qos > 0,
#                     properties, payload
#   PUBACK      0x40  packet id (reason code and properties left out: success)
#   PINGREQ     0xc0, PINGRESP 0xd0, DISCONNECT 0xe0 (reason code, properties)
# A topic alias is never received: the CONNECT does not offer a Topic Alias Maximum.

from __future__ import annotations

import collections
import contextlib
import logging
import random
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from edge.errors import GatepostError
from edge.mqtt import Endpoint

log = logging.getLogger(__name__)

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
READ_SIZE = 256 * 1024
PINGREQ_PACKET = b"\xc0\x00"


class ProtocolError(GatepostError):
    """The broker sent something a QoS 1 subscriber cannot accept, or refused us."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One PUBLISH as received; `connection` says on which connection it came."""

    topic: str
    payload: bytes
    packet_id: int
    qos: int
    retain: bool
    received_at: datetime
    connection: int


@dataclass(frozen=True)
class SessionSettings:
    """Where to connect and what to ask for."""

    endpoint: Endpoint
    client_id: str
    subscriptions: tuple[tuple[str, int], ...]
    session_expiry_s: int = 86_400
    keepalive_s: int = 30
    receive_maximum: int = 65_535
    # A restarted broker forgets shared subscriptions: what it routes before we are back
    # goes to nobody (nodes send it again when asked), so come back within seconds.
    reconnect_max_s: float = 2.0


def encode_length(length: int) -> bytes:
    """The Remaining Length as a variable byte integer."""
    out = bytearray()
    while True:
        length, digit = divmod(length, 128)
        out.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _utf8(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def connect_packet(settings: SessionSettings) -> bytes:
    """CONNECT resuming the session (clean start off) with its expiry and receive maximum."""
    properties = struct.pack(
        "!BIBH", 0x11, settings.session_expiry_s, 0x21, settings.receive_maximum
    )
    endpoint = settings.endpoint
    flags, credentials = 0x00, b""
    if endpoint.username is not None:
        flags, credentials = 0x80, _utf8(endpoint.username)
        if endpoint.password is not None:
            flags, credentials = 0xC0, credentials + _utf8(endpoint.password)
    body = (
        _utf8("MQTT") + bytes([5, flags]) + struct.pack("!H", settings.keepalive_s)
        + encode_length(len(properties)) + properties
        + _utf8(endpoint.client_id(settings.client_id)) + credentials
    )  # fmt: skip
    return bytes([CONNECT << 4]) + encode_length(len(body)) + body


def subscribe_packet(packet_id: int, subscriptions: Sequence[tuple[str, int]]) -> bytes:
    body = struct.pack("!HB", packet_id, 0) + b"".join(
        _utf8(topic_filter) + bytes([qos]) for topic_filter, qos in subscriptions
    )
    return bytes([(SUBSCRIBE << 4) | 0x02]) + encode_length(len(body)) + body


def puback_packets(packet_ids: Sequence[int]) -> bytes:
    """PUBACKs for many messages in one buffer: one send for a whole stored batch."""
    return b"".join(struct.pack("!BBH", PUBACK << 4, 2, pid) for pid in packet_ids)


def _read_length(buffer: bytes | bytearray, at: int) -> tuple[int, int] | None:
    """(Remaining Length, where the rest starts), or None if the buffer ends first."""
    length, shift = 0, 0
    for index in range(at, min(at + 4, len(buffer))):
        byte = buffer[index]
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length, index + 1
        shift += 7
    if len(buffer) - at >= 4:
        raise ProtocolError("malformed Remaining Length")
    return None


def split_packets(buffer: bytearray) -> list[tuple[int, int, bytes]]:
    """Take every complete packet off the front of `buffer`: (type, flags, body) each.

    What is left in `buffer` is the start of a packet still arriving.
    """
    packets = []
    at = 0
    while len(buffer) - at >= 2:
        found = _read_length(buffer, at + 1)
        if found is None:
            break
        length, start = found
        if len(buffer) - start < length:
            break
        packets.append((buffer[at] >> 4, buffer[at] & 0x0F, bytes(buffer[start : start + length])))
        at = start + length
    del buffer[:at]
    return packets


def parse_publish(flags: int, body: bytes) -> tuple[str, bytes, int, int, bool]:
    """(topic, payload, packet id, qos, retain) of a PUBLISH body."""
    qos = (flags >> 1) & 0x03
    # A struct or UTF-8 error here would end the reader thread for good: the reader
    # reconnects on ProtocolError only.
    try:
        (topic_length,) = struct.unpack_from("!H", body)
        at = 2 + topic_length
        topic = body[2:at].decode()
        packet_id = 0
        if qos:
            (packet_id,) = struct.unpack_from("!H", body, at)
            at += 2
    except (struct.error, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed PUBLISH: {exc}") from None
    found = _read_length(body, at)
    if found is None:
        raise ProtocolError("PUBLISH properties cut short")
    properties_length, at = found
    if at + properties_length > len(body):
        raise ProtocolError("PUBLISH properties longer than the packet")
    return topic, body[at + properties_length :], packet_id, qos, bool(flags & 0x01)


class MqttSubscriber:
    """Keeps one persistent session, hands over deliveries in chunks, acks when told.

    Every read and write of the socket happens on one thread, the reader's: other
    threads only queue what is to be sent (PUBACKs) and wake it. CPython's `ssl` does
    not make a read on one thread and a write on another safe on one TLS socket.

    Args:
        settings: broker, client id, filters, session expiry.
        on_deliveries: called on the reader thread with each chunk of PUBLISHes as read;
            may block (the broker then waits: TCP pushes back).
        on_connected: called with True after SUBACK and False when the connection ends.
        clock: stamps each delivery's `received_at` (the gateway's clock: a test that
            compresses time compresses it for ingest too).
    """

    def __init__(
        self,
        settings: SessionSettings,
        on_deliveries: Callable[[list[Delivery]], None],
        on_connected: Callable[[bool, bool], None] = lambda _up, _resumed: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._on_deliveries = on_deliveries
        self._on_connected = on_connected
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self.connection = 0
        # (connection, bytes) to send, queued by any thread and sent by the reader's.
        self._outgoing: collections.deque[tuple[int, bytes]] = collections.deque()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._last_sent = 0.0
        self._thread = threading.Thread(target=self._run, name="ingest-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Disconnect normally (the session stays on the broker) and join the reader."""
        self._stop.set()
        self._wake()
        self._thread.join(timeout_s)
        if not self._thread.is_alive():
            self._wake_reader.close()
            self._wake_writer.close()

    def ack(self, packet_ids: Sequence[int], connection: int) -> None:
        """PUBACK these, if they came on the current connection (from any thread).

        A packet id from an earlier connection must not be acknowledged on this one: the
        broker sends such a message again, and the store drops it as a duplicate.
        """
        if packet_ids:
            self._outgoing.append((connection, puback_packets(packet_ids)))
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full: the reader is awake already
            self._wake_writer.send(b"\0")

    # --- reader thread ----------------------------------------------------------------

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                sock = self._open()
                delay = 0.5
                self._read(sock)
            except (OSError, ProtocolError) as exc:
                if not self._stop.is_set():
                    log.warning("ingest connection to %s: %s", self.settings.endpoint, exc)
            finally:
                self._close()
            # Jitter, so a fleet of replicas does not return to a restarted broker at once.
            if self._stop.wait(delay * random.uniform(0.5, 1.0)):  # noqa: S311
                return
            delay = min(delay * 2, self.settings.reconnect_max_s)

    def _open(self) -> socket.socket:
        settings = self.settings
        endpoint = settings.endpoint
        context = endpoint.ssl_context()
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=10)
        try:  # until it is self._sock, _close cannot close it: a refusal must not leak it
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=endpoint.host)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buffer = bytearray()
            sock.sendall(connect_packet(settings))
            kind, _, body = self._next(sock, buffer)
            if kind != CONNACK or len(body) < 2:
                raise ProtocolError(f"expected CONNACK, got packet type {kind}")
            if body[1] >= 0x80:
                raise ProtocolError(f"broker refused the connection (reason code 0x{body[1]:02x})")
            resumed = bool(body[0] & 0x01)
            sock.sendall(subscribe_packet(1, settings.subscriptions))
        except BaseException:
            sock.close()
            raise
        self.connection += 1
        self._sock = sock
        self._last_sent = time.monotonic()
        self._pending = buffer
        self._resumed = resumed
        return sock

    def _next(self, sock: socket.socket, buffer: bytearray) -> tuple[int, int, bytes]:
        """The first packet; what follows it stays in `buffer` for `_read`.

        A resumed session's queued PUBLISHes come right behind the CONNACK, often in the
        same read: they are the next packets, not an error.
        """
        while True:
            found = _read_length(buffer, 1) if len(buffer) >= 2 else None
            if found is not None and len(buffer) - found[1] >= found[0]:
                length, start = found
                first = (buffer[0] >> 4, buffer[0] & 0x0F, bytes(buffer[start : start + length]))
                del buffer[: start + length]
                return first
            data = sock.recv(READ_SIZE)
            if not data:
                raise ProtocolError("connection closed before CONNACK")
            buffer += data

    def _read(self, sock: socket.socket) -> None:
        keepalive = self.settings.keepalive_s
        sock.settimeout(min(1.0, keepalive / 2))  # a send to a broker that reads nothing
        buffer, connection = self._pending, self.connection
        self._handle(split_packets(buffer), connection)  # what came in with the CONNACK
        last_heard = time.monotonic()
        while not self._stop.is_set():
            self._flush(sock, connection)
            data = self._receive(sock, timeout_s=min(1.0, keepalive / 2))
            now = time.monotonic()
            if data == b"":
                raise ProtocolError("the broker closed the connection")
            if data:
                buffer += data
                last_heard = now
                self._handle(split_packets(buffer), connection)
            elif now - last_heard > 1.5 * keepalive:
                raise ProtocolError(f"nothing from the broker for {now - last_heard:.0f} s")
            if now - self._last_sent >= keepalive / 2:
                self._outgoing.append((connection, PINGREQ_PACKET))
        self._flush(sock, connection)
        sock.sendall(bytes([DISCONNECT << 4, 0]))

    def _flush(self, sock: socket.socket, connection: int) -> None:
        """Send what other threads queued for this connection; drop what was for an earlier one."""
        parts = []
        while self._outgoing:
            queued_for, data = self._outgoing.popleft()
            if queued_for == connection:
                parts.append(data)
        if parts:
            sock.sendall(b"".join(parts))
            self._last_sent = time.monotonic()

    def _receive(self, sock: socket.socket, timeout_s: float) -> bytes | None:
        """What the broker sent, up to READ_SIZE; None if nothing came within `timeout_s`.

        A TLS socket hands out one record (at most 16 KiB) per recv: reading on while
        more is ready makes one chunk of what one plain read would have given.
        """
        if not _buffered(sock):
            ready, _, _ = select.select([sock, self._wake_reader], [], [], timeout_s)
            if self._wake_reader in ready:
                with contextlib.suppress(OSError):
                    self._wake_reader.recv(4096)
            if sock not in ready:
                return None
        data = sock.recv(READ_SIZE)
        chunks = [data]
        size = len(data)
        while data and size < READ_SIZE and (_buffered(sock) or _readable(sock)):
            data = sock.recv(READ_SIZE - size)
            chunks.append(data)
            size += len(data)
        return b"".join(chunks)

    def _handle(self, packets: list[tuple[int, int, bytes]], connection: int) -> None:
        received_at = self._clock()
        deliveries = []
        for kind, flags, body in packets:
            if kind == PUBLISH:
                topic, payload, packet_id, qos, retain = parse_publish(flags, body)
                if qos > 1:
                    raise ProtocolError("QoS 2 PUBLISH on a QoS 1 subscription")
                deliveries.append(
                    Delivery(topic, payload, packet_id, qos, retain, received_at, connection)
                )
            elif kind == SUBACK:
                found = _read_length(body, 2)
                codes = body[found[0] + found[1] :] if found else b"\x80"
                refused = [code for code in codes if code >= 0x80]
                if refused:
                    raise ProtocolError(f"subscription refused (reason codes {refused})")
                log.info("ingest subscribed (session %s)", "resumed" if self._resumed else "new")
                self._on_connected(True, self._resumed)
            elif kind == DISCONNECT:
                reason = body[0] if body else 0
                raise ProtocolError(f"the broker disconnected us (reason code 0x{reason:02x})")
            elif kind != PINGRESP:
                raise ProtocolError(f"unexpected packet type {kind}")
        if deliveries:
            self._on_deliveries(deliveries)

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
            self._on_connected(False, False)


def _buffered(sock: socket.socket) -> bool:
    """Decrypted bytes a TLS socket holds that a select on its descriptor cannot see."""
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


def _readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])
