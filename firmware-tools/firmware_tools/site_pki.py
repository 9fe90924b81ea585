"""A site's PKI: its CA, the broker's certificate, a client certificate per identity, the grants."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge.contract.topics import DEFAULT_PREFIX, Site, check_slug
from edge.credentials.keys import write_private_key
from firmware_tools.site_broker import (
    DISCOVERY_PREFIX,
    SHARE_GROUP,
    Grant,
    IdentityRole,
    acl_rules,
    dynsec_config,
    find_plugin,
    grants_text,
    listener_conf,
    write_json,
)
from firmware_tools.site_certs import (
    CLOCK_SLACK,
    SiteCa,
    common_name,
    distinguished_name,
    load_cert,
    write_cert,
)
from firmware_tools.site_identities import (
    ClientFiles,
    Identity,
    SiteError,
    WebFiles,
    identity_of,
    role_of,
    staged,
)

# IdentityRole and acl_rules live with the broker's side, the identities' files and
# SiteError in site_identities; callers find them here too.
__all__ = [
    "GATEWAY_PUBLISHER_SUFFIX", "SHARE_GROUP", "ClientFiles", "Identity", "IdentityRole",
    "SiteError", "SitePki", "WebFiles", "acl_rules",
]  # fmt: skip

# X.509's upper bound on a common name (RFC 5280, ub-common-name).
MAX_CN = 64
_CN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
GATEWAY_PUBLISHER_SUFFIX = "-out"


class SitePki:
    """One site's CA folder; every file a broker or client needs is under it.

    Layout: `site.yaml`; `ca/` (ca.key, ca.crt, crl.pem); `broker/` (server.crt,
    server.key, dynamic-security.json, gatepost.conf); `clients/<cn>/` (ca.crt, cert.pem,
    key.pem) per identity in force; `revoked/<serial>.pem`, the record of each revoked
    certificate. The grants are rewritten from the certificates in `clients/` after
    every change.

    Args:
        share_group: the `$share/` group the gateway's replicas subscribe in (its
            config's `broker.share_group`); only gateway identities may join it.
        plugin: Mosquitto's dynamic security plugin on the broker's machine; None
            writes no listener config that needs it.
        discovery_prefix: Home Assistant's discovery prefix, where the gateway may
            publish and a `homeassistant` identity read (site.yaml `discovery_prefix`).
    """

    def __init__(
        self,
        folder: Path,
        site: str,
        prefix: str = DEFAULT_PREFIX,
        share_group: str = SHARE_GROUP,
        plugin: Path | None = None,
        *,
        discovery_prefix: str = DISCOVERY_PREFIX,
    ) -> None:
        self.folder = folder.resolve()
        self.site = check_slug(site, "site")
        self.prefix = check_slug(prefix, "prefix")
        self.share_group = check_slug(share_group, "share group")
        self.plugin = plugin
        self.discovery_prefix = check_slug(discovery_prefix, "discovery prefix")
        self.topic_site = Site(self.site, self.prefix)
        self.root = self.topic_site.root
        self.ca_cert_path = self.folder / "ca" / "ca.crt"
        self.ca_key_path = self.folder / "ca" / "ca.key"
        self.crl_path = self.folder / "ca" / "crl.pem"
        self.server_cert_path = self.folder / "broker" / "server.crt"
        self.server_key_path = self.folder / "broker" / "server.key"
        self.dynsec_path = self.folder / "broker" / "dynamic-security.json"
        self.broker_config_path = self.folder / "broker" / "gatepost.conf"
        self.ca = SiteCa(self.ca_cert_path, self.ca_key_path, self.crl_path)

    # --- making and opening a site --------------------------------------------

    @classmethod
    def init(
        cls,
        folder: Path,
        site: str,
        prefix: str = DEFAULT_PREFIX,
        hosts: Sequence[str] = ("localhost", "127.0.0.1"),
        days: int = 3650,
        *,
        share_group: str = SHARE_GROUP,
        plugin: Path | None = None,
    ) -> SitePki:
        """Make a site CA, its empty CRL, the broker's certificate and empty grants.

        Args:
            hosts: the names and IP addresses clients reach the broker by; each goes
                into the broker certificate's subject alternative names.
            days: how long the CA and the broker certificate are valid.
            share_group: the gateway config's `broker.share_group`.
            plugin: where the broker's machine has Mosquitto's dynamic security
                plugin, when not where this machine has it (it is not checked).

        Raises:
            SiteError: `folder` already holds a CA, a name is not a topic slug, or no
                plugin is given nor installed here.
        """
        try:
            pki = cls(folder, site, prefix, share_group, plugin or find_plugin())
        except ValueError as exc:
            raise SiteError(str(exc)) from None
        if pki.plugin is None:
            raise SiteError(
                "Mosquitto's dynamic security plugin is not installed here "
                "(Debian: apt-get install mosquitto); name it with --plugin PATH"
            )
        if not pki.plugin.is_absolute():
            raise SiteError(f"plugin {pki.plugin}: give the plugin's absolute path")
        if pki.ca_cert_path.exists() or pki.ca_key_path.exists():
            raise SiteError(f"{pki.folder} already holds a site CA; use it or choose a new folder")
        if not hosts:
            raise SiteError("the broker needs at least one host name or address")
        if days < 1:
            raise SiteError(f"a site CA valid for {days} days would be of no use")
        for sub in ("ca", "broker", "clients", "revoked"):
            (pki.folder / sub).mkdir(parents=True, exist_ok=True)
        SiteCa.create(pki.ca_cert_path, pki.ca_key_path, pki.crl_path, site, days)
        settings = {"site": site, "prefix": prefix, "share_group": share_group,
                    "plugin": str(pki.plugin)}  # fmt: skip
        (pki.folder / "site.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
        now = datetime.now(UTC)
        pki.ca.issue_server(pki.server_cert_path, pki.server_key_path, site, hosts,
                            start=now - CLOCK_SLACK, end=now + timedelta(days=days))  # fmt: skip
        pki.write_grants()
        return pki

    @classmethod
    def open(cls, folder: Path) -> SitePki:
        """The site in `folder`.

        Raises:
            SiteError: `folder` is not a site folder made by `init`.
        """
        try:
            settings = yaml.safe_load((folder / "site.yaml").read_text(encoding="utf-8"))
            # A folder made before the plugin: the gateway's default group, the plugin here.
            plugin = settings.get("plugin")
            pki = cls(folder, settings["site"], settings["prefix"],
                      settings.get("share_group", SHARE_GROUP),
                      Path(plugin) if plugin else find_plugin(),
                      discovery_prefix=settings.get("discovery_prefix",
                                                    DISCOVERY_PREFIX))  # fmt: skip
        except (OSError, yaml.YAMLError, TypeError, KeyError, ValueError, AttributeError):
            raise SiteError(
                f"{folder} is not a site folder (no readable site.yaml; "
                "make one with `gatepost fw site init`)"
            ) from None
        if not (pki.ca_cert_path.is_file() and pki.ca_key_path.is_file()):
            raise SiteError(f"{folder} is not a site folder (its CA is missing)")
        return pki

    # --- identities -----------------------------------------------------------

    def issue(
        self,
        role: IdentityRole,
        name: str,
        *,
        days: int = 825,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> ClientFiles:
        """Issue the identity `<role>-<name>` and rewrite the grants.

        A gateway gets two: `gateway-<name>` for its ingest and `gateway-<name>-out` for
        its publisher, since the broker binds one client id to each certificate.

        Args:
            name: a topic slug; for a gate or depot, the node's name.
            not_before, not_after: the validity, when not from now for `days`.

        Returns:
            The files of `<role>-<name>` (for a gateway, its ingest identity).

        Raises:
            SiteError: a bad role or name, or that identity is issued and not revoked.
        """
        try:
            role = IdentityRole(role)
            check_slug(name, "name")
        except ValueError as exc:
            raise SiteError(str(exc)) from None
        cn = f"{role}-{name}"
        cns = [cn, cn + GATEWAY_PUBLISHER_SUFFIX] if role is IdentityRole.GATEWAY else [cn]
        for each in cns:
            if len(each) > MAX_CN:
                raise SiteError(f"{each!r} is longer than {MAX_CN} characters; use a shorter name")
            if (self._client_dir(each) / "cert.pem").exists():
                raise SiteError(f"{each} is already issued; revoke it first to issue it again")
        start = not_before or datetime.now(UTC) - CLOCK_SLACK
        end = not_after or start + CLOCK_SLACK + timedelta(days=days)
        if end <= start:
            raise SiteError(f"{cn}: the certificate would end ({end}) before it starts ({start})")
        for each in cns:
            self._issue_one(each, role, start, end)
        self.write_grants()
        return self.files(cn)

    def gateway_pair(self, name: str) -> tuple[ClientFiles, ClientFiles]:
        """The files of gateway `name`'s two identities: ingest's and its publisher's.

        Raises:
            SiteError: they are not issued and in force.
        """
        cn = f"{IdentityRole.GATEWAY}-{name}"
        return self.files(cn), self.files(cn + GATEWAY_PUBLISHER_SUFFIX)

    def ensure(self, role: IdentityRole, name: str) -> tuple[ClientFiles, bool]:
        """The files of `<role>-<name>`, issued first if it is not in force; True if it
        was issued now (a running broker learns of it only when restarted).

        Raises:
            SiteError: as `issue`.
        """
        try:
            return self.files(f"{IdentityRole(role)}-{name}"), False
        except SiteError:
            return self.issue(role, name), True

    def _issue_one(self, cn: str, role: IdentityRole, start: datetime, end: datetime) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = distinguished_name(cn, self.site, role)
        cert = self.ca.sign(name, key, start, end, ExtendedKeyUsageOID.CLIENT_AUTH)
        with staged(self._client_dir(cn)) as staging:
            write_private_key(staging / "key.pem", key)
            write_cert(staging / "cert.pem", cert)
            shutil.copyfile(self.ca_cert_path, staging / "ca.crt")

    def issue_web(self, name: str, hosts: Sequence[str], *, days: int = 825) -> WebFiles:
        """Issue a web server's certificate (the gateway's HTTPS, a console's) into
        `web/<name>/`, beside a copy of the site CA that browsers and clients trust.

        Args:
            name: a topic slug naming the machine, e.g. the gate's name.
            hosts: the DNS names and IP addresses browsers use, each a subject
                alternative name; the first is the certificate's common name.

        Raises:
            SiteError: a bad name, no host, or `web/<name>/` is issued already.
        """
        try:
            check_slug(name, "name")
        except ValueError as exc:
            raise SiteError(str(exc)) from None
        if not hosts:
            raise SiteError("a web certificate needs at least one host name or address")
        folder = self.folder / "web" / name
        if folder.exists():
            raise SiteError(f"{folder} exists; remove it first to issue {name} again")
        start = datetime.now(UTC) - CLOCK_SLACK
        end = start + CLOCK_SLACK + timedelta(days=days)
        with staged(folder) as staging:
            self.ca.issue_server(staging / "cert.pem", staging / "key.pem", self.site, hosts,
                                 start=start, end=end)  # fmt: skip
            shutil.copyfile(self.ca_cert_path, staging / "ca.crt")
        return WebFiles(folder / "ca.crt", folder / "cert.pem", folder / "key.pem")

    def files(self, cn: str) -> ClientFiles:
        """The files of the identity `cn`.

        Raises:
            SiteError: no such identity is issued and in force.
        """
        folder = self._client_dir(cn)
        if not _CN.fullmatch(cn) or not (folder / "cert.pem").is_file():
            raise SiteError(f"no identity {cn!r} is issued and in force at {self.folder}")
        role = role_of(load_cert(folder / "cert.pem"))
        return ClientFiles(cn, role, folder / "ca.crt", folder / "cert.pem", folder / "key.pem")

    def revoke(self, cn: str) -> list[str]:
        """Revoke `cn`: add its serial to the CRL, drop its grants, delete its key.

        A gateway's two identities are revoked together. Its certificate is kept under
        `revoked/`. The broker applies the change once restarted (docs/security.md).

        Returns:
            The names revoked.

        Raises:
            SiteError: no such identity is in force.
        """
        names = [cn]
        if self.files(cn).role is IdentityRole.GATEWAY:
            names = self._gateway_pair(cn)
        certs = [load_cert(self._client_dir(name) / "cert.pem") for name in names]
        self.ca.revoke(certs)  # the CRL first: whatever happens next, these are refused
        (self.folder / "revoked").mkdir(exist_ok=True)
        for name, cert in zip(names, certs, strict=True):
            record = self.folder / "revoked" / f"{cert.serial_number:x}.pem"
            shutil.copyfile(self._client_dir(name) / "cert.pem", record)
            shutil.rmtree(self._client_dir(name))
        self.write_grants()
        return names

    def _gateway_pair(self, cn: str) -> list[str]:
        """A gateway's ingest and publisher names, given either."""
        if (self._client_dir(cn + GATEWAY_PUBLISHER_SUFFIX) / "cert.pem").is_file():
            return [cn, cn + GATEWAY_PUBLISHER_SUFFIX]
        ingest = cn.removesuffix(GATEWAY_PUBLISHER_SUFFIX)
        if ingest != cn and (self._client_dir(ingest) / "cert.pem").is_file():
            return [ingest, cn]
        return [cn]

    def identities(self) -> list[Identity]:
        """Every identity issued and not revoked, by name."""
        return [identity_of(cert) for cert in self._certs("clients/*/cert.pem")]

    def revoked(self) -> list[Identity]:
        """Every revoked certificate, with the time of its revocation."""
        when = self.ca.revocation_dates()
        return [
            identity_of(cert, when.get(cert.serial_number)) for cert in self._certs("revoked/*.pem")
        ]

    # --- broker ---------------------------------------------------------------

    def grants(self) -> dict[str, tuple[str, list[Grant]]]:
        """What each identity in force may do: cn → (role, its grants), by name."""
        return {
            identity.cn: (identity.role.value,
                          acl_rules(identity.role, identity.cn, self.topic_site,
                                    self.share_group, self.discovery_prefix))
            for identity in self.identities()
        }  # fmt: skip

    def acl(self) -> str:
        """The grants for people to read (the broker reads `dynsec()`)."""
        return grants_text(self.grants(), self.site)

    def dynsec(self) -> dict[str, Any]:
        """The dynamic security plugin's JSON: a client and a role per identity in force."""
        return dynsec_config(self.grants())

    def write_grants(self) -> Path:
        """Write `broker/dynamic-security.json` (done by `issue` and `revoke`)."""
        return write_json(self.dynsec_path, self.dynsec())

    def mosquitto_conf(self, port: int, bind: str = "0.0.0.0", *, acl: bool = True) -> str:  # noqa: S104
        """The broker's listener and security settings.

        Args:
            acl: False still requires TLS and a client certificate of this CA and binds
                client ids to certificates, but loads no plugin, so Mosquitto lets
                every such client read and write everything (for test suites that are
                not about the grants).

        Raises:
            SiteError: `acl` and no plugin is known (a site folder made before it).
        """
        if acl and self.plugin is None:
            raise SiteError(
                f"{self.folder}/site.yaml names no dynamic security plugin and none is "
                "installed here; add `plugin: PATH` to it"
            )
        tls = {"cafile": self.ca_cert_path, "certfile": self.server_cert_path,
               "keyfile": self.server_key_path, "crlfile": self.crl_path}  # fmt: skip
        return listener_conf(
            site=self.site, port=port, bind=bind, tls=tls,
            plugin=self.plugin if acl else None, dynsec=self.dynsec_path if acl else None,
        )  # fmt: skip

    def write_broker_config(self, port: int, bind: str = "0.0.0.0") -> Path:  # noqa: S104
        """Write `broker/gatepost.conf` and the grants it names; returns the config's path."""
        self.write_grants()
        self.broker_config_path.write_text(self.mosquitto_conf(port, bind), encoding="utf-8")
        return self.broker_config_path

    # --- internals ------------------------------------------------------------

    def _client_dir(self, cn: str) -> Path:
        # Names are slugs with a role in front: no '/' or '..' reaches the path.
        return self.folder / "clients" / cn

    def _certs(self, pattern: str) -> Iterator[x509.Certificate]:
        paths = self.folder.glob(pattern)
        certs = [load_cert(path) for path in paths if not path.parent.name.startswith(".")]
        yield from sorted(certs, key=lambda cert: (common_name(cert), cert.serial_number))
