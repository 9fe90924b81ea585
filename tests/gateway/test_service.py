"""The gateway's tick: time-based rules, summaries and housekeeping, each failing alone."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from gateway.config import GatewayConfig
from gateway.service import Gateway
from gateway.store import StoreUnavailable


def test_tick__a_step_that_fails_is_logged_and_the_others_still_run(
    gateway_config: GatewayConfig, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []

    def locked() -> None:
        ran.append("rules")
        raise StoreUnavailable("database is locked")

    gateway = Gateway(gateway_config)
    gateway.rules = SimpleNamespace(check=locked)  # type: ignore[assignment]
    gateway.stock_rules = SimpleNamespace(check=lambda: ran.append("stock"))  # type: ignore[assignment]
    gateway.stock_reports = SimpleNamespace(check=lambda: ran.append("stock-reports"))  # type: ignore[assignment]
    gateway.supply_levels = SimpleNamespace(check=lambda: ran.append("supply"))  # type: ignore[assignment]
    gateway.receipts = SimpleNamespace(check=lambda: ran.append("receipts"))  # type: ignore[assignment]
    gateway.summaries = SimpleNamespace(publish_due=lambda: ran.append("summaries"))  # type: ignore[assignment]
    gateway.store = SimpleNamespace(checkpoint=lambda: ran.append("checkpoint"))  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR, logger="gateway.service"):
        gateway.tick()
    assert ran == [
        "rules",
        "stock",
        "stock-reports",
        "supply",
        "receipts",
        "summaries",
        "checkpoint",
    ]
    assert "database is locked" in caplog.text
    assert "the next tick tries again" in caplog.text
