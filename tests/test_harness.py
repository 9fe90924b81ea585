"""The harness: the private broker is a persistent Mosquitto, the pty is raw."""

from __future__ import annotations

import os
import socket

import serial

from simulators.broker import PrivateBroker
from simulators.pty import PseudoTerminal
from tests.conftest import Subscriber, connect, identity


def test_broker__delivers_and_keeps_retained_across_restart(broker: PrivateBroker) -> None:
    publisher = connect(identity(broker, "pub"))
    publisher.publish("harness/retained", b"kept", qos=1, retain=True).wait_for_publish(5)
    publisher.disconnect()
    publisher.loop_stop()

    broker.stop()
    broker.start()

    sub = Subscriber.connect(identity(broker, "sub"))
    sub.subscribe("harness/#")
    message = sub.next()
    assert (message.topic, message.payload, message.retain) == ("harness/retained", b"kept", True)
    sub.close()


def test_broker__queues_more_than_mosquittos_default_for_an_offline_session(
    broker: PrivateBroker,
) -> None:
    """An offline persistent session gets every one of 5,000 QoS 1 messages (default cap: 1,000)."""
    reader = Subscriber.connect(identity(broker, "offline-reader"), session_expiry_s=600)
    reader.subscribe("queue/#")
    reader.close()

    publisher = connect(identity(broker, "pub"))
    infos = [publisher.publish("queue/n", str(n).encode(), qos=1) for n in range(5000)]
    for info in infos:
        info.wait_for_publish(30)
    publisher.disconnect()
    publisher.loop_stop()

    reader = Subscriber.connect(identity(broker, "offline-reader"), session_expiry_s=600)
    received = [int(reader.next().payload) for _ in range(5000)]
    assert received == list(range(5000))
    reader.close()


def test_broker__stop_leaves_no_process_and_frees_the_port(tmp_path) -> None:
    broker = PrivateBroker(tmp_path / "b")
    broker.start()
    assert broker.process is not None
    pid = broker.process.pid
    broker.stop()
    assert not os.path.exists(f"/proc/{pid}")  # exited and reaped
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", broker.port)) != 0


def test_pty__binary_bytes_pass_both_ways_untouched(pty_pair: PseudoTerminal) -> None:
    # CR, LF, XON/XOFF, Ctrl-C and 0xFF: each would be mangled by a cooked terminal.
    frame = bytes([0x5A, 0x5A, 0x0D, 0x0A, 0x11, 0x13, 0x03, 0xFF, 0x00, 0x7E])
    port = serial.serial_for_url(pty_pair.path, baudrate=115200, timeout=1)
    try:
        pty_pair.write(frame)
        assert port.read(len(frame)) == frame
        port.write(b"\x7e\x00\x08\x01\x00\x0d\r\n")
        assert pty_pair.read_exactly(8) == b"\x7e\x00\x08\x01\x00\x0d\r\n"
    finally:
        port.close()


def test_pty__survives_the_driver_reopening_its_port(pty_pair: PseudoTerminal) -> None:
    serial.serial_for_url(pty_pair.path, timeout=1).close()
    port = serial.serial_for_url(pty_pair.path, timeout=1)
    try:
        pty_pair.write(b"after reopen\r")
        assert port.read_until(b"\r") == b"after reopen\r"
    finally:
        port.close()
