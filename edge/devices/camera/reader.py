"""A USB camera kept open through OpenCV: frames read on its own thread, QR codes decoded."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.credentials.qrimage import decode_qr
from edge.devices.base import CodeScan, Reading
from edge.devices.camera.profile import CameraProfile
from edge.devices.link import REOPEN_EVERY_S, FaultChange, SupervisedDevice

log = logging.getLogger(__name__)

SOURCE = "camera"
# A failed read returns at once on an unplugged V4L2 device; pausing keeps the thread
# from spinning through the frame timeout.
FAILED_READ_PAUSE_S = 0.05

Frame = NDArray[np.uint8]


class FrameSource(Protocol):
    """The part of `cv2.VideoCapture` the reader uses (OpenCV's own method names)."""

    def read(self) -> tuple[bool, Frame | None]: ...

    def isOpened(self) -> bool: ...

    def release(self) -> None: ...


CaptureFactory = Callable[[int | str, CameraProfile], FrameSource]
Decoder = Callable[[Frame], str | None]


def open_capture(source: int | str, profile: CameraProfile) -> FrameSource:
    """Open a camera by V4L2 index (0 = /dev/video0), or a device path or stream URL.

    Args:
        source: what `cv2.VideoCapture` opens.
        profile: the frame size and rate to ask for (the driver may pick the nearest).

    Returns:
        The capture, opened or not (check `isOpened()`).
    """
    if isinstance(source, int):
        capture = cv2.VideoCapture(source, cv2.CAP_V4L2)
    else:
        capture = cv2.VideoCapture(source)
    capture.set(cv2.CAP_PROP_FRAME_WIDTH, profile.width)
    capture.set(cv2.CAP_PROP_FRAME_HEIGHT, profile.height)
    capture.set(cv2.CAP_PROP_FPS, profile.fps)
    # One buffered frame: a code is decoded from what the camera sees now, not 4 frames ago.
    capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    return capture  # type: ignore[return-value]  # read() is typed loosely by OpenCV


class CameraLink(SupervisedDevice):
    """Keeps one camera open and reports the QR codes it sees, like DeviceLink for serial parts.

    Args:
        name: the device's name in events and status.
        source: V4L2 index, device path or stream URL.
        profile: frame settings, decode rate, dedupe window, frame timeout.
        on_reading: called on the link's thread with a CodeScan per new code.
        on_fault: called on the link's thread for every fault change ('unplugged' only).
        capture: opens the source; tests pass a simulated camera's `open`.
        decoder: frame to text; the credentials reader's `decode_qr` by default.
        clock: monotonic seconds.
        reopen_every_s: pause between attempts to open a missing camera.
    """

    def __init__(
        self, name: str, source: int | str, profile: CameraProfile, *,
        on_reading: Callable[[Reading], None], on_fault: Callable[[FaultChange], None],
        capture: CaptureFactory = open_capture, decoder: Decoder = decode_qr,
        clock: Callable[[], float] = time.monotonic, reopen_every_s: float = REOPEN_EVERY_S,
    ) -> None:  # fmt: skip
        super().__init__(name, on_fault)
        self.source = source
        self.profile = profile
        self._on_reading = on_reading
        self._capture = capture
        self._decoder = decoder
        self._clock = clock
        self._reopen_every_s = reopen_every_s
        self._reported: dict[str, float] = {}

    def run(self, stop: threading.Event) -> None:
        """Open and read the camera until `stop` is set, reopening after every loss."""
        while not stop.is_set():
            capture = self._open()
            if capture is not None:
                try:
                    self._serve(capture, stop)
                finally:
                    capture.release()
            stop.wait(self._reopen_every_s)

    def _open(self) -> FrameSource | None:
        try:
            capture = self._capture(self.source, self.profile)
        except (cv2.error, OSError) as exc:
            self._raise("unplugged", f"cannot open camera {self.source}: {exc}")
            return None
        if not capture.isOpened():
            capture.release()
            self._raise("unplugged", f"cannot open camera {self.source}")
            return None
        return capture

    def _serve(self, capture: FrameSource, stop: threading.Event) -> None:
        """Read frames until the camera stops giving them for `frame_timeout_s`."""
        last_frame, count = self._clock(), 0
        while not stop.is_set():
            try:
                ok, frame = capture.read()
            except cv2.error:
                log.debug("%s: read failed", self.name, exc_info=True)
                ok, frame = False, None
            now = self._clock()
            if not ok or frame is None:
                if now - last_frame >= self.profile.frame_timeout_s:
                    self._raise(
                        "unplugged",
                        f"no frame from camera {self.source} for {now - last_frame:.1f} s",
                    )
                    return
                stop.wait(FAILED_READ_PAUSE_S)
                continue
            last_frame, count = now, count + 1
            self._clear("unplugged")
            if count % self.profile.decode_every == 0:
                self._decode(frame, now)

    def _decode(self, frame: Frame, now: float) -> None:
        try:
            text = self._decoder(frame)
        except (TypeError, ValueError):
            # A frame format the decoder does not take (e.g. 16-bit): no code in it.
            log.debug("%s: undecodable %s frame", self.name, getattr(frame, "shape", "?"))
            return
        if text is None:
            return
        window = self.profile.dedupe_s
        self._reported = {t: at for t, at in self._reported.items() if now - at < window}
        if text in self._reported:
            return
        self._reported[text] = now
        self._on_reading(CodeScan(text, SOURCE, now))
