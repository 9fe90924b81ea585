"""A private Mosquitto broker with its own config, port and data folder, for tests and the demo."""

from __future__ import annotations

import getpass
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from edge.errors import GatepostError
from edge.mqtt import BrokerUrl, Endpoint
from simulators.processes import spawn, stop

if TYPE_CHECKING:
    from firmware_tools.site_pki import SitePki

MOSQUITTO = "mosquitto"
# What mosquitto logs (log_type information) when SIGHUP has it reread its config; the
# reload runs in the same loop pass, before it reads from any client again.
RELOADED = "Reloading config."


class BrokerError(GatepostError):
    """The private broker could not be started."""


# Ports handed to a child to listen on come from below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range, 32768-60999 on Debian): a port the kernel picked with
# bind(0) is free again once we close it, and any process's next outgoing connection (a
# node's to the broker, say) may take it before the child binds it.
LISTEN_PORTS = range(20000, 32768)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on and no outgoing connection takes."""
    for _ in range(200):
        port = random.choice(LISTEN_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise BrokerError(f"no free port in {LISTEN_PORTS.start}-{LISTEN_PORTS.stop - 1}")


class PrivateBroker:
    """A real `mosquitto` on 127.0.0.1, configured by us and stopped by us.

    Persistence is on, so a stop and start on the same port keeps retained messages
    and queued QoS 1 messages of persistent sessions, as a production broker would.
    The per-client queue is large so that tests of a long outage are limited by what
    they test, not by Mosquitto's default of 1,000 queued messages.

    Without a PKI it is plain MQTT and anonymous. With one it is locked as a site's
    broker is: the listener settings `SitePki.mosquitto_conf` makes (TLS, a client
    certificate of the site CA, the certificate's name as user name and client id,
    and the site's grants through the dynamic security plugin unless `acl` is False).
    The plugin reads the grants when the broker starts: issue every identity first, or
    `restart()` after issuing or revoking one.

    Args:
        workdir: folder for the config, the persistence file and the log.
        port: fixed port, or None for a free one (kept across restarts).
        max_queued_messages: per-client queue for offline persistent sessions.
        pki: the site whose CA, broker certificate, CRL and grants the broker uses.
        acl: with a PKI, hold each identity to the site's grants; False loads no plugin,
            which lets every client with a site certificate read and write everything.
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        max_queued_messages: int = 1_000_000,
        pki: SitePki | None = None,
        acl: bool = True,
    ) -> None:
        if shutil.which(MOSQUITTO) is None:
            raise BrokerError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.workdir = workdir
        self.port = port or free_port()
        self.max_queued_messages = max_queued_messages
        self.pki = pki
        self.acl = acl
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> BrokerUrl:
        return BrokerUrl("127.0.0.1", self.port, tls=self.pki is not None)

    def endpoint(self, cn: str) -> Endpoint:
        """How the identity `cn` of the broker's site reaches it.

        Raises:
            BrokerError: the broker has no PKI (it is anonymous: use `url`).
            SiteError: the site has no such identity in force.
        """
        if self.pki is None:
            raise BrokerError("this broker has no site PKI, so no identities: connect to its url")
        return self.pki.files(cn).endpoint(self.url)

    @property
    def config_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    def write_config(self) -> None:
        if self.pki is None:
            listener = f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
        else:
            listener = self.pki.mosquitto_conf(self.port, "127.0.0.1", acl=self.acl)
        # `user` keeps mosquitto from dropping root privileges to a user that could
        # not write to our folder.
        self.config_path.write_text(
            f"""\
{listener}user {getpass.getuser()}
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
log_type information
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

    def restart(self) -> None:
        """Stop and start mosquitto on the same port, as after `issue` or `revoke`.

        The only way the dynamic security plugin rereads the site's grants. Clients are
        disconnected and reconnect; persistent sessions and their queues survive in the
        persistence file, but not their shared subscriptions, until each client
        subscribes again (tests/test_broker_security.py).
        """
        self.stop()
        self.start()

    def reload(self, timeout_s: float = 5.0) -> None:
        """Send SIGHUP: mosquitto rereads its config and its CRL, not the plugin's grants.

        On Mosquitto 2.0.11 a revoked certificate is then refused at its next handshake,
        but a connection already open under it keeps its grants, and a new identity is
        let in with none, until a `restart()`. A reload after a restart also costs
        clients that are away with a persistent session the messages queued for them
        (tests/test_broker_security.py). Returns once the reload has happened.

        Raises:
            BrokerError: the broker is not running, or did not reload within `timeout_s`.
        """
        if self.process is None or not self.running:
            raise BrokerError("the broker is not running")
        before = self._log_text().count(RELOADED)
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout_s
        while self._log_text().count(RELOADED) == before:
            if time.monotonic() > deadline:
                raise BrokerError(f"mosquitto did not reload: {self._log_tail()}")
            time.sleep(0.01)

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

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
