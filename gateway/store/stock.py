"""The stock ledger in the store (SQLite or PostgreSQL): immutable entries, on hand derived
from them.

Every write runs in one write transaction under the store's write lock (SQLite's BEGIN
IMMEDIATE, PostgreSQL's advisory write lock): the idempotency key is looked up, the
position's on hand is summed and the entry inserted under that one lock, so two keepers
issuing the last boxes at once (on one gateway or on two replicas) cannot both succeed.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from gateway.stock.applications import APPLICATION_PREFIX
from gateway.stock.ledger import (
    EntryKind,
    InTransit,
    Movement,
    OnHand,
    StockEntry,
    StockRefused,
    of_steps,
)
from gateway.store.applications import check_application_issue
from gateway.store.records import utc_text
from gateway.store.sql import Connection

_COLUMNS = (
    "e.id, e.kind, e.site, e.depot, e.item, e.lot, e.designated_to, l.expires_on, e.steps, "
    "e.unit, e.source, e.applicant_unit, e.approver, e.application_id, e.reason, e.peer_depot, "
    "e.transfer_of, e.reverses, r.id, e.who, e.at, e.idem_key"
)
_FROM = (
    "FROM stock_entries e LEFT JOIN stock_lots l ON l.item = e.item AND l.lot = e.lot "
    "LEFT JOIN stock_entries r ON r.reverses = e.id"
)
_INSERT = (
    "INSERT INTO stock_entries (kind, site, depot, item, lot, designated_to, steps, unit, "
    "source, applicant_unit, approver, application_id, reason, peer_depot, transfer_of, "
    "reverses, who, at, idem_key, request_sha256) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
    "RETURNING id"
)


class StockLedger:
    """The stock ledger of SqlStore (mixed in); gateway.stock.ledger.StockStore."""

    def _conn(self) -> Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    # --- reads ------------------------------------------------------------------------

    def stock_entry(self, entry_id: int) -> StockEntry | None:
        row = self._conn().execute(f"SELECT {_COLUMNS} {_FROM} WHERE e.id = ?", (entry_id,))
        found = row.fetchone()
        return None if found is None else _entry(found)

    def stock_entries(
        self, site: str, depot: str, before_id: int | None, limit: int
    ) -> list[StockEntry]:
        rows = self._conn().execute(
            f"SELECT {_COLUMNS} {_FROM} WHERE e.site = ? AND e.depot = ? AND e.id < ? "
            "ORDER BY e.id DESC LIMIT ?",
            (site, depot, before_id if before_id is not None else 2**63 - 1, limit),
        )
        return [_entry(row) for row in rows]

    def stock_on_hand(self, site: str, depot: str) -> list[OnHand]:
        rows = self._conn().execute(
            "SELECT item, lot, designated_to, expires_on, steps, unit FROM stock_on_hand "
            "WHERE site = ? AND depot = ? AND steps != 0 "
            "ORDER BY item, expires_on NULLS FIRST, lot, designated_to",  # SQLite's NULL order
            (site, depot),
        )
        return [
            OnHand(item=item, lot=lot, designated_to=designee, quantity=of_steps(steps, unit),
                   expires_on=date.fromisoformat(expires) if expires else None, unit=unit)
            for item, lot, designee, expires, steps, unit in rows
        ]  # fmt: skip

    def stock_in_transit(self, site: str, depot: str | None) -> list[InTransit]:
        """Transfers from or to `site/depot` (None: every depot) not yet received nor cancelled."""
        # Each side of a depot's by its own index (0021, 0014): with an OR, SQLite walked
        # every transfer of the site (59 ms a depot at 400,000 entries; 6 ms so).
        mine = "SELECT id FROM stock_entries WHERE kind = 'transfer-out' AND site = ?"
        params: tuple[str, ...] = (site,)
        if depot is not None:
            mine = f"{mine} AND depot = ? UNION ALL {mine} AND peer_depot = ?"
            params = (site, depot, site, depot)
        rows = self._conn().execute(
            "SELECT o.id, o.depot, o.peer_depot, o.item, o.lot, o.designated_to, o.steps, o.unit, "  # noqa: S608
            f"o.at FROM stock_entries o WHERE o.id IN ({mine}) "
            "AND NOT EXISTS (SELECT 1 FROM stock_entries r WHERE r.reverses = o.id) "
            "AND NOT EXISTS (SELECT 1 FROM stock_entries i WHERE i.transfer_of = o.id "
            "AND NOT EXISTS (SELECT 1 FROM stock_entries v WHERE v.reverses = i.id)) "
            "ORDER BY o.id",
            params,
        )
        return [
            InTransit(entry_id=entry_id, from_depot=source, to_depot=target, item=item, lot=lot,
                      designated_to=designee, quantity=-of_steps(steps, unit), unit=unit,
                      at=datetime.fromisoformat(at))
            for entry_id, source, target, item, lot, designee, steps, unit, at in rows
        ]  # fmt: skip

    def stock_issued(self, site: str, depot: str, since: datetime) -> dict[str, Decimal]:
        rows = self._conn().execute(
            "SELECT e.item, e.unit, SUM(e.steps) FROM stock_entries e WHERE e.site = ? "
            "AND e.depot = ? AND e.kind = 'issue' AND e.at >= ? "
            "AND NOT EXISTS (SELECT 1 FROM stock_entries r WHERE r.reverses = e.id) "
            "GROUP BY e.item, e.unit",
            (site, depot, utc_text(since)),
        )
        issued: dict[str, Decimal] = {}
        for item, unit, steps in rows:
            issued[item] = issued.get(item, Decimal(0)) - of_steps(steps, unit)
        return issued

    # --- the one write ----------------------------------------------------------------

    def stock_write(
        self, movement: Movement, who: str, at: datetime, today: date
    ) -> tuple[StockEntry, bool]:
        fingerprint = movement.fingerprint()
        with self._transaction() as conn:
            first = conn.execute(
                "SELECT id, request_sha256 FROM stock_entries "
                "WHERE site = ? AND depot = ? AND idem_key = ?",
                (movement.site, movement.depot, movement.key),
            ).fetchone()
            if first is not None:
                if first[1] != fingerprint:
                    raise StockRefused(
                        409, "idempotency-conflict", "idempotency_key",
                        f"the key {movement.key!r} was used for another movement at this depot",
                    )  # fmt: skip
                entry_id, repeat = first[0], True
            else:
                row = _prepare(conn, movement, today)
                cursor = conn.execute(_INSERT, (*row, who, utc_text(at), movement.key, fingerprint))
                entry_id, repeat = cursor.fetchall()[0][0], False
        entry = self.stock_entry(int(entry_id or 0))
        assert entry is not None
        return entry, repeat

    # --- a depot's day (the daily stock report) ----------------------------------------

    def stock_movements(
        self, site: str, depot: str, since: datetime, until: datetime
    ) -> dict[tuple[str, EntryKind], Decimal]:
        # A range scan of stock_entries_by_time (0019); the entry a reversal cancels is
        # found by its primary key.
        rows = self._conn().execute(
            "SELECT e.item, e.unit, COALESCE(o.kind, e.kind), SUM(e.steps) "
            "FROM stock_entries e LEFT JOIN stock_entries o ON o.id = e.reverses "
            "WHERE e.site = ? AND e.depot = ? AND e.at >= ? AND e.at < ? "
            "GROUP BY e.item, e.unit, COALESCE(o.kind, e.kind)",
            (site, depot, utc_text(since), utc_text(until)),
        )
        moved: dict[tuple[str, EntryKind], Decimal] = {}
        for item, unit, kind, steps in rows:
            moved[item, kind] = moved.get((item, kind), Decimal(0)) + of_steps(steps, unit)
        return moved

    def stock_on_hand_at(self, site: str, depot: str, at: datetime) -> list[OnHand]:
        rows = self._conn().execute(
            "SELECT e.item, e.lot, e.designated_to, l.expires_on, SUM(e.steps), e.unit "
            "FROM stock_entries e LEFT JOIN stock_lots l ON l.item = e.item AND l.lot = e.lot "
            "WHERE e.site = ? AND e.depot = ? AND e.at < ? "
            # l.expires_on is grouped too: one per lot, so the same groups, and PostgreSQL
            # refuses a selected column neither grouped nor aggregated.
            "GROUP BY e.item, e.lot, e.designated_to, e.unit, l.expires_on "
            "HAVING SUM(e.steps) != 0 "
            "ORDER BY e.item, l.expires_on NULLS FIRST, e.lot, e.designated_to",
            (site, depot, utc_text(at)),
        )
        return [
            OnHand(item=item, lot=lot, designated_to=designee, quantity=of_steps(steps, unit),
                   expires_on=date.fromisoformat(expires) if expires else None, unit=unit)
            for item, lot, designee, expires, steps, unit in rows
        ]  # fmt: skip


def _prepare(conn: Connection, m: Movement, today: date) -> tuple[Any, ...]:
    """The row of `m` (without who, at and key), once every rule holds.

    Raises:
        StockRefused: the first rule `m` breaks.
    """
    item, unit, steps, lot, designee = m.item, m.unit, m.steps, m.lot, m.designated_to
    peer: str | None = m.to_depot
    if m.kind == "receipt":
        _keep_lot(conn, m)
    elif m.kind in ("issue", "transfer-out", "adjustment"):
        expires = _lot_expiry(conn, item, lot)
        if m.kind == "issue":
            if expires is not None and expires < today:
                raise StockRefused(
                    422, "lot-expired", "lot", f"lot {lot!r} of {item} expired on {expires}"
                )
            if (m.application_id or "").startswith(APPLICATION_PREFIX):
                check_application_issue(conn, m)  # within this transaction: no race
            if designee and designee != m.applicant_unit:
                raise StockRefused(
                    422, "designated-elsewhere", "applicant_unit",
                    f"this stock was donated for {designee!r}; it is issued to that unit only",
                )  # fmt: skip
    elif m.kind == "transfer-in":
        out = _transfer_to_receive(conn, m)
        item, lot, designee, unit, steps, peer = (
            out["item"], out["lot"], out["designated_to"], out["unit"], -out["steps"], out["depot"]
        )  # fmt: skip
    else:  # reversal
        original = _entry_to_reverse(conn, m)
        item, lot, designee, unit = (
            original["item"], original["lot"], original["designated_to"], original["unit"]
        )  # fmt: skip
        steps, peer = -original["steps"], original["peer_depot"]
    if steps < 0:
        held = _on_hand(conn, site=m.site, depot=m.depot, item=item, lot=lot, designee=designee)
        if held + steps < 0:
            raise StockRefused(
                409, "insufficient-stock", "quantity",
                f"{of_steps(-steps, unit)} {unit} asked of {item} lot {lot or '-'}, "
                f"{of_steps(held, unit)} on hand",
            )  # fmt: skip
    return (
        m.kind, m.site, m.depot, item, lot, designee, steps, unit, m.source, m.applicant_unit,
        m.approver, m.application_id, m.reason, peer, m.transfer_of, m.reverses,
    )  # fmt: skip


def _keep_lot(conn: Connection, m: Movement) -> None:
    """Record a receipt's lot and expiry; a known lot must come with its known expiry."""
    if m.expires_on is None:
        return
    known = _lot_expiry(conn, m.item, m.lot, must_exist=False)
    if known is None:
        conn.execute(
            "INSERT INTO stock_lots (item, lot, expires_on) VALUES (?, ?, ?)",
            (m.item, m.lot, m.expires_on.isoformat()),
        )
    elif known != m.expires_on:
        raise StockRefused(
            422, "lot-expiry-differs", "expires_on",
            f"lot {m.lot!r} of {m.item} expires on {known}, not {m.expires_on}",
        )  # fmt: skip


def _lot_expiry(conn: Connection, item: str, lot: str, *, must_exist: bool = True) -> date | None:
    if not lot:
        return None
    row = conn.execute(
        "SELECT expires_on FROM stock_lots WHERE item = ? AND lot = ?", (item, lot)
    ).fetchone()
    if row is None:
        if must_exist:
            raise StockRefused(422, "unknown-lot", "lot", f"no lot {lot!r} of {item} was received")
        return None
    return date.fromisoformat(row[0])


def _on_hand(conn: Connection, *, site: str, depot: str, item: str, lot: str, designee: str) -> int:
    row = conn.execute(
        "SELECT COALESCE(SUM(steps), 0) FROM stock_entries WHERE site = ? AND depot = ? "
        "AND item = ? AND lot = ? AND designated_to = ?",
        (site, depot, item, lot, designee),
    ).fetchone()
    return int(row[0])


def _row(conn: Connection, entry_id: int | None) -> dict[str, Any] | None:
    cursor = conn.execute("SELECT * FROM stock_entries WHERE id = ?", (entry_id,))
    found = cursor.fetchone()
    if found is None:
        return None
    return dict(zip([c[0] for c in cursor.description], found, strict=True))


def _reversed(conn: Connection, entry_id: int) -> bool:
    found = conn.execute("SELECT 1 FROM stock_entries WHERE reverses = ?", (entry_id,))
    return found.fetchone() is not None


def _received(conn: Connection, transfer_id: int) -> bool:
    """Whether a transfer-out has a transfer-in that is not reversed."""
    found = conn.execute(
        "SELECT 1 FROM stock_entries i WHERE i.transfer_of = ? AND NOT EXISTS "
        "(SELECT 1 FROM stock_entries r WHERE r.reverses = i.id)",
        (transfer_id,),
    )
    return found.fetchone() is not None


def _transfer_to_receive(conn: Connection, m: Movement) -> dict[str, Any]:
    out = _row(conn, m.transfer_of)
    if (
        out is None or out["kind"] != "transfer-out" or out["site"] != m.site
        or out["peer_depot"] != m.depot
    ):  # fmt: skip
        raise StockRefused(
            404, "unknown-transfer", "transfer_id",
            f"no transfer {m.transfer_of} is on its way to {m.site}/{m.depot}",
        )  # fmt: skip
    if _reversed(conn, out["id"]):
        raise StockRefused(
            409, "transfer-cancelled", "transfer_id", f"transfer {out['id']} was reversed"
        )
    if _received(conn, out["id"]):
        raise StockRefused(
            409, "transfer-received", "transfer_id", f"transfer {out['id']} was received already"
        )
    return out


def _entry_to_reverse(conn: Connection, m: Movement) -> dict[str, Any]:
    original = _row(conn, m.reverses)
    if original is None or original["site"] != m.site or original["depot"] != m.depot:
        raise StockRefused(
            404, "unknown-entry", "entry_id",
            f"no entry {m.reverses} is in the ledger of {m.site}/{m.depot}",
        )  # fmt: skip
    if original["kind"] == "reversal":
        raise StockRefused(
            409, "reversal-of-reversal", "entry_id",
            f"entry {original['id']} is a reversal; write the movement again instead",
        )  # fmt: skip
    if _reversed(conn, original["id"]):
        raise StockRefused(
            409, "already-reversed", "entry_id", f"entry {original['id']} was reversed already"
        )
    if original["kind"] == "transfer-out" and _received(conn, original["id"]):
        raise StockRefused(
            409, "transfer-received", "entry_id",
            f"transfer {original['id']} was received; the receiving depot reverses its "
            "transfer-in first",
        )  # fmt: skip
    return original


def _entry(row: tuple[Any, ...]) -> StockEntry:
    (entry_id, kind, site, depot, item, lot, designee, expires, steps, unit, source, applicant,
     approver, application, reason, peer, transfer_of, reverses, reversed_by, who, at,
     key) = row  # fmt: skip
    return StockEntry(
        id=entry_id, kind=kind, site=site, depot=depot, item=item, lot=lot,
        designated_to=designee, expires_on=date.fromisoformat(expires) if expires else None,
        quantity=of_steps(steps, unit), unit=unit, source=source, applicant_unit=applicant,
        approver=approver, application_id=application, reason=reason, peer_depot=peer,
        transfer_of=transfer_of, reverses=reverses, reversed_by=reversed_by, who=who,
        at=datetime.fromisoformat(at), idempotency_key=key,
    )  # fmt: skip
