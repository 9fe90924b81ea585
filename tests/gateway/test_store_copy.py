"""`copy_store` and `gatepost gateway store-copy`: a district's SQLite store moved into
PostgreSQL keeps its whole history, read back through the store's own API as the
dashboard and the auditors read it; a target with data is refused, a copy that fails
half-way leaves nothing behind, and new rows get fresh ids after the copy."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from edge.cli import main
from edge.contract.events import DepotReading, DepotReadingBatch
from edge.contract.topics import AlertKind
from gateway.stock.applications import ApplicationDraft
from gateway.stock.ledger import Movement
from gateway.stock.prices import PriceDraft
from gateway.stock.supply_level import SupplyState
from gateway.store import SqliteStore, SqlStore
from gateway.store.copy import CopyError, copy_store
from gateway.store.postgres import PostgresStore
from gateway.store.records import AlarmDraft, AuditEntry, EventQuery
from tests.conftest import PostgresDatabases
from tests.gateway.factory import Gates

NOW = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)
TODAY = date(2026, 12, 6)


@dataclass
class Filled:
    """A SQLite store with one of every kind of thing, and what a test needs to know of it."""

    path: Path
    last_entry_id: int


def _fill(store: SqlStore) -> int:
    """Everything a district's gateway keeps, written through the store's API; returns
    the last stock entry's id."""
    gates = Gates("north", now=NOW)
    held = gates.passage("g01", outcome="hold", temperature_c=38.4)
    hold = gates.hold(held)
    events = [
        gates.passage("g01"), gates.passage("g02", direction="out"), held, hold,
        gates.resolved(hold), gates.registration("g02"), gates.shift("g01"),
        gates.disinfection("g02"),
    ]  # fmt: skip
    readings = tuple(
        DepotReading(
            sensor="cold-store-1",
            bus_address=1,
            at=NOW + timedelta(minutes=m),
            status="ok",
            temperature_c=4.0 + m / 10,
            humidity_pct=50.0,
        )
        for m in range(30)
    )
    events.append(gates.inbound("d01", DepotReadingBatch, readings=readings))
    store.write(events)
    raised = store.raise_alarms(
        [(AlarmDraft(AlertKind.FEVER, "north", "g01", hold.event.event_id, "critical",
                     "fever hold open at g01"), "alarm-fever-1"),
         (AlarmDraft(AlertKind.RED_CODE, "north", "g02", "r1", "warning", "red code"),
          "alarm-red-1")],
        NOW,
    )  # fmt: skip
    store.acknowledge_alarm(raised[0].alarm_id, "duty-officer", NOW + timedelta(minutes=2))
    store.add_token("ab" * 32, "ops", "command", NOW, ())
    store.add_token("cd" * 32, "keeper-d01", "depot", NOW, ("north/d01",))
    store.revoke_token("ops", NOW + timedelta(hours=1))
    store.audit(AuditEntry(at=NOW, who="ops", role="command", action="alarm-acknowledge",
                           resource="alarm-fever-1", detail="on the phone"))  # fmt: skip
    receipt = Movement("receipt", "north", "d01", "k-1", item="n95-mask", unit="piece",
                       steps=500, lot="L1", expires_on=date(2027, 6, 30), source="purchase")  # fmt: skip
    store.stock_write(receipt, "keeper", NOW, TODAY)
    issue = Movement("issue", "north", "d01", "k-2", item="n95-mask", unit="piece", steps=-40,
                     lot="L1", applicant_unit="clinic-3", approver="Li", application_id="A-1")  # fmt: skip
    issued, _ = store.stock_write(issue, "keeper", NOW, TODAY)
    reversal = Movement("reversal", "north", "d01", "k-3", reverses=issued.id, reason="typo")
    last, _ = store.stock_write(reversal, "keeper", NOW, TODAY)
    application, _ = store.application_file(
        ApplicationDraft(
            "north", "a-1", "ward 3", "hospital", "urgent", True, "n95-mask", Decimal(100), "piece"
        ),
        "clerk",
        NOW,
    )
    store.application_reject("north", application.id, "none to spare", "chief", NOW)
    store.price_write(
        PriceDraft("north", "n95-mask", "piece", 250, TODAY, "east", "p-1"), "clerk", NOW
    )
    store.save_supply_state(SupplyState("north", "IV", "cover below 7 days", NOW, NOW))
    store.record_tight_days("north", TODAY, {"medical"})
    # Retention's marks: a few events' personal fields removed, the oldest one purged.
    store.scrub_personal(NOW + timedelta(days=30), 4)
    store.purge_checkpoint_rows(NOW + timedelta(days=30), 1)
    return last.id


@pytest.fixture
def filled(tmp_path: Path) -> Filled:
    store = SqliteStore(tmp_path / "gateway.db")
    try:
        last = _fill(store)
    finally:
        store.close()
    return Filled(tmp_path / "gateway.db", last)


def _reads(store: SqlStore) -> dict[str, Any]:
    """What the dashboard, the API and the auditors read: equal on both stores after a copy."""
    query = EventQuery(site="north")
    return {
        "nodes": store.nodes(),
        "passages": store.passages(query),
        "holds": store.holds(query),
        "registrations": store.registrations(query),
        "disinfections": store.disinfections(query),
        "alarms": store.alarms(("raised", "acknowledged", "cleared")),
        "tokens": store.tokens(),
        "audit": store.audit_log(),
        "readings": store.depot_readings("north", "d01", NOW, NOW + timedelta(hours=1)),
        "on_hand": store.stock_on_hand("north", "d01"),
        "entries": store.stock_entries("north", "d01", None, 50),
        "applications": store.applications("north", state=None, item=None, depots=None, before=None, limit=50),
        "prices": store.prices("north", TODAY, TODAY),
        "supply": store.supply_state("north"),
        "tight": store.tight_history("north", TODAY),
        "chain": store.audit_chain(),
    }  # fmt: skip


def _table_rows(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        # Month partitions are left out: their rows are counted in their parent's.
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE' AND table_name != '_migrations' "
            "AND NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = table_name::regclass)"
        )]  # fmt: skip
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # type: ignore[index]


def test_a_copy_reads_back_the_same_through_the_store(
    filled: Filled, postgres_databases: PostgresDatabases
) -> None:
    url = postgres_databases.new()
    report = copy_store(filled.path, url)
    source, target = SqliteStore(filled.path), PostgresStore(url)
    try:
        before, after = _reads(source), _reads(target)
        for name in before:
            assert after[name] == before[name], name
        assert before["passages"] and before["readings"] and before["on_hand"]  # not vacuous
        assert len(before["alarms"]) == 2 and len(before["tokens"]) == 2
        assert all(audit.ok for audit in after["chain"]) and report.lives_audited == 3
        assert any(audit.scrubbed for audit in after["chain"])  # retention's work copied too
    finally:
        source.close()
        target.close()
    copied = {table.name: table.rows for table in report.tables}
    assert copied == {name: rows for name, rows in _table_rows(url).items()}
    assert copied["events"] == 8 and copied["stock_entries"] == 3 and copied["counters"] == 2
    assert copied["retention_marks"] and copied["retention_purged"] == 1
    # Referenced tables come first: the applications before their decisions.
    order = [table.name for table in report.tables]
    assert order.index("stock_applications") < order.index("stock_application_decisions")


def test_new_rows_get_fresh_ids_after_the_copy(
    filled: Filled, postgres_databases: PostgresDatabases
) -> None:
    url = postgres_databases.new()
    copy_store(filled.path, url)
    target = PostgresStore(url)
    try:
        receipt = Movement("receipt", "north", "d01", "k-after", item="n95-mask", unit="piece",
                           steps=10, lot="L1", expires_on=date(2027, 6, 30), source="purchase")  # fmt: skip
        entry, _ = target.stock_write(receipt, "keeper", NOW, TODAY)
        assert entry.id == filled.last_entry_id + 1
        target.audit(AuditEntry(at=NOW, who="ops", role="admin", action="x", resource="y"))
        assert [a.action for a in target.audit_log()][:2] == ["x", "alarm-acknowledge"]
    finally:
        target.close()


def test_an_unmigrated_database_is_migrated_then_filled(
    filled: Filled, postgres_databases: PostgresDatabases
) -> None:
    url = postgres_databases.cluster.create_database("copy_unmigrated")
    report = copy_store(filled.path, url)
    assert report.rows == sum(_table_rows(url).values()) > 0


def test_a_target_with_data_is_refused_and_left_as_it_was(
    filled: Filled, postgres_databases: PostgresDatabases
) -> None:
    url = postgres_databases.new()
    target = PostgresStore(url)
    try:
        target.add_token("ef" * 32, "already-here", "admin", NOW, ())
    finally:
        target.close()
    before = _table_rows(url)
    with pytest.raises(CopyError, match="table tokens holds 1 row"):
        copy_store(filled.path, url)
    assert _table_rows(url) == before


def test_a_copy_that_fails_half_way_leaves_the_target_empty(
    filled: Filled, postgres_databases: PostgresDatabases
) -> None:
    url = postgres_databases.new()
    empty = _table_rows(url)
    # A rule only the target has: the token named keeper-d01 is refused, after events,
    # passages, alarms and more were copied in the same transaction.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE tokens ADD CONSTRAINT no_keepers CHECK (name <> 'keeper-d01')")
    with pytest.raises(CopyError, match=r"table tokens: the target refused a row.*no_keepers"):
        copy_store(filled.path, url)
    assert _table_rows(url) == empty  # the seeded counters still there, nothing else


def test_a_file_a_writer_holds_is_refused(
    filled: Filled, postgres_databases: PostgresDatabases
) -> None:
    url = postgres_databases.new()
    empty = _table_rows(url)
    writer = sqlite3.connect(filled.path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # a gateway mid-batch
        with pytest.raises(CopyError, match="a gateway is still writing to it; stop it first"):
            copy_store(filled.path, url)
    finally:
        writer.close()
    assert _table_rows(url) == empty


def test_a_missing_sqlite_file_is_refused_not_created(
    tmp_path: Path, postgres_databases: PostgresDatabases
) -> None:
    with pytest.raises(CopyError, match="no gateway store there"):
        copy_store(tmp_path / "nowhere.db", postgres_databases.new())
    assert not (tmp_path / "nowhere.db").exists()


def _config_of(filled: Filled) -> Path:
    """A gateway config whose SQLite store is the filled one."""
    config = filled.path.parent / "gateway.yaml"
    config.write_text(yaml.safe_dump({
        "sites": [{"name": "north", "gates": ["g01", "g02"], "depots": ["d01"]}],
        "broker": {"url": "mqtts://127.0.0.1:8883"}, "store": {"path": str(filled.path)},
    }), encoding="utf-8")  # fmt: skip
    return config


def test_the_command_prints_the_report_and_refuses_a_second_copy(
    filled: Filled, postgres_databases: PostgresDatabases, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config_of(filled)
    url = postgres_databases.new()
    argv = ["gateway", "store-copy", "--config", str(config), "--to", url]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "events" in out and "copied" in out and "same verdicts for 3 outbox lives" in out
    assert main(argv) == 1
    assert "the target database is not empty" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://gateway-gw1:s3cret@db1.north.lan/gatepost", "reached over the network"),
        ("postgresql://gateway-gw1:s3cret@db1.north.lan/gatepost?sslmode=require",
         "reached over the network"),
        ("mysql://root:s3cret@db1.north.lan/gatepost", "give a PostgreSQL URL"),
    ],
)  # fmt: skip
def test_the_command_copies_to_another_machine_only_over_verified_tls(
    filled: Filled, capsys: pytest.CaptureFixture[str], url: str, says: str
) -> None:
    config = _config_of(filled)
    assert main(["gateway", "store-copy", "--config", str(config), "--to", url]) == 1
    err = capsys.readouterr().err
    assert says in err
    assert "s3cret" not in err  # the password is never printed
