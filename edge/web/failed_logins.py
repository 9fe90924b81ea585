"""Failed tries per client address (wrong tokens, wrong pairing codes): too many within a
window and the address is refused."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

ADDRESSES_KEPT = 10_000  # the table's bound; the address whose last failure is oldest goes


class FailedLogins:
    """Counts wrong tokens (the gateway's API) or wrong pairing codes (the console) per
    client address, in a sliding window, and blocks guessers.

    An address with `limit` failures within `window` is refused, a live token included
    (that is what stops guessing), until its oldest counted failure is `window` old.
    A success resets nothing: a caller with one low-role token could otherwise
    interleave it with guesses at an admin's.

    Args:
        limit: failures within `window` that block an address.
        window: how long a failure counts.
        clock: the time now (the gateway context's, so tests can move it).
        kept: how many addresses the table holds at most.
    """

    def __init__(
        self,
        limit: int,
        window: timedelta,
        clock: Callable[[], datetime],
        *,
        kept: int = ADDRESSES_KEPT,
    ) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._kept = kept
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._failures)

    def blocked_for(self, address: str) -> timedelta | None:
        """How much longer `address` is refused, or None when it may try."""
        now = self._clock()
        with self._lock:
            failures = self._failures.get(address)
            if failures is None:
                return None
            self._forget_old(address, failures, now)
            if len(failures) < self._limit:
                return None
            return failures[0] + self._window - now

    def failed(self, address: str) -> None:
        """Count one wrong token (or code) from `address`."""
        now = self._clock()
        with self._lock:
            failures = self._failures.get(address)
            if failures is None:
                if len(self._failures) >= self._kept:
                    self._failures.popitem(last=False)
                failures = self._failures[address] = deque(maxlen=self._limit)
            failures.append(now)
            self._failures.move_to_end(address)
            if len(failures) == self._limit:
                log.warning(
                    "%s sent %d wrong tokens or codes within %s: refused until %s",
                    address, self._limit, self._window, failures[0] + self._window,
                )  # fmt: skip

    def _forget_old(self, address: str, failures: deque[datetime], now: datetime) -> None:
        while failures and now - failures[0] >= self._window:
            failures.popleft()
        if not failures:
            del self._failures[address]
