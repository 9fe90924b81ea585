"""The store's PostgreSQL URL: off this machine only over verified TLS with a client certificate.

A replica's database identity is its gateway identity from the site PKI (docs/security.md#
postgresql): the config names its files (`store.tls_ca`, `tls_cert`, `tls_key`) and they are
written into the URL as libpq's own parameters, so every connection the store, the leader
lock and the live feed open carries them, and none of those needs to know about TLS.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

# libpq's parameters that make a connection verified TLS with a client certificate.
TLS_PARAMETERS = ("sslmode", "sslrootcert", "sslcert", "sslkey")
HELP = "docs/security.md#postgresql"


class DatabaseTls(NamedTuple):
    """The files of one replica's database identity (its gateway identity's folder)."""

    ca: Path  # the CA that signed the server's certificate: the site CA
    cert: Path  # the client certificate; its CN is the database user
    key: Path  # its key, mode 0600 (libpq refuses one others can read)

    def parameters(self) -> dict[str, str]:
        """libpq's parameters for these files (absolute: libpq reads them from its cwd)."""
        return {
            "sslmode": "verify-full", "sslrootcert": str(self.ca.absolute()),
            "sslcert": str(self.cert.absolute()), "sslkey": str(self.key.absolute()),
        }  # fmt: skip


def database_url(url: str, tls: DatabaseTls | None) -> str:
    """The URL every connection to the store uses: `url` with `tls`'s parameters added.

    Without `tls`, a URL whose server is reached over the network must say the same
    itself (sslmode=verify-full, sslrootcert, sslcert, sslkey). A Unix socket or a
    loopback address needs neither: its traffic never leaves the machine, and the
    server's pg_hba decides who may connect there.

    Raises:
        ValueError: libpq cannot read the URL; it names TLS files and `tls` is given
            too (and they differ); or a server off this machine without verified TLS.
            The message never quotes the URL (it may hold a password).
    """
    info = _parsed(url)
    named = {key: info[key] for key in TLS_PARAMETERS if key in info}
    if tls is not None:
        wanted = tls.parameters()
        if named == wanted:  # already added (a loaded section given back, as in tests)
            return url
        if named:
            raise ValueError(
                f"store.url names {', '.join(sorted(named))} and tls_ca, tls_cert and tls_key "
                "are given too: give the TLS files in one place"
            )
        return _with_query(url, wanted)
    if _remote_hosts(info) and not _verified(named):
        raise ValueError(
            f"store.url: PostgreSQL on {', '.join(_remote_hosts(info))} is reached over the "
            "network, so it needs TLS with this replica's identity: give store.tls_ca, "
            "tls_cert and tls_key (the site CA and the gateway's certificate and key), or "
            f"sslmode=verify-full, sslrootcert, sslcert and sslkey in the URL ({HELP})"
        )
    return url


def _parsed(url: str) -> dict[str, str]:
    # Imported here: psycopg takes a fifth of a second, and a SQLite gateway needs none of it.
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        return {key: str(value) for key, value in conninfo_to_dict(url).items()}
    except ProgrammingError:
        # libpq's message may quote the URL, password and all: it is left out.
        raise ValueError(
            "store.url: not a URL libpq can read (postgresql://user@host:port/database"
            "?parameter=value, with libpq's parameter names)"
        ) from None


def _verified(named: dict[str, str]) -> bool:
    """The URL itself asks for a verified server and presents a client certificate."""
    return named.get("sslmode") == "verify-full" and set(named) == set(TLS_PARAMETERS)


def _remote_hosts(info: dict[str, str]) -> list[str]:
    """The places libpq would reach over the network, off this machine (none: all local).

    libpq tries each of a comma-separated `host` in turn; a `hostaddr` beside one is
    where it connects (the host then only names the server for verify-full)."""
    hosts = info.get("host", "").split(",")
    addresses = info.get("hostaddr", "").split(",")
    places = [
        address or host for host, address in zip(hosts, addresses + [""] * len(hosts), strict=False)
    ]
    return [place for place in places if place and not _local(place)]


def _local(place: str) -> bool:
    """A Unix socket folder (or Linux abstract socket), localhost or a loopback address."""
    if place.startswith(("/", "@")) or place == "localhost":
        return True
    try:
        return ipaddress.ip_address(place).is_loopback
    except ValueError:
        return False


def _with_query(url: str, parameters: dict[str, str]) -> str:
    # Percent-encoded with quote, not quote_plus: libpq does not read '+' as a space.
    parts = urlsplit(url)
    added = urlencode(parameters, quote_via=quote, safe="/")
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit(parts._replace(query=query))
