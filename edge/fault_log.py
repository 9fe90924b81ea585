"""Device faults as events: raised once and cleared once, also across a crash."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Literal, Protocol

from edge.contract.events import DeviceFault
from edge.outbox import Batch, Outbox, OutboxError

log = logging.getLogger(__name__)

# The outbox meta key of the faults reported; a gate's book kept them there before.
META_KEY = "faults"


class Transaction(Protocol):
    """Opens one outbox transaction (Outbox.transaction, or a node's own around it)."""

    def __call__(self, *, reserved: bool = False) -> AbstractContextManager[Batch]: ...


class FaultLog:
    """A node's fault events, and the faults it has reported, kept beside them.

    The faults reported are kept in the outbox's meta table, committed in the same
    transaction as their events, so what the node told the gateway survives a crash.

    Args:
        outbox: where the events go and the faults reported are kept.
        clock: wall clock (aware) of the events.
        transaction: how to open a transaction; default the outbox's own. A gate passes
            its checkpoint's, which also tells the consoles and wakes the uplink.
        lock: held while a fault is looked up and recorded; a gate passes its
            checkpoint's lock.
    """

    def __init__(
        self, outbox: Outbox, clock: Callable[[], datetime], *,
        transaction: Transaction | None = None, lock: threading.RLock | None = None,
    ) -> None:  # fmt: skip
        self.clock = clock
        self._transaction = transaction or outbox.transaction
        self._lock = lock or threading.RLock()
        # "device/fault" -> detail of every fault raised and not yet cleared, as reported.
        self._faults: dict[str, str] = json.loads(outbox.get_meta(META_KEY, "{}"))

    def record_fault(
        self, device: str, fault: str, state: Literal["raised", "cleared"], detail: str | None,
        *, each_incident: bool = False,
    ) -> None:  # fmt: skip
        """One device-fault event per change: raised once and cleared once, across restarts.

        The faults reported are kept in the outbox (committed with their events), so a
        node that crashed neither raises a fault it reported again nor forgets to clear
        it (see `reconcile_faults`).

        Args:
            each_incident: a raise with another `detail` is reported although the fault
                is raised already (each refused document is its own incident).
        """
        key = f"{device}/{fault}"
        now = self.clock()
        with self._lock:
            known = self._faults.get(key)
            new_incident = each_incident and known is not None and known != (detail or "")
            if (state == "raised") == (known is not None) and not new_incident:
                return  # already reported so
            faults = dict(self._faults)
            if state == "raised":
                faults[key] = detail or ""
            else:
                del faults[key]
            try:
                with self._transaction(reserved=True) as batch:
                    batch.add(
                        DeviceFault(
                            **batch.ids(now), device=device, fault=fault,
                            state=state, detail=detail[:200] if detail else None,
                        )
                    )  # fmt: skip
                    batch.meta[META_KEY] = json.dumps(faults)
            except OutboxError as exc:
                log.error("could not record %s %s %s: %s", device, fault, state, exc)
                return
            self._faults = faults

    @property
    def reported_faults(self) -> set[tuple[str, str]]:
        """(device, fault) of every fault raised and not yet cleared, as reported."""
        with self._lock:
            return {(device, fault) for device, _, fault in map(_split, self._faults)}

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
