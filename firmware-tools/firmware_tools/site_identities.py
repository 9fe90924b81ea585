"""What one issued identity is: its folder of files, made whole or not at all, and what its
certificate says about it (name, role, serial, validity)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from edge.errors import GatepostError
from edge.mqtt import BrokerUrl, Endpoint
from firmware_tools.site_broker import IdentityRole
from firmware_tools.site_certs import common_name


class SiteError(GatepostError):
    """A site folder, identity or name that the PKI cannot use as asked."""


@dataclass(frozen=True)
class ClientFiles:
    """What one client needs to reach the broker as itself (copy its folder to the machine)."""

    cn: str
    role: IdentityRole
    ca: Path
    cert: Path
    key: Path

    def endpoint(self, url: BrokerUrl) -> Endpoint:
        return Endpoint(url, ca=self.ca, cert=self.cert, key=self.key)


@dataclass(frozen=True)
class WebFiles:
    """A web server's certificate and key (its config's tls_cert, tls_key), and the CA
    that browsers install to trust it."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class Identity:
    """An issued certificate: its name, role, serial, validity and, once revoked, when."""

    cn: str
    role: IdentityRole
    serial: int
    not_after: datetime
    revoked_at: datetime | None = None


@contextmanager
def staged(folder: Path) -> Iterator[Path]:
    """A folder to fill, made aside (mode 0700) beside `folder` and renamed into its place
    when the block ends: `folder` is whole or absent, never half written."""
    folder.parent.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        yield staging
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def role_of(cert: x509.Certificate) -> IdentityRole:
    """The role a certificate names in its OU."""
    units = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    if len(units) != 1:
        raise SiteError(f"certificate {common_name(cert)!r} names no role (OU)")
    return IdentityRole(str(units[0].value))


def identity_of(cert: x509.Certificate, revoked_at: datetime | None = None) -> Identity:
    return Identity(
        common_name(cert), role_of(cert), cert.serial_number, cert.not_valid_after_utc, revoked_at
    )
