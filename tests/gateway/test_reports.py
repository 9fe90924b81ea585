"""Daily reports: the hour-precise period, missing and zero-reports, mismatches, CSV and HTML."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from edge.contract.events import CheckpointCounts
from edge.gate.daily import ReportPeriod, daily_report_fields
from gateway.access import hash_token
from gateway.alarms import AlarmBook
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.config import GatewayConfig, SiteSection, StoreSection
from gateway.live import LiveFeed
from gateway.reports import (
    BOM,
    COUNT_FIELDS,
    GateDailyReport,
    SiteDailyReport,
    last_closed_day,
    period_of_day,
    report_csv,
    report_html,
    site_daily_report,
)
from gateway.store import SqliteStore
from tests.gateway.factory import Gates

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = date(2024, 3, 5)
SITE = SiteSection(name="north", cutoff_hour=17, gates=("g01", "g02", "g03"))
PERIOD = ReportPeriod(
    datetime(2024, 3, 4, 17, tzinfo=SHANGHAI), datetime(2024, 3, 5, 17, tzinfo=SHANGHAI)
)
AFTER_CUTOFF = datetime(2024, 3, 5, 17, 30, tzinfo=SHANGHAI)
TOKEN = "gpt_report-desk"


def report_of(counts: CheckpointCounts, period: ReportPeriod = PERIOD) -> dict[str, object]:
    """DailyReport fields as a gate makes them."""
    return dict(daily_report_fields(period, counts))


def report(store: SqliteStore, now: datetime = AFTER_CUTOFF) -> SiteDailyReport:
    return site_daily_report(store, SITE, DAY, now)


def line(made: SiteDailyReport, node: str) -> GateDailyReport:
    return next(gate for gate in made.gates if gate.node == node)


# --- the period ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "cutoff_hour", "zone", "start", "end"),
    [
        ("2024-03-05", 17, "Asia/Shanghai", "2024-03-04T17:00:00+08:00", "2024-03-05T17:00:00+08:00"),
        ("2024-03-05", 0, "Asia/Shanghai", "2024-03-04T00:00:00+08:00", "2024-03-05T00:00:00+08:00"),
        ("2024-01-01", 23, "Asia/Shanghai", "2023-12-31T23:00:00+08:00", "2024-01-01T23:00:00+08:00"),
        # Clocks go forward that day: the period is 23 hours long.
        ("2024-03-31", 17, "Europe/Berlin", "2024-03-30T17:00:00+01:00", "2024-03-31T17:00:00+02:00"),
        # The cut-off hour does not exist that day: it falls at the instant of the jump.
        ("2024-03-31", 2, "Europe/Berlin", "2024-03-30T02:00:00+01:00", "2024-03-31T03:00:00+02:00"),
    ],
)  # fmt: skip
def test_period_of_day__valid(day: str, cutoff_hour: int, zone: str, start: str, end: str) -> None:
    period = period_of_day(date.fromisoformat(day), cutoff_hour, ZoneInfo(zone))
    assert period.start.isoformat() == start
    assert period.end.isoformat() == end


@pytest.mark.parametrize(
    ("now", "day"),
    [
        (datetime(2024, 3, 5, 17, 0, tzinfo=SHANGHAI), DAY),  # the cut-off closes DAY
        (datetime(2024, 3, 5, 16, 59, 59, tzinfo=SHANGHAI), DAY - timedelta(days=1)),
        (datetime(2024, 3, 6, 9, 0, tzinfo=SHANGHAI), DAY),
        (datetime(2024, 3, 5, 9, 30, tzinfo=UTC), DAY),  # 17:30 in Shanghai
    ],
)
def test_last_closed_day__valid(now: datetime, day: date) -> None:
    assert last_closed_day(SITE, now) == day


# --- counts by the hour-precise cut-off ------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "counted"),
    [
        (PERIOD.end - timedelta(seconds=1), True),  # 16:59:59 on the day
        (PERIOD.end, False),  # 17:00:00 belongs to the next day
        (PERIOD.start, True),  # 17:00:00 the day before opens the period
        (PERIOD.start - timedelta(seconds=1), False),
    ],
    ids=["second-before-cutoff", "at-cutoff", "period-start", "second-before-start"],
)
def test_counts__by_the_cutoff_to_the_second(
    store: SqliteStore, gates: Gates, at: datetime, counted: bool
) -> None:
    store.write([gates.passage("g01", node_time=at)])
    computed = line(report(store), "g01").computed
    assert computed.person_checks == int(counted)
    assert report(store).computed_totals.person_checks == int(counted)


# --- statuses ----------------------------------------------------------------------------------


def test_statuses__reported_zero_missing_and_unexpected(store: SqliteStore, gates: Gates) -> None:
    inside = PERIOD.end - timedelta(hours=1)
    store.write(
        [
            gates.passage("g01", node_time=inside),
            gates.daily_report("g01", report_of(CheckpointCounts(person_checks=1, temperature_readings=1, allowed=1, green=1))),
            gates.daily_report("g02", report_of(CheckpointCounts())),
            gates.daily_report("g09", report_of(CheckpointCounts())),
        ]
    )  # fmt: skip
    made = report(store)
    assert [(g.node, g.status, g.expected) for g in made.gates] == [
        ("g01", "reported", True),
        ("g02", "zero-report", True),
        ("g03", "missing", True),  # sent nothing: listed, not left out
        ("g09", "zero-report", False),  # reports without being in the inventory
    ]
    assert (made.expected_gates, made.missing, made.zero_reports, made.mismatches) == (3, 1, 2, 0)
    missing = line(made, "g03")
    assert (missing.reported, missing.received_at, missing.mismatch) == (None, None, False)
    assert line(made, "g01").received_at is not None
    assert made.reported_totals.person_checks == 1
    assert made.closed


def test_statuses__a_report_for_another_day_does_not_count(
    store: SqliteStore, gates: Gates
) -> None:
    day_before = ReportPeriod(PERIOD.start - timedelta(days=1), PERIOD.start)
    store.write([gates.daily_report("g01", report_of(CheckpointCounts(), day_before))])
    assert line(report(store), "g01").status == "missing"


def test_statuses__before_the_cutoff_the_day_is_not_closed(store: SqliteStore) -> None:
    made = report(store, now=PERIOD.end - timedelta(minutes=1))
    assert not made.closed
    assert made.missing == 3


@pytest.mark.parametrize(
    ("reported", "mismatch"),
    [
        (CheckpointCounts(person_checks=2, allowed=2, green=2, temperature_readings=2), False),
        (CheckpointCounts(person_checks=3, allowed=3, green=3, temperature_readings=3), True),
        (CheckpointCounts(), True),  # a zero-report from a gate the gateway saw working
    ],
    ids=["same", "one-more-at-the-gate", "zero-but-events-stored"],
)
def test_mismatch__flagged_when_the_counts_differ(
    store: SqliteStore, gates: Gates, reported: CheckpointCounts, mismatch: bool
) -> None:
    inside = PERIOD.end - timedelta(hours=2)
    store.write(
        [
            gates.passage("g01", node_time=inside),
            gates.passage("g01", node_time=inside + timedelta(minutes=1)),
            gates.daily_report("g01", report_of(reported)),
        ]
    )
    made = report(store)
    assert line(made, "g01").mismatch is mismatch
    assert made.mismatches == int(mismatch)
    assert line(made, "g01").computed.person_checks == 2


# --- renderers ---------------------------------------------------------------------------------


@pytest.fixture
def made(store: SqliteStore, gates: Gates) -> SiteDailyReport:
    inside = PERIOD.end - timedelta(hours=1)
    store.write(
        [
            gates.passage("g01", node_time=inside),
            gates.passage("g01", subject="vehicle", occupants=3, node_time=inside),
            gates.daily_report("g01", report_of(CheckpointCounts(person_checks=1))),
            gates.daily_report("g02", report_of(CheckpointCounts())),
        ]
    )
    return report(store)


def test_csv__bom_header_a_row_per_gate_and_a_total(made: SiteDailyReport) -> None:
    text = report_csv(made)
    assert text.startswith(BOM)
    assert text.encode("utf-8").startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix(BOM))))
    assert [row["gate"] for row in rows] == ["g01", "g02", "g03", "TOTAL"]
    assert [row["status"] for row in rows[:3]] == ["reported", "zero-report", "missing"]
    g01, _, g03, total = rows
    assert (g01["person_checks"], g01["gateway_person_checks"]) == ("1", "1")
    assert (g01["vehicle_checks"], g01["gateway_vehicle_checks"]) == ("0", "1")
    assert g01["mismatch"] == "True"
    assert g03["person_checks"] == "" and g03["gateway_person_checks"] == "0"
    assert (total["gateway_vehicle_checks"], total["gateway_temperature_readings"]) == ("1", "4")
    assert total["day"] == "2024-03-05"
    assert total["period_end"] == "2024-03-05T17:00:00+08:00"
    assert list(rows[0]) == [
        "site", "day", "period_start", "period_end", "gate", "expected", "status",
        "mismatch", "received_at", *COUNT_FIELDS, *(f"gateway_{n}" for n in COUNT_FIELDS),
    ]  # fmt: skip


def test_html__escaped_labels_in_both_languages_and_the_missing_gate_marked(
    made: SiteDailyReport,
) -> None:
    hostile = made.model_copy(
        update={"site": "north<script>", "gates": [*made.gates, line(made, "g03").model_copy(
            update={"node": '<img src=x onerror="alert(1)">'}
        )]},
    )  # fmt: skip
    page = report_html(hostile)
    assert "<script>" not in page and "<img" not in page
    assert "north&lt;script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page
    missing = page[page.index('<tr class="missing" data-gate="g03">') :]
    missing = missing[: missing.index("</tr>")]
    assert "未报告" in missing and "MISSING" in missing
    for zh, en in [
        ("人次", "Person checks"),
        ("车次", "Vehicle checks"),
        ("零报告", "Zero report"),
    ]:
        assert zh in page and en in page
    assert "@media print" in page and "http" not in page


# --- the route ---------------------------------------------------------------------------------


@pytest.fixture
def api(store: SqliteStore) -> TestClient:
    config = GatewayConfig(sites=(SITE,), store=StoreSection(path=store.path))
    live = LiveFeed()
    context = GatewayContext(
        config=config, store=store, alarms=AlarmBook(store, lambda _: None, live), live=live,
        clock=lambda: AFTER_CUTOFF.astimezone(UTC),
    )  # fmt: skip
    store.add_token(hash_token(TOKEN), "report-desk", "command", datetime.now(UTC))
    store.add_token(hash_token("gpt_depot"), "depot-desk", "depot", datetime.now(UTC))
    return TestClient(create_app(context), headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.mark.usefixtures("made")
def test_route__json_for_the_last_closed_day_by_default(api: TestClient) -> None:
    response = api.get("/api/reports/daily", params={"site": "north"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["day"], body["missing"], body["period_end"]) == (
        "2024-03-05", 1, "2024-03-05T17:00:00+08:00",
    )  # fmt: skip
    assert [gate["status"] for gate in body["gates"]] == ["reported", "zero-report", "missing"]


@pytest.mark.usefixtures("made")
def test_route__csv_download_and_printable_html(api: TestClient) -> None:
    response = api.get(
        "/api/reports/daily", params={"site": "north", "day": "2024-03-05", "format": "csv"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        'attachment; filename="gatepost-north-2024-03-05.csv"'
    )
    assert response.content.startswith(b"\xef\xbb\xbf")
    page = api.get("/api/reports/daily", params={"site": "north", "format": "html"})
    assert page.headers["content-type"].startswith("text/html")
    assert 'data-gate="g03"' in page.text


@pytest.mark.parametrize(
    ("params", "headers", "status", "reason"),
    [
        ({"site": "south"}, {}, 404, "unknown-site"),
        ({"site": "north", "day": "2024-02-30"}, {}, 422, "invalid-input"),
        ({"site": "north", "day": "0001-01-01"}, {}, 422, "invalid-input"),
        ({"site": "north", "format": "pdf"}, {}, 422, "invalid-input"),
        ({}, {}, 422, "invalid-input"),
        ({"site": "north"}, {"Authorization": "Bearer gpt_depot"}, 403, "role-forbidden"),
        ({"site": "north"}, {"Authorization": "Bearer gpt_nobody"}, 401, "token-invalid"),
    ],
    ids=["unknown-site", "no-such-date", "year-1", "format", "no-site", "depot-role", "bad-token"],
)
def test_route__invalid(
    api: TestClient, params: dict[str, str], headers: dict[str, str], status: int, reason: str
) -> None:
    response = api.get("/api/reports/daily", params=params, headers=headers)
    assert response.status_code == status
    assert response.json()["reason"] == reason
