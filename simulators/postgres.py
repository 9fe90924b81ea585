"""A private PostgreSQL cluster on a free port, for tests and benches: initdb in a folder
of its own, started with `postgres` directly and stopped with it, like the private broker.

It runs Debian's server binaries (package `postgresql`, installed by the Makefile), never
the machine's own cluster. PostgreSQL refuses to run as root: under root the folder is
given to the `postgres` system user (created by that package) and the server runs as it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
from psycopg import sql

from edge.errors import GatepostError
from simulators.broker import free_port
from simulators.processes import spawn, stop

SERVER_USER = "postgres"  # the system user Debian's package creates, for runs as root


class PostgresError(GatepostError):
    """The private cluster could not be created or did not start."""


def server_bin(name: str) -> Path:
    """A server program (`initdb`, `postgres`) of the newest installed major version."""
    found = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    if not found:
        raise PostgresError(
            f"{name} not found under /usr/lib/postgresql: install Debian's package postgresql "
            "(make deps does)"
        )
    return found[-1]


class PrivatePostgres:
    """One cluster in `folder`, listening on 127.0.0.1 and a socket in the folder.

    Trust authentication on loopback only; `fsync` is on unless `durable=False` (tests
    that do not pull the power can skip it). Use as a context manager, or start()/stop().

    Args:
        folder: where the cluster lives; None: a new folder in the system's temp folder,
            deleted by `remove()`. Under root the server user must be able to reach it
            (pytest's own temp folders are private to root: pass None there).
    """

    def __init__(
        self, folder: Path | None = None, *, port: int | None = None, durable: bool = True
    ) -> None:
        self._own_folder = folder is None
        self.folder = Path(folder or tempfile.mkdtemp(prefix="gatepost-pg-"))
        self.port = port or free_port()
        self.durable = durable
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log_path(self) -> Path:
        return self.folder / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _as_server_user(self) -> dict[str, Any]:
        """subprocess arguments that drop root to the server user (none when not root)."""
        if os.geteuid() != 0:
            return {}
        entry = pwd.getpwnam(SERVER_USER)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def init(self) -> None:
        """initdb once: UTF-8, C collation (text sorts by bytes, as in SQLite)."""
        if (self.data / "PG_VERSION").exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, SERVER_USER, SERVER_USER)
            self.folder.chmod(0o700)
        done = subprocess.run(
            [str(server_bin("initdb")), "-D", str(self.data), "-U", SERVER_USER,
             "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
            capture_output=True, text=True, check=False, **self._as_server_user(),
        )  # fmt: skip
        if done.returncode != 0:
            raise PostgresError(f"initdb failed: {done.stderr.strip()[-2000:]}")

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the server and return once it takes connections."""
        if self.running:
            return
        self.init()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.folder),
            "fsync": "on" if self.durable else "off",
            "synchronous_commit": "on" if self.durable else "off",
            "max_connections": "200",
            "logging_collector": "off",
        }
        argv = [str(server_bin("postgres")), "-D", str(self.data)]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        with self.log_path.open("ab") as log:
            self.process = spawn(argv, stdout=log, stderr=log, **self._as_server_user())
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise PostgresError(f"postgres exited with {code}: {self.tail()}")
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.05)
        self.stop()
        raise PostgresError(f"postgres did not take connections on {self.port}: {self.tail()}")

    def stop(self, *, fast: bool = True) -> None:
        """Stop the server: SIGINT (fast shutdown: sessions are ended) or SIGTERM (smart)."""
        if self.process is None:
            return
        if fast and self.process.poll() is None:
            self.process.send_signal(2)  # SIGINT: PostgreSQL's fast shutdown
        stop(self.process, "postgres", grace_s=30.0)
        self.process = None

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would (its backends end when they notice)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database (optionally a copy of `template`); its URL."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(statement)
        return self.url(name)

    def remove(self) -> None:
        """Stop the server and delete the cluster's folder if this object made it."""
        self.stop()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def __enter__(self) -> PrivatePostgres:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
