"""Receipts: how far the store holds each outbox, and asking a node again for what is missing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from edge.contract.base import Payload
from edge.contract.presence import Birth, Health
from edge.contract.receipt import Receipt
from edge.contract.topics import Role
from gateway.config import GatewayConfig
from gateway.receipts import RECEIPT_EVERY_S, RESEND_AFTER_S, Receipts
from gateway.store import SqlStore
from gateway.store.records import InboundPresence, Written
from tests.gateway.factory import Gates

OUTBOX_A, OUTBOX_B = "a" * 32, "b" * 32
NOW = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)


def birth(outbox_id: str | None, confirmed: int | None = 0, session: int = 1) -> InboundPresence:
    payload = Birth(
        session=session, node_time=NOW, role=Role.GATE, version="1", config_hash="ab" * 8,
        heartbeat_s=10, outbox_id=outbox_id, confirmed_seq=confirmed,
    )  # fmt: skip
    return InboundPresence("north", "g01", Role.GATE, payload, NOW)


def health(last_seq: int, session: int = 1) -> InboundPresence:
    payload = Health(
        node_time=NOW, session=session, uptime_s=1, last_seq=last_seq, outbox_depth=1,
        outbox_capacity=100,
    )  # fmt: skip
    return InboundPresence("north", "g01", Role.GATE, payload, NOW)


def marks(written: Written) -> list[tuple[str, int]]:
    return [(m.outbox_id, m.stored_seq) for m in written.marks]


def test_store__a_receipt_is_due_for_what_is_stored_without_a_hole(store: SqlStore) -> None:
    gates = Gates()
    assert marks(store.write([], [birth(OUTBOX_A)])) == [(OUTBOX_A, 0)]
    assert marks(store.write([gates.passage() for _ in range(3)])) == [(OUTBOX_A, 3)]
    gates.passage()  # seq 4 went to nobody
    assert marks(store.write([gates.passage()])) == [(OUTBOX_A, 3)]
    assert [(m.stored_seq, newest) for m, newest in store.lagging()] == [(3, 5)]


def test_store__a_heartbeat_ahead_of_the_store_shows_the_node_lagging(store: SqlStore) -> None:
    gates = Gates()
    store.write([gates.passage() for _ in range(3)], [birth(OUTBOX_A)])
    assert store.lagging() == []
    store.write([], [health(last_seq=7)])  # 4..7 sent, none arrived
    assert [(m.stored_seq, newest) for m, newest in store.lagging()] == [(3, 7)]


def test_store__a_running_node_is_anchored_where_its_birth_says(store: SqlStore) -> None:
    # A node that ran with another gateway store: it holds nothing up to 100.
    gates = Gates()
    for _ in range(100):
        gates.passage()
    written = store.write([gates.passage(), gates.passage()], [birth(OUTBOX_A, confirmed=100)])
    assert marks(written) == [(OUTBOX_A, 102)]
    assert store.node("north", "g01").gap_since is None  # type: ignore[union-attr]


def test_store__events_before_the_birth_wait_for_its_anchor(store: SqlStore) -> None:
    gates = Gates()
    for _ in range(100):
        gates.passage()
    store.write([gates.passage()], [])  # seq 101 read first, before the birth
    # The node says it still holds everything above 50: 51..100 went to nobody.
    assert marks(store.write([], [birth(OUTBOX_A, confirmed=50)])) == [(OUTBOX_A, 50)]
    assert [(m.stored_seq, newest) for m, newest in store.lagging()] == [(50, 101)]
    assert store.node("north", "g01").gap_since is not None  # type: ignore[union-attr]


def test_store__a_birth_naming_what_is_stored_closes_the_gap(store: SqlStore) -> None:
    gates = Gates()
    for _ in range(100):
        gates.passage()
    store.write([gates.passage()], [])
    assert marks(store.write([], [birth(OUTBOX_A, confirmed=100)])) == [(OUTBOX_A, 101)]
    assert store.node("north", "g01").gap_since is None  # type: ignore[union-attr]


def test_store__another_outbox_is_a_new_epoch_counting_from_1(store: SqlStore) -> None:
    old = Gates()
    store.write([old.passage() for _ in range(5)], [birth(OUTBOX_A, session=7)])
    # The SD card was replaced: a new outbox, seq from 1, and a session that need not be lower.
    new = Gates()
    written = store.write([new.passage(), new.passage()], [birth(OUTBOX_B, session=9)])
    assert marks(written) == [(OUTBOX_B, 2)]
    assert store.event_seqs("north", "g01") == [1, 2]


@dataclass
class Desk:
    """Receipts with a clock the test moves and a list for what is published."""

    store: SqlStore
    config: GatewayConfig
    now: float = 100.0
    caught_up: bool = True
    sent: list[Receipt] = field(default_factory=list)
    receipts: Receipts = field(init=False)

    def __post_init__(self) -> None:
        self.receipts = Receipts(
            self.config, self.store, self._publish, caught_up=lambda: self.caught_up,
            wall=lambda: NOW, monotonic=lambda: self.now,
        )  # fmt: skip

    def _publish(self, topic: str, payload: Payload) -> None:
        assert topic == "gatepost/v1/north/receipt/g01"
        assert isinstance(payload, Receipt)
        self.sent.append(payload)

    def taken(self) -> list[tuple[int, bool]]:
        out, self.sent = [(r.stored_seq, r.resend) for r in self.sent], []
        return out


@pytest.fixture
def desk(store: SqlStore, gateway_config: GatewayConfig) -> Desk:
    return Desk(store, gateway_config)


def test_receipts__at_most_one_per_node_every_interval_and_the_newest_mark(desk: Desk) -> None:
    gates = Gates()
    desk.receipts.stored(desk.store.write([gates.passage()], [birth(OUTBOX_A)]))
    desk.receipts.stored(desk.store.write([gates.passage()]))
    desk.receipts.stored(desk.store.write([gates.passage()]))
    assert desk.taken() == [(1, False)]
    desk.now += RECEIPT_EVERY_S
    desk.receipts.check()
    assert desk.taken() == [(3, False)]
    desk.now += RECEIPT_EVERY_S
    desk.receipts.check()
    assert desk.taken() == []  # nothing new: the retained one says it


def test_receipts__a_mark_standing_still_below_what_was_sent_asks_again_less_and_less_often(
    desk: Desk,
) -> None:
    gates = Gates()
    desk.receipts.stored(desk.store.write([gates.passage()], [birth(OUTBOX_A)]))
    desk.store.write([], [health(last_seq=4)])  # 2..4 went to nobody
    desk.taken()
    asked_at = []
    for _ in range(400):  # 40 s in steps of 0.1 s
        desk.now += 0.1
        desk.receipts.check()
        if (1, True) in desk.taken():
            asked_at.append(round(desk.now - 100, 1))
    # After 5 s, then 10 s, then 20 s (to the step of 0.1 s the test moves the clock by).
    assert asked_at == pytest.approx([5, 15, 35], abs=0.5)
    # They arrive: no more asking.
    desk.receipts.stored(desk.store.write([gates.passage() for _ in range(3)]))
    desk.now += 60
    desk.receipts.check()
    assert desk.taken() == [(4, False)]


def test_receipts__no_asking_while_ingest_has_a_backlog(desk: Desk) -> None:
    gates = Gates()
    desk.receipts.stored(desk.store.write([gates.passage()], [birth(OUTBOX_A)]))
    desk.store.write([], [health(last_seq=400)])
    desk.caught_up = False  # the rest may be queued for us: a backlog is no loss
    for _ in range(10):
        desk.now += RESEND_AFTER_S
        desk.receipts.check()
    assert all(not resend for _, resend in desk.taken())


def test_receipts__subscribing_again_republishes_every_mark(desk: Desk) -> None:
    gates = Gates()
    desk.receipts.stored(desk.store.write([gates.passage()], [birth(OUTBOX_A)]))
    desk.taken()
    desk.now += RECEIPT_EVERY_S
    desk.receipts.republish()  # a broker restarted without persistence lost the retained one
    assert desk.taken() == [(1, False)]


def test_receipts__a_mark_of_a_node_without_an_outbox_id_gets_none(desk: Desk) -> None:
    gates = Gates()
    written = desk.store.write([gates.passage()], [birth(None, confirmed=None)])
    desk.receipts.stored(written)
    assert desk.taken() == []
    assert desk.store.marks() == []
