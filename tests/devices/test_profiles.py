"""Device profiles: every file in hardware/profiles loads, and bad ones name file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import serial

from edge.devices.base import DeviceError
from edge.devices.registry import DRIVERS, PROFILES, ProfileInvalid, load_profile
from edge.devices.scanner.profile import ScannerProfile
from edge.devices.thermometer.profile import ThermometerProfile

PROFILES_DIR = Path(__file__).resolve().parents[2] / "hardware" / "profiles"
PROFILE_FILES = sorted(PROFILES_DIR.glob("*.yaml"))


@pytest.mark.parametrize("path", PROFILE_FILES, ids=[p.name for p in PROFILE_FILES])
def test_load_profile__valid(path: Path) -> None:
    profile = load_profile(path)
    assert type(profile) is PROFILES[profile.part]


@pytest.mark.parametrize("part", sorted(PROFILES))
def test_every_part_has_a_profile_file(part: str) -> None:
    parts = {load_profile(path).part for path in PROFILE_FILES}
    assert part in parts, f"no hardware/profiles/*.yaml says part: {part}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("part: gy-mcu90614\nsettle_frames: 0\n", "settle_frames: Input should be greater than 0"),
        (
            "part: gy-mcu90614\nsettle_frames: three\n",
            "settle_frames: Input should be a valid integer",
        ),
        ("part: gy-mcu90614\nbaudrate: 19200\n", "baudrate: Input should be 9600 or 115200"),
        ("part: gm65-scanner\ncolour: red\n", "colour: Extra inputs are not permitted"),
        ("part: gm65-scanner\nsilence_fault_s: 3\n", "silence_fault_s: Input should be None"),
        (
            "part: gm65-scanner\nsuffix: lf\n",
            "suffix: Input should be 'cr', 'crlf' or 'tab'",
        ),
        ("part: gm65-scanner\nsuffix: none\n", "suffix: Input should be 'cr', 'crlf' or 'tab'"),
        ("part: gm65-scanner\nbaudrate: 1200\n", "frame_gap_s 0.1 is too short for baudrate 1200"),
        ("part: gm65-scanner\nadapter_latency_s: 0.05\n", "and adapter_latency_s 0.05"),
        ("part: hal9000\n", "part: 'hal9000' is not a known part (gm65-scanner"),
        ("model: GM65\n", "part: None is not a known part"),
        (
            "part: gy-mcu90614\npresence_min_c: 38\nmax_plausible_c: 37\n",
            "(top level): Value error, presence_min_c 38.0 must be below max_plausible_c 37.0",
        ),
        ("part: [gm65\n", "not YAML"),
        ("- part: gm65-scanner\n", "(top level): should be a mapping"),
    ],
)
def test_load_profile__invalid(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ProfileInvalid) as caught:
        load_profile(path)
    assert isinstance(caught.value, DeviceError)
    assert str(caught.value).startswith(f"{path}: ")
    assert problem in str(caught.value)


def test_load_profile_from_mapping() -> None:
    assert load_profile({"part": "gm65-scanner", "suffix": "tab"}) == ScannerProfile(suffix="tab")
    with pytest.raises(ProfileInvalid, match=r"^profile: settle_frames: Input should be greater"):
        load_profile({"part": "gy-mcu90614", "settle_frames": 0})


def test_load_profile_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileInvalid, match=r"missing\.yaml: cannot read"):
        load_profile(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("part", "profile"), [("gm65-scanner", ScannerProfile()), ("gy-mcu90614", ThermometerProfile())]
)
def test_driver_factory__valid(part: str, profile: ScannerProfile | ThermometerProfile) -> None:
    port = serial.serial_for_url("loop://", timeout=0)
    assert DRIVERS[part](port, profile).part == part


@pytest.mark.parametrize(
    ("part", "profile"), [("gm65-scanner", ThermometerProfile()), ("gy-mcu90614", ScannerProfile())]
)
def test_driver_factory__invalid(part: str, profile: ScannerProfile | ThermometerProfile) -> None:
    with pytest.raises(DeviceError, match="Profile needed"):
        DRIVERS[part](serial.serial_for_url("loop://", timeout=0), profile)
