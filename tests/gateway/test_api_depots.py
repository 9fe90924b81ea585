"""Depot readings and each zone's day through the gateway API, as a depot keeper reads them."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge.contract.events import DepotReading, DepotReadingBatch
from gateway.alarms import AlarmBook
from gateway.api.context import GatewayContext
from gateway.config import GatewayConfig, SiteSection, StoreSection
from gateway.depot_summary import mean_kinetic_temperature
from gateway.live import LiveFeed
from gateway.store import SqliteStore
from tests.gateway.factory import Gates
from tests.gateway.test_api_access import bearer, open_api

# 2026-12-01 in Shanghai (UTC+8) starts at 2026-11-30 16:00 UTC.
DAY = "2026-12-01"
MIDNIGHT = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
COLD = "cold-store-1"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "gateway.db")
    yield opened
    opened.close()


@pytest.fixture
def api(tmp_path: Path, store: SqliteStore) -> TestClient:
    site = SiteSection(name="north", gates=("g01",), depots=("d01",), zones={"d01": {COLD: "cold"}})
    config = GatewayConfig(sites=(site,), store=StoreSection(path=tmp_path / "gateway.db"))
    live = LiveFeed()
    context = GatewayContext(
        config=config, store=store, alarms=AlarmBook(store, lambda alert: None, live), live=live
    )
    return open_api(context)


def sample(zone: str, at: datetime, temperature_c: float | None, address: int = 1) -> DepotReading:
    if temperature_c is None:
        return DepotReading(sensor=zone, bus_address=address, at=at, status="timeout")
    return DepotReading(
        sensor=zone, bus_address=address, at=at, status="ok", temperature_c=temperature_c,
        humidity_pct=60.0,
    )  # fmt: skip


def stored(store: SqliteStore, readings: list[DepotReading]) -> None:
    gates = Gates("north")
    for at in range(0, len(readings), 100):  # batches as a node sends them
        store.write(
            [gates.inbound("d01", DepotReadingBatch, readings=tuple(readings[at : at + 100]))]
        )


def a_cold_day() -> list[DepotReading]:
    """Every 10 min of the local day: 5 °C, but 25 °C from 10:00 to 12:00; one timeout."""
    readings = []
    for step in range(144):
        at = MIDNIGHT + timedelta(minutes=10 * step)
        temperature = 25.0 if 60 <= step < 72 else 5.0
        readings.append(sample(COLD, at, None if step == 100 else temperature))
    return readings


def test_summary__a_cold_store_with_two_warm_hours(api: TestClient, store: SqliteStore) -> None:
    stored(store, a_cold_day())
    response = api.get(f"/api/depots/north/d01/summary?day={DAY}", headers=bearer("depot"))
    assert response.status_code == 200, response.text
    (zone,) = response.json()
    assert (zone["zone"], zone["storage_class"], zone["readings"], zone["faults"]) == (
        COLD, "cold", 143, 1,
    )  # fmt: skip
    assert (zone["temperature_min_c"], zone["temperature_max_c"]) == (5.0, 25.0)
    # Warm hours weigh more in the mean kinetic temperature than in the mean.
    assert zone["temperature_mean_c"] == pytest.approx(6.68, abs=0.01)
    assert zone["mean_kinetic_c"] == pytest.approx(9.85, abs=0.02)
    assert zone["minutes_out_of_range"] == 120.0  # 12 readings at or above 8 °C, 10 min each


def test_summary__a_zone_with_a_class_and_no_readings_is_listed_empty(api: TestClient) -> None:
    (zone,) = api.get(f"/api/depots/north/d01/summary?day={DAY}", headers=bearer("command")).json()
    assert (zone["zone"], zone["readings"], zone["mean_kinetic_c"]) == (COLD, 0, None)


def test_readings__one_local_day_by_time_and_one_zone(api: TestClient, store: SqliteStore) -> None:
    stored(store, [
        sample(COLD, MIDNIGHT - timedelta(minutes=1), 4.0),  # the day before, locally
        sample("shelf-a", MIDNIGHT + timedelta(minutes=5), 21.0, address=2),
        sample(COLD, MIDNIGHT + timedelta(minutes=1), 4.5),
        sample(COLD, MIDNIGHT + timedelta(hours=24), 4.6),  # the next day
    ])  # fmt: skip
    response = api.get(f"/api/depots/north/d01/readings?day={DAY}", headers=bearer("depot"))
    assert [(r["zone"], r["temperature_c"]) for r in response.json()] == [
        (COLD, 4.5), ("shelf-a", 21.0),
    ]  # fmt: skip
    only = api.get(
        f"/api/depots/north/d01/readings?day={DAY}&zone=shelf-a", headers=bearer("depot")
    )
    assert [r["zone"] for r in only.json()] == ["shelf-a"]


def test_readings__csv_opens_in_excel(api: TestClient, store: SqliteStore) -> None:
    stored(store, a_cold_day()[:3])
    response = api.get(
        f"/api/depots/north/d01/readings?day={DAY}&format=csv", headers=bearer("depot")
    )
    assert response.headers["content-type"].startswith("text/csv")
    assert f"gatepost-north-d01-{DAY}.csv" in response.headers["content-disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads UTF-8
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [(r["zone"], r["status"], r["temperature_c"]) for r in rows] == [
        (COLD, "ok", "5.0"), (COLD, "ok", "5.0"), (COLD, "ok", "5.0"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "reason"),
    [("south/d01", "unknown-site"), ("north/g01", "unknown-depot"), ("north/d09", "unknown-depot")],
)
def test_depots__unknown__404(api: TestClient, path: str, reason: str) -> None:
    for what in ("readings", "summary"):
        response = api.get(f"/api/depots/{path}/{what}?day={DAY}", headers=bearer("command"))
        assert (response.status_code, response.json()["reason"]) == (404, reason)


@pytest.mark.parametrize("day", ["2026-13-01", "1999-12-31", ""])
def test_depots__a_bad_day__422(api: TestClient, day: str) -> None:
    response = api.get(f"/api/depots/north/d01/readings?day={day}", headers=bearer("depot"))
    assert response.status_code == 422


def test_depots__registrars_may_not_read_them(api: TestClient) -> None:
    for what in ("readings", "summary"):
        url = f"/api/depots/north/d01/{what}?day={DAY}"
        assert api.get(url, headers=bearer("registrar")).status_code == 403
        assert api.get(url).status_code == 401


def test_mean_kinetic_temperature__a_constant_is_itself_and_warmth_weighs_more() -> None:
    assert mean_kinetic_temperature([25.0] * 10) == pytest.approx(25.0)
    temperatures = [5.0] * 22 + [25.0] * 2
    mkt = mean_kinetic_temperature(temperatures)
    assert mkt > sum(temperatures) / len(temperatures)
    assert mkt == pytest.approx(9.83, abs=0.01)
    with pytest.raises(ValueError, match="no temperatures"):
        mean_kinetic_temperature([])
