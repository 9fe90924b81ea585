"""Gateway fixtures: a temporary store, a one-site config, the context the API runs on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.contract.command import Alert
from gateway.alarms import AlarmBook
from gateway.api.context import GatewayContext
from gateway.config import GatewayConfig, SiteSection, StoreSection
from gateway.live import LiveFeed
from gateway.store import SqliteStore
from tests.gateway.factory import Gates


@pytest.fixture
def gateway_config(tmp_path: Path) -> GatewayConfig:
    """Site `north` (Asia/Shanghai, cut-off at 00:00) with gates g01, g02 and depot d01."""
    return GatewayConfig(
        sites=(SiteSection(name="north", gates=("g01", "g02"), depots=("d01",)),),
        store=StoreSection(path=tmp_path / "gateway.db"),
    )


@pytest.fixture
def store(gateway_config: GatewayConfig) -> Iterator[SqliteStore]:
    opened = SqliteStore(gateway_config.store.path)
    yield opened
    opened.close()


@pytest.fixture
def published() -> list[Alert]:
    """Alerts the alarm book published, in order."""
    return []


@pytest.fixture
def gateway_context(
    gateway_config: GatewayConfig, store: SqliteStore, published: list[Alert]
) -> GatewayContext:
    live = LiveFeed()
    return GatewayContext(
        config=gateway_config, store=store, alarms=AlarmBook(store, published.append, live),
        live=live,
    )  # fmt: skip


@pytest.fixture
def gates() -> Gates:
    return Gates("north")
