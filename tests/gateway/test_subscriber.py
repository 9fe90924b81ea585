"""The ingest subscriber: MQTT 5 framing as byte literals, then sessions on a real Mosquitto."""

from __future__ import annotations

import queue
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from edge.mqtt import BrokerUrl, Endpoint
from gateway.subscriber import (
    CONNECT,
    DISCONNECT,
    PUBACK,
    PUBLISH,
    SUBSCRIBE,
    Delivery,
    MqttSubscriber,
    ProtocolError,
    SessionSettings,
    connect_packet,
    encode_length,
    parse_publish,
    puback_packets,
    split_packets,
)
from simulators.broker import PrivateBroker
from tests.conftest import connect, identity

# --- Remaining Length ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_151, b"\xff\xff\x7f"),
        (268_435_455, b"\xff\xff\xff\x7f"),  # the largest MQTT allows: 256 MB
    ],
)
def test_remaining_length__valid(length: int, encoded: bytes) -> None:
    assert encode_length(length) == encoded
    if length > 2_097_151:
        # 256 MB is not worth allocating: the header alone parses and waits for the body.
        header = bytearray(b"\x30" + encoded + b"x")
        assert split_packets(header) == []
        assert header == b"\x30" + encoded + b"x"
        return
    # Decoded by split_packets: one byte short is nothing yet, the last byte completes it.
    buffer = bytearray(1 + len(encoded) + length)
    buffer[0] = 0x30
    buffer[1 : 1 + len(encoded)] = encoded
    if length:
        last = buffer.pop()
        assert split_packets(buffer) == []
        assert len(buffer) == len(encoded) + length
        buffer.append(last)
    packets = split_packets(buffer)
    assert [(kind, flags, len(body)) for kind, flags, body in packets] == [(PUBLISH, 0, length)]
    assert buffer == b""


@pytest.mark.parametrize(
    "stream",
    [
        b"\x30\xff\xff\xff\xff\x01",  # five length bytes, the last one ending it
        b"\x30\xff\xff\xff\xff\xff",  # five continuation bytes
        b"\x30\x80\x80\x80\x80\x00" + b"x" * 10,
        b"\xd0\x00\x30\xff\xff\xff\xff\x7f",  # a good PINGRESP first does not save it
    ],
    ids=["five-bytes", "five-continuations", "padded-zero", "after-a-good-packet"],
)
def test_remaining_length__invalid(stream: bytes) -> None:
    with pytest.raises(ProtocolError, match="Remaining Length"):
        split_packets(bytearray(stream))


# --- split_packets ---------------------------------------------------------------------

# PUBLISH QoS 1, topic "a/b", packet id 7, no properties, payload "hello"
PUBLISH_QOS1 = b"\x32\x0d\x00\x03a/b\x00\x07\x00hello"
PINGRESP = b"\xd0\x00"
SUBACK = b"\x90\x04\x00\x01\x00\x01"


@pytest.mark.parametrize("cut", range(1, len(PUBLISH_QOS1)))
def test_split_packets__valid_when_split_at_any_byte(cut: int) -> None:
    buffer = bytearray(PUBLISH_QOS1[:cut])
    assert split_packets(buffer) == []
    assert buffer == PUBLISH_QOS1[:cut]  # the start of the packet is kept
    buffer += PUBLISH_QOS1[cut:] + SUBACK[:3]
    assert split_packets(buffer) == [(PUBLISH, 0x02, PUBLISH_QOS1[2:])]
    assert buffer == SUBACK[:3]  # leftover: the start of the next packet


def test_split_packets__valid_fed_byte_by_byte() -> None:
    stream = PUBLISH_QOS1 + PINGRESP + SUBACK
    buffer = bytearray()
    seen = []
    for at, byte in enumerate(stream):
        buffer.append(byte)
        packets = split_packets(buffer)
        if packets:
            seen.append((at, packets))
    assert seen == [
        (len(PUBLISH_QOS1) - 1, [(PUBLISH, 0x02, PUBLISH_QOS1[2:])]),
        (len(PUBLISH_QOS1) + 1, [(13, 0, b"")]),
        (len(stream) - 1, [(9, 0, SUBACK[2:])]),
    ]
    assert buffer == b""


@pytest.mark.parametrize(
    ("stream", "expected", "left"),
    [
        (b"", [], b""),
        (b"\xd0", [], b"\xd0"),
        (PINGRESP * 3, [(13, 0, b"")] * 3, b""),
        (
            PUBLISH_QOS1 + PINGRESP + SUBACK + PUBLISH_QOS1[:4],
            [(PUBLISH, 2, PUBLISH_QOS1[2:]), (13, 0, b""), (9, 0, SUBACK[2:])],
            PUBLISH_QOS1[:4],
        ),
        (b"\x30\x80\x01" + b"z" * 128 + b"\x40", [(PUBLISH, 0, b"z" * 128)], b"\x40"),
    ],
    ids=["empty", "one-byte", "three-pings", "three-and-a-start", "two-byte-length"],
)
def test_split_packets__valid_several_in_one_buffer(
    stream: bytes, expected: list[tuple[int, int, bytes]], left: bytes
) -> None:
    buffer = bytearray(stream)
    assert split_packets(buffer) == expected
    assert buffer == left


# --- parse_publish ---------------------------------------------------------------------

# Properties: payload format indicator (0x01) = 1, user property (0x26) "k" = "v": 9 bytes.
PROPERTIES = b"\x09\x01\x01\x26\x00\x01k\x00\x01v"
TOPIC_UTF8 = b"\x00\x07\xe7\xab\x99/\xe5\x8c\x97"  # "站/北"


@pytest.mark.parametrize(
    ("flags", "body", "expected"),
    [
        (0x00, b"\x00\x03a/b\x00hi", ("a/b", b"hi", 0, 0, False)),
        (0x00, TOPIC_UTF8 + b"\x00hi", ("站/北", b"hi", 0, 0, False)),
        (0x01, b"\x00\x03a/b\x00", ("a/b", b"", 0, 0, True)),
        (
            0x03,
            b"\x00\x03a/b\x00\x2a" + PROPERTIES + b'{"seq":1}',
            ("a/b", b'{"seq":1}', 42, 1, True),
        ),
        (
            0x0A,
            TOPIC_UTF8 + b"\xff\xfe" + PROPERTIES + b"\x00\x01",
            ("站/北", b"\x00\x01", 65534, 1, False),
        ),
        (0x02, b"\x00\x01t\x00\x01\x00", ("t", b"", 1, 1, False)),
    ],
    ids=["qos0", "qos0-utf8-topic", "qos0-retained-empty", "qos1-retained-properties",
         "qos1-dup-utf8-properties", "qos1-empty"],
)  # fmt: skip
def test_parse_publish__valid(
    flags: int, body: bytes, expected: tuple[str, bytes, int, int, bool]
) -> None:
    assert parse_publish(flags, body) == expected


@pytest.mark.parametrize(
    ("flags", "body"),
    [
        (0x02, b""),
        (0x02, b"\x00"),
        (0x02, b"\x00\x10a/b"),  # topic longer than the packet
        (0x02, b"\x00\x03a/b\x00"),  # packet id cut short
        (0x02, b"\x00\x03a/b\x00\x07"),  # no properties length
        (0x00, b"\x00\x03a/b"),
        (0x02, b"\x00\x03a/b\x00\x07\x09\x01\x01"),  # properties longer than the packet
        (0x02, b"\x00\x03a/b\x00\x07\xff\xff\xff\xff\x01"),  # properties length malformed
        (0x00, b"\x00\x02\xff\xfe\x00hi"),  # topic not UTF-8
    ],
    ids=["empty", "one-byte", "topic-cut", "packet-id-cut", "no-properties", "qos0-no-properties",
         "properties-cut", "properties-length-malformed", "topic-not-utf8"],
)  # fmt: skip
def test_parse_publish__invalid(flags: int, body: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_publish(flags, body)


# --- packets we send -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("packet_ids", "expected"),
    [
        ([], b""),
        ([1], b"\x40\x02\x00\x01"),
        ([1, 258, 65535], b"\x40\x02\x00\x01\x40\x02\x01\x02\x40\x02\xff\xff"),
    ],
)
def test_puback_packets__valid(packet_ids: list[int], expected: bytes) -> None:
    assert puback_packets(packet_ids) == expected


def test_connect_packet__valid() -> None:
    settings = SessionSettings(
        endpoint=Endpoint(BrokerUrl("127.0.0.1", 1883)), client_id="gw-1",
        subscriptions=(("a/#", 1),), session_expiry_s=600, keepalive_s=30, receive_maximum=100,
    )  # fmt: skip
    packet = connect_packet(settings)
    assert packet == (
        b"\x10\x19"  # CONNECT, 25 bytes follow
        b"\x00\x04MQTT\x05"  # protocol name, level 5
        b"\x00"  # connect flags: clean start off, no user name or password
        b"\x00\x1e"  # keep alive 30 s
        b"\x08\x11\x00\x00\x02\x58\x21\x00\x64"  # session expiry 600, receive maximum 100
        b"\x00\x04gw-1"  # client id
    )
    # The same, field by field, as a broker reads it.
    buffer = bytearray(packet)
    [(kind, flags, body)] = split_packets(buffer)
    assert (kind, flags, bytes(buffer)) == (CONNECT, 0, b"")
    name_length, name, level, connect_flags, keepalive = struct.unpack_from("!H4sBBH", body)
    assert (name_length, name, level, keepalive) == (4, b"MQTT", 5, 30)
    assert not connect_flags & 0x02, "clean start must be off: the session must survive"
    assert not connect_flags & 0xC0, "no user name or password was asked for"
    properties_length = body[10]
    properties = body[11 : 11 + properties_length]
    assert struct.unpack("!BIBH", properties) == (0x11, 600, 0x21, 100)
    (id_length,) = struct.unpack_from("!H", body, 11 + properties_length)
    assert body[13 + properties_length :] == b"gw-1"
    assert id_length == 4


def test_connect_packet__valid_with_user_name_and_password() -> None:
    endpoint = Endpoint(BrokerUrl("gw", 8883, tls=True), username="ingest", password="s3cret")
    settings = SessionSettings(endpoint, "gw-1", (("a/#", 1),))
    [(_, _, body)] = split_packets(bytearray(connect_packet(settings)))
    connect_flags = body[7]
    assert connect_flags == 0xC0, "user name and password flags, clean start off, no will"
    assert body.endswith(b"\x00\x04gw-1\x00\x06ingest\x00\x06s3cret")


# --- a fake broker: byte-exact control over what arrives together -----------------------


def read_packets(conn: socket.socket, buffer: bytearray) -> list[tuple[int, int, bytes]]:
    """The next packets the subscriber sent (at least one)."""
    while not (packets := split_packets(buffer)):
        data = conn.recv(4096)
        assert data, "the subscriber closed the connection"
        buffer += data
    return packets


@contextmanager
def fake_broker(script: Callable[[socket.socket], None]) -> Iterator[int]:
    """A one-connection broker on a free port that runs `script` on the accepted socket."""
    failures: list[BaseException] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(10)

        def serve() -> None:
            try:
                conn, _ = server.accept()
                with conn:
                    conn.settimeout(10)
                    script(conn)
            except BaseException as exc:  # reported in the test's own thread
                failures.append(exc)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield server.getsockname()[1]
        thread.join(15)
    assert not thread.is_alive(), "the fake broker did not finish its script"
    if failures:
        raise failures[0]


def test_subscriber__valid_when_queued_messages_come_in_the_same_read_as_the_connack() -> None:
    # A resumed session: Mosquitto writes the CONNACK and the queued PUBLISHes back to back,
    # and they often arrive in one read.
    received: list[tuple[int, int, bytes]] = []
    acked = threading.Event()

    def script(conn: socket.socket) -> None:
        buffer = bytearray()
        received.extend(read_packets(conn, buffer))
        assert [kind for kind, _, _ in received] == [CONNECT]
        conn.sendall(b"\x20\x03\x01\x00\x00" + PUBLISH_QOS1)  # session present, then PUBLISH
        while len(received) < 3:  # SUBSCRIBE and the PUBACK, in either order
            fresh = read_packets(conn, buffer)
            received.extend(fresh)
            if any(kind == SUBSCRIBE for kind, _, _ in fresh):
                conn.sendall(SUBACK)
        acked.set()
        while DISCONNECT not in [kind for kind, _, _ in read_packets(conn, buffer)]:
            pass

    deliveries: queue.Queue[Delivery] = queue.Queue()
    resumed: list[bool] = []
    with fake_broker(script) as port:
        settings = SessionSettings(Endpoint(BrokerUrl("127.0.0.1", port)), "gw-fake", (("a/#", 1),))

        def on_deliveries(chunk: list[Delivery]) -> None:
            for item in chunk:
                deliveries.put(item)
            subscriber.ack([item.packet_id for item in chunk], chunk[0].connection)

        subscriber = MqttSubscriber(
            settings, on_deliveries, lambda up, again: resumed.append(again) if up else None
        )
        subscriber.start()
        try:
            delivery = deliveries.get(timeout=10)
            assert acked.wait(10)
            wait_until(lambda: bool(resumed))
        finally:
            subscriber.stop()
    assert (delivery.topic, delivery.payload, delivery.packet_id) == ("a/b", b"hello", 7)
    assert delivery.connection == 1, "the subscriber dropped the connection and came back"
    assert resumed == [True]  # subscribed once, on the resumed session
    assert sorted(received[1:]) == [
        (PUBACK, 0, b"\x00\x07"),
        (SUBSCRIBE, 2, b"\x00\x01\x00\x00\x03a/#\x01"),  # id 1, no properties, QoS 1
    ]


# --- against Mosquitto -----------------------------------------------------------------


def wait_until(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


class Inbox:
    """An MqttSubscriber whose deliveries are collected; nothing is acked unless asked."""

    def __init__(self, broker: PrivateBroker, client_id: str) -> None:
        self.deliveries: queue.Queue[Delivery] = queue.Queue()
        self.up = threading.Event()
        settings = SessionSettings(
            identity(broker, client_id), client_id, (("test/#", 1),), session_expiry_s=600
        )
        self.subscriber = MqttSubscriber(
            settings,
            self._on_deliveries,
            self._on_connected,
        )

    def _on_deliveries(self, chunk: list[Delivery]) -> None:
        for item in chunk:
            self.deliveries.put(item)

    def _on_connected(self, up: bool, _resumed: bool) -> None:
        if up:
            self.up.set()
        else:
            self.up.clear()

    def take(self, count: int, timeout_s: float = 10) -> list[Delivery]:
        taken: list[Delivery] = []
        deadline = time.monotonic() + timeout_s
        while len(taken) < count:
            left = deadline - time.monotonic()
            try:
                taken.append(self.deliveries.get(timeout=max(left, 0.01)))
            except queue.Empty:
                raise AssertionError(f"{len(taken)} of {count} deliveries") from None
        return taken


@contextmanager
def inbox(broker: PrivateBroker, client_id: str) -> Iterator[Inbox]:
    opened = Inbox(broker, client_id)
    opened.subscriber.start()
    try:
        assert opened.up.wait(10), "no SUBACK"
        yield opened
    finally:
        opened.subscriber.stop()


def publish(broker: PrivateBroker, payloads: list[bytes], topic: str = "test/x") -> None:
    client = connect(identity(broker, f"pub-{time.monotonic_ns()}"))
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def numbered(first: int, last: int) -> list[bytes]:
    return [str(n).encode() for n in range(first, last + 1)]


def test_subscriber__receives_qos1_messages_published_by_paho(broker: PrivateBroker) -> None:
    with inbox(broker, "ingest-receive") as box:
        publish(broker, numbered(1, 5), "test/站")
        got = box.take(5)
        assert [d.payload for d in got] == numbered(1, 5)
        assert {(d.topic, d.qos, d.retain, d.connection) for d in got} == {("test/站", 1, False, 1)}
        assert len({d.packet_id for d in got}) == 5
        assert all(d.packet_id > 0 for d in got)
        box.subscriber.ack([d.packet_id for d in got], 1)


def test_subscriber__unacked_messages_come_again_in_the_next_session_acked_ones_do_not(
    broker: PrivateBroker,
) -> None:
    with inbox(broker, "ingest-session") as box:
        publish(broker, numbered(1, 6))
        got = box.take(6)
        box.subscriber.ack([d.packet_id for d in got[:3]], got[0].connection)
    # stop() disconnected normally: the session, and what it has in flight, stay on the broker.
    with inbox(broker, "ingest-session") as box:
        again = box.take(3)
        assert [d.payload for d in again] == numbered(4, 6)
        box.subscriber.ack([d.packet_id for d in again], again[0].connection)
        # Delivered in order: once this marker arrives, nothing else is pending.
        publish(broker, [b"marker"])
        assert [d.payload for d in box.take(1)] == [b"marker"]
        assert box.deliveries.empty()
        box.subscriber.ack([1], box.subscriber.connection)  # tidy: any id, acked or not


def test_subscriber__an_ack_from_an_earlier_connection_is_ignored(
    broker: PrivateBroker,
) -> None:
    with inbox(broker, "ingest-old-ack") as box:
        publish(broker, [b"one"])
        [first] = box.take(1)
        assert first.connection == 1
        box.up.clear()
        broker.stop()
        broker.start()  # same port, persistence: the session and its in-flight message stay
        assert box.up.wait(15), "the subscriber did not come back"
        assert box.subscriber.connection == 2
        [again] = box.take(1)  # the unacked message, on the new connection
        assert (again.payload, again.connection) == (b"one", 2)
        sock = box.subscriber._sock
        assert sock is not None
        sent: list[bytes] = []
        real_sendall = sock.sendall

        def spy(data: bytes) -> None:
            sent.append(bytes(data))
            real_sendall(data)

        sock.sendall = spy  # type: ignore[method-assign,assignment]  # the reader's TLS socket
        box.subscriber.ack([first.packet_id], first.connection)  # queued, then dropped
        publish(broker, [b"two"])
        [second] = box.take(1)
        box.subscriber.ack([second.packet_id], second.connection)
        wait_until(lambda: bool(sent))
        # One send: the ack queued first, for connection 1, was dropped, not sent.
        assert sent == [puback_packets([second.packet_id])]
    # Not acknowledged, so the broker still has it for the next session; "two" it does not.
    with inbox(broker, "ingest-old-ack") as box:
        [third] = box.take(1)
        assert (third.payload, third.connection) == (b"one", 1)
        box.subscriber.ack([third.packet_id], third.connection)
        publish(broker, [b"marker"])
        assert [d.payload for d in box.take(1)] == [b"marker"]


def test_subscriber__over_tls_what_is_ready_comes_in_one_chunk_not_a_record_each(
    broker: PrivateBroker,
) -> None:
    # A TLS recv gives one record (often one PUBLISH): without reading on while more is
    # ready, every chunk was one message and ingest's batches shrank to the queue's bound.
    assert broker.url.tls
    chunks: list[int] = []
    release = threading.Event()
    up = threading.Event()

    def on_deliveries(chunk: list[Delivery]) -> None:
        release.wait(10)  # the first chunk holds the reader: the rest piles up in the socket
        chunks.append(len(chunk))

    settings = SessionSettings(
        identity(broker, "ingest-merge"), "ingest-merge", (("test/#", 1),), session_expiry_s=600
    )
    subscriber = MqttSubscriber(settings, on_deliveries, lambda connected, _: up.set())
    subscriber.start()
    try:
        assert up.wait(10), "no SUBACK"
        publish(broker, numbered(1, 400))
        release.set()
        wait_until(lambda: sum(chunks) == 400)
    finally:
        subscriber.stop()
    assert max(chunks) >= 100, chunks
