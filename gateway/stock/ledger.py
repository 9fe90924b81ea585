"""The stock ledger's domain: movements, entries, on-hand positions, refusals, its store.

A movement is one write a depot keeper makes (a receipt, an issue, a transfer out or in,
a stocktake adjustment, a reversal); the store keeps it as one immutable entry, the signed
change it makes to one position (site, depot, item, lot, designee) in whole steps of the
item's unit (catalogue.UNIT_DECIMALS). On hand is the sum of a position's entries, never
stored, never negative. Every movement carries an idempotency key: the same key again with
the same movement is the first entry, with another movement a conflict.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from gateway.stock.catalogue import UNIT_DECIMALS

EntryKind = Literal["receipt", "issue", "transfer-out", "transfer-in", "adjustment", "reversal"]
ReceiptSource = Literal["purchase", "allocation", "donation"]
ENTRIES_PAGE_MAX = 500
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,63}$"


def of_steps(steps: int, unit: str) -> Decimal:
    """Whole steps of `unit` as an exact quantity (e.g. 1250 kg steps: 1.250)."""
    return Decimal(steps).scaleb(-UNIT_DECIMALS[unit])


class Record(BaseModel):
    """A row as the API returns it (as gateway.store.records.Record; not imported from there:
    the store imports this module)."""

    model_config = ConfigDict(frozen=True)


class StockRefused(Exception):
    """A movement the ledger refuses; nothing was written.

    Args:
        status: 422 for input to correct, 404 for what does not exist, 409 for a state
            that does not allow it (not enough on hand, already reversed, key reused).
        reason: a stable code, e.g. insufficient-stock.
        field: the input at fault, e.g. quantity, lot, idempotency_key.
        message: the same for people.
    """

    def __init__(self, status: int, reason: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.status = status
        self.reason = reason
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Movement:
    """One write to the ledger at `site/depot`, checked against the catalogue already.

    `steps` is the signed change to the position (a receipt +, an issue -; a transfer-in
    and a reversal take theirs from the entry they confirm or reverse, so 0 there).
    `to_depot` is a transfer-out's destination; `transfer_of` the transfer-out a
    transfer-in receives; `reverses` the entry a reversal cancels.
    """

    kind: EntryKind
    site: str
    depot: str
    key: str
    item: str = ""
    unit: str = ""
    steps: int = 0
    lot: str = ""
    expires_on: date | None = None
    designated_to: str = ""
    source: ReceiptSource | None = None
    applicant_unit: str | None = None
    approver: str | None = None
    application_id: str | None = None
    reason: str | None = None
    to_depot: str | None = None
    transfer_of: int | None = None
    reverses: int | None = None

    def fingerprint(self) -> str:
        """SHA-256 of everything but the key: a repeat with the same key must match it."""
        body = {k: v for k, v in asdict(self).items() if k != "key"}
        text = json.dumps(body, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


class StockEntry(Record):
    """One ledger entry as the API returns it; never changed once written."""

    id: int = Field(description="the entry's number, increasing in the order written")
    kind: EntryKind
    site: str
    depot: str
    item: str
    lot: str = Field(description="empty for an item not tracked by lot")
    designated_to: str = Field(description="the unit a designated donation is for; empty: none")
    expires_on: date | None = Field(description="the lot's expiry date")
    quantity: Decimal = Field(description="the signed change to on hand, in the item's unit")
    unit: str
    source: ReceiptSource | None = None
    applicant_unit: str | None = None
    approver: str | None = None
    application_id: str | None = None
    reason: str | None = None
    peer_depot: str | None = Field(
        None, description="a transfer's other depot (out: where to; in: where from)"
    )
    transfer_of: int | None = Field(None, description="a transfer-in: the transfer-out it receives")
    reverses: int | None = Field(None, description="a reversal: the entry it cancels")
    reversed_by: int | None = Field(None, description="the reversal that cancelled this entry")
    who: str = Field(description="the token that wrote it")
    at: datetime = Field(description="gateway time of writing")
    idempotency_key: str


class OnHand(Record):
    """What one depot holds of one item, lot and designee: the sum of its entries."""

    item: str
    lot: str
    designated_to: str
    expires_on: date | None
    quantity: Decimal
    unit: str


class InTransit(Record):
    """A transfer-out not yet received (nor cancelled by a reversal)."""

    entry_id: int
    from_depot: str
    to_depot: str
    item: str
    lot: str
    designated_to: str
    quantity: Decimal = Field(description="positive: what is on its way")
    unit: str
    at: datetime


@runtime_checkable
class StockStore(Protocol):
    """What the ledger needs of a store (its own protocol: the gateway's Store is split by
    domain elsewhere, and a second backend implements this one on its own)."""

    def stock_write(
        self, movement: Movement, who: str, at: datetime, today: date
    ) -> tuple[StockEntry, bool]:
        """Write `movement` in one transaction; (the entry, True if it was a repeat).

        Raises:
            StockRefused: nothing written (see its statuses).
        """
        ...

    def stock_entry(self, entry_id: int) -> StockEntry | None: ...

    def stock_entries(
        self, site: str, depot: str, before_id: int | None, limit: int
    ) -> list[StockEntry]: ...

    def stock_on_hand(self, site: str, depot: str) -> list[OnHand]: ...

    def stock_in_transit(self, site: str, depot: str | None) -> list[InTransit]:
        """Transfers from or to `site/depot` (None: of every depot of the site) not yet
        received nor cancelled."""
        ...

    def stock_issued(self, site: str, depot: str, since: datetime) -> dict[str, Decimal]:
        """Per item, what `site/depot` issued at or after `since`, net of reversals (an
        issue later reversed counts for nothing); positive, in the item's unit."""
        ...

    def stock_movements(
        self, site: str, depot: str, since: datetime, until: datetime
    ) -> dict[tuple[str, EntryKind], Decimal]:
        """Per (item, kind), the signed sum of the entries `site/depot` wrote at or after
        `since` and before `until`; a reversal counts under the kind of the entry it
        cancels (so never under `reversal`)."""
        ...

    def stock_on_hand_at(self, site: str, depot: str, at: datetime) -> list[OnHand]:
        """What `site/depot` held just before `at`, per item, lot and designee (none at 0)."""
        ...
