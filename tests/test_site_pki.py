"""The site PKI: CA, broker and client certificates, CRL, grants and broker config; `gatepost fw site`."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edge.cli import main
from edge.mqtt import BrokerUrl
from firmware_tools import site_pki
from firmware_tools.site_broker import find_plugin
from firmware_tools.site_pki import ClientFiles, IdentityRole, SiteError, SitePki

ROOT = "gatepost/v1/north"
NAMES = {
    IdentityRole.GATE: "g01", IdentityRole.DEPOT: "d01", IdentityRole.GATEWAY: "main",
    IdentityRole.COMMAND: "center", IdentityRole.ADMIN: "tech", IdentityRole.SIMULATOR: "load",
    IdentityRole.HOMEASSISTANT: "ha",
}  # fmt: skip


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def crl(pki: SitePki) -> x509.CertificateRevocationList:
    return x509.load_pem_x509_crl(pki.crl_path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def names(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(attribute.value) for attribute in certificate.subject.get_attributes_for_oid(oid)]


def usages(certificate: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def dynsec(pki: SitePki) -> dict[str, Any]:
    """The plugin's file as the broker reads it."""
    loaded: dict[str, Any] = json.loads(pki.dynsec_path.read_text())
    return loaded


def granted(pki: SitePki) -> dict[str, set[tuple[str, str]]]:
    """Each client's (acltype, topic) pairs, read back from the plugin's file.

    Also checks what the plugin makes of the file: each client has its one role, of its
    own name, and every ACL allows (a deny would be the defaults' job).
    """
    roles = {role["rolename"]: role["acls"] for role in dynsec(pki)["roles"]}
    found = {}
    for client in dynsec(pki)["clients"]:
        assert client["roles"] == [{"rolename": client["username"]}]
        acls = roles[client["username"]]
        assert all(acl["allow"] is True and acl["priority"] == 0 for acl in acls)
        found[client["username"]] = {(acl["acltype"], acl["topic"]) for acl in acls}
        assert len(found[client["username"]]) == len(acls), "an ACL twice"
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> SitePki:
    """A site with one identity of each role."""
    pki = SitePki.init(tmp_path_factory.mktemp("site") / "north", "north")
    for role, name in NAMES.items():
        pki.issue(role, name)
    return pki


# --- init and open --------------------------------------------------------------


def test_init__valid(site: SitePki) -> None:
    ca = cert(site.ca_cert_path)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == "secp256r1"
    assert isinstance(ca.signature_hash_algorithm, hashes.SHA256)
    assert mode(site.ca_key_path) == 0o600
    assert mode(site.server_key_path) == 0o600
    assert yaml.safe_load((site.folder / "site.yaml").read_text()) == {
        "site": "north",
        "prefix": "gatepost",
        "share_group": "gateway",
        "plugin": str(find_plugin()),
    }

    server = cert(site.server_cert_path)
    server.verify_directly_issued_by(ca)
    alt = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alt.get_values_for_type(x509.DNSName) == ["localhost"]
    assert alt.get_values_for_type(x509.IPAddress) == [ip_address("127.0.0.1")]
    assert usages(server) == [ExtendedKeyUsageOID.SERVER_AUTH]

    empty = crl(SitePki.init(site.folder.parent / "fresh", "north"))
    assert len(empty) == 0
    assert empty.next_update_utc is not None
    assert empty.next_update_utc > datetime.now(UTC) + timedelta(days=365)


def test_init_hosts__valid(tmp_path: Path) -> None:
    pki = SitePki.init(tmp_path, "south", "district", hosts=["broker.south", "10.0.0.5", "::1"])
    alt = cert(pki.server_cert_path).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert alt.value.get_values_for_type(x509.DNSName) == ["broker.south"]
    assert alt.value.get_values_for_type(x509.IPAddress) == [
        ip_address("10.0.0.5"),
        ip_address("::1"),
    ]
    assert SitePki.open(tmp_path).root == "district/v1/south"


def test_init__invalid(site: SitePki, tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="already holds a site CA"):
        SitePki.init(site.folder, "north")
    with pytest.raises(SiteError, match="site 'North'"):
        SitePki.init(tmp_path / "a", "North")
    with pytest.raises(SiteError, match="host"):
        SitePki.init(tmp_path / "b", "north", hosts=[])


def test_init_share_group_and_plugin__valid(tmp_path: Path) -> None:
    plugin = Path("/opt/mosquitto/lib/mosquitto_dynamic_security.so")  # the broker's, not ours
    pki = SitePki.init(tmp_path, "north", share_group="replicas", plugin=plugin)
    pki.issue(IdentityRole.GATEWAY, "main")
    opened = SitePki.open(tmp_path)  # a later `site add` keeps both
    assert (opened.share_group, opened.plugin) == ("replicas", plugin)
    assert ("subscribePattern", f"$share/replicas/{ROOT}/#") in granted(opened)["gateway-main"]
    assert f"plugin {plugin}" in opened.mosquitto_conf(8883).splitlines()


def test_init_share_group_and_plugin__invalid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SiteError, match="share group 'a/b' is not a valid topic segment"):
        SitePki.init(tmp_path / "a", "north", share_group="a/b")
    with pytest.raises(SiteError, match="absolute path"):
        SitePki.init(tmp_path / "b", "north", plugin=Path("mosquitto_dynamic_security.so"))
    monkeypatch.setattr(site_pki, "find_plugin", lambda: None)
    with pytest.raises(SiteError, match="dynamic security plugin is not installed here"):
        SitePki.init(tmp_path / "c", "north")
    assert not (tmp_path / "c").exists()


def test_find_plugin__valid(tmp_path: Path) -> None:
    (tmp_path / "lib" / "x86_64-linux-gnu").mkdir(parents=True)
    plugin = tmp_path / "lib" / "x86_64-linux-gnu" / "mosquitto_dynamic_security.so"
    plugin.write_bytes(b"")
    places = [f"{tmp_path}/nowhere/*.so", f"{tmp_path}/lib/*/mosquitto_dynamic_security.so"]
    assert find_plugin(places) == plugin
    assert find_plugin(places[:1]) is None


def test_open_folder_before_plugin__valid(tmp_path: Path) -> None:
    SitePki.init(tmp_path, "north").issue(IdentityRole.GATEWAY, "main")
    (tmp_path / "site.yaml").write_text("site: north\nprefix: gatepost\n")
    pki = SitePki.open(tmp_path)
    assert (pki.share_group, pki.plugin) == ("gateway", find_plugin())


def test_open__invalid(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match="not a site folder"):
        SitePki.open(tmp_path)
    (tmp_path / "site.yaml").write_text("site: north\nprefix: gatepost\n")
    with pytest.raises(SiteError, match="CA is missing"):
        SitePki.open(tmp_path)


# --- identities -----------------------------------------------------------------


@pytest.mark.parametrize("role", list(IdentityRole))
def test_issue__valid(site: SitePki, role: IdentityRole) -> None:
    files = site.files(f"{role}-{NAMES[role]}")
    client = cert(files.cert)
    assert names(client, NameOID.COMMON_NAME) == [files.cn]
    assert names(client, NameOID.ORGANIZATIONAL_UNIT_NAME) == [role.value]
    assert files.role is role
    assert usages(client) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not client.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    client.verify_directly_issued_by(cert(site.ca_cert_path))
    assert files.ca.read_bytes() == site.ca_cert_path.read_bytes()
    assert mode(files.key) == 0o600
    assert mode(files.cert.parent) == 0o700
    key = serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    assert key.public_key() == client.public_key()
    endpoint = files.endpoint(BrokerUrl("broker", 8883, tls=True))
    assert (endpoint.ca, endpoint.cert, endpoint.key) == (files.ca, files.cert, files.key)
    assert endpoint.client_id("ignored") == files.cn


def test_issue_gateway__valid(site: SitePki) -> None:
    ingest, publisher = site.files("gateway-main"), site.files("gateway-main-out")
    assert (ingest.role, publisher.role) == (IdentityRole.GATEWAY, IdentityRole.GATEWAY)
    assert cert(ingest.cert).serial_number != cert(publisher.cert).serial_number
    assert ingest.key.read_bytes() != publisher.key.read_bytes()


def test_ensure__issues_once_then_gives_the_same_files(tmp_path: Path) -> None:
    pki = SitePki.init(tmp_path, "north")
    first, issued = pki.ensure(IdentityRole.GATE, "g07")
    assert issued
    again, issued_again = pki.ensure(IdentityRole.GATE, "g07")
    assert (again, issued_again) == (first, False)
    assert cert(again.cert).serial_number == cert(first.cert).serial_number
    assert [i.cn for i in pki.identities()] == ["gate-g07"]


def test_issue_validity__valid(tmp_path: Path) -> None:
    pki = SitePki.init(tmp_path, "north")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    files = pki.issue(
        IdentityRole.GATE, "g01", not_before=start, not_after=start + timedelta(days=2)
    )
    client = cert(files.cert)
    assert (client.not_valid_before_utc, client.not_valid_after_utc) == (
        start,
        start + timedelta(days=2),
    )
    # From now for `days`; it starts an hour early for a clock a little behind.
    issued = cert(pki.issue(IdentityRole.GATE, "g02", days=30).cert)
    left = issued.not_valid_after_utc - datetime.now(UTC)
    assert timedelta(days=30, seconds=-5) <= left <= timedelta(days=30)
    assert issued.not_valid_before_utc <= datetime.now(UTC) - timedelta(minutes=59)


@pytest.mark.parametrize(
    ("role", "name", "problem"),
    [
        (IdentityRole.GATE, "G01", "not a valid topic segment"),
        (IdentityRole.GATE, "g/01", "not a valid topic segment"),
        (IdentityRole.GATE, "+", "not a valid topic segment"),
        (IdentityRole.GATE, "#", "not a valid topic segment"),
        (IdentityRole.GATE, "", "not a valid topic segment"),
        ("wizard", "x", "not a valid IdentityRole"),
        (IdentityRole.SIMULATOR, "x" * 60, "longer than 64"),
        (IdentityRole.GATE, "g01", "already issued"),
        (IdentityRole.GATEWAY, "main", "already issued"),
    ],
)
def test_issue__invalid(site: SitePki, role: IdentityRole, name: str, problem: str) -> None:
    before = site.dynsec_path.read_bytes()
    with pytest.raises(SiteError, match=problem):
        site.issue(role, name)
    assert site.dynsec_path.read_bytes() == before


def test_issue_gateway_publisher_taken__invalid(tmp_path: Path) -> None:
    # gateway "a-out" would be gateway-a-out, which gateway "a" already holds.
    pki = SitePki.init(tmp_path, "north")
    pki.issue(IdentityRole.GATEWAY, "a")
    with pytest.raises(SiteError, match="gateway-a-out is already issued"):
        pki.issue(IdentityRole.GATEWAY, "a-out")
    with pytest.raises(SiteError, match="no identity 'gate-x'"):
        pki.files("gate-x")


def test_revoke__valid(tmp_path: Path) -> None:
    pki = SitePki.init(tmp_path, "north")
    kept = pki.issue(IdentityRole.GATE, "g01")
    lost = pki.issue(IdentityRole.GATE, "g02")
    serial = cert(lost.cert).serial_number
    number = crl(pki).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    assert pki.revoke("gate-g02") == ["gate-g02"]

    revocations = crl(pki)
    assert [entry.serial_number for entry in revocations] == [serial]
    ca_public = cert(pki.ca_cert_path).public_key()
    assert isinstance(ca_public, ec.EllipticCurvePublicKey)
    assert revocations.is_signature_valid(ca_public)
    assert revocations.next_update_utc is not None
    assert revocations.next_update_utc > datetime.now(UTC) + timedelta(days=365)
    assert (
        revocations.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        == number + 1
    )
    assert [i.cn for i in pki.identities()] == [kept.cn]
    [record] = pki.revoked()
    assert (record.cn, record.role, record.serial) == ("gate-g02", IdentityRole.GATE, serial)
    assert record.revoked_at is not None
    assert not lost.key.exists()
    assert set(granted(pki)) == {"gate-g01"}

    again = pki.issue(IdentityRole.GATE, "g02")  # the name is free again, with a new serial
    assert cert(again.cert).serial_number != serial
    assert len(crl(pki)) == 1


def test_revoke_gateway__valid(tmp_path: Path) -> None:
    pki = SitePki.init(tmp_path, "north")
    pki.issue(IdentityRole.GATEWAY, "main")
    assert pki.revoke("gateway-main-out") == ["gateway-main", "gateway-main-out"]
    assert pki.identities() == []
    assert len(crl(pki)) == 2
    # A gateway whose own name ends in -out: its pair is gateway-a-out and gateway-a-out-out.
    pki.issue(IdentityRole.GATEWAY, "a-out")
    assert pki.revoke("gateway-a-out") == ["gateway-a-out", "gateway-a-out-out"]
    assert pki.identities() == []


def test_revoke__invalid(site: SitePki) -> None:
    with pytest.raises(SiteError, match="no identity 'gate-nobody'"):
        site.revoke("gate-nobody")
    with pytest.raises(SiteError, match="no identity"):
        site.revoke("../ca")


def test_identities__valid(site: SitePki) -> None:
    identities = {i.cn: i for i in site.identities()}
    assert set(identities) == {f"{role}-{name}" for role, name in NAMES.items()} | {
        "gateway-main-out"
    }
    assert identities["depot-d01"].role is IdentityRole.DEPOT
    assert identities["depot-d01"].revoked_at is None
    assert identities["depot-d01"].not_after > datetime.now(UTC) + timedelta(days=800)


# --- grants and broker config -----------------------------------------------------


def grants(
    reads: list[str], writes: list[str], subscribes: tuple[str, ...] = ()
) -> set[tuple[str, str]]:
    """What the plugin should hold: a read is a receive and a subscribe grant."""
    return (
        {("publishClientReceive", f"{ROOT}/{topic}") for topic in reads}
        | {("subscribePattern", f"{ROOT}/{topic}") for topic in reads}
        | {("publishClientSend", f"{ROOT}/{topic}") for topic in writes}
        | {("subscribePattern", topic) for topic in subscribes}
    )


SIGNED = ["trust", "revocations"]
SUMMARIES = ["summary", "summary/+", "supply-level", "stock"]
# Home Assistant's discovery configs of the site: outside ROOT, in Home Assistant's prefix.
DISCOVERY = "homeassistant/sensor/gatepost-north/+/config"
# docs/security.md's table, role by role.
EXPECTED = {
    "gate-g01": grants(["config/g01", *SIGNED, "receipt/g01"], ["gate/g01/#"]),
    "depot-d01": grants(["config/d01", *SIGNED, "receipt/d01"], ["depot/d01/#"]),
    "gateway-main": grants(
        ["#"], ["alert/+", *SUMMARIES, "receipt/+", "ha/#"], (f"$share/gateway/{ROOT}/#",)
    )
    | {
        ("publishClientReceive", DISCOVERY),
        ("subscribePattern", DISCOVERY),
        ("publishClientSend", DISCOVERY),
    },
    "command-center": grants(["alert/+", *SUMMARIES], []),
    "admin-tech": grants(
        [
            "+/+/status",
            "+/+/health",
            "+/+/update",
            "depot/+/reading",
            "alert/+",
            *SUMMARIES,
            "config/+",
            "receipt/+",
            *SIGNED,
        ],
        [*SIGNED, "config/+"],
    ),
    "simulator-load": grants(["receipt/+", "config/+", *SIGNED], ["gate/+/#", "depot/+/#"]),
    "homeassistant-ha": grants(["ha/#"], [])
    | {
        ("publishClientReceive", "homeassistant/#"),
        ("subscribePattern", "homeassistant/#"),
        ("publishClientSend", "homeassistant/status"),
    },
}


@pytest.mark.parametrize("cn", sorted(EXPECTED))
def test_grants__valid(site: SitePki, cn: str) -> None:
    assert granted(site)[cn] == EXPECTED[cn]


def test_dynsec_file__valid(site: SitePki) -> None:
    config = dynsec(site)
    assert config == site.dynsec()
    # Nothing unless granted; unsubscribing can only take away.
    assert config["defaultACLAccess"] == {
        "publishClientSend": False, "publishClientReceive": False,
        "subscribe": False, "unsubscribe": True,
    }  # fmt: skip
    assert config["groups"] == []
    assert [client["username"] for client in config["clients"]] == [i.cn for i in site.identities()]
    # No password: the certificate is the identity (use_identity_as_username).
    assert not [c for c in config["clients"] if {"password", "salt", "clientid"} & set(c)]
    assert granted(site)["gateway-main-out"] == granted(site)["gateway-main"]
    assert "$CONTROL" not in site.dynsec_path.read_text()
    assert mode(site.dynsec_path) == 0o644  # the broker's user reads it


def test_acl_text__valid(site: SitePki) -> None:
    text = site.acl()
    assert "\ngate-g01 (gate)\n" in text
    assert f"  write     {ROOT}/gate/g01/#" in text.splitlines()
    assert f"  subscribe $share/gateway/{ROOT}/#" in text.splitlines()


def test_mosquitto_conf__valid(site: SitePki) -> None:
    lines = site.mosquitto_conf(8883).splitlines()
    assert "listener 8883 0.0.0.0" in lines
    for setting in [
        f"cafile {site.ca_cert_path}", f"certfile {site.server_cert_path}",
        f"keyfile {site.server_key_path}", f"crlfile {site.crl_path}",
        "require_certificate true", "use_identity_as_username true",
        "use_username_as_clientid true", "allow_anonymous false", "tls_version tlsv1.2",
        f"plugin {find_plugin()}", f"plugin_opt_config_file {site.dynsec_path}",
    ]:  # fmt: skip
        assert setting in lines
    files = [line.split()[1] for line in lines if line.split()[0].endswith(("file", "plugin"))]
    assert len(files) == 6
    assert all(Path(file).is_absolute() for file in files)
    assert not [line for line in lines if line.startswith("acl_file")]
    open_lines = site.mosquitto_conf(1883, "127.0.0.1", acl=False).splitlines()
    assert "listener 1883 127.0.0.1" in open_lines
    assert "require_certificate true" in open_lines
    assert not [line for line in open_lines if line.startswith(("acl_file", "plugin"))]


def test_mosquitto_conf__invalid(tmp_path: Path) -> None:
    pki = SitePki(tmp_path, "north", plugin=None)  # an old folder, no plugin here either
    with pytest.raises(SiteError, match="names no dynamic security plugin"):
        pki.mosquitto_conf(8883)
    assert not [line for line in pki.mosquitto_conf(8883, acl=False).splitlines()
                if line.startswith("plugin")]  # fmt: skip


def test_write_broker_config__valid(tmp_path: Path) -> None:
    pki = SitePki.init(tmp_path, "north")
    path = pki.write_broker_config(8884, "10.0.0.1")
    assert path == tmp_path.resolve() / "broker" / "gatepost.conf"
    assert path.read_text() == pki.mosquitto_conf(8884, "10.0.0.1")
    assert dynsec(pki) == pki.dynsec()
    assert dynsec(pki)["clients"] == []


# --- gatepost fw site -------------------------------------------------------------------


def gatepost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True)


def test_cli__valid(tmp_path: Path) -> None:
    folder = tmp_path / "site"
    made = gatepost("fw", "site", "init", str(folder), "--site", "north", "--host", "broker.north",
                    "--host", "10.1.2.3", "--port", "8884", "--share-group", "ingest",
                    "--plugin", "/opt/lib/mosquitto_dynamic_security.so")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "gatepost.conf" in made.stdout
    assert "dynamic-security.json" in made.stdout
    assert "gatepost fw site add" in made.stdout  # the next step
    pki = SitePki.open(folder)
    conf = (folder / "broker" / "gatepost.conf").read_text().splitlines()
    assert "listener 8884 0.0.0.0" in conf
    assert "plugin /opt/lib/mosquitto_dynamic_security.so" in conf
    alt = cert(pki.server_cert_path).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert alt.value.get_values_for_type(x509.DNSName) == ["broker.north"]

    added = gatepost("fw", "site", "add", str(folder), "gateway", "main", "--days", "10")
    assert added.returncode == 0, added.stderr
    assert "gateway-main " in added.stdout and "gateway-main-out " in added.stdout
    assert "systemctl restart mosquitto" in added.stdout
    assert {i.cn for i in pki.identities()} == {"gateway-main", "gateway-main-out"}
    assert ("subscribePattern", f"$share/ingest/{ROOT}/#") in granted(pki)["gateway-main-out"]

    listed = gatepost("fw", "site", "list", str(folder), "--grants")
    assert listed.returncode == 0, listed.stderr
    expires = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    assert any(
        line.split()[:4] == ["gateway-main", "gateway", expires, "in"]
        for line in listed.stdout.splitlines()
    )
    assert f"  subscribe $share/ingest/{ROOT}/#" in listed.stdout.splitlines()


def test_cli_revoke__valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fw", "site", "init", str(tmp_path), "--site", "north"]) == 0
    assert main(["fw", "site", "add", str(tmp_path), "gate", "g01"]) == 0
    assert main(["fw", "site", "add", str(tmp_path), "command", "center"]) == 0
    capsys.readouterr()
    assert main(["fw", "site", "revoke", str(tmp_path), "gate-g01"]) == 0
    out = capsys.readouterr().out
    assert "revoked gate-g01" in out and "systemctl restart mosquitto" in out
    pki = SitePki.open(tmp_path)
    assert len(crl(pki)) == 1
    assert set(granted(pki)) == {"command-center"}
    assert main(["fw", "site", "list", str(tmp_path)]) == 0
    rows = {line.split()[0]: line.split()[3:] for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows["gate-g01"][0] == "revoked"
    assert rows["command-center"] == ["in", "force"]


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["init", "{site}", "--site", "north"], "already holds a site CA"),
        (["init", "{tmp}/new", "--site", "North"], "site 'North' is not a valid topic segment"),
        (
            ["init", "{tmp}/new", "--site", "north", "--share-group", "$share"],
            "share group '$share'",
        ),
        (["init", "{tmp}/new", "--site", "north", "--plugin", "dynsec.so"], "absolute path"),
        (["add", "{site}", "gate", "G 1"], "name 'G 1' is not a valid topic segment"),
        (["add", "{site}", "gate", "g01"], "gate-g01 is already issued"),
        (["add", "{tmp}", "gate", "g01"], "is not a site folder"),
        (["revoke", "{site}", "gate-nobody"], "no identity 'gate-nobody'"),
        (["list", "{tmp}/missing"], "is not a site folder"),
        (["add-web", "{site}", "G 1", "--host", "g.lan"], "name 'G 1' is not a valid topic"),
        (["add-web", "{tmp}", "g01", "--host", "g.lan"], "is not a site folder"),
    ],
)
def test_cli__invalid(
    site: SitePki, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], problem: str
) -> None:
    argv = [arg.format(site=site.folder, tmp=tmp_path) for arg in args]
    assert main(["fw", "site", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith(f"gatepost fw site {args[0]}: error: ")
    assert problem in captured.err


def test_cli_error__no_traceback(tmp_path: Path) -> None:
    result = gatepost("fw", "site", "list", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("gatepost fw site list: error: ")
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_client_files__valid(site: SitePki) -> None:
    assert site.files("gate-g01") == ClientFiles(
        "gate-g01", IdentityRole.GATE, site.folder / "clients" / "gate-g01" / "ca.crt",
        site.folder / "clients" / "gate-g01" / "cert.pem", site.folder / "clients" / "gate-g01" / "key.pem",
    )  # fmt: skip


# --- web server certificates ----------------------------------------------------


def test_issue_web__valid(site: SitePki) -> None:
    files = site.issue_web("g01", ["gate-01.local", "192.168.1.20"], days=30)
    assert files.cert.parent == site.folder / "web" / "g01"
    assert files.ca.read_bytes() == site.ca_cert_path.read_bytes()
    assert mode(files.key) == 0o600
    server = cert(files.cert)
    server.verify_directly_issued_by(cert(site.ca_cert_path))
    assert names(server, NameOID.COMMON_NAME) == ["gate-01.local"]
    assert usages(server) == [ExtendedKeyUsageOID.SERVER_AUTH]
    alt = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert alt.get_values_for_type(x509.DNSName) == ["gate-01.local"]
    assert alt.get_values_for_type(x509.IPAddress) == [ip_address("192.168.1.20")]
    assert server.not_valid_after_utc < datetime.now(UTC) + timedelta(days=31)
    # Not an MQTT identity: the broker's grants and the list of identities ignore it.
    assert "g01" not in {i.cn for i in site.identities()}
    assert not any("gate-01" in cn for cn in granted(site))


@pytest.mark.parametrize(
    ("name", "hosts", "problem"),
    [
        ("G 1", ["g.lan"], "name 'G 1' is not a valid topic segment"),
        ("g02", [], "at least one host"),
        ("taken", ["g.lan"], "remove it first"),
    ],
)
def test_issue_web__invalid(tmp_path: Path, name: str, hosts: list[str], problem: str) -> None:
    pki = SitePki.init(tmp_path / "site", "north")
    pki.issue_web("taken", ["taken.lan"])
    with pytest.raises(SiteError, match=problem):
        pki.issue_web(name, hosts)


def test_cli_add_web__valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fw", "site", "init", str(tmp_path), "--site", "north"]) == 0
    capsys.readouterr()
    argv = ["fw", "site", "add-web", str(tmp_path), "g01", "--host", "gate-01.local",
            "--host", "192.168.1.20", "--host", "localhost"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "tls_cert" in out and "tls_key" in out
    server = cert(tmp_path / "web" / "g01" / "cert.pem")
    alt = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    # The kiosk's names are always in, once each.
    assert alt.get_values_for_type(x509.DNSName) == ["gate-01.local", "localhost"]
    assert alt.get_values_for_type(x509.IPAddress) == [
        ip_address("192.168.1.20"),
        ip_address("127.0.0.1"),
    ]
