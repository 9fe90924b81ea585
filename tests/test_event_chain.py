"""The node's event chain: each event carries the hash of the bytes of the one before it,
across batches and restarts; a node whose state is lost starts a new chain."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge.contract import catalogue
from edge.contract.events import Disinfection
from edge.contract.topics import Role, Site
from edge.outbox import Outbox, OutboxFull

NODE = Site("north").node(Role.GATE, "g01")
T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def disinfection(ids: dict[str, Any]) -> Disinfection:
    return Disinfection(**ids, volunteer_id="v01", area="hut")


def published(outbox: Outbox) -> list[bytes]:
    """The payloads the node would publish now, oldest first, as the broker gets them."""
    return [row.payload for row in outbox.after(0, 1000)]


def assert_chained(payloads: list[bytes]) -> None:
    """Each payload names the SHA-256 of the exact bytes before it; the first names none."""
    for before, after in itertools.pairwise(payloads):
        assert json.loads(after)["prev_hash"] == hashlib.sha256(before).hexdigest()


def test_chain__the_first_event_starts_it_and_each_next_links_to_the_bytes_before(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox.db", NODE)
    for _ in range(4):
        outbox.add(disinfection, T0)
    payloads = published(outbox)
    assert "prev_hash" not in json.loads(payloads[0])  # seq 1: a chain start
    assert_chained(payloads)
    assert outbox.chain_head == hashlib.sha256(payloads[-1]).hexdigest()
    # What is published decodes as the contract says, prev_hash included.
    second = catalogue.decode(outbox.after(1, 1)[0].topic, payloads[1]).payload
    assert isinstance(second, Disinfection)
    assert second.prev_hash == hashlib.sha256(payloads[0]).hexdigest()


def test_chain__events_of_one_batch_link_to_each_other(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", NODE)
    outbox.add(disinfection, T0)
    with outbox.transaction() as batch:
        for _ in range(3):
            batch.add(disinfection(batch.ids(T0)))
    payloads = published(outbox)
    assert [json.loads(p)["seq"] for p in payloads] == [1, 2, 3, 4]
    assert_chained(payloads)


def test_chain__continues_across_a_restart_after_everything_was_confirmed(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "outbox.db", NODE)
    for _ in range(3):
        outbox.add(disinfection, T0)
    last = published(outbox)[-1]
    outbox.confirm(3)  # the rows are gone; the head stays in meta
    outbox.close()

    reopened = Outbox(tmp_path / "outbox.db", NODE)
    event = reopened.add(disinfection, T0)
    assert (event.seq, event.prev_hash) == (4, hashlib.sha256(last).hexdigest())


def test_chain__a_batch_that_fails_leaves_the_head_where_it_was(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", NODE, capacity=2)
    outbox.add(disinfection, T0)
    head = outbox.chain_head
    with pytest.raises(OutboxFull), outbox.transaction() as batch:  # noqa: PT012
        for _ in range(2):
            batch.add(disinfection(batch.ids(T0)))
    assert outbox.chain_head == head
    assert outbox.add(disinfection, T0).prev_hash == head


def test_chain__an_event_that_does_not_link_to_the_head_is_refused(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", NODE)
    outbox.add(disinfection, T0)
    with pytest.raises(ValueError, match="chain head"), outbox.transaction() as batch:
        batch.add(disinfection({**batch.ids(T0), "prev_hash": "0" * 64}))
    assert outbox.last_seq == 1


def test_chain__a_node_whose_state_is_lost_starts_a_new_chain(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "state" / "outbox.db", NODE)
    for _ in range(3):
        outbox.add(disinfection, T0)
    outbox.close()
    shutil.rmtree(tmp_path / "state")  # the SD card replaced

    fresh = Outbox(tmp_path / "state" / "outbox.db", NODE)
    event = fresh.add(disinfection, T0)
    assert (event.seq, event.prev_hash) == (1, None)
    assert fresh.outbox_id != outbox.outbox_id


def test_chain__an_outbox_from_before_the_chain_starts_one_at_its_next_seq(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path, NODE)
    for _ in range(2):
        outbox.add(disinfection, T0)
    outbox.close()
    with sqlite3.connect(path) as db:  # as an older node left it: no head kept
        db.execute("DELETE FROM meta WHERE key = 'chain_head'")

    upgraded = Outbox(path, NODE)
    start = upgraded.add(disinfection, T0)
    after = upgraded.add(disinfection, T0)
    assert (start.seq, start.prev_hash) == (3, None)
    assert after.prev_hash == hashlib.sha256(published(upgraded)[2]).hexdigest()
