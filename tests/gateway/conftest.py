"""Gateway fixtures: a temporary store, a one-site config, the context the API runs on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.contract.command import Alert
from gateway.alarms import AlarmBook
from gateway.api.context import GatewayContext
from gateway.config import GatewayConfig, SiteSection
from gateway.live import LiveFeed
from gateway.store import SqlStore, open_store
from gateway.store.settings import StoreSection
from tests.conftest import PostgresDatabases
from tests.gateway.factory import Gates


@pytest.fixture(params=["sqlite", "postgresql"])
def store_section(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSection:
    """The store every gateway test runs on: each test runs once on a SQLite file and once
    on a fresh PostgreSQL database (the session's private cluster)."""
    if request.param == "postgresql":
        databases: PostgresDatabases = request.getfixturevalue("postgres_databases")
        return StoreSection(path=tmp_path / "gateway.db", url=databases.new())
    return StoreSection(path=tmp_path / "gateway.db")


@pytest.fixture
def gateway_config(store_section: StoreSection) -> GatewayConfig:
    """Site `north` (Asia/Shanghai, cut-off at 00:00) with gates g01, g02 and depot d01."""
    return GatewayConfig(
        sites=(SiteSection(name="north", gates=("g01", "g02"), depots=("d01",)),),
        store=store_section,
    )


@pytest.fixture
def store(gateway_config: GatewayConfig) -> Iterator[SqlStore]:
    opened = open_store(gateway_config.store)
    yield opened
    opened.close()


@pytest.fixture
def published() -> list[Alert]:
    """Alerts the alarm book published, in order."""
    return []


@pytest.fixture
def gateway_context(
    gateway_config: GatewayConfig, store: SqlStore, published: list[Alert]
) -> GatewayContext:
    live = LiveFeed()
    return GatewayContext(
        config=gateway_config, store=store, alarms=AlarmBook(store, published.append, live),
        live=live,
    )  # fmt: skip


@pytest.fixture
def gates() -> Gates:
    return Gates("north")
