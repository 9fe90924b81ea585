"""A simulated USB camera: 640x480 frames of a phone screen showing a QR code, unpluggable."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np
import segno
from numpy.typing import NDArray

from edge.devices.camera.profile import CameraProfile

Frame = NDArray[np.uint8]


@dataclass(frozen=True)
class Degradation:
    """How far the picture is from a perfect one.

    Attributes:
        blur: Gaussian sigma in pixels (a lens slightly out of focus).
        noise: sensor noise sigma in grey levels, fresh in every frame.
        tilt: corner jitter as a share of the phone's width (a phone held at an angle).
    """

    blur: float = 0.0
    noise: float = 0.0
    tilt: float = 0.0


class SimulatedCamera:
    """A camera in front of which a phone shows `text` (or nothing).

    Its `open` stands in for `cv2.VideoCapture` in `CameraLink(capture=…)`. Frames come at
    `fps` in real time, or, with `realtime=False`, as fast as they are read while the
    camera's own `clock` advances by one frame interval per read: tests then pass
    `clock=camera.clock` to the link and get the same frames and times on every run.

    Args:
        text: what the phone shows; None for an empty scene.
        width, height: frame size.
        fps: frame rate.
        degradation: blur, noise and tilt.
        realtime: pace reads at `fps`.
        seed: noise and tilt seed.
    """

    def __init__(
        self, text: str | None = None, *, width: int = 640, height: int = 480, fps: int = 15,
        degradation: Degradation | None = None, realtime: bool = True, seed: int = 0,
    ) -> None:  # fmt: skip
        self.width, self.height, self.fps = width, height, fps
        self.degradation = degradation or Degradation()
        self.realtime = realtime
        self.plugged = True
        self.opened = 0
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._now = 0.0
        self._frames = 0
        self.text: str | None = None
        self._frame = self._render(None)
        self.show(text)

    def show(self, text: str | None) -> None:
        """The phone now shows `text` (None: the phone is taken away)."""
        frame = self._render(text)
        with self._lock:
            self.text, self._frame = text, frame

    def unplug(self) -> None:
        """Reads fail from now on and the camera cannot be opened."""
        self.plugged = False

    def plug(self) -> None:
        self.plugged = True

    def clock(self) -> float:
        """Seconds of camera time (advances one frame interval per read when not realtime)."""
        return time.monotonic() if self.realtime else self._now

    def open(self, source: int | str, profile: CameraProfile) -> SimulatedCapture:
        """What `cv2.VideoCapture(source)` would give: open only while plugged in."""
        del source, profile
        self.opened += 1
        return SimulatedCapture(self)

    def next_frame(self) -> tuple[bool, Frame | None]:
        """One read: wait for the frame time, then the frame (or a failure when unplugged)."""
        if self.realtime:
            time.sleep(1 / self.fps)
        else:
            self._frames += 1
            self._now = self._frames / self.fps  # not a running sum: no drift at window edges
        if not self.plugged:
            return False, None
        with self._lock:
            frame = self._frame
        if self.degradation.noise:
            noise = self._rng.normal(0, self.degradation.noise, frame.shape)
            frame = np.clip(frame + noise, 0, 255).astype(np.uint8)
        return True, frame.copy()

    def _render(self, text: str | None) -> Frame:
        """The scene in BGR: a grey counter, and a phone with a white screen and the code."""
        scene = np.full((self.height, self.width), 110, np.float32)
        scene += self._rng.normal(0, 4, (1, self.width)).astype(np.float32)  # counter grain
        side = int(self.height * 0.6)  # the phone's width; the screen leaves a bezel
        bezel = side // 16
        screen = np.full((side, side), 35, np.float32)
        screen[bezel:-bezel, bezel:-bezel] = 225  # a lit screen is not paper white
        if text is not None:
            code = np.array(segno.make_qr(text, error="m").matrix, dtype=np.float32)
            modules = code.shape[0] + 8  # four modules of quiet zone on each side
            size = (side - 2 * bezel) // modules * modules
            padded = np.pad(code, 4)
            picture = cv2.resize(padded, (size, size), interpolation=cv2.INTER_NEAREST)
            offset = (side - size) // 2
            screen[offset : offset + size, offset : offset + size] = 225 - picture * 195
        x0, y0 = (self.width - side) // 2, (self.height - side) // 2
        corners = np.array([[0, 0], [side, 0], [side, side], [0, side]], dtype=np.float32)
        quad = corners + np.array([x0, y0], dtype=np.float32)
        quad += self._rng.uniform(-1, 1, (4, 2)).astype(np.float32) * self.degradation.tilt * side
        warp = cv2.getPerspectiveTransform(corners, quad)
        phone = cv2.warpPerspective(screen, warp, (self.width, self.height))
        inside = cv2.warpPerspective(np.ones_like(screen), warp, (self.width, self.height))
        scene = phone * inside + scene * (1 - inside)
        if self.degradation.blur:
            scene = np.asarray(cv2.GaussianBlur(scene, (0, 0), self.degradation.blur), np.float32)
        gray = np.clip(np.rint(scene), 0, 255).astype(np.uint8)
        return np.asarray(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), dtype=np.uint8)


class SimulatedCapture:
    """One open handle on a SimulatedCamera, with `cv2.VideoCapture`'s method names."""

    def __init__(self, camera: SimulatedCamera) -> None:
        self._camera = camera
        self._open = camera.plugged

    def isOpened(self) -> bool:
        return self._open

    def read(self) -> tuple[bool, Frame | None]:
        if not self._open:
            return False, None
        return self._camera.next_frame()

    def release(self) -> None:
        self._open = False
