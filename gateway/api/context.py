"""What every request handler of the gateway needs, in one object on app.state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import Request

from gateway.alarms import AlarmBook, utc_now
from gateway.config import GatewayConfig
from gateway.live import LiveFeed
from gateway.stats import IngestStats
from gateway.store import Store


@dataclass(frozen=True)
class GatewayContext:
    config: GatewayConfig
    store: Store
    alarms: AlarmBook
    live: LiveFeed
    stats: IngestStats = field(default_factory=IngestStats)
    clock: Callable[[], datetime] = utc_now


def context(request: Request) -> GatewayContext:
    """FastAPI dependency: the gateway's context."""
    found: GatewayContext = request.app.state.gateway
    return found
