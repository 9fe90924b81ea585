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
