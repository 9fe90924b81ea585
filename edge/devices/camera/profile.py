"""Settings of a USB (UVC) camera that reads QR codes from phone screens."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.devices.base import DeviceProfile


class CameraProfile(DeviceProfile):
    """A V4L2 camera read through OpenCV.

    The serial fields of DeviceProfile do not apply: `baudrate` is ignored, and a camera
    that stops delivering frames is `unplugged` after `frame_timeout_s` (no timeout fault).
    """

    part: Literal["usb-camera"] = "usb-camera"
    model: str = Field("uvc-webcam", description="the camera as sold, for the record")
    width: int = Field(640, ge=160, le=3840, description="frame width asked of the driver, px")
    height: int = Field(480, ge=120, le=2160, description="frame height asked of the driver, px")
    fps: int = Field(15, ge=1, le=120, description="frames per second asked of the driver")
    decode_every: int = Field(
        2, ge=1, le=60,
        description="decode every Nth frame: at 15 fps, 2 still reads a code within ~0.2 s "
        "and halves the CPU a Pi spends on frames without one",
    )  # fmt: skip
    dedupe_s: float = Field(
        3.0, ge=0, le=600,
        description="the same text is reported once per this many seconds: a phone held up "
        "is one scan, not fifteen a second",
    )  # fmt: skip
    frame_timeout_s: float = Field(
        2.0, gt=0, le=60, description="no frame this long: the camera counts as unplugged"
    )
