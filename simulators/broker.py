"""A private Mosquitto broker with its own config, port and data folder, for tests and the demo."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from edge.errors import GatepostError
from edge.mqtt import BrokerUrl
from simulators.processes import spawn, stop

MOSQUITTO = "mosquitto"


class BrokerError(GatepostError):
    """The private broker could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateBroker:
    """A real `mosquitto` on 127.0.0.1, configured by us and stopped by us.

    Persistence is on, so a stop and start on the same port keeps retained messages
    and queued QoS 1 messages of persistent sessions, as a production broker would.
    The per-client queue is large so that tests of a long outage are limited by what
    they test, not by Mosquitto's default of 1,000 queued messages.

    Args:
        workdir: folder for the config, the persistence file and the log.
        port: fixed port, or None for a free one (kept across restarts).
        max_queued_messages: per-client queue for offline persistent sessions.
    """

    def __init__(
        self, workdir: Path, port: int | None = None, max_queued_messages: int = 1_000_000
    ) -> None:
        if shutil.which(MOSQUITTO) is None:
            raise BrokerError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.workdir = workdir
        self.port = port or free_port()
        self.max_queued_messages = max_queued_messages
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> BrokerUrl:
        return BrokerUrl("127.0.0.1", self.port)

    @property
    def config_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def write_config(self) -> None:
        # `user` keeps mosquitto from dropping root privileges to a user that could
        # not write to our folder.
        self.config_path.write_text(
            f"""\
listener {self.port} 127.0.0.1
allow_anonymous true
user {getpass.getuser()}
persistence true
persistence_location {self.workdir}/
autosave_interval 1
max_queued_messages {self.max_queued_messages}
max_queued_bytes 0
max_inflight_messages 1000
log_dest file {self.log_path}
log_type error
log_type warning
log_type notice
connection_messages true
""",
            encoding="utf-8",
        )

    def start(self, timeout_s: float = 10.0) -> None:
        """Start mosquitto and return once it accepts connections.

        Raises:
            BrokerError: it exited or did not listen within `timeout_s`; the message
                carries the end of its log.
        """
        if self.running:
            return
        self.write_config()
        self.process = spawn(
            [MOSQUITTO, "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(
                    f"mosquitto exited with {self.process.returncode}: {self._log_tail()}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise BrokerError(f"mosquitto did not listen on port {self.port}: {self._log_tail()}")

    def stop(self) -> None:
        """Stop mosquitto (it saves its persistence file on SIGTERM)."""
        if self.process is not None:
            stop(self.process, "mosquitto")
            self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> PrivateBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
