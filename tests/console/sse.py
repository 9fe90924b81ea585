"""Reads a server-sent event stream on a thread, so a test can wait for the next event."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from edge.gate.views import ConsoleUpdate


@dataclass
class Frame:
    """One blank-line-terminated block of the stream."""

    data: str | None = None
    comments: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


def frames(lines: Iterable[str]) -> Iterator[Frame]:
    """Parse SSE lines into frames (the subset the console sends: one data line a frame)."""
    frame = Frame()
    for line in lines:
        if line == "":
            if frame.data is not None or frame.comments or frame.fields:
                yield frame
            frame = Frame()
        elif line.startswith(":"):
            frame.comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                frame.data = value
            else:
                frame.fields[name] = value


class EventReader:
    """Collects the frames of `lines` on a daemon thread; `ended` once the stream closes."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._frames: queue.Queue[Frame | None] = queue.Queue()
        self.ended = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._read, args=(lines,), daemon=True)
        self._thread.start()

    def _read(self, lines: Iterable[str]) -> None:
        try:
            for frame in frames(lines):
                self._frames.put(frame)
        except Exception as exc:  # the stream broke; the test decides whether that is fine
            self.error = exc
        finally:
            self._frames.put(None)
            self.ended.set()

    def next(self, timeout_s: float = 5.0) -> Frame:
        try:
            frame = self._frames.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout_s} s") from None
        if frame is None:
            raise AssertionError(f"the stream ended ({self.error!r})")
        return frame

    def next_update(self, timeout_s: float = 5.0) -> ConsoleUpdate:
        """The next ConsoleUpdate, skipping keep-alives and the retry hint."""
        deadline = time.monotonic() + timeout_s
        while True:
            frame = self.next(max(0.0, deadline - time.monotonic()))
            if frame.data is not None:
                return ConsoleUpdate.model_validate_json(frame.data)
