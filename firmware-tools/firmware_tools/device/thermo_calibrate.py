"""`fw device thermo-calibrate`: the IR thermometer's error against a blackbody, into the config."""

# Sequence (hardware/protocols/gy-mcu90614-thermometer.md, "Calibration by firmware-tools"):
# open the port at the module's speed, send A5 45 EA (continuous output), take N valid
# 5A 5A 45 04 frames, and use their object values (°C x 100). The module is only listened
# to: nothing is written to it, so there is nothing on the module to roll back.

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import serial
import yaml

from edge.devices.thermometer.protocol import (
    CONTINUOUS_OUTPUT,
    FrameReader,
    TemperatureFrame,
    command,
)
from firmware_tools.device.common import DeviceSetupError, Progress

OFFSET_KEY = "object_offset_c"  # ThermometerProfile's field, set per unit in the config
MAX_SPREAD_C = 0.3  # max - min of the samples: a settled blackbody and a sound sensor
MAX_DRIFT_C = 0.1  # second half's mean minus the first's: the calibrator still moving
MAX_OFFSET_C = 3.0  # the profile's bound on object_offset_c: more is a wrong setup
FRAME_WAIT_S = 1.0  # the module streams ~14 frames/s; a second without one is silence


@dataclass(frozen=True)
class Calibration:
    """The samples' statistics and the offset they give."""

    reference_c: float
    samples: tuple[float, ...]

    @property
    def mean_c(self) -> float:
        return statistics.fmean(self.samples)

    @property
    def stdev_c(self) -> float:
        return statistics.stdev(self.samples)

    @property
    def spread_c(self) -> float:
        return max(self.samples) - min(self.samples)

    @property
    def drift_c(self) -> float:
        half = len(self.samples) // 2
        return statistics.fmean(self.samples[half:]) - statistics.fmean(self.samples[:half])

    @property
    def offset_c(self) -> float:
        """What the driver adds to every object value: reference minus the sensor's mean."""
        return round(self.reference_c - self.mean_c, 2)

    def describe(self) -> str:
        return (
            f"mean {self.mean_c:.2f} °C, stdev {self.stdev_c:.3f}, min {min(self.samples):.2f}, "
            f"max {max(self.samples):.2f} (spread {self.spread_c:.2f}), "
            f"drift {self.drift_c:+.2f} over {len(self.samples)} samples"
        )

    def check_stable(self, max_spread_c: float = MAX_SPREAD_C) -> None:
        """Refuse a reference that is not steady (its offset would be noise) or not there.

        Raises:
            DeviceSetupError: the spread, the drift or the offset is above its bound.
        """
        if abs(self.reference_c - self.mean_c) > MAX_OFFSET_C:
            raise DeviceSetupError(
                "stability", f"the sensor reads {self.mean_c:.2f} °C against "
                f"{self.reference_c} °C (more than {MAX_OFFSET_C} °C apart): is the blackbody "
                "in front of it, at the set temperature and the gate's distance?",
            )  # fmt: skip
        if self.spread_c > max_spread_c:
            raise DeviceSetupError(
                "stability", f"spread {self.spread_c:.2f} °C is above {max_spread_c} °C: let "
                "the blackbody settle, keep the sensor still and nothing between them",
            )  # fmt: skip
        if abs(self.drift_c) > MAX_DRIFT_C:
            raise DeviceSetupError(
                "stability", f"the reading drifted {self.drift_c:+.2f} °C during the samples "
                f"(bound {MAX_DRIFT_C}): the blackbody has not reached its set point",
            )  # fmt: skip


def take_samples(url: str, baud: int, count: int, progress: Progress) -> list[float]:
    """Object temperatures of `count` valid frames, in °C.

    Raises:
        DeviceSetupError: the port does not open, or the module stops sending.
    """
    try:
        port = serial.serial_for_url(url, baudrate=baud, timeout=0.05)
    except (serial.SerialException, OSError) as exc:
        raise DeviceSetupError("open", f"cannot open {url} at {baud}: {exc}") from None
    reader = FrameReader()
    samples: list[float] = []
    with contextlib.closing(port):
        port.reset_input_buffer()
        port.write(command(CONTINUOUS_OUTPUT))  # A5 45 EA: a module set to stay silent
        last = time.monotonic()
        while len(samples) < count:
            data = port.read(max(1, port.in_waiting))
            frames = [f for f in reader.feed(data) if isinstance(f, TemperatureFrame)]
            if frames:
                last = time.monotonic()
            samples.extend(f.object_c for f in frames)
            if time.monotonic() - last > FRAME_WAIT_S:
                raise DeviceSetupError(
                    "sample", f"no valid frame for {FRAME_WAIT_S:.0f} s on {url} at {baud} "
                    f"baud after {len(samples)} of {count} samples",
                )  # fmt: skip
            if frames and len(samples) // 10 > (len(samples) - len(frames)) // 10:
                progress.note(f"  {min(len(samples), count)}/{count} samples")
    return samples[:count]


def write_offset(config: Path, offset_c: float) -> None:
    """Set devices.thermometer.settings.object_offset_c in a gate's config, atomically.

    The other keys stay as they are; comments are not kept (the file is dumped again).

    Raises:
        DeviceSetupError: the file is no gate config with a thermometer, or the offset
            is outside what the profile accepts; the file is then untouched.
    """
    from edge.errors import GatepostError
    from edge.gate.config import DeviceSection  # lazy: the gate's config models

    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DeviceSetupError("config", f"cannot read {config}: {exc}") from None
    section = _thermometer_section(config, data)
    settings = dict(section.get("settings") or {})
    settings[OFFSET_KEY] = offset_c
    try:
        DeviceSection.model_validate({**section, "settings": settings}).load()
    except (GatepostError, ValueError, OSError) as exc:
        raise DeviceSetupError(
            "config", f"{config}: devices.thermometer.settings.{OFFSET_KEY}: {exc}"
        ) from None
    section["settings"] = settings
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    _replace_atomically(config, text)


def _thermometer_section(config: Path, data: Any) -> dict[str, Any]:
    devices = data.get("devices") if isinstance(data, dict) else None
    section = devices.get("thermometer") if isinstance(devices, dict) else None
    if not isinstance(section, dict):
        raise DeviceSetupError(
            "config", f"{config}: devices.thermometer: missing (not a gate config with a "
            "thermometer)",
        )  # fmt: skip
    return section


def _replace_atomically(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def thermo_calibrate(
    url: str, reference_c: float, samples: int, progress: Progress, *, baud: int = 9600,
    config: Path | None = None, max_spread_c: float = MAX_SPREAD_C,
) -> Calibration:  # fmt: skip
    """Measure the sensor against a blackbody and store the offset that corrects it.

    Args:
        url: the thermometer's serial URL.
        reference_c: the blackbody's set temperature.
        samples: how many frames to average.
        progress: one line per step.
        baud: the module's line speed (its profile's `baudrate`).
        config: the gate's config file to store the offset in; None only shows it.
        max_spread_c: the largest max - min accepted.

    Returns:
        The statistics and offset.

    Raises:
        DeviceSetupError: no frames, an unstable reference or a config that cannot take
            the offset; nothing is written then.
    """
    progress.step("sample", f"{samples} samples against the blackbody at {reference_c} °C")
    values = take_samples(url, baud, samples, progress)
    result = Calibration(reference_c, tuple(values))
    progress.note(f"  {result.describe()}")
    progress.step("stability", f"spread within {max_spread_c} °C, drift within {MAX_DRIFT_C}")
    result.check_stable(max_spread_c)
    progress.note(f"  offset {result.offset_c:+.2f} °C (reference - mean)")
    if config is not None:
        progress.step("config", f"devices.thermometer.settings.{OFFSET_KEY} in {config}")
        write_offset(config, result.offset_c)
    return result
