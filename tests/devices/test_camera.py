"""USB camera reader: QR codes from simulated phone screens, once per window; unplug and replug."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pytest
import yaml

from edge.credentials.qrimage import decode_qr
from edge.devices.base import CodeScan, Reading
from edge.devices.camera.profile import CameraProfile
from edge.devices.camera.reader import CameraLink, Frame, FrameSource
from edge.devices.link import FaultChange
from simulators.devices.camera import Degradation, SimulatedCamera

TEXT = "HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH-R6IOOA%I6T-KVD3MS:N3/4O5BKPS%SM5DF5WM1EMC5"
OTHER = "https://gatepost.example/pass/7F3K-22QD"
PROFILE = CameraProfile(fps=8, decode_every=1, dedupe_s=1.0, frame_timeout_s=0.3)


@dataclass
class Recorder:
    """What the link reported, with a condition to wait on."""

    scans: list[CodeScan] = field(default_factory=list)
    changes: list[FaultChange] = field(default_factory=list)
    news: threading.Condition = field(default_factory=threading.Condition)

    def on_reading(self, reading: Reading) -> None:
        assert isinstance(reading, CodeScan)
        with self.news:
            self.scans.append(reading)
            self.news.notify_all()

    def on_fault(self, change: FaultChange) -> None:
        with self.news:
            self.changes.append(change)
            self.news.notify_all()

    def wait(self, what: str, condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
        with self.news:
            assert self.news.wait_for(condition, timeout_s), (what, self.scans, self.changes)

    def log(self) -> list[str]:
        return [f"{c.fault} {c.state}" for c in self.changes]


def run_for(
    camera: SimulatedCamera, seconds: float, profile: CameraProfile = PROFILE,
    decoder: Callable[[Frame], str | None] = decode_qr,
) -> Recorder:  # fmt: skip
    """Run a link on a camera with its own clock until `seconds` of camera time passed."""
    recorder, stop = Recorder(), threading.Event()

    def capture(source: int | str, given: CameraProfile) -> FrameSource:
        handle = camera.open(source, given)

        class Until:
            def isOpened(self) -> bool:
                return handle.isOpened()

            def read(self) -> tuple[bool, Frame | None]:
                if camera.clock() >= seconds:
                    stop.set()
                return handle.read()

            def release(self) -> None:
                handle.release()

        return Until()

    link = CameraLink(
        "camera", 0, profile, on_reading=recorder.on_reading, on_fault=recorder.on_fault,
        capture=capture, decoder=decoder, clock=camera.clock, reopen_every_s=0.01,
    )  # fmt: skip
    link.run(stop)
    return recorder


@pytest.mark.parametrize(
    "degradation",
    [
        pytest.param(Degradation(), id="clean"),
        pytest.param(Degradation(blur=0.8, noise=6, tilt=0.06), id="blurred noisy tilted"),
    ],
)
def test_code_read_once_per_window__valid(degradation: Degradation) -> None:
    camera = SimulatedCamera(TEXT, fps=8, degradation=degradation, realtime=False)
    recorder = run_for(camera, 3.5)
    # Frames every 0.125 s; a 1 s window: one scan at 0.125, 1.125, 2.125 and 3.125 s.
    assert [scan.text for scan in recorder.scans] == [TEXT] * 4
    assert [scan.at for scan in recorder.scans] == [0.125, 1.125, 2.125, 3.125]
    assert {scan.source for scan in recorder.scans} == {"camera"}
    assert recorder.changes == []


def test_new_text_is_read_at_once__valid() -> None:
    camera = SimulatedCamera(TEXT, fps=8, realtime=False)

    def decoder(frame: Frame) -> str | None:
        if camera.clock() >= 0.5 and camera.text != OTHER:
            camera.show(OTHER)  # the next person holds up another phone
        return decode_qr(frame)

    recorder = run_for(camera, 0.9, decoder=decoder)
    assert [scan.text for scan in recorder.scans] == [TEXT, OTHER]


def test_decode_every__valid() -> None:
    camera = SimulatedCamera(None, fps=8, realtime=False)
    decoded: list[float] = []

    def decoder(frame: Frame) -> str | None:
        decoded.append(camera.clock())
        return decode_qr(frame)

    run_for(camera, 1.25, profile=PROFILE.model_copy(update={"decode_every": 3}), decoder=decoder)
    assert decoded == [0.375, 0.75, 1.125]  # frames 3, 6, 9 of 8 per second


@pytest.mark.parametrize(
    "degradation",
    [pytest.param(Degradation(), id="clean"), pytest.param(Degradation(noise=14), id="noisy")],
)
def test_no_code__invalid(degradation: Degradation) -> None:
    camera = SimulatedCamera(None, fps=8, degradation=degradation, realtime=False)
    recorder = run_for(camera, 1.0)
    assert recorder.scans == []
    assert recorder.changes == []


@contextmanager
def running(camera: SimulatedCamera, profile: CameraProfile = PROFILE) -> Iterator[Recorder]:
    """A link on its own thread, as the node runs it, stopped (promptly) on exit."""
    recorder, stop = Recorder(), threading.Event()
    link = CameraLink(
        "camera", "/dev/gatepost-camera", profile, on_reading=recorder.on_reading,
        on_fault=recorder.on_fault, capture=camera.open, reopen_every_s=0.05,
    )  # fmt: skip
    link.start(stop)
    try:
        yield recorder
    finally:
        stop.set()
        began = time.monotonic()
        link.join(2.0)
        assert time.monotonic() - began < 1.0, "the camera link did not stop within 1 s"


def test_unplug_and_replug__invalid() -> None:
    camera = SimulatedCamera(TEXT, fps=30)
    with running(camera) as recorder:
        recorder.wait("first scan", lambda: len(recorder.scans) == 1)
        camera.unplug()
        recorder.wait("unplugged", lambda: recorder.log() == ["unplugged raised"])
        assert "no frame from camera /dev/gatepost-camera" in str(recorder.changes[0].detail)
        camera.show(OTHER)
        camera.plug()
        recorder.wait("cleared", lambda: recorder.log()[-1:] == ["unplugged cleared"])
        recorder.wait("scan after replug", lambda: recorder.scans[-1].text == OTHER)
    assert recorder.log() == ["unplugged raised", "unplugged cleared"]
    assert camera.opened >= 2  # the capture was released and opened again


def test_camera_missing_at_start__invalid() -> None:
    camera = SimulatedCamera(TEXT, fps=30)
    camera.unplug()
    with running(camera) as recorder:
        recorder.wait("unplugged", lambda: recorder.log() == ["unplugged raised"])
        assert recorder.changes[0].detail == "cannot open camera /dev/gatepost-camera"
        camera.plug()
        recorder.wait("scan", lambda: [s.text for s in recorder.scans] == [TEXT])
    assert recorder.log() == ["unplugged raised", "unplugged cleared"]


def test_simulated_frame__valid() -> None:
    ok, frame = SimulatedCamera(TEXT, realtime=False).next_frame()
    assert ok and frame is not None
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8


def test_profile__valid() -> None:
    with open("hardware/profiles/usb-camera.yaml", encoding="utf-8") as file:
        assert CameraProfile.model_validate(yaml.safe_load(file)) == CameraProfile()


@pytest.mark.parametrize(
    "fields",
    [{"part": "gy-mcu90640"}, {"decode_every": 0}, {"fps": 0}, {"dedupe_s": -1}, {"zoom": 2}],
)
def test_profile__invalid(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(fields))):
        CameraProfile.model_validate(fields)
