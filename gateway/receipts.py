"""Receipts: each node told how far the store holds its outbox, and asked again for what is missing.

A node deletes an outbox row only when a receipt covers it, so the gateway's storage,
not the broker's PUBACK, ends an event's life on the node. Receipts are retained (a
node that reconnects reads where it stands) and sent at most every RECEIPT_EVERY_S per
node. When a node's mark stands still while the node is known to have sent more (a
seq stored above it, or its heartbeat's `last_seq`), the events between went to
nobody (a broker restarted without our shared subscription, a gateway that was away):
after RESEND_AFTER_S the receipt asks the node to send them again, then less and
less often while they do not come (a message the store refuses never will).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from edge.contract import topics
from edge.contract.base import Payload
from edge.contract.receipt import Receipt
from gateway.config import GatewayConfig
from gateway.store.base import MarkStore
from gateway.store.records import StoredMark, Written

log = logging.getLogger(__name__)

RECEIPT_EVERY_S = 0.5
RESEND_AFTER_S = 5.0
RESEND_MAX_S = 300.0

NodeKey = tuple[str, str]


@dataclass
class _Ask:
    """A node's mark that stands still below what it sent, and when to ask it again."""

    stored_seq: int
    next_at: float
    every: float


class Receipts:
    """Publishes receipts after each stored batch and asks nodes again for what is missing.

    Args:
        config: the gateway's config (prefix, sites).
        store: the marks come from here.
        publish: sends a payload on a topic (the gateway's publisher).
        caught_up: whether ingest is connected with nothing queued: only then is a mark
            that stands still a sign of loss rather than of a backlog.
        wall: now, aware (the receipt's `at`); monotonic: seconds, for pacing.
    """

    def __init__(
        self, config: GatewayConfig, store: MarkStore, publish: Callable[[str, Payload], None], *,
        caught_up: Callable[[], bool], wall: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self._config = config
        self._store = store
        self._publish = publish
        self._caught_up = caught_up
        self._wall = wall
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._due: dict[NodeKey, StoredMark] = {}
        self._sent: dict[NodeKey, tuple[StoredMark, float]] = {}
        self._asks: dict[NodeKey, _Ask] = {}

    def stored(self, written: Written) -> None:
        """A batch was stored: the marks it moved are due (sent now if not sent just before)."""
        with self._lock:
            for mark in written.marks:
                self._due[(mark.site, mark.node)] = mark
        self.flush()

    def republish(self) -> None:
        """Ingest subscribed again: retained receipts may be gone with a broker's restart."""
        with self._lock:
            self._sent.clear()
            for mark in self._store.marks():
                self._due[(mark.site, mark.node)] = mark
        self.flush()

    def flush(self) -> None:
        """Send the due receipts whose node was not sent one in the last RECEIPT_EVERY_S."""
        now = self._monotonic()
        with self._lock:
            ready = [
                mark for key, mark in self._due.items()
                if key not in self._sent or now - self._sent[key][1] >= RECEIPT_EVERY_S
            ]  # fmt: skip
            for mark in ready:
                key = (mark.site, mark.node)
                del self._due[key]
                if key in self._sent and self._sent[key][0] == mark:
                    continue  # the retained receipt already says so
                self._sent[key] = (mark, now)
        for mark in ready:
            self._send(mark, resend=False)

    def check(self) -> None:
        """Ask again, with a backoff, nodes whose mark stands still below what they sent."""
        self.flush()
        if not self._caught_up():
            return
        now = self._monotonic()
        lagging = self._store.lagging()
        for mark, newest in lagging:
            key = (mark.site, mark.node)
            ask = self._asks.get(key)
            if ask is None or ask.stored_seq != mark.stored_seq:
                self._asks[key] = _Ask(mark.stored_seq, now + RESEND_AFTER_S, RESEND_AFTER_S)
                continue
            if now < ask.next_at:
                continue
            log.info(
                "%s/%s: seq %d to %d missing; asking the node to send them again",
                mark.site, mark.node, mark.stored_seq + 1, newest,
            )  # fmt: skip
            self._send(mark, resend=True)
            ask.every = min(ask.every * 2, RESEND_MAX_S)
            ask.next_at = now + ask.every
        for key in set(self._asks) - {(mark.site, mark.node) for mark, _ in lagging}:
            del self._asks[key]

    def _send(self, mark: StoredMark, *, resend: bool) -> None:
        receipt = Receipt(
            outbox_id=mark.outbox_id, stored_seq=mark.stored_seq, resend=resend, at=self._wall()
        )
        try:
            self._publish(topics.receipt(self._config.topic_site(mark.site), mark.node), receipt)
        except Exception:  # one bad mark must not stop the others' receipts
            log.exception("could not publish the receipt for %s/%s", mark.site, mark.node)
