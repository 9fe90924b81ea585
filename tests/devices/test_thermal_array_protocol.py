"""GY-MCU90640 framing with byte literals (frames, splits, junk, bad sums), commands, setup."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from edge.devices.base import DeviceRefused, DeviceTimeout, FrameFault, RawSample
from edge.devices.thermal_array.driver import ThermalArrayDriver
from edge.devices.thermal_array.profile import ThermalArrayProfile
from edge.devices.thermal_array.protocol import (
    EMISSIVITY_QUERY,
    QUERY_MODE_COMMAND,
    SAVE_COMMAND,
    STREAM_COMMAND,
    EmissivityReply,
    Parsed,
    ThermalArrayFramer,
    ThermalFrame,
    emissivity_command,
    encode_frame,
    rate_command,
)

PROFILE_FILE = "hardware/profiles/gy-mcu90640.yaml"


def wire(pixels_raw: list[int], ta_raw: int) -> bytes:
    """A frame built by hand from the manual's table, independently of encode_frame."""
    body = bytes.fromhex("5A 5A 02 06") + struct.pack("<768h", *pixels_raw)
    body += struct.pack("<h", ta_raw)
    return body + struct.pack("<H", sum(struct.unpack("<771H", body)) & 0xFFFF)


# The worked example of hardware/protocols/gy-mcu90640-thermal-array.md: all pixels
# 36.94 °C (0x0E6E), Ta 24.01 °C (0x0961), checksum 0xB3BD sent as BD B3.
UNIFORM = wire([0x0E6E] * 768, 0x0961)
# Pixel i reads (i - 400) / 10 °C: row-major order and negative values are visible.
RAMP = wire([(i - 400) * 10 for i in range(768)], -512)
REPLY_098 = bytes.fromhex("5A 5A 62 16")  # emissivity 0.98: 5A + 5A + 62 = 0x116


def summary(items: list[Parsed]) -> list[str]:
    def name(item: Parsed) -> str:
        if isinstance(item, FrameFault):
            return f"fault:{item.kind}"
        if isinstance(item, EmissivityReply):
            return f"reply:{item.emissivity}"
        return f"frame:{item.ambient_c}"

    return [name(item) for item in items]


def feed_all(*chunks: bytes) -> list[Parsed]:
    framer = ThermalArrayFramer()
    return [item for chunk in chunks for item in framer.feed(chunk)]


def test_checksum_worked_example__valid() -> None:
    assert UNIFORM[:8] == bytes.fromhex("5A 5A 02 06 6E 0E 6E 0E")
    assert UNIFORM[-4:] == bytes.fromhex("61 09 BD B3")
    [frame] = ThermalArrayFramer().feed(UNIFORM)
    assert isinstance(frame, ThermalFrame)
    assert frame.pixels.shape == (24, 32)
    assert np.allclose(frame.pixels, 36.94)
    assert frame.ambient_c == 24.01


@pytest.mark.parametrize(
    ("row", "col", "celsius"),
    [(0, 0, -40.0), (0, 31, -36.9), (1, 0, -36.8), (12, 24, 0.8), (23, 31, 36.7)],
)
def test_pixel_order__valid(row: int, col: int, celsius: float) -> None:
    [frame] = ThermalArrayFramer().feed(RAMP)
    assert isinstance(frame, ThermalFrame)
    assert frame.pixels[row, col] == pytest.approx(celsius)
    assert frame.ambient_c == -5.12


def test_framer_split_anywhere__valid() -> None:
    stream = UNIFORM + RAMP
    for cut in range(1, len(stream)):
        framer = ThermalArrayFramer()
        items = framer.feed(stream[:cut]) + framer.feed(stream[cut:])
        assert summary(items) == ["frame:24.01", "frame:-5.12"], cut


def test_framer_byte_by_byte__valid() -> None:
    framer = ThermalArrayFramer()
    items = [item for byte in UNIFORM + REPLY_098 for item in framer.feed(bytes([byte]))]
    assert summary(items) == ["frame:24.01", "reply:0.98"]


def test_framer_opened_mid_frame__valid() -> None:
    # The port opened while a frame was on the wire: its tail is no line fault.
    assert summary(feed_all(RAMP[-700:], UNIFORM, RAMP)) == ["frame:24.01", "frame:-5.12"]


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        pytest.param(
            (UNIFORM, bytes(range(30)), RAMP),
            ["frame:24.01", "fault:garbage", "frame:-5.12"],
            id="junk between frames",
        ),
        pytest.param(
            (UNIFORM, UNIFORM[:-1] + b"\x00", RAMP),
            ["frame:24.01", "fault:checksum", "frame:-5.12"],
            id="bad checksum",
        ),
        pytest.param(
            (UNIFORM, RAMP[:700] + bytes([RAMP[700] ^ 0x01]) + RAMP[701:], UNIFORM),
            ["frame:24.01", "fault:checksum", "frame:24.01"],
            id="bit error in the pixels",
        ),
        pytest.param(
            (UNIFORM, bytes.fromhex("5A 5A 00 00"), RAMP),
            ["frame:24.01", "fault:garbage", "frame:-5.12"],
            id="header of nothing known",
        ),
        pytest.param(
            (UNIFORM, b"\x5a", RAMP),
            ["frame:24.01", "fault:garbage", "frame:-5.12"],
            id="stray 5A before a header",
        ),
        pytest.param(
            (UNIFORM, RAMP[:800], UNIFORM, RAMP),
            ["frame:24.01", "fault:checksum", "fault:garbage", "frame:-5.12"],
            id="frame cut short costs the next one, then resyncs",
        ),
        pytest.param(
            (bytes(2000),),
            ["fault:garbage"],
            id="no header at all (wrong baud rate)",
        ),
        pytest.param(
            (UNIFORM, bytes.fromhex("5A 5A 62 17"), RAMP),
            ["frame:24.01", "fault:garbage", "frame:-5.12"],
            id="emissivity reply with a bad sum",
        ),
    ],
)
def test_framer__invalid(chunks: tuple[bytes, ...], expected: list[str]) -> None:
    assert summary(feed_all(*chunks)) == expected


def test_emissivity_reply__valid() -> None:
    assert summary(feed_all(REPLY_098, UNIFORM)) == ["reply:0.98", "frame:24.01"]
    # After a reply the framer knows where frames start: junk now is a fault.
    assert summary(feed_all(REPLY_098, b"\x01\x02", UNIFORM)) == [
        "reply:0.98", "fault:garbage", "frame:24.01",
    ]  # fmt: skip


def test_encode_frame__valid() -> None:
    pixels = np.linspace(-10.0, 45.0, 768).reshape(24, 32)
    encoded = encode_frame(pixels, 23.456)
    [frame] = ThermalArrayFramer().feed(encoded)
    assert isinstance(frame, ThermalFrame)
    assert np.allclose(frame.pixels, pixels, atol=0.005)
    assert frame.ambient_c == 23.46
    assert encode_frame(np.full((24, 32), 36.94), 24.01) == UNIFORM


@pytest.mark.parametrize(
    ("sent", "manual"),
    [
        (rate_command(0.5), "A5 25 00 CA"),
        (rate_command(4.0), "A5 25 03 CD"),
        (rate_command(8.0), "A5 25 04 CE"),
        (emissivity_command(0.95), "A5 45 5F 49"),  # the manual's own example
        (QUERY_MODE_COMMAND, "A5 35 01 DB"),
        (STREAM_COMMAND, "A5 35 02 DC"),
        (EMISSIVITY_QUERY, "A5 55 01 FB"),
        (SAVE_COMMAND, "A5 65 01 0B"),
    ],
)
def test_command__valid(sent: bytes, manual: str) -> None:
    assert sent == bytes.fromhex(manual)


def test_profile__valid() -> None:
    with open(PROFILE_FILE, encoding="utf-8") as file:
        assert ThermalArrayProfile.model_validate(yaml.safe_load(file)) == ThermalArrayProfile()
    assert ThermalArrayProfile(baudrate=460800, rate_hz=8.0).rate_hz == 8.0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rate_hz": 8.0}, "does not fit baudrate 115200"),
        ({"baudrate": 9600, "rate_hz": 1.0}, "does not fit baudrate 9600"),
        ({"rate_hz": 3.0}, "rate_hz must be one of"),
        ({"baudrate": 57600}, "baudrate"),
        ({"skin_min_c": 36.0, "skin_max_c": 36.0}, "skin_min_c must be below skin_max_c"),
        ({"min_face_px": 300}, "min_face_px must be below max_face_px"),
        ({"emissivity": 1.5}, "emissivity"),
        ({"frame_size": 768}, "frame_size"),
    ],
)
def test_profile__invalid(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ThermalArrayProfile.model_validate(fields)


class FakeStream:
    """A serial port whose module answers each write with `answer(written bytes)`."""

    timeout: float | None = 0.01

    def __init__(self, answer: Callable[[bytes], bytes]) -> None:
        self.answer = answer
        self.incoming = bytearray()
        self.written: list[bytes] = []

    def read(self, size: int = 1) -> bytes:
        if not self.incoming and self.timeout:
            time.sleep(self.timeout)
        data = bytes(self.incoming[:size])
        del self.incoming[:size]
        return data

    def write(self, data: bytes, /) -> int:
        self.written.append(data)
        self.incoming += self.answer(data)
        return len(data)

    def reset_input_buffer(self) -> None:
        self.incoming.clear()

    @property
    def in_waiting(self) -> int:
        return len(self.incoming)


QUICK = ThermalArrayProfile(reply_timeout_s=0.1)


def test_setup__valid() -> None:
    stream = FakeStream(lambda data: REPLY_098 if data == EMISSIVITY_QUERY else b"")
    ThermalArrayDriver(stream, QUICK).setup()
    assert stream.written == [
        bytes.fromhex("A5 45 62 4C"),  # emissivity 0.98
        bytes.fromhex("A5 25 03 CD"),  # 4 Hz
        bytes.fromhex("A5 35 02 DC"),  # continuous output
        bytes.fromhex("A5 55 01 FB"),  # what emissivity do you use?
    ]


def test_setup_without_reply_but_frames__valid() -> None:
    # A module that ignores the query but streams is still used; its frames are kept.
    stream = FakeStream(lambda data: UNIFORM if data == EMISSIVITY_QUERY else b"")
    driver = ThermalArrayDriver(stream, QUICK)
    driver.setup()
    assert [type(item) for item in driver.poll()] == [RawSample]


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        (lambda data: bytes.fromhex("5A 5A 5F 13") if data == EMISSIVITY_QUERY else b"",
         DeviceRefused, "kept emissivity 0.95"),
        (lambda data: b"", DeviceTimeout, "neither a frame nor the emissivity reply"),
        (lambda data: bytes(50), DeviceTimeout, "neither a frame nor the emissivity reply"),
    ],
    ids=["another emissivity", "silent", "junk only"],
)  # fmt: skip
def test_setup__invalid(
    answer: Callable[[bytes], bytes], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        ThermalArrayDriver(FakeStream(answer), QUICK).setup()


class TestClock:
    __test__ = False

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_revive_sends_the_settings_again() -> None:
    stream = FakeStream(lambda data: b"")
    ThermalArrayDriver(stream, QUICK).revive()
    assert stream.written == [emissivity_command(0.98), rate_command(4.0), STREAM_COMMAND]


@pytest.mark.parametrize(
    ("reply", "lost"),
    [(REPLY_098, False), (bytes.fromhex("5A 5A 5F 13"), True)],  # 0.98 kept, 0.95 again
    ids=["settings kept", "restarted with 0.95"],
)
def test_emissivity_is_checked_every_settings_check_s(reply: bytes, lost: bool) -> None:
    # A module that restarts while its port stays open is back on its stored emissivity
    # (0.95 as shipped), and every pixel reads ~0.6 °C warm for a 0.98 forehead.
    answers = [REPLY_098, reply]
    stream = FakeStream(lambda data: answers.pop(0) if data == EMISSIVITY_QUERY else b"")
    clock = TestClock()
    driver = ThermalArrayDriver(stream, QUICK.model_copy(update={"settings_check_s": 5.0}), clock)
    driver.setup()
    stream.written.clear()
    clock.now += 4.9
    assert driver.poll() == []
    assert stream.written == []  # not due yet
    clock.now += 0.2
    driver.poll()
    assert stream.written == [EMISSIVITY_QUERY]
    if lost:
        with pytest.raises(DeviceRefused, match=r"emissivity is 0\.95, set 0\.98: restarted"):
            driver.poll()
    else:
        assert driver.poll() == []
