"""The event chain at the gateway: ingest checks each link as it stores and alarms on a break
or a fork; `gatepost gateway audit-chain` finds what was removed, changed, reordered or
inserted in the store afterwards."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.cli import main
from edge.contract import catalogue
from edge.contract.catalogue import encode
from edge.contract.events import CheckpointCounts, DailyReport, Passage
from edge.contract.topics import AlertKind, Role, Site
from edge.gate.daily import daily_report_fields, report_period
from edge.outbox import Outbox
from gateway.config import GatewayConfig, SiteSection
from gateway.reports import site_daily_report
from gateway.store import SqliteStore, SqlStore
from gateway.store.migrations import MIGRATIONS, apply_migrations
from gateway.store.records import InboundEvent
from gateway.store.settings import StoreSection
from gateway.web.printable import report_html
from tests.gateway.factory import look_inside
from tests.gateway.test_rules import Rig

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
CHAIN_KINDS = (AlertKind.CHAIN_BREAK, AlertKind.CHAIN_FORK, AlertKind.CHAIN_START)


class Gate:
    """A gate with its real outbox: what the gateway receives is what the outbox publishes."""

    def __init__(self, folder: Path, node: str = "g01") -> None:
        self.folder = folder / node
        self.node = node
        self.outbox = Outbox(self.folder / "outbox.db", Site("north").node(Role.GATE, node))

    def passages(self, count: int) -> list[InboundEvent]:
        """`count` new passages, as received (one outbox transaction each)."""
        made = []
        for n in range(count):
            with self.outbox.transaction() as batch:
                event = batch.add(
                    Passage(**batch.ids(T0), direction="in", outcome="allow", colour="green",
                            credential="health-code", temperature_c=36.0 + n / 10)
                )  # fmt: skip
            (row,) = self.outbox.after(event.seq - 1, 1)
            made.append(received(self.node, row.topic, row.payload))
        return made

    def lose_state(self) -> None:
        """The SD card is replaced: a new outbox, counting from seq 1 again."""
        self.outbox.close()
        shutil.rmtree(self.folder)
        self.outbox = Outbox(self.folder / "outbox.db", self.outbox.node)

    def daily_report(self, site: SiteSection) -> InboundEvent:
        """The gate's report of the period that closed at the next cut-off after T0."""
        period = report_period(T0, site.cutoff_hour, site.zone)
        fields = daily_report_fields(period, CheckpointCounts(person_checks=1, allowed=1))
        with self.outbox.transaction(reserved=True) as batch:
            event = batch.add(DailyReport(**batch.ids(period.end), **fields))
        (row,) = self.outbox.after(event.seq - 1, 1)
        return received(self.node, row.topic, row.payload)


def received(node: str, topic: str, payload: bytes) -> InboundEvent:
    message = catalogue.decode(topic, payload)
    assert isinstance(message.payload, Passage | DailyReport)
    return InboundEvent("north", node, Role.GATE, message.payload, payload, T0, topic)


def forged(real: InboundEvent, **changes: Any) -> InboundEvent:
    """Another event at the same place in the chain (same seq and prev_hash), changed."""
    event = real.event.model_copy(update=changes)
    return InboundEvent("north", real.node, Role.GATE, event, encode(event), T0, real.topic)


@pytest.fixture
def config(store_section: StoreSection) -> GatewayConfig:
    return GatewayConfig(
        sites=(SiteSection(name="north", gates=("g01", "g02"), cutoff_hour=17),),
        store=store_section,
    )


@pytest.fixture
def rig(config: GatewayConfig) -> Iterator[Rig]:
    made = Rig(config, T0)
    yield made
    made.store.close()


@pytest.fixture
def gate(tmp_path: Path) -> Gate:
    return Gate(tmp_path / "nodes")


def chain_alerts(rig: Rig) -> list[tuple[str, str, str]]:
    return [(a.kind, a.severity, a.message) for a in rig.alerts if a.kind in CHAIN_KINDS]


def audit(config: GatewayConfig, capsys: pytest.CaptureFixture[str], *more: str) -> tuple[int, str]:
    """`gatepost gateway audit-chain` on the rig's store: exit status and what it printed."""
    data = {
        "sites": [{"name": "north", "gates": ["g01", "g02"]}],
        "broker": {"url": "mqtts://127.0.0.1:8883"},
        "store": config.store.model_dump(mode="json", include={"path", "url"}, exclude_none=True),
    }
    path = config.store.path.parent / "gateway.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    code = main(["gateway", "audit-chain", "--config", str(path), *more])
    return code, capsys.readouterr().out


# --- ingest --------------------------------------------------------------------------


def test_ingest__a_whole_chain_redelivered_and_out_of_order_raises_nothing(
    rig: Rig, gate: Gate, config: GatewayConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    events = gate.passages(8)
    rig.arrive(*events[:3])
    rig.arrive(*events[5:])  # 4 and 5 come late, after a gap
    rig.arrive(events[4], events[3])
    rig.arrive(*events)  # all of it again: a redelivery
    assert chain_alerts(rig) == []
    assert rig.store.event_seqs("north", "g01") == list(range(1, 9))
    code, out = audit(config, capsys)
    assert code == 0, out
    assert f"OK: 8 events, seqs 1-8 (chained from seq 1), head {gate.outbox.chain_head}" in out


def test_ingest__a_forged_event_breaks_the_chain_at_the_next_seq_and_forks_its_own(
    rig: Rig, gate: Gate
) -> None:
    events = gate.passages(6)
    fake = forged(events[3], temperature_c=36.4, colour="green")  # seq 4, the same link
    rig.arrive(*events[:3], fake)
    assert chain_alerts(rig) == []  # it names seq 3 rightly: nothing to see yet
    rig.arrive(events[4])  # the real seq 5 names the real seq 4
    rig.arrive(events[3])  # and the real seq 4 comes too
    assert chain_alerts(rig) == [
        (AlertKind.CHAIN_BREAK, "critical", "north/g01 event chain broken at seq 5: it does "
         "not link to the event stored before it; stored, marked"),
        (AlertKind.CHAIN_FORK, "critical", "north/g01 sent a second, different event for "
         "seq 4: kept beside the first, marked"),
    ]  # fmt: skip
    marks = dict(look_inside(rig.store, "SELECT event_id, chain FROM events"))
    assert marks[events[4].event.event_id] == "break"
    assert marks[events[3].event.event_id] == "fork"
    assert fake.event.event_id in marks  # nothing is lost: the forgery is evidence


def test_ingest__an_event_that_arrived_first_is_checked_against_a_late_one_before_it(
    rig: Rig, gate: Gate
) -> None:
    events = gate.passages(3)
    rig.arrive(events[0], events[2])
    rig.arrive(forged(events[1], temperature_c=39.0, outcome="allow"))
    (alert,) = chain_alerts(rig)
    assert alert[0] == AlertKind.CHAIN_BREAK
    assert "seq 3" in alert[2]


def test_ingest__the_same_event_id_with_other_bytes_is_a_fork_kept_as_a_dead_letter(
    rig: Rig, gate: Gate
) -> None:
    events = gate.passages(2)
    rig.arrive(*events)
    rig.arrive(forged(events[1], temperature_c=35.5))  # same event_id, other bytes
    (alert,) = chain_alerts(rig)
    assert alert[0] == AlertKind.CHAIN_FORK and "seq 2" in alert[2]
    (letter,) = rig.store.dead_letters()
    assert "chain fork" in letter.reason and events[1].event.event_id in letter.reason


def test_ingest__a_node_that_lost_its_state_starts_a_new_chain_that_is_reported(
    rig: Rig, gate: Gate, config: GatewayConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    rig.arrive(rig.birth(outbox_id=gate.outbox.outbox_id, confirmed_seq=0), *gate.passages(4))
    assert chain_alerts(rig) == []  # its first chain: nothing to report
    gate.lose_state()
    rig.arrive(rig.birth(session=2, outbox_id=gate.outbox.outbox_id, confirmed_seq=0))
    again = gate.passages(3)
    assert again[0].event.seq == 1 and again[0].event.prev_hash is None
    rig.arrive(*again)
    assert chain_alerts(rig) == [
        (AlertKind.CHAIN_START, "warning", "north/g01 started a new event chain at seq 1: "
         "it lost its state or was replaced"),
    ]  # fmt: skip
    code, out = audit(config, capsys)
    assert code == 0, out
    assert "north/g01 outbox life 0: OK: 4 events" in out
    head = gate.outbox.chain_head
    assert f"life 1: OK: 3 events, seqs 1-3 (chained from seq 1), head {head} at seq 3" in out


def test_report__the_daily_report_pins_the_chain_head_and_the_printed_page_shows_it(
    rig: Rig, gate: Gate, config: GatewayConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    site = config.sites[0]
    rig.arrive(*gate.passages(3))
    head = gate.outbox.chain_head
    report = gate.daily_report(site)
    assert (report.event.seq, report.event.prev_hash) == (4, head)
    rig.arrive(report)
    assert isinstance(report.event, DailyReport)
    made = site_daily_report(rig.store, site, report.event.day, report.event.node_time)
    g01 = next(line for line in made.gates if line.node == "g01")
    assert (g01.chain_seq, g01.chain_head) == (3, head)
    assert f"g01 事件链头（序号 3）：{head}" in report_html(made)
    # The head on paper is the one the audit finds at seq 3.
    rig.arrive(*gate.passages(1))
    look_inside(rig.store, "DELETE FROM events WHERE seq > 3")
    assert f"head {head} at seq 3" in audit(config, capsys, "--node", "north/g01")[1]


def test_migration__events_stored_before_the_chain_get_their_hash_and_new_ones_link_to_them(
    tmp_path: Path, gate: Gate
) -> None:
    # SQLite-only: a SQLite file from before migration 0008, migrated forward.
    path = tmp_path / "old.db"
    before = tuple(m for m in MIGRATIONS if m.name < "0008")
    apply_migrations(sqlite3.connect(path, isolation_level=None), before)
    first, second = gate.passages(2)
    with sqlite3.connect(path) as db:  # as a gateway from before the chain stored it
        db.execute(
            "INSERT INTO events (event_id, site, node, kind, epoch, seq, node_time, "
            "received_at, payload) VALUES (?, 'north', 'g01', 'passage', 0, 1, '', '', ?)",
            (first.event.event_id, first.raw.decode()),
        )
        db.execute(
            "INSERT INTO nodes (site, node, role, seq_max) VALUES ('north', 'g01', 'gate', 1)"
        )
    store = SqliteStore(path)  # migrated on open
    ((stored,),) = look_inside(store, "SELECT sha256 FROM events")
    assert stored == first.sha256 == second.event.prev_hash
    assert store.write([second]).chain == []  # it links to the event stored before
    store.close()


# --- audit-chain on a tampered store ---------------------------------------------------


class Tamperer:
    """Runs a tampering statement straight on the store's database, whichever engine."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def execute(self, sql: str) -> None:
        look_inside(self.store, sql)


def remove(db: Tamperer) -> None:
    for table in ("events", "passages"):
        db.execute(f"DELETE FROM {table} WHERE seq = 5")


def remove_two(db: Tamperer) -> None:
    for table in ("events", "passages"):
        db.execute(f"DELETE FROM {table} WHERE seq IN (4, 5)")


def remove_event_only(db: Tamperer) -> None:
    db.execute("DELETE FROM events WHERE seq = 5")  # the passage row, counted, stays


def add_report_row(db: Tamperer) -> None:
    # A passage the reports count, with no event in the log behind it.
    db.execute(
        "INSERT INTO passages SELECT '01KAAAAAAAAAAAAAAAAAAAAAAA', site, node, 9, node_time, "
        "direction, subject, outcome, colour, credential, reasons, temperature_c, fever, "
        "subject_ref, vehicle_plate, occupants FROM passages WHERE seq = 5"
    )


def remove_last(db: Tamperer) -> None:
    for table in ("events", "passages"):
        db.execute(f"DELETE FROM {table} WHERE seq = 8")


def change_payload(db: Tamperer) -> None:
    # Consistently: the event log and the row the reports read, 36.4 °C made 35.4.
    db.execute("UPDATE events SET payload = replace(payload, '36.4', '35.4') WHERE seq = 5")
    db.execute("UPDATE passages SET temperature_c = 35.4 WHERE seq = 5")


def change_row(db: Tamperer) -> None:
    db.execute("UPDATE passages SET outcome = 'deny' WHERE seq = 5")  # the log left as it was


def reorder(db: Tamperer) -> None:
    for table in ("events", "passages"):
        db.execute(f"UPDATE {table} SET seq = CASE seq WHEN 5 THEN 6 ELSE 5 END "
                   "WHERE seq IN (5, 6)")  # fmt: skip


def insert(db: Tamperer) -> None:
    # A copy of seq 5 under another id, linking where seq 5 does: a second seq 5.
    db.execute(
        "INSERT INTO events (event_id, site, node, kind, epoch, seq, node_time, received_at, "
        "payload, sha256, prev_hash) SELECT '01KAAAAAAAAAAAAAAAAAAAAAAA', site, node, kind, "
        "epoch, seq, node_time, received_at, replace(payload, event_id, "
        "'01KAAAAAAAAAAAAAAAAAAAAAAA'), NULL, prev_hash FROM events WHERE seq = 5"
    )


@pytest.mark.parametrize(
    ("tamper", "found"),
    [
        (remove, ["seq 5: missing: no event stored at this seq"]),
        (remove_last, ["seq 8: missing: seqs 8-8 were stored and are gone"]),
        (remove_two, ["seq 4: missing: seqs 4-5 are not stored"]),
        (remove_event_only, ["seq 5: missing: no event stored at this seq",
                             "seq 5: missing: 01", "has passages rows but no event in the log"]),
        (add_report_row, ["seq 9: missing: 01KAAAAAAAAAAAAAAAAAAAAAAA has passages rows but "
                          "no event in the log"]),
        (change_payload, ["seq 5: changed", "seq 6: broken: does not link to seq 5"]),
        (change_row, ["seq 5: changed: ", "its passage row differs from its payload"]),
        (reorder, ["seq 5: reordered", "seq 6: reordered"]),
        (insert, ["seq 5: inserted: 2 different events"]),
    ],
    ids=["removed", "removed-last", "removed-two", "removed-from-the-log-only",
         "report-row-added", "changed", "changed-report-row", "reordered", "inserted"],
)  # fmt: skip
def test_audit_chain__finds_each_tampering_by_seq(  # noqa: PLR0917 (fixtures and parameters)
    rig: Rig, gate: Gate, config: GatewayConfig, capsys: pytest.CaptureFixture[str],
    tamper: Callable[[Tamperer], None], found: list[str],
) -> None:  # fmt: skip
    rig.arrive(*gate.passages(8))
    assert audit(config, capsys)[0] == 0
    tamper(Tamperer(rig.store))
    code, out = audit(config, capsys)
    assert code == 1
    assert "north/g01 outbox life 0: " in out and "problem(s)" in out
    for words in found:
        assert words in out, out


def test_audit_chain__audits_one_node_when_named(
    rig: Rig, tmp_path: Path, config: GatewayConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    g01, g02 = Gate(tmp_path / "nodes", "g01"), Gate(tmp_path / "nodes", "g02")
    rig.arrive(*g01.passages(3), *g02.passages(2))
    look_inside(rig.store, "DELETE FROM events WHERE node = 'g01' AND seq = 2")
    code, out = audit(config, capsys, "--node", "north/g02")
    assert (code, out.count("outbox life")) == (0, 1)
    assert "north/g02 outbox life 0: OK: 2 events" in out
    assert audit(config, capsys)[0] == 1


def test_audit_chain__a_store_that_is_not_there_is_an_error_not_an_empty_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # SQLite-only: a missing file (a PostgreSQL database is not made by opening it).
    store_path = tmp_path / "gateway.db"
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({
        "sites": [{"name": "north", "gates": ["g01"]}],
        "broker": {"url": "mqtts://127.0.0.1:8883"}, "store": {"path": str(store_path)},
    }), encoding="utf-8")  # fmt: skip
    assert main(["gateway", "audit-chain", "--config", str(path)]) == 1
    assert "no gateway store there" in capsys.readouterr().err
    assert not store_path.exists()
