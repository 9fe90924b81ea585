"""Settings of a GY-MCU90640 thermal array: link, face finding, compensation, episodes."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from edge.devices.base import DeviceProfile

# The module's update rates (vendor manual, "A5 25 xx" command) and their codes.
RATE_CODES: dict[float, int] = {0.5: 0x00, 1.0: 0x01, 2.0: 0x02, 4.0: 0x03, 8.0: 0x04}
FRAME_BYTES = 1544
BITS_PER_BYTE = 10  # 8N1


class ThermalArrayProfile(DeviceProfile):
    """A GY-MCU90640-class module (MLX90640 32x24 behind an STM32) on a UART.

    Temperatures are in °C. `ambient_c` everywhere is the module's own sensor temperature
    (Ta in its frames), the only ambient value it gives; the compensation's reference is
    in the same terms, so calibrate `offset_c` against a clinical thermometer on site.
    """

    part: Literal["gy-mcu90640"] = "gy-mcu90640"
    model: str = Field("GY-MCU90640BAB", description="module as printed: BAA 110°, BAB 55° lens")
    baudrate: Literal[9600, 115200, 460800] = Field(
        115200, description="UART speed, 8N1: one of the three the module supports"
    )
    silence_fault_s: float | None = Field(
        3.0, gt=0, le=3600, description="no valid frame this long: timeout fault"
    )
    stuck_after_s: float | None = Field(
        120.0, gt=0, le=86400,
        description="byte-identical frames this long: stuck (a live array is never noise-free)",
    )  # fmt: skip
    rate_hz: float = Field(4.0, ge=0.5, le=8.0, description="frames per second: 0.5, 1, 2, 4, 8")
    emissivity: float = Field(
        0.98, ge=0.1, le=1.0, description="set on the module at setup; human skin is ~0.98"
    )
    reply_timeout_s: float = Field(
        1.0, gt=0, le=10, description="how long setup waits for the emissivity reply"
    )
    settings_check_s: float | None = Field(
        5.0, ge=0.2, le=3600,
        description="ask the module for its emissivity this often; another than the one set "
        "means it restarted with its stored settings, and it is set up again (none: never)",
    )  # fmt: skip
    upside_down: bool = Field(False, description="module mounted rotated by 180°")

    skin_min_c: float = Field(
        30.0, ge=20, le=36, description="pixels at least this warm may be skin (face blob)"
    )
    skin_above_background_c: float = Field(
        4.0, ge=0, le=15,
        description="skin is at least this much warmer than the background (the lower of "
        "the picture's 20th percentile and Ta), so warm-room hair and walls are no face",
    )  # fmt: skip
    skin_max_c: float = Field(
        40.0, ge=36, le=50, description="a blob hotter than this is not skin (cup, lamp, heater)"
    )
    min_blob_px: int = Field(
        4, ge=1, le=50, description="warm blobs smaller than this are hot spots, never a person"
    )
    min_face_px: int = Field(40, ge=4, le=700, description="smaller face blob: too far")
    max_face_px: int = Field(260, ge=10, le=768, description="larger face blob: too close")
    edge_touch_px: int = Field(
        5, ge=1, le=32, description="a face with this many pixels on both top and bottom rows "
        "fills the frame's height: too close",
    )  # fmt: skip
    max_aspect: float = Field(
        1.3, ge=0.5, le=4, description="widest width/height of a head (taller than wide)"
    )
    forehead_fraction: float = Field(
        0.3, gt=0, le=1, description="forehead = this top share of the head's height"
    )
    forehead_percentile: float = Field(
        85, ge=50, le=100, description="percentile of forehead pixels taken as skin temperature"
    )

    offset_c: float = Field(
        2.2, ge=-5, le=10, description="body - forehead skin at the reference ambient"
    )
    ambient_k: float = Field(
        0.25, ge=0, le=1, description="°C added per °C the ambient is below the reference"
    )
    reference_ambient_c: float = Field(23.0, ge=-10, le=45, description="ambient of offset_c")
    body_min_c: float = Field(34.0, ge=25, le=37, description="lower estimates: out-of-range")
    body_max_c: float = Field(43.0, ge=38, le=50, description="higher estimates: out-of-range")

    settle_frames: int = Field(
        4, ge=1, le=64, description="consecutive measurable frames before a reading"
    )
    settle_spread_c: float = Field(
        0.3, gt=0, le=5, description="largest max-min body estimate over those frames"
    )
    clear_frames: int = Field(
        2, ge=1, le=64, description="frames without a face that end a person's episode"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.rate_hz not in RATE_CODES:
            raise ValueError(f"rate_hz must be one of {sorted(RATE_CODES)}, not {self.rate_hz}")
        wire_s = FRAME_BYTES * BITS_PER_BYTE / self.baudrate
        if wire_s * self.rate_hz > 0.9:
            raise ValueError(
                f"rate_hz {self.rate_hz} does not fit baudrate {self.baudrate}: "
                f"one frame takes {wire_s * 1000:.0f} ms on the wire"
            )
        for low, high in (
            ("skin_min_c", "skin_max_c"),
            ("min_face_px", "max_face_px"),
            ("body_min_c", "body_max_c"),
        ):
            if getattr(self, low) >= getattr(self, high):
                raise ValueError(f"{low} must be below {high}")
        return self
