"""`gatepost sim scale`: it streams what its profile says over a pty; bad arguments are refused."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial

from edge.devices.scale.protocol import LineReader, WeightFrame
from simulators.processes import python_module, spawn, stop


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--steps", "0,heavy"], 2, "step 'heavy' is neither a weight, ol nor garbage"),
        (["--steps", "-5"], 2, "step -5 is outside 0..999999"),
        (["--steps", ",".join(["1"] * 101)], 2, "--steps takes 1 to 100 steps"),
        (["--hold", "0.5"], 1, "--hold 0.5 or --settle 2.0 is out of bounds"),
        (["--settle", "61"], 1, "--hold 20.0 or --settle 61.0 is out of bounds"),
        (["--profile", "xy-md02"], 1, "part xy-md02 is not a scale"),
        (["--profile", "no-such"], 1, "no-such.yaml"),
        (["--link", "/no/such/folder/scale"], 1, "no folder /no/such/folder"),
    ],
)
def test_sim_scale__bad_arguments(argv: list[str], code: int, message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", "sim", "scale", *argv],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == code, result.stderr
    assert message in result.stderr


def test_sim_scale__streams_the_steps(tmp_path: Path) -> None:
    link = tmp_path / "scale"
    process = spawn(python_module(
        "edge.cli", "sim", "scale", "--link", str(link), "--steps", "812.25", "--settle", "0",
    ))  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not link.exists():
            assert time.monotonic() < deadline, "no pty"
            time.sleep(0.05)
        frames: list[object] = []
        with serial.serial_for_url(str(link), baudrate=9600, timeout=0.1) as port:
            reader = LineReader("st-gs")
            while len(frames) < 5 and time.monotonic() < deadline:
                frames += reader.feed(port.read(64))
    finally:
        stop(process, "sim scale")
    assert len(frames) >= 5
    weights = [f.weight_kg for f in frames[1:] if isinstance(f, WeightFrame) and f.usable]
    assert weights and {str(w) for w in weights} == {"812.25"}
