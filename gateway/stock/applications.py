"""Applications for supplies: a unit's request, its state, its approved allocation, its store.

An application asks a site for a quantity of one item for one unit (a hospital, an
isolation site, a testing point or another). It stays `pending` until the command center
approves a plan that allocates it stock (gateway/stock/allocation.py) or rejects it; the
keepers then issue against its id, never more than its allocation at their depot. An
approved application whose allocation was issued in full reads as `fulfilled`. The store
keeps applications, decisions and allocation lines immutable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from pydantic import Field

from edge.configfile import Section
from gateway.stock.ledger import OnHand, Record, StockRefused

if TYPE_CHECKING:
    from gateway.stock.allocation import Plan

PlaceKind = Literal["hospital", "isolation-site", "testing-point", "other"]
# The plans' key places, served before the others of the same urgency and use.
KEY_PLACES: frozenset[str] = frozenset({"hospital", "isolation-site", "testing-point"})
Urgency = Literal["urgent", "routine"]
ApplicationState = Literal["pending", "approved", "rejected", "fulfilled"]
Decision = Literal["approved", "rejected"]
APPLICATION_ID_PATTERN = r"^APL-[1-9][0-9]{0,17}$"
APPLICATION_PREFIX = "APL-"
# A site holds at most this many pending applications of one item: a plan reads them all.
PENDING_MAX = 200
APPLICATIONS_PAGE_MAX = 500


class Location(Section):
    """A point on the map (WGS 84), for nearest depot first."""

    lat: float = Field(ge=-90, le=90, description="latitude, degrees north")
    lon: float = Field(ge=-180, le=180, description="longitude, degrees east")


class ApplicationRefused(StockRefused):
    """An application, approval or rejection refused; nothing was written (as StockRefused)."""


def application_number(application_id: str) -> int | None:
    """The row number of `APL-<n>`, or None for an id of another form (a paper application)."""
    if not application_id.startswith(APPLICATION_PREFIX):
        return None
    digits = application_id[len(APPLICATION_PREFIX) :]
    return int(digits) if digits.isdigit() and not digits.startswith("0") else None


@dataclass(frozen=True)
class ApplicationDraft:
    """A new application as the API checked it against the catalogue; `key` is the
    client's idempotency key (per site)."""

    site: str
    key: str
    applicant_unit: str
    place_kind: PlaceKind
    urgency: Urgency
    medical: bool
    item: str
    quantity: Decimal
    unit: str
    location: Location | None = None
    note: str = ""

    def fingerprint(self) -> str:
        """SHA-256 of everything but the key: a repeat with the same key must match it."""
        body = {k: v for k, v in asdict(self).items() if k != "key"}
        text = json.dumps(body, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


class AllocationLine(Record):
    """Part of an approved plan: take `quantity` of this lot at `depot` for the application."""

    application_id: str
    depot: str
    item: str
    lot: str = Field(description="empty for an item not tracked by lot")
    designated_to: str = Field(description="designated stock: its designee (the applicant)")
    expires_on: date | None
    quantity: Decimal = Field(description="positive, in the item's unit")
    unit: str


class Application(Record):
    """An application as the API returns it."""

    id: str = Field(description="APL-<n>, assigned by the gateway")
    site: str
    applicant_unit: str
    place_kind: PlaceKind
    urgency: Urgency
    medical: bool
    item: str
    quantity: Decimal = Field(description="asked, in the item's unit")
    unit: str
    location: Location | None
    note: str
    state: ApplicationState
    who: str = Field(description="the token that filed it")
    at: datetime
    decided_by: str | None = Field(None, description="who approved or rejected it")
    decided_at: datetime | None = None
    reason: str | None = Field(None, description="a rejection's reason")
    plan: str | None = Field(None, description="the fingerprint of the plan that approved it")
    allocated: Decimal = Field(Decimal(0), description="what its approved plan allocated")
    issued: Decimal = Field(Decimal(0), description="issued against it, net of reversals")
    allocations: tuple[AllocationLine, ...] = ()

    @property
    def is_key_place(self) -> bool:
        return self.place_kind in KEY_PLACES


@dataclass(frozen=True)
class AllocationInputs:
    """What a plan is made of: the site's pending applications of one item (oldest first)
    and per depot what of it is on hand and not yet allocated to an approved application."""

    applications: tuple[Application, ...]
    available: dict[str, tuple[OnHand, ...]]


@runtime_checkable
class ApplicationStore(Protocol):
    """What applications and their allocation need of a store (its own protocol, as
    ledger.StockStore)."""

    def application_file(
        self, draft: ApplicationDraft, who: str, at: datetime
    ) -> tuple[Application, bool]:
        """File `draft`; (the application, True if the key was seen with it before).

        Raises:
            ApplicationRefused: 409 `idempotency-conflict`, 409 `too-many-pending`.
        """
        ...

    def application(self, site: str, application_id: str) -> Application | None: ...

    def applications(
        self, site: str, *, state: ApplicationState | None, item: str | None,
        depots: frozenset[str] | None, before: int | None, limit: int,
    ) -> list[Application]:  # fmt: skip
        """Newest first. `depots`: only approved ones with a line at one of these depots,
        and only those lines (what a keeper is to issue); None: every one."""
        ...

    def allocation_inputs(
        self, site: str, item: str, depots: Sequence[str]
    ) -> AllocationInputs: ...

    def allocation_approve(
        self, site: str, item: str, *, depots: Sequence[str],
        plan_of: Callable[[AllocationInputs], Plan], fingerprint: str, who: str, at: datetime,
    ) -> Plan:  # fmt: skip
        """Approve the plan `plan_of` makes of the inputs now, in one transaction, if its
        fingerprint is `fingerprint`; write its lines and mark its applications approved.

        Raises:
            ApplicationRefused: 409 `plan-changed`, `plan-approved`, `plan-empty`.
        """
        ...

    def application_reject(
        self, site: str, application_id: str, reason: str, who: str, at: datetime
    ) -> Application:
        """Raises ApplicationRefused: 404 `unknown-application`, 409 `application-decided`."""
        ...
