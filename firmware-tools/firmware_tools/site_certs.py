"""X.509 for the site PKI: the site CA, which signs certificates and keeps the CRL; names
and PEM files."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge.credentials.keys import write_private_key

if TYPE_CHECKING:
    from firmware_tools.site_broker import IdentityRole

# A clock a little behind ours still accepts a certificate made just now.
CLOCK_SLACK = timedelta(hours=1)


class SiteCa:
    """The site CA's key, certificate and CRL (files): it signs and it revokes."""

    def __init__(self, cert_path: Path, key_path: Path, crl_path: Path) -> None:
        self.cert_path, self.key_path, self.crl_path = cert_path, key_path, crl_path

    @classmethod
    def create(cls, cert_path: Path, key_path: Path, crl_path: Path, site: str,
               days: int) -> SiteCa:  # fmt: skip
        """Make the CA's key (mode 0600), its certificate valid `days`, and an empty CRL."""
        now = datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        name = distinguished_name(f"Gatepost site CA {site}", site)
        cert = (
            builder(name, key.public_key(), name, key.public_key(),
                    start=now - CLOCK_SLACK, end=now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(key_usage(cert_sign=True), critical=True)
            .sign(key, hashes.SHA256())
        )  # fmt: skip
        write_private_key(key_path, key)
        write_cert(cert_path, cert)
        ca = cls(cert_path, key_path, crl_path)
        ca._write_crl([])
        return ca

    def sign(
        self,
        subject: x509.Name,
        key: ec.EllipticCurvePrivateKey,
        start: datetime,
        end: datetime,
        usage: x509.ObjectIdentifier,
        *extensions: x509.ExtensionType,
    ) -> x509.Certificate:
        """A leaf certificate for `key`, for `usage` (client or server auth)."""
        ca_cert, ca_key = self._load()
        made = (
            builder(subject, key.public_key(), ca_cert.subject, ca_key.public_key(),
                    start=start, end=end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )  # fmt: skip
        for extension in extensions:
            made = made.add_extension(extension, critical=False)
        return made.sign(ca_key, hashes.SHA256())

    def issue_server(
        self, cert_path: Path, key_path: Path, site: str, hosts: Sequence[str], *,
        start: datetime, end: datetime,
    ) -> x509.Certificate:  # fmt: skip
        """A TLS server certificate for `hosts`, written with its new key (mode 0600).

        Args:
            hosts: the DNS names and IP addresses clients reach the server by; the first
                is its common name, each is a subject alternative name (what clients check).
        """
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self.sign(
            distinguished_name(hosts[0], site), key, start, end, ExtendedKeyUsageOID.SERVER_AUTH,
            x509.SubjectAlternativeName([alt_name(h) for h in hosts]),
        )  # fmt: skip
        write_private_key(key_path, key)
        write_cert(cert_path, cert)
        return cert

    def revocation_dates(self) -> dict[int, datetime]:
        """serial → when it was revoked, for every certificate the CRL lists."""
        return {entry.serial_number: entry.revocation_date_utc for entry in self._crl()}

    def revoke(self, certs: Iterable[x509.Certificate]) -> None:
        """Add `certs` to the CRL (those not on it yet) and sign it again, numbered on."""
        known = list(self._crl())
        listed = {entry.serial_number for entry in known}
        now = datetime.now(UTC)
        self._write_crl(known + [
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
            .revocation_date(now).build()
            for cert in certs if cert.serial_number not in listed
        ])  # fmt: skip

    def _load(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return load_cert(self.cert_path), key

    def _crl(self) -> x509.CertificateRevocationList:
        return x509.load_pem_x509_crl(self.crl_path.read_bytes())

    def _write_crl(self, revoked: list[x509.RevokedCertificate]) -> None:
        ca_cert, ca_key = self._load()
        number = 1
        if self.crl_path.exists():
            number = (
                self._crl().extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
            )
        now = datetime.now(UTC)
        # An expired CRL makes OpenSSL refuse every client: it runs until the CA ends.
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now - CLOCK_SLACK)
            .next_update(max(ca_cert.not_valid_after_utc, now + timedelta(days=1)))
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        for entry in revoked:
            crl = crl.add_revoked_certificate(entry)
        signed = crl.sign(ca_key, hashes.SHA256())
        temporary = self.crl_path.with_suffix(".tmp")
        temporary.write_bytes(signed.public_bytes(serialization.Encoding.PEM))
        temporary.replace(self.crl_path)


def distinguished_name(cn: str, site: str, role: IdentityRole | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"Gatepost site {site}")]
    if role is not None:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role.value))
    parts.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(parts)


def builder(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePublicKey,
    *,
    start: datetime,
    end: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False
        )
    )


def key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
