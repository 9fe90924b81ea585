"""The gateway's config file: the documented example is valid, mistakes are named by path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edge.configfile import ConfigError
from edge.contract.topics import Role
from gateway.config import GatewayConfig, SiteSection, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "gateway.yaml"


def test_load_config__the_documented_example__valid() -> None:
    config = load_config(EXAMPLE)
    north = config.site("north")
    assert north is not None
    assert north.role_of("g02") is Role.GATE
    assert north.role_of("d01") is Role.DEPOT
    assert north.role_of("g99") is None
    assert config.alarms.disinfections_min == 4
    # The depot keys, as written.
    assert north.depot_stale_after_min == 15
    fridge = north.storage_class("d01", "fridge-2")
    assert fridge is not None
    assert [(c.name, c.type) for c in fridge.conditions] == [
        ("heat", "consecutive"), ("hot", "instant"), ("warm-day", "cumulative"),
    ]  # fmt: skip
    assert north.storage_class("d01", "cold-store-1") is not None  # a built-in class
    assert config.alarms.escalate_after_min == 15
    assert (config.store.depot_raw_days, config.store.depot_minute_days) == (30, 90)
    assert config.homeassistant.enabled is False


def test_load_config__the_documented_example_shows_every_section_and_site_key() -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    assert set(data) == set(GatewayConfig.model_fields)
    assert set(data["sites"][0]) == set(SiteSection.model_fields)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sites: []", "sites: Tuple should have at least 1 item"),
        ("sites: [{name: North}]", "sites.0.name: String should match pattern"),
        ("sites: [{name: n, cutoff_hour: 24}]", "sites.0.cutoff_hour"),
        ("sites: [{name: n, timezone: Mars/Base}]", "is not a time zone name"),
        ("sites: [{name: n, gates: [g1, g1]}]", "nodes listed twice at site n: g1"),
        ("sites: [{name: n}, {name: n}]", "sites listed twice: n"),
        ("sites: [{name: n}]\nbroker: {url: http://x}", "broker.url"),
        ("sites: [{name: n}]\nstore: {pth: x.db}", "store.pth: Extra inputs are not permitted"),
        (
            "sites: [{name: n}]\nbroker: {ca: ca.crt, cert: c.pem, key: k.pem}",
            "give cert and publisher_cert together",
        ),
        ("- just a list", "a config is a mapping of sections"),
    ],
)
def test_load_config__invalid__names_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"gateway\.yaml") as raised:
        load_config(path)
    assert message in str(raised.value)


def test_load_config__a_relative_store_path_is_taken_from_the_config_folder(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("sites: [{name: n}]\nstore: {path: data/gateway.db}")
    assert load_config(path).store.path == tmp_path / "data" / "gateway.db"


def test_load_config__the_publisher_has_its_own_certificate_on_the_same_broker(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "sites: [{name: n}]\nbroker: {url: 'mqtts://gw:8883', ca: pki/ca.crt, cert: in.pem, "
        "key: in.key, publisher_cert: out.pem, publisher_key: out.key}"
    )
    broker = load_config(path).broker
    ingest, publisher = broker.endpoint(), broker.publisher_endpoint()
    assert (ingest.cert, publisher.cert) == (tmp_path / "in.pem", tmp_path / "out.pem")
    assert (ingest.key, publisher.key) == (tmp_path / "in.key", tmp_path / "out.key")
    assert ingest.url == publisher.url and ingest.ca == publisher.ca == tmp_path / "pki/ca.crt"


def test_load_config__the_default_store_path_is_beside_the_config(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("sites: [{name: n}]")
    assert load_config(path).store.path == tmp_path / "gateway.db"


REMOTE = "postgresql://gateway-gw1:s3cret@db1.north.lan:5432/gatepost"
URL_TLS = "sslmode=verify-full&sslrootcert=/c/ca.crt&sslcert=/c/cert.pem&sslkey=/c/key.pem"
IDENTITY = "  tls_ca: gw1/ca.crt\n  tls_cert: gw1/cert.pem\n  tls_key: gw1/key.pem\n"


def store_config(tmp_path: Path, store: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(f"sites: [{{name: n}}]\nstore:\n{store}")
    return path


@pytest.mark.parametrize(
    "url",
    [
        "postgresql:///gatepost?host=/var/run/postgresql",  # the Unix socket
        "postgresql://gatepost@/gatepost",  # libpq's default socket
        "postgresql://gatepost@localhost/gatepost",
        "postgresql://gatepost@127.0.0.1:5432/gatepost",
        "postgresql://gatepost@[::1]:5432/gatepost",
        "postgresql://gatepost@db1.north.lan/gatepost?hostaddr=127.0.0.1",  # a name, on loopback
        f"{REMOTE}?{URL_TLS}",  # the URL's own verified TLS
    ],
)
def test_store_url_without_tls_fields__valid(tmp_path: Path, url: str) -> None:
    assert load_config(store_config(tmp_path, f"  url: '{url}'\n")).store.url == url


def test_store_tls_fields__valid__every_connection_gets_them_from_the_config_folder(
    tmp_path: Path,
) -> None:
    store = load_config(store_config(tmp_path, f"  url: {REMOTE}\n{IDENTITY}")).store
    folder = tmp_path / "gw1"
    assert store.url == (
        f"{REMOTE}?sslmode=verify-full&sslrootcert={folder}/ca.crt"
        f"&sslcert={folder}/cert.pem&sslkey={folder}/key.pem"
    )
    assert (store.tls_ca, store.tls_key) == (folder / "ca.crt", folder / "key.pem")
    # Given back (as tests hand a loaded section to a process), it is the same URL.
    assert type(store).model_validate(store.model_dump()).url == store.url


def test_store_tls_fields__valid__a_path_with_a_space_reaches_libpq_whole(tmp_path: Path) -> None:
    from psycopg.conninfo import conninfo_to_dict

    identity = IDENTITY.replace("gw1/", "gateway gw1/")
    store = load_config(store_config(tmp_path, f"  url: {REMOTE}\n{identity}")).store
    assert store.url is not None
    assert conninfo_to_dict(store.url)["sslkey"] == str(tmp_path / "gateway gw1" / "key.pem")


@pytest.mark.parametrize(
    ("store", "message"),
    [
        (f"  url: {REMOTE}\n", "PostgreSQL on db1.north.lan is reached over the network"),
        (f"  url: '{REMOTE}?sslmode=require'\n", "needs TLS with this replica's identity"),
        (f"  url: '{REMOTE}?sslmode=verify-full&sslrootcert=/c/ca.crt'\n", "give store.tls_ca"),
        (f"  url: '{REMOTE}?{URL_TLS.replace('verify-full', 'verify-ca')}'\n", "give store.tls_ca"),
        ("  url: 'postgresql://u:s3cret@localhost/db?hostaddr=10.0.0.9'\n", "on 10.0.0.9"),
        ("  url: 'postgresql://u:s3cret@localhost,db2.lan/db'\n", "on db2.lan is reached"),
        (f"  url: '{REMOTE}?sslmode=verify-full'\n{IDENTITY}", "give the TLS files in one place"),
        (f"  url: {REMOTE}\n  tls_ca: gw1/ca.crt\n", "give tls_ca, tls_cert and tls_key together"),
        (IDENTITY, "tls_ca, tls_cert and tls_key are for PostgreSQL: set url too"),
        (f"  url: '{REMOTE}?sslmode=verify-full&s3cret=1'\n", "not a URL libpq can read"),
    ],
)
def test_store_tls__invalid__refused_at_load_without_the_password(
    tmp_path: Path, store: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=r"gateway\.yaml") as raised:
        load_config(store_config(tmp_path, store))
    assert message in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_load_config__the_example_store_on_postgresql__valid(tmp_path: Path) -> None:
    """The example's commented PostgreSQL lines, uncommented, are a valid TLS store."""
    import re

    text = re.sub(r"^  # (url|tls_\w+):", r"  \1:", EXAMPLE.read_text(), flags=re.MULTILINE)
    (tmp_path / "gateway.yaml").write_text(text)
    store = load_config(tmp_path / "gateway.yaml").store
    assert store.url is not None and "sslmode=verify-full" in store.url
    assert store.tls_key == Path("/etc/gatepost/gateway-gw1/key.pem")
