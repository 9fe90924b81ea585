"""Device faults as events: raised once and cleared once, also across a crash."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Literal

from edge.contract.events import DeviceFault
from edge.gate.book import LocalBook
from edge.outbox import Batch, OutboxError

log = logging.getLogger(__name__)


class FaultLog:
    """The gate's fault events (mixed into GateCheckpoint).

    The faults reported are kept in the book, committed with their events, so what the
    node told the gateway survives a crash.
    """

    # Kept by GateCheckpoint, which mixes this in.
    _lock: threading.RLock
    _book: LocalBook
    clock: Callable[[], datetime]

    def _transaction(self, *, reserved: bool = False) -> AbstractContextManager[Batch]:
        raise NotImplementedError

    def record_fault(
        self, device: str, fault: str, state: Literal["raised", "cleared"], detail: str | None,
        *, each_incident: bool = False,
    ) -> None:  # fmt: skip
        """One device-fault event per change: raised once and cleared once, across restarts.

        The faults reported are kept in the book (committed with their events), so a
        node that crashed neither raises a fault it reported again nor forgets to clear
        it (see `reconcile_faults`).

        Args:
            each_incident: a raise with another `detail` is reported although the fault
                is raised already (each refused document is its own incident).
        """
        key = f"{device}/{fault}"
        now = self.clock()
        with self._lock:
            known = self._book.faults.get(key)
            new_incident = each_incident and known is not None and known != (detail or "")
            if (state == "raised") == (known is not None) and not new_incident:
                return  # already reported so
            try:
                with self._transaction(reserved=True) as batch:
                    batch.add(
                        DeviceFault(
                            **batch.ids(now), device=device, fault=fault,
                            state=state, detail=detail[:200] if detail else None,
                        )
                    )  # fmt: skip
                    if state == "raised":
                        self._book.faults[key] = detail or ""
                    else:
                        del self._book.faults[key]
            except OutboxError as exc:
                log.error("could not record %s %s %s: %s", device, fault, state, exc)

    @property
    def reported_faults(self) -> set[tuple[str, str]]:
        """(device, fault) of every fault raised and not yet cleared, as reported."""
        with self._lock:
            return {(device, fault) for device, _, fault in map(_split, self._book.faults)}

    def reconcile_faults(self, present: set[tuple[str, str]]) -> None:
        """After a restart, clear every reported fault that is not `present` any more.

        Call once the devices, outbox and documents have had time to raise again what
        is still wrong: a fault reported before a crash is then either still present
        (and was not raised twice) or gone, and cleared here.
        """
        for device, fault in self.reported_faults - present:
            self.record_fault(device, fault, "cleared", "not present after a restart")


def _split(key: str) -> tuple[str, str, str]:
    return key.partition("/")
