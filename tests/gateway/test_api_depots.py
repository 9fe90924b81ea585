"""Depots through the gateway API, as a depot keeper reads them: every depot now, a depot's
readings and each zone's day."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest
from fastapi.testclient import TestClient

from edge.contract.events import DepotReading, DepotReadingBatch
from edge.contract.topics import AlertKind
from gateway.alarms import AlarmBook, draft
from gateway.api.context import GatewayContext
from gateway.api.routes_dashboard import STATIC
from gateway.api.routes_depots import ZONES_MAX, ZoneState
from gateway.config import GatewayConfig, SiteSection
from gateway.depot_rules import ExcursionRules
from gateway.depot_summary import mean_kinetic_temperature
from gateway.live import LiveFeed
from gateway.storage_classes import BUILT_IN, Quantity
from gateway.store import SqlStore
from gateway.store.depot_records import DepotReadingRecord
from gateway.store.records import AccessRole
from gateway.store.settings import StoreSection
from gateway.web.words import catalogue
from tests.gateway.factory import Gates
from tests.gateway.test_api_access import bearer, open_api
from tests.gateway.test_api_alarms import sample as sample_alarm

# 2026-12-01 in Shanghai (UTC+8) starts at 2026-11-30 16:00 UTC.
DAY = "2026-12-01"
MIDNIGHT = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
COLD = "cold-store-1"


@pytest.fixture
def api(store_section: StoreSection, store: SqlStore) -> TestClient:
    site = SiteSection(name="north", gates=("g01",), depots=("d01",), zones={"d01": {COLD: "cold"}})
    config = GatewayConfig(sites=(site,), store=store_section)
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


def stored(store: SqlStore, readings: list[DepotReading]) -> None:
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


def test_summary__a_cold_store_with_two_warm_hours(api: TestClient, store: SqlStore) -> None:
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


def test_readings__one_local_day_by_time_and_one_zone(api: TestClient, store: SqlStore) -> None:
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


def test_readings__csv_opens_in_excel(api: TestClient, store: SqlStore) -> None:
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


# --- the overview: every depot and zone now -------------------------------------------------

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai on DAY
DRY = "dry-store"


@pytest.fixture
def book(store: SqlStore) -> AlarmBook:
    return AlarmBook(store, lambda alert: None, LiveFeed())


@pytest.fixture
def depots_config(store_section: StoreSection) -> GatewayConfig:
    """Depot d01 with a cold store and a dry store (room class); d02 with nothing yet."""
    site = SiteSection(
        name="north", gates=("g01",), depots=("d01", "d02"),
        zones={"d01": {COLD: "cold", DRY: "room"}},
    )  # fmt: skip
    return GatewayConfig(sites=(site,), store=store_section)


@pytest.fixture
def at_noon(depots_config: GatewayConfig, store: SqlStore, book: AlarmBook) -> TestClient:
    """The API over depots_config with the gateway's clock at NOW."""
    context = GatewayContext(
        config=depots_config, store=store, alarms=book, live=LiveFeed(), clock=lambda: NOW
    )
    return open_api(context)


def arrived(
    store: SqlStore, config: GatewayConfig, book: AlarmBook, readings: list[DepotReading]
) -> None:
    """Stored as the node sent them at NOW, and evaluated by the excursion rules."""
    gates = Gates("north", now=NOW)
    batches = [
        gates.inbound("d01", DepotReadingBatch, readings=tuple(readings[at : at + 100]))
        for at in range(0, len(readings), 100)
    ]
    store.write(batches)
    ExcursionRules(config, store, book).on_stored(batches)


def every_10_min(zone: str, hours: float, temperature_c: float) -> list[DepotReading]:
    """Readings of the last `hours` up to NOW, one each 10 min."""
    steps = int(hours * 6)
    return [sample(zone, NOW - timedelta(minutes=10 * (steps - i)), temperature_c)
            for i in range(steps + 1)]  # fmt: skip


def zones_of(overview: dict[str, Any], node: str = "d01") -> dict[str, dict[str, Any]]:
    (depot,) = [d for d in overview["depots"] if d["node"] == node]
    return {zone["zone"]: zone for zone in depot["zones"]}


def test_overview__every_depot_its_zones_bands_and_newest_readings(
    at_noon: TestClient, store: SqlStore, depots_config: GatewayConfig, book: AlarmBook
) -> None:
    arrived(store, depots_config, book, [
        *every_10_min(COLD, 1, 5.0), sample("shelf-a", NOW - timedelta(minutes=3), 21.5, 2),
    ])  # fmt: skip
    response = at_noon.get("/api/depots", headers=bearer("command"))
    assert response.status_code == 200, response.text
    overview = response.json()
    assert overview["at"] == "2026-12-01T04:00:00Z"
    assert overview["may_acknowledge"] is True
    assert [(d["site"], d["node"], d["timezone"], d["online"], d["last_seen"])
            for d in overview["depots"]] == [
        ("north", "d01", "Asia/Shanghai", False, None),
        ("north", "d02", "Asia/Shanghai", False, None),
    ]  # fmt: skip
    zones = zones_of(overview)
    assert sorted(zones) == [COLD, DRY, "shelf-a"]  # the unassigned one that sent readings too
    cold = zones[COLD]
    assert (cold["storage_class"], cold["state"], cold["alarms"]) == ("cold", "ok", [])
    assert cold["description"] == "2 to 8 °C (vaccines, reagents)"
    assert cold["bands"] == [{"quantity": "temperature", "unit": "°C", "low": -0.5, "high": 8.0}]
    assert cold["latest"] == {
        "at": "2026-12-01T04:00:00Z", "status": "ok", "temperature_c": 5.0, "humidity_pct": 60.0,
    }  # fmt: skip
    # A zone with a class and no reading: its band, no value, no data.
    dry = zones[DRY]
    assert (dry["storage_class"], dry["latest"], dry["state"]) == ("room", None, "no-data")
    assert dry["bands"] == [
        {"quantity": "temperature", "unit": "°C", "low": None, "high": 25.0},
        {"quantity": "humidity", "unit": "%RH", "low": None, "high": 75.0},
    ]
    shelf = zones["shelf-a"]
    assert (shelf["storage_class"], shelf["bands"], shelf["state"]) == (None, [], "ok")
    assert shelf["latest"]["temperature_c"] == 21.5
    assert zones_of(overview, "d02") == {}


def test_overview__a_zone_in_alarm_raised_by_the_rules_then_acknowledged(
    at_noon: TestClient, store: SqlStore, depots_config: GatewayConfig, book: AlarmBook
) -> None:
    # 9 °C for 11 h: cold's heat condition (8 °C or above for 10 h) raised.
    arrived(store, depots_config, book, every_10_min(COLD, 11, 9.0))
    cold = zones_of(at_noon.get("/api/depots", headers=bearer("depot")).json())[COLD]
    assert cold["state"] == "alarm"
    (alarm,) = cold["alarms"]
    assert (alarm["kind"], alarm["subject"], alarm["state"]) == (
        "depot-climate", f"{COLD}/heat", "raised",
    )  # fmt: skip
    assert alarm["words"]["key"] == "depot-climate.temperature-above"
    assert alarm["words"]["values"]["zone"] == COLD
    acknowledged = at_noon.post(
        f"/api/alarms/{alarm['alarm_id']}/acknowledge", headers=bearer("command")
    )
    assert acknowledged.status_code == 200
    cold = zones_of(at_noon.get("/api/depots", headers=bearer("command")).json())[COLD]
    assert (cold["state"], cold["alarms"][0]["state"]) == ("alarm", "acknowledged")
    assert cold["alarms"][0]["acknowledged_by"] == "command-desk"


def test_overview__out_of_range_before_any_alarm_and_a_sensor_fault(
    at_noon: TestClient, store: SqlStore, depots_config: GatewayConfig, book: AlarmBook
) -> None:
    arrived(store, depots_config, book, [
        *every_10_min(COLD, 0.5, 8.4),  # above 8 °C for 30 min: not 10 h yet
        sample(DRY, NOW - timedelta(minutes=20), 20.0, 2),
        sample(DRY, NOW - timedelta(minutes=10), None, 2),  # then no answer
    ])  # fmt: skip
    zones = zones_of(at_noon.get("/api/depots", headers=bearer("command")).json())
    assert (zones[COLD]["state"], zones[COLD]["alarms"]) == ("out-of-range", [])
    assert zones[DRY]["state"] == "sensor-fault"
    assert zones[DRY]["latest"]["status"] == "timeout"
    assert zones[DRY]["latest"]["temperature_c"] is None


def test_overview__a_silent_zone_shows_its_last_reading_as_no_data(
    at_noon: TestClient, store: SqlStore, depots_config: GatewayConfig, book: AlarmBook
) -> None:
    arrived(store, depots_config, book, [sample(COLD, NOW - timedelta(hours=2), 4.2)])
    cold = zones_of(at_noon.get("/api/depots", headers=bearer("command")).json())[COLD]
    assert cold["state"] == "no-data"
    assert (cold["latest"]["at"], cold["latest"]["temperature_c"]) == ("2026-12-01T02:00:00Z", 4.2)


def test_overview__a_depots_own_alarm_is_the_depots_a_zones_silence_the_zones(
    at_noon: TestClient, book: AlarmBook
) -> None:
    offline = book.raise_alarm(sample_alarm("node-offline.lost", node="d01"))
    silent = book.raise_alarm(draft(
        AlertKind.DEPOT_SENSOR_STALE, "depot-sensor-stale", "north", "d01", "warning",
        subject=DRY, zone=DRY, silent_min="45",
    ))  # fmt: skip
    assert offline is not None and silent is not None
    (d01,) = [d for d in at_noon.get("/api/depots", headers=bearer("command")).json()["depots"]
              if d["node"] == "d01"]  # fmt: skip
    assert [a["alarm_id"] for a in d01["alarms"]] == [offline.alarm_id]
    zones = {zone["zone"]: zone for zone in d01["zones"]}
    assert [a["alarm_id"] for a in zones[DRY]["alarms"]] == [silent.alarm_id]
    assert (zones[DRY]["state"], zones[COLD]["alarms"]) == ("alarm", [])


def test_overview__zones_no_class_names_are_bounded(
    at_noon: TestClient, store: SqlStore, depots_config: GatewayConfig, book: AlarmBook
) -> None:
    arrived(store, depots_config, book, [
        sample(f"rack-{n:03d}", NOW - timedelta(minutes=1), 20.0, address=n + 1) for n in range(80)
    ])  # fmt: skip
    zones = zones_of(at_noon.get("/api/depots", headers=bearer("command")).json())
    assert len(zones) == ZONES_MAX
    assert {COLD, DRY} <= set(zones)  # the assigned ones always


def test_overview__roles(at_noon: TestClient) -> None:
    # A depot token acknowledges its depots' alarms (tests/gateway/test_depot_tokens.py).
    # The command center watches stock; depot keepers (and admin) enter it.
    sees: tuple[tuple[AccessRole, bool, bool], ...] = (
        ("depot", False, True), ("command", True, False), ("admin", True, True),
    )  # fmt: skip
    for role, sees_all, enters in sees:
        overview = at_noon.get("/api/depots", headers=bearer(role)).json()
        assert (overview["may_acknowledge"], overview["sees_all"]) == (True, sees_all), role
        assert overview["may_enter_stock"] is enters, role
    assert at_noon.get("/api/depots", headers=bearer("registrar")).status_code == 403
    assert at_noon.get("/api/depots").status_code == 401


# --- the page's words for what this API answers ---------------------------------------------


def test_words__every_key_the_depot_page_shows_is_in_the_catalogue() -> None:
    script = "\n".join(
        (STATIC / name).read_text(encoding="utf-8") for name in ("depot-chart.js", "depots.js")
    )
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    namespaces = "|".join({key.split(".", 1)[0] for key in catalogue()})
    used = set(re.findall(rf'"((?:{namespaces})\.[\w./-]+)"', script))
    used |= set(re.findall(r'data-word="([^"]+)"', html))
    # Keys made from the API's values: each value it can take (a class a site adds, or a
    # state added later, is shown by its slug).
    made: dict[str, tuple[str, ...]] = {
        "zoneState": get_args(ZoneState),
        "reading": tuple(  # an ok reading shows its values
            s for s in get_args(DepotReadingRecord.model_fields["status"].annotation) if s != "ok"
        ),
        "quantity": get_args(Quantity),
        "storageClass": tuple(BUILT_IN),
    }
    assert set(re.findall(r"`(\w+)\.\$\{", script)) == set(made)
    used |= {f"{family}.{value}" for family, values in made.items() for value in values}
    assert len(used) > 50  # the scan found the page's words
    missing = sorted(used - set(catalogue()))
    assert not missing, f"shown on the depot page, not in words.json: {missing}"


def test_a_rate_condition_is_no_level__band_state_and_minutes_out(
    store_section: StoreSection, store: SqlStore, book: AlarmBook
) -> None:
    # A door condition: 0.5 °C a minute rising. Its threshold is per minute: a fridge at
    # 5 °C is not "above 0.5", neither in the band, nor in its state, nor in the summary.
    site = SiteSection.model_validate({
        "name": "north", "depots": ["d01"], "zones": {"d01": {"fridge-2": "fridge"}},
        "storage_classes": {"fridge": {"conditions": [
            {"name": "heat", "direction": "above", "threshold": 8.0, "delay_min": 600},
            {"name": "door", "direction": "above", "threshold": 0.5, "type": "rate",
             "hysteresis": 0.25},
        ]}},
    })  # fmt: skip
    config = GatewayConfig(sites=(site,), store=store_section)
    context = GatewayContext(config=config, store=store, alarms=book, live=LiveFeed(),
                             clock=lambda: NOW)  # fmt: skip
    api = open_api(context)
    arrived(store, config, book, every_10_min("fridge-2", 2, 5.0))
    (depot,) = api.get("/api/depots", headers=bearer("depot")).json()["depots"]
    (zone,) = depot["zones"]
    assert zone["bands"] == [{"quantity": "temperature", "unit": "°C", "low": None, "high": 8.0}]
    assert zone["state"] == "ok"
    (day,) = api.get(f"/api/depots/north/d01/summary?day={DAY}", headers=bearer("depot")).json()
    assert (day["readings"], day["minutes_out_of_range"]) == (13, 0.0)
