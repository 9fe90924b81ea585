"""A private PostgreSQL cluster on a free port, for tests and benches: initdb in a folder
of its own, started with `postgres` directly and stopped with it, like the private broker.

It runs Debian's server binaries (package `postgresql`, installed by the Makefile), never
the machine's own cluster. PostgreSQL refuses to run as root: under root the folder is
given to the `postgres` system user (created by that package) and the server runs as it.

With `tls` it is hardened as docs/security.md#postgresql says: TCP takes only verified TLS
with a client certificate of the site CA (`hostssl ... cert`), its CN mapped to the
database user of the same name for gateway identities only; the harness itself connects
over the Unix socket in the cluster's folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from edge.errors import GatepostError
from simulators.broker import free_port
from simulators.processes import spawn, stop

SERVER_USER = "postgres"  # the system user Debian's package creates, for runs as root

# The hardened access rules (docs/security.md#postgresql shows the same lines): no `host`
# line, so TCP without TLS is refused; `cert` implies clientcert=verify-full.
TLS_HBA = """\
local    all  all                trust
hostssl  all  all  127.0.0.1/32  cert  map=gatepost
"""
# Only a gateway identity's certificate logs in, as the database user of its CN.
TLS_IDENT = """\
gatepost  /^(gateway-[a-z0-9_-]+)$  \\1
"""


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


@dataclass(frozen=True)
class ServerTls:
    """The server's side of TLS: its certificate and key, and the CA (and CRL) client
    certificates are checked against."""

    ca: Path
    cert: Path
    key: Path
    crl: Path | None = None


class PrivatePostgres:
    """One cluster in `folder`, listening on 127.0.0.1 and a socket in the folder.

    Trust authentication on loopback only; `fsync` is on unless `durable=False` (tests
    that do not pull the power can skip it). Use as a context manager, or start()/stop().

    Args:
        folder: where the cluster lives; None: a new folder in the system's temp folder,
            deleted by `remove()`. Under root the server user must be able to reach it
            (pytest's own temp folders are private to root: pass None there).
        tls: TLS only on TCP, with a client certificate (the module's docstring); then
            `url()` is the Unix socket's and `network_url()` the clients'.
    """

    def __init__(
        self, folder: Path | None = None, *, port: int | None = None, durable: bool = True,
        tls: ServerTls | None = None,
    ) -> None:  # fmt: skip
        self._own_folder = folder is None
        self.folder = Path(folder or tempfile.mkdtemp(prefix="gatepost-pg-"))
        self.port = port or free_port()
        self.durable = durable
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log_path(self) -> Path:
        return self.folder / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        """The superuser's URL: over TCP, or with `tls` over the socket in the folder."""
        if self.tls is not None:
            socket = quote(str(self.folder), safe="/")
            return f"postgresql://{SERVER_USER}@/{database}?host={socket}&port={self.port}"
        return self.network_url(database)

    def network_url(self, database: str = "postgres", user: str = SERVER_USER) -> str:
        """`user` on `database` over TCP (with `tls`: add the client's TLS parameters)."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

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
        if self.tls is not None:
            settings |= self._harden(self.tls)
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

    def _harden(self, tls: ServerTls) -> dict[str, str]:
        """Copy the TLS files in for the server's user (the key mode 0600, as PostgreSQL
        demands), write the access rules; the settings that use them."""
        files: dict[str, Path | str] = {"ca.crt": tls.ca, "server.crt": tls.cert,
                                        "server.key": tls.key}  # fmt: skip
        if tls.crl is not None:
            files["crl.pem"] = tls.crl
        files |= {"pg_hba.conf": TLS_HBA, "pg_ident.conf": TLS_IDENT}
        for name, source in files.items():
            target = self.folder / name
            target.unlink(missing_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(source if isinstance(source, str) else source.read_text())
            if os.geteuid() == 0:
                shutil.chown(target, SERVER_USER, SERVER_USER)
        settings = {
            "ssl": "on", "ssl_min_protocol_version": "TLSv1.3",
            "ssl_ca_file": str(self.folder / "ca.crt"),
            "ssl_cert_file": str(self.folder / "server.crt"),
            "ssl_key_file": str(self.folder / "server.key"),
            "hba_file": str(self.folder / "pg_hba.conf"),
            "ident_file": str(self.folder / "pg_ident.conf"),
        }  # fmt: skip
        if tls.crl is not None:
            settings["ssl_crl_file"] = str(self.folder / "crl.pem")
        return settings

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
