"""Daily reports: the hour-precise period, missing and zero-reports, mismatches, CSV and HTML."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from edge.contract.events import CheckpointCounts
from edge.gate.daily import ReportPeriod, daily_report_fields
from edge.web.security import page_policy
from gateway.access import hash_token
from gateway.alarms import AlarmBook
from gateway.api.app import create_app
from gateway.api.context import GatewayContext
from gateway.config import GatewayConfig, SiteSection
from gateway.live import LiveFeed
from gateway.reports import (
    BOM,
    COUNT_FIELDS,
    GateDailyReport,
    SiteDailyReport,
    day_of_report_date,
    last_closed_day,
    open_day,
    period_of_day,
    period_words,
    report_csv,
    report_date_of,
    site_daily_report,
)
from gateway.store import SqlStore
from gateway.store.settings import StoreSection
from gateway.web.printable import report_html
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


def report(store: SqlStore, now: datetime = AFTER_CUTOFF) -> SiteDailyReport:
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


@pytest.mark.parametrize(
    ("now", "day"),
    [
        (datetime(2024, 3, 5, 16, 59, 59, tzinfo=SHANGHAI), DAY),  # DAY is still open
        (datetime(2024, 3, 5, 17, 0, tzinfo=SHANGHAI), DAY + timedelta(days=1)),
    ],
)
def test_open_day__valid(now: datetime, day: date) -> None:
    assert open_day(SITE, now) == day


@pytest.mark.parametrize(
    ("day", "cutoff_hour", "report_date"),
    [
        ("2026-12-06", 0, "2026-12-05"),  # closes at midnight: 5 Dec, 0时至24时
        ("2026-12-05", 17, "2026-12-05"),  # closes at 17:00 on 5 Dec
        ("2027-01-01", 0, "2026-12-31"),
    ],
)
def test_report_date__named_by_the_last_day_it_covers(
    day: str, cutoff_hour: int, report_date: str
) -> None:
    assert report_date_of(date.fromisoformat(day), cutoff_hour).isoformat() == report_date
    assert day_of_report_date(date.fromisoformat(report_date), cutoff_hour).isoformat() == day


@pytest.mark.parametrize(
    ("day", "cutoff_hour", "zone", "zh", "en"),
    [
        ("2026-12-06", 0, "Asia/Shanghai",
         "统计时段：2026年12月5日0时至24时（北京时间）",
         "Period: 2026-12-05 00:00 to 24:00 (Beijing time)"),
        ("2026-12-05", 17, "Asia/Shanghai",
         "统计时段：2026年12月4日17时至12月5日17时（北京时间）",
         "Period: 2026-12-04 17:00 to 12-05 17:00 (Beijing time)"),
        ("2027-01-01", 8, "Asia/Urumqi",
         "统计时段：2026年12月31日8时至2027年1月1日8时（乌鲁木齐时间）",
         "Period: 2026-12-31 08:00 to 2027-01-01 08:00 (Ürümqi time)"),
        # A zone without a Chinese name: its offset.
        ("2026-12-06", 0, "Europe/Berlin",
         "统计时段：2026年12月5日0时至24时（当地时间，UTC+01:00）",
         "Period: 2026-12-05 00:00 to 24:00 (local time, UTC+01:00)"),
    ],
)  # fmt: skip
def test_period_words__say_the_period_without_sums(
    day: str, cutoff_hour: int, zone: str, zh: str, en: str
) -> None:
    period = period_of_day(date.fromisoformat(day), cutoff_hour, ZoneInfo(zone))
    assert period_words(period, zone, "zh") == zh
    assert period_words(period, zone, "en") == en


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
    store: SqlStore, gates: Gates, at: datetime, counted: bool
) -> None:
    store.write([gates.passage("g01", node_time=at)])
    computed = line(report(store), "g01").computed
    assert computed.person_checks == int(counted)
    assert report(store).computed_totals.person_checks == int(counted)


# --- statuses ----------------------------------------------------------------------------------


def test_statuses__reported_zero_missing_and_unexpected(store: SqlStore, gates: Gates) -> None:
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


def test_statuses__a_report_for_another_day_does_not_count(store: SqlStore, gates: Gates) -> None:
    day_before = ReportPeriod(PERIOD.start - timedelta(days=1), PERIOD.start)
    store.write([gates.daily_report("g01", report_of(CheckpointCounts(), day_before))])
    assert line(report(store), "g01").status == "missing"


def test_statuses__before_the_cutoff_a_gate_is_open_not_missing(
    store: SqlStore, gates: Gates
) -> None:
    store.write([gates.passage("g01", node_time=PERIOD.end - timedelta(hours=2))])
    made = report(store, now=PERIOD.end - timedelta(minutes=1))
    assert not made.closed
    assert [g.status for g in made.gates] == ["open", "open", "open"]
    assert made.missing == 0
    assert line(made, "g01").computed.person_checks == 1  # the day so far
    assert made.wording.title == ("卡口日报（3月5日）", "Gate daily report (2024-03-05)")


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
    store: SqlStore, gates: Gates, reported: CheckpointCounts, mismatch: bool
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
def made(store: SqlStore, gates: Gates) -> SiteDailyReport:
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
    assert {(row["report_date"], row["day"]) for row in rows} == {("2024-03-05", "2024-03-05")}
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
        "site", "report_date", "day", "period_start", "period_end", "gate", "expected",
        "status", "mismatch", "received_at", *COUNT_FIELDS,
        *(f"gateway_{n}" for n in COUNT_FIELDS),
    ]  # fmt: skip


def test_html__escaped_and_the_missing_gate_marked(made: SiteDailyReport) -> None:
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
    assert "✕ 未报告" in missing
    assert "@media print" in page and "http" not in page


def test_html__chinese_only_as_sent_up_the_chain(made: SiteDailyReport) -> None:
    page = report_html(made)
    for words in [
        "<h1>卡口日报（3月5日）</h1>",
        "统计时段：2024年3月4日17时至3月5日17时（北京时间）",
        "站点：north",
        "人次", "车次", "测温人次", "零报告", "已报告",
        "与系统统计不符",  # g01 reported one person, the gateway counted a car too
        "系统统计 1",
        "生成时间：2024年3月5日 17:30:00（北京时间）",
    ]:  # fmt: skip
        assert words in page, words
    body = re.sub(r"<[^>]+>", " ", page[page.index("<body>") :])  # the text, not the markup
    for english in ["Daily report", "Period", "MISSING", "Person checks", "Generated", "differ"]:
        assert english not in body, english
    assert "测温人数" not in page and "截止时段" not in page and "网关" not in page


def test_html__a_day_not_closed_says_so_and_shows_the_count_so_far(
    store: SqlStore, gates: Gates
) -> None:
    store.write([gates.passage("g01", node_time=PERIOD.end - timedelta(hours=2))])
    page = report_html(report(store, now=PERIOD.end - timedelta(hours=1)))
    assert "未截止：统计至 16:00" in page
    assert "未报告" not in page.replace("未报告 0", "")  # nobody is missing yet
    g01 = page[page.index('<tr class="open" data-gate="g01">') :]
    assert "<td>未截止</td><td>—</td><td>1</td>" in g01[: g01.index("</tr>")]
    assert "<small>" not in page  # no report for the gateway's count to differ from


# --- the route ---------------------------------------------------------------------------------


@pytest.fixture
def api(store: SqlStore, store_section: StoreSection) -> TestClient:
    config = GatewayConfig(sites=(SITE,), store=store_section)
    live = LiveFeed()
    context = GatewayContext(
        config=config, store=store, alarms=AlarmBook(store, lambda _: None, live), live=live,
        clock=lambda: AFTER_CUTOFF.astimezone(UTC),
    )  # fmt: skip
    store.add_token(hash_token(TOKEN), "report-desk", "command", datetime.now(UTC))
    store.add_token(hash_token("gpt_depot"), "depot-desk", "depot", datetime.now(UTC))
    return TestClient(create_app(context), headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.mark.usefixtures("made")
def test_route__json_for_the_open_day_by_default(api: TestClient) -> None:
    response = api.get("/api/reports/daily", params={"site": "north"})
    assert response.status_code == 200, response.text
    body = response.json()
    # 17:30 on 5 March: the period closing at 17:00 on 6 March is open.
    assert (body["report_date"], body["closed"], body["missing"]) == ("2024-03-06", False, 0)
    assert [gate["status"] for gate in body["gates"]] == ["open", "open", "open"]
    assert body["wording"]["title"] == ["卡口日报（3月6日）", "Gate daily report (2024-03-06)"]


@pytest.mark.usefixtures("made")
@pytest.mark.parametrize(
    "params",
    [{"report_date": "2024-03-05"}, {"day": "2024-03-05"}],
    ids=["by-report-date", "by-closing-day"],
)
def test_route__json_for_a_closed_day(api: TestClient, params: dict[str, str]) -> None:
    response = api.get("/api/reports/daily", params={"site": "north", **params})
    body = response.json()
    assert (body["day"], body["missing"], body["period_end"]) == (
        "2024-03-05", 1, "2024-03-05T17:00:00+08:00",
    )  # fmt: skip
    assert [gate["status"] for gate in body["gates"]] == ["reported", "zero-report", "missing"]
    assert body["wording"]["period"][0] == "统计时段：2024年3月4日17时至3月5日17时（北京时间）"


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
    page = api.get(
        "/api/reports/daily",
        params={"site": "north", "report_date": "2024-03-05", "format": "html"},
    )
    assert page.headers["content-type"].startswith("text/html")
    assert '<tr class="missing" data-gate="g03">' in page.text
    # The page's own style block is allowed, and no script: the policy is the template's,
    # so what a value might smuggle into the page is never hashed into it.
    policy = page.headers["content-security-policy"]
    assert policy == page_policy(page.text)
    assert "script-src 'none'" in policy
    injected = page.text.replace("</body>", "<script>alert(1)</script></body>")
    assert page_policy(injected) != policy


@pytest.mark.parametrize(
    ("params", "headers", "status", "reason"),
    [
        ({"site": "south"}, {}, 404, "unknown-site"),
        ({"site": "north", "day": "2024-02-30"}, {}, 422, "invalid-input"),
        ({"site": "north", "day": "0001-01-01"}, {}, 422, "invalid-input"),
        ({"site": "north", "format": "pdf"}, {}, 422, "invalid-input"),
        ({}, {}, 422, "invalid-input"),
        (
            {"site": "north", "day": "2024-03-05", "report_date": "2024-03-05"},
            {},
            422,
            "invalid-input",
        ),
        ({"site": "north"}, {"Authorization": "Bearer gpt_depot"}, 403, "role-forbidden"),
        ({"site": "north"}, {"Authorization": "Bearer gpt_nobody"}, 401, "token-invalid"),
    ],
    ids=[
        "unknown-site",
        "no-such-date",
        "year-1",
        "format",
        "no-site",
        "day-and-report-date",
        "depot-role",
        "bad-token",
    ],
)
def test_route__invalid(
    api: TestClient, params: dict[str, str], headers: dict[str, str], status: int, reason: str
) -> None:
    response = api.get("/api/reports/daily", params=params, headers=headers)
    assert response.status_code == status
    assert response.json()["reason"] == reason
