"""A simulated serial part: a pty behind a stable path, real byte timing, and fault modes.

The node opens `path` (a symlink, like a udev rule's `/dev/gatepost-scanner`) with
`serial_for_url`, exactly as on the Pi. Unplugging closes the pty, so the node's
next read fails as a yanked USB adapter does; replugging makes a new pty and points
the symlink at it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import termios
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from simulators.pty import PseudoTerminal

log = logging.getLogger(__name__)

BITS_PER_BYTE = 10  # 8N1: start bit, 8 data bits, stop bit
# termios speed constants of the rates parts use. 14400 has none: pyserial sets it as a
# custom speed, which host_speed cannot tell apart, so no part checks it.
_SPEEDS = {
    getattr(termios, f"B{rate}"): rate
    for rate in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
}


@dataclass
class Faults:
    """Fault modes, switched on and off while the part runs.

    Attributes:
        garbage: bytes of line noise to send before the next frame (then back to 0).
        split_frames: send every frame in two writes with a pause between them.
        corrupt_next: frames to send with a broken checksum or corrupted byte.
        stuck: repeat the last frame's value instead of a fresh one.
        split_at: where split_frames cuts a frame (bytes before the pause); None: the middle.
        split_pause_s: how long split_frames pauses inside a frame.
        slow_factor: multiply the streaming interval (a slow or overloaded part).
        silent: send nothing at all (a part that hangs but stays plugged in).
        power_cycle: the module loses power and restarts while the USB-serial adapter
            stays open: it hears and sends nothing for its `power_up_s`, then runs with
            its saved settings (then back to False).
    """

    garbage: int = 0
    split_frames: bool = False
    split_at: int | None = None
    split_pause_s: float = 0.03
    corrupt_next: int = 0
    stuck: bool = False
    slow_factor: float = 1.0
    silent: bool = False
    power_cycle: bool = False


class SimulatedPart:
    """Base of every simulated serial part.

    Subclasses override `next_frame` (streaming parts), `reply` (parts that answer
    commands), `corrupt` (how a bad frame looks for this protocol) and `power_up`
    (what the module runs with after a restart).

    Args:
        path: where the symlink to the pty goes.
        baudrate: the line speed; writes take as long as they would on the wire.
        interval_s: period of streamed frames; None for a part that only answers or
            sends when told (a scanner).
    """

    # From power-on to the module's first byte; each part sets its own.
    power_up_s: float = 0.5

    def __init__(self, path: Path, baudrate: int, interval_s: float | None = None) -> None:
        self.path = path
        self.baudrate = baudrate
        self.interval_s = interval_s
        self.faults = Faults()
        self.received = bytearray()
        self._pty: PseudoTerminal | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_stream = time.monotonic()
        self._booting_until: float | None = None

    # What a subclass defines.
    def next_frame(self) -> bytes | None:
        """The next streamed frame, or None to send nothing this period."""
        return None

    def reply(self, command: bytes) -> bytes | None:
        """Handle bytes the host sent; return the reply to send, if any.

        Called with everything received so far that has not been consumed; the
        subclass clears `self.received` of what it used.
        """
        del command
        return None

    def corrupt(self, frame: bytes) -> bytes:
        """The frame as a line fault would damage it (default: last byte flipped)."""
        return frame[:-1] + bytes([frame[-1] ^ 0xFF])

    def power_up(self) -> None:
        """Forget what the host set at runtime: back to the saved (flash) settings."""

    # Running.
    def start(self) -> Self:
        self.plug()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        self.unplug()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.stop()

    def plug(self) -> None:
        """Connect: a new pty, and the symlink pointed at it."""
        with self._lock:
            if self._pty:
                return
            self._pty = PseudoTerminal()
            tmp = self.path.with_name(self.path.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self._pty.path)
            tmp.replace(self.path)
            log.debug("%s plugged in at %s -> %s", type(self).__name__, self.path, self._pty.path)

    def unplug(self) -> None:
        """Disconnect: the pty closes (the node's reads fail) and the path disappears."""
        with self._lock:
            if not self._pty:
                return
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self._pty.close()
            self._pty = None
            log.debug("%s unplugged", type(self).__name__)

    @property
    def plugged(self) -> bool:
        return self._pty is not None

    def host_speed(self) -> int | None:
        """The line speed the host set on its end of the pty; None when unplugged.

        A pty carries bytes at any speed, but its termios is shared by both ends, so
        tcgetattr on the master reads what the host's `serial.Serial(baudrate=…)` set
        (Linux). A part that keeps its own speed compares the two, as a UART would.
        """
        with self._lock:
            if not self._pty:
                return None
            try:
                speed = termios.tcgetattr(self._pty.master_fd)[5]
            except termios.error:
                return None
        return _SPEEDS.get(speed)

    @property
    def powered(self) -> bool:
        """False while a power cycle lasts: the module neither hears nor sends."""
        return self._booting_until is None and not self.faults.power_cycle

    def send(self, frame: bytes) -> None:
        """Send one frame as the part would, applying the current faults."""
        with self._lock:
            if not self._pty or self.faults.silent or not self.powered:
                return
            if self.faults.garbage:
                self._write(os.urandom(self.faults.garbage))
                self.faults.garbage = 0
            if self.faults.corrupt_next:
                frame = self.corrupt(frame)
                self.faults.corrupt_next -= 1
            if self.faults.split_frames and len(frame) > 1:
                cut = self.faults.split_at or len(frame) // 2
                self._write(frame[:cut])
                time.sleep(self.faults.split_pause_s)
                frame = frame[cut:]
            self._write(frame)

    def _write(self, data: bytes) -> None:
        # Bytes take their time on the wire: 10 bits each at the configured baud rate.
        assert self._pty is not None
        with contextlib.suppress(OSError):
            self._pty.write(data)
        time.sleep(len(data) * BITS_PER_BYTE / self.baudrate)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                fd = self._pty.master_fd if self._pty else None
            wait = self._until_next_stream()
            if fd is None:
                self._stop.wait(min(wait, 0.05))
                continue
            try:
                ready, _, _ = select.select([fd], [], [], min(wait, 0.05))
                if ready:
                    self._receive(os.read(fd, 4096))
            except OSError:
                continue  # unplugged under us; the next loop sees it
            if not self._booted():
                continue
            if self.interval_s is not None and time.monotonic() >= self._next_stream:
                self._next_stream = time.monotonic() + self.interval_s * self.faults.slow_factor
                frame = self.next_frame()
                if frame is not None:
                    self.send(frame)

    def _until_next_stream(self) -> float:
        if self.interval_s is None:
            return 0.05
        return max(0.0, self._next_stream - time.monotonic())

    def _booted(self) -> bool:
        """Run a power cycle the test asked for; False until the module is up again."""
        with self._lock:
            now = time.monotonic()
            if self.faults.power_cycle and self._booting_until is None:
                log.debug("%s power cycle, port kept open", type(self).__name__)
                self._booting_until = now + self.power_up_s
                self.received.clear()
                return False
            if self._booting_until is None:
                return True
            if now < self._booting_until:
                return False
            self._booting_until = None
            self.power_up()
            self.faults.power_cycle = False
            self._next_stream = now
            return True

    def _receive(self, data: bytes) -> None:
        if not self.powered:
            return  # a module without power hears nothing
        self.received += data
        answer = self.reply(bytes(self.received))
        if answer:
            self.send(answer)
