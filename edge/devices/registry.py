"""Which profile model and driver each part name means, and loading a profile file."""

# A new part is one line in PROFILES and, for a serial part, one line in DRIVERS.
# Polled Modbus sensors (xy-md02) have no DRIVERS line: edge/devices/modbus/driver.py
# polls a whole bus of them through pymodbus, not one part through a DeviceLink.

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from edge.devices.base import DeviceError, DeviceProfile, Driver, SerialStream
from edge.devices.camera.profile import CameraProfile
from edge.devices.link import DriverFactory
from edge.devices.modbus.profile import ModbusSensorProfile
from edge.devices.scale.driver import ScaleDriver
from edge.devices.scale.profile import ScaleProfile
from edge.devices.scanner.driver import ScannerDriver
from edge.devices.scanner.profile import ScannerProfile
from edge.devices.thermal_array.profile import ThermalArrayProfile
from edge.devices.thermometer.driver import ThermometerDriver
from edge.devices.thermometer.profile import ThermometerProfile

P = TypeVar("P", bound=DeviceProfile)


class ProfileInvalid(DeviceError):
    """A device profile cannot be used; `problems` holds one "field.path: why" per error."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__("; ".join(f"{source}: {problem}" for problem in problems))
        self.source = source
        self.problems = problems


def serial_driver(driver: Callable[[SerialStream, P], Driver], profile: type[P]) -> DriverFactory:
    """A DriverFactory that hands `driver` its own profile type (checked, not cast).

    Args:
        driver: the part's driver class (or any callable taking a stream and its profile).
        profile: the profile model that driver expects.

    Returns:
        A factory for DeviceLink; it raises DeviceError when given another profile type.
    """

    def build(stream: SerialStream, given: DeviceProfile) -> Driver:
        if not isinstance(given, profile):
            raise DeviceError(f"{profile.__name__} needed, got {type(given).__name__}")
        return driver(stream, given)

    return build


def _thermal_array(stream: SerialStream, profile: DeviceProfile) -> Driver:
    # numpy and OpenCV (some 40 MB) are loaded only on a node that has a thermal array.
    from edge.devices.thermal_array.driver import ThermalArrayDriver

    return serial_driver(ThermalArrayDriver, ThermalArrayProfile)(stream, profile)


PROFILES: dict[str, type[DeviceProfile]] = {
    "gm65-scanner": ScannerProfile,
    "gy-mcu90614": ThermometerProfile,
    "gy-mcu90640": ThermalArrayProfile,
    "scale-continuous": ScaleProfile,
    "usb-camera": CameraProfile,
    "xy-md02": ModbusSensorProfile,
}

DRIVERS: dict[str, DriverFactory] = {
    "gm65-scanner": serial_driver(ScannerDriver, ScannerProfile),
    "gy-mcu90614": serial_driver(ThermometerDriver, ThermometerProfile),
    "gy-mcu90640": _thermal_array,
    "scale-continuous": serial_driver(ScaleDriver, ScaleProfile),
}


def load_profile(source: Path | Mapping[str, Any]) -> DeviceProfile:
    """Read and validate a profile; its `part` picks the model.

    Args:
        source: a YAML file (hardware/profiles/*.yaml) or its already-parsed mapping.

    Returns:
        The part's own profile model (ScannerProfile, ThermometerProfile, …).

    Raises:
        ProfileInvalid: unreadable YAML, an unknown part or invalid fields; the message
            names the file and each field path, e.g.
            "hardware/profiles/x.yaml: settle_frames: Input should be greater than 0".
    """
    name = str(source) if isinstance(source, Path) else "profile"
    data = _read(source, name)
    part = data.get("part")
    model = PROFILES.get(part) if isinstance(part, str) else None
    if model is None:
        known = ", ".join(sorted(PROFILES))
        raise ProfileInvalid(name, [f"part: {part!r} is not a known part ({known})"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ProfileInvalid(name, [_problem(error) for error in exc.errors()]) from None


def _read(source: Path | Mapping[str, Any], name: str) -> Mapping[str, Any]:
    if not isinstance(source, Path):
        return source
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileInvalid(name, [f"cannot read: {exc.strerror}"]) from None
    except yaml.YAMLError as exc:
        raise ProfileInvalid(name, [f"not YAML: {exc}"]) from None
    if not isinstance(data, Mapping):
        raise ProfileInvalid(name, ["(top level): should be a mapping of field: value"])
    return data


def _problem(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    return f"{where}: {error['msg']}"
