"""The gateway's PostgreSQL over TLS with its client certificate (issue #16).

One private cluster hardened as docs/security.md#postgresql says (hostssl and `cert` only,
the pg_ident map, the roles its SQL block creates), its server certificate and the
clients' from a site PKI made by the site tool's own functions.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from firmware_tools.site_pki import ClientFiles, IdentityRole, SitePki
from gateway.changes import ChangeListener
from gateway.config import load_config
from gateway.leader import Leadership
from gateway.live import LiveFeed
from gateway.store import open_store
from gateway.store.base import StoreUnavailable
from gateway.store.conninfo import DatabaseTls, database_url
from gateway.store.postgres import connect
from gateway.store.records import DeadLetter
from simulators.postgres import PrivatePostgres, ServerTls
from tests.gateway.test_gateway_process import wait_until

SECURITY = Path(__file__).resolve().parents[2] / "docs" / "security.md"
DB_HOST = "db1.north.example"  # the server certificate's only name
DATABASE = "gatepost"


@dataclass
class HardenedDatabase:
    cluster: PrivatePostgres
    clients: dict[str, ClientFiles]  # name -> files kept aside (a revoked one's too)

    def url(self, user: str, host: str = DB_HOST) -> str:
        """`user` on the database at `host`, reached on loopback: the name is what
        verify-full checks the server's certificate against."""
        return f"postgresql://{user}@{host}:{self.cluster.port}/{DATABASE}?hostaddr=127.0.0.1"

    def with_identity(self, name: str, user: str = "gateway-gw1", host: str = DB_HOST) -> str:
        """As `name`'s certificate, the server checked against this site's CA."""
        files, site_ca = self.clients[name], self.clients["gw1"].ca
        return database_url(self.url(user, host), DatabaseTls(site_ca, files.cert, files.key))

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.cluster.url(DATABASE), autocommit=True)


def documented_roles() -> list[str]:
    """The statements of docs/security.md's PostgreSQL SQL block, one at a time."""
    section = SECURITY.read_text(encoding="utf-8").split("## PostgreSQL", 1)[1]
    block = re.search(r"```sql\n(.*?)```", section, re.DOTALL)
    assert block, "docs/security.md shows no SQL for PostgreSQL's roles"
    lines = [line.split("--", 1)[0] for line in block.group(1).splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def kept(files: ClientFiles, folder: Path) -> ClientFiles:
    """A copy of an identity's folder, as on the gateway machine (modes kept)."""
    copy = shutil.copytree(files.cert.parent, folder / files.cn)
    return ClientFiles(files.cn, files.role, copy / "ca.crt", copy / "cert.pem", copy / "key.pem")


@pytest.fixture(scope="module")
def hardened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HardenedDatabase]:
    folder = tmp_path_factory.mktemp("db-tls")
    pki = SitePki.init(folder / "site", "north")
    other = SitePki.init(folder / "other", "south")  # another site's CA, the same names
    aside = folder / "aside"
    aside.mkdir()
    clients = {
        "gw1": kept(pki.issue(IdentityRole.GATEWAY, "gw1"), aside),
        "gw2": kept(pki.issue(IdentityRole.GATEWAY, "gw2"), aside),  # no database user
        "g01": kept(pki.issue(IdentityRole.GATE, "g01"), aside),  # a gate's, with a user
        "gw3": kept(pki.issue(IdentityRole.GATEWAY, "gw3"), aside),  # revoked below
        "other": kept(other.issue(IdentityRole.GATEWAY, "gw1"), folder / "other-aside"),
    }
    pki.revoke("gateway-gw3")
    server = pki.issue_web("db", [DB_HOST])
    tls = ServerTls(pki.ca_cert_path, server.cert, server.key, crl=pki.crl_path)
    cluster = PrivatePostgres(durable=False, tls=tls)
    cluster.start()
    try:
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            for statement in documented_roles():
                conn.execute(statement)  # the docs' text, as it stands
            for user in ("gateway-gw3", "gate-g01"):  # the refusal is not for want of a user
                conn.execute(f'CREATE ROLE "{user}" LOGIN IN ROLE gatepost')
        yield HardenedDatabase(cluster, clients)
    finally:
        cluster.remove()


def ssl_sessions(db: HardenedDatabase) -> dict[str, tuple[bool, str, str, str]]:
    """application_name -> (ssl, TLS version, client certificate's DN, login user)."""
    with db.admin() as conn:
        rows = conn.execute(
            "SELECT a.application_name, s.ssl, coalesce(s.version, ''), "
            "coalesce(s.client_dn, ''), a.usename FROM pg_stat_activity a "
            "JOIN pg_stat_ssl s USING (pid) WHERE a.application_name LIKE 'gatepost-%%'"
        ).fetchall()
    return {str(r[0]): (bool(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows}


def test_gateway__its_config_names_its_identity_and_every_connection_is_tls_with_it(
    hardened: HardenedDatabase, tmp_path: Path
) -> None:
    kept(hardened.clients["gw1"], tmp_path)  # as /etc/gatepost/gateway-gw1/
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(
        "sites: [{name: north}]\n"
        f"store:\n  url: {hardened.url('gateway-gw1')}\n"
        "  tls_ca: gateway-gw1/ca.crt\n  tls_cert: gateway-gw1/cert.pem\n"
        "  tls_key: gateway-gw1/key.pem\n"
    )
    section = load_config(config_path).store
    assert section.url is not None
    store = open_store(section)  # migrates: the documented roles may create the schema
    live = LiveFeed()
    listener = ChangeListener(section.url, live, name="gw1")
    leadership = Leadership(section.url, name="gw1")
    try:
        listener.start()
        leadership.start()
        wait_until(lambda: leadership.leads, timeout_s=5, what="gw1 leading")
        assert listener.listening
        before = live.version
        dead = DeadLetter("gatepost/north/g01/event", b"junk", "not-cbor", datetime.now(UTC))
        store.write([], presence=[], dead=[dead])
        assert [letter.reason for letter in store.dead_letters()] == ["not-cbor"]
        assert live.wait_for_change(before, timeout_s=2.0) > before

        sessions = ssl_sessions(hardened)
        names = {"gatepost-gateway", "gatepost-listen gw1", "gatepost-leader gw1"}
        assert names <= set(sessions), sessions
        for name in names:
            ssl, version, client_dn, user = sessions[name]
            assert (ssl, version, user) == (True, "TLSv1.3", "gateway-gw1"), name
            assert "CN=gateway-gw1" in client_dn and "OU=gateway" in client_dn, name
    finally:
        leadership.stop()
        listener.stop()
        store.close()
    with hardened.admin() as conn:  # a second replica's role can use what this one made
        row = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'dead_letters'")
        assert row.fetchone() == ("gatepost",)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("no TLS", "no encryption"),
        ("TLS without a certificate", "connection requires a valid client certificate"),
        ("another site's CA", "unknown ca"),
        ("a CN that is no database user", 'role "gateway-gw2" does not exist'),
        ("another replica's certificate", 'certificate authentication failed for user "gateway-gw1"'),
        ("a gate's certificate", 'certificate authentication failed for user "gate-g01"'),
        ("a revoked certificate", "certificate revoked"),
        ("a server certificate for another host", 'does not match host name "127.0.0.1"'),
    ],
)  # fmt: skip
def test_connect__refused(hardened: HardenedDatabase, case: str, reason: str) -> None:
    gw1 = hardened.clients["gw1"]
    urls = {
        "no TLS": hardened.url("gateway-gw1") + "&sslmode=disable",
        "TLS without a certificate": hardened.url("gateway-gw1")
        + f"&sslmode=verify-full&sslrootcert={gw1.ca}&sslcert=/nonexistent&sslkey=/nonexistent",
        "another site's CA": hardened.with_identity("other"),
        "a CN that is no database user": hardened.with_identity("gw2", user="gateway-gw2"),
        "another replica's certificate": hardened.with_identity("gw2"),
        "a gate's certificate": hardened.with_identity("g01", user="gate-g01"),
        "a revoked certificate": hardened.with_identity("gw3", user="gateway-gw3"),
        "a server certificate for another host": hardened.with_identity("gw1", host="127.0.0.1"),
    }
    with pytest.raises(StoreUnavailable, match="PostgreSQL unreachable") as refused:
        connect(urls[case]).close()
    assert reason in str(refused.value)


def test_connect__the_same_identity_passes_where_each_refusal_fails(
    hardened: HardenedDatabase,
) -> None:
    """The refusals above are for their reason: gw1's own URL connects, as gateway-gw1."""
    with connect(hardened.with_identity("gw1")) as conn:
        row = conn.execute("SELECT session_user, current_user").fetchone()
    assert row == ("gateway-gw1", "gatepost")


def test_connect__a_key_others_can_read_is_refused_by_libpq(
    hardened: HardenedDatabase, tmp_path: Path
) -> None:
    identity = kept(hardened.clients["gw1"], tmp_path)
    identity.key.chmod(0o644)
    url = database_url(hardened.url("gateway-gw1"),
                       DatabaseTls(identity.ca, identity.cert, identity.key))  # fmt: skip
    with pytest.raises(StoreUnavailable, match=r"private key file .* has group or world access"):
        connect(url).close()
