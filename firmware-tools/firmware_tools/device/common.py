"""What every device setup shares: the error naming the failed step, and progress lines."""

from __future__ import annotations

from typing import TextIO


class DeviceSetupError(Exception):
    """A setup step failed; `reason` says why and what was put back."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


class Progress:
    """One numbered line per step, flushed at once: a technician watches a slow serial line.

    Args:
        out: where the lines go (stdout for the CLI, a StringIO in tests).
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.steps: list[str] = []

    def step(self, name: str, text: str) -> None:
        self.steps.append(name)
        self.note(f"[{len(self.steps)}] {text}")

    def note(self, text: str) -> None:
        print(text, file=self.out, flush=True)
