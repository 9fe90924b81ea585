"""The supply level's tables in the store: price observations, tight days, the level.

Price observations are immutable (triggers of migration 0020, and the PostgreSQL
baseline's); a write looks its key up and inserts in one transaction under the store's
write lock, as the ledger does.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Any

from gateway.stock.ledger import StockRefused
from gateway.stock.prices import PriceDraft, PriceObservation, yuan_of
from gateway.stock.supply_level import SupplyState
from gateway.store.records import utc_text
from gateway.store.sql import Connection

_SELECT = "SELECT id, site, item, unit, price_fen, observed_on, market, who, at FROM stock_prices"


class SupplyRecords:
    """Prices, tight days and the supply level of SqlStore (mixed in);
    gateway.stock.supply_level.SupplyStore."""

    def _conn(self) -> Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def price_write(
        self, draft: PriceDraft, who: str, at: datetime
    ) -> tuple[PriceObservation, bool]:
        fingerprint = draft.fingerprint()
        with self._transaction() as conn:
            first = conn.execute(
                "SELECT id, request_sha256 FROM stock_prices WHERE site = ? AND idem_key = ?",
                (draft.site, draft.key),
            ).fetchone()
            if first is not None:
                if first[1] != fingerprint:
                    raise StockRefused(
                        409, "idempotency-conflict", "idempotency_key",
                        f"the key {draft.key!r} was used for another price observation",
                    )  # fmt: skip
                row_id, repeat = first[0], True
            else:
                cursor = conn.execute(
                    "INSERT INTO stock_prices (site, item, unit, price_fen, observed_on, market, "
                    "who, at, idem_key, request_sha256) VALUES (?,?,?,?,?,?,?,?,?,?) RETURNING id",
                    (draft.site, draft.item, draft.unit, draft.price_fen,
                     draft.observed_on.isoformat(), draft.market, who, utc_text(at), draft.key,
                     fingerprint),
                )  # fmt: skip
                row_id, repeat = cursor.fetchall()[0][0], False
            found = conn.execute(f"{_SELECT} WHERE id = ?", (row_id,))
            return _observation(found.fetchone()), repeat

    def prices(self, site: str, since: date, until: date) -> list[PriceObservation]:
        rows = self._conn().execute(
            f"{_SELECT} WHERE site = ? AND observed_on BETWEEN ? AND ? ORDER BY id",
            (site, since.isoformat(), until.isoformat()),
        )
        return [_observation(row) for row in rows]

    def price_page(
        self, site: str, item: str | None, before_id: int | None, limit: int
    ) -> list[PriceObservation]:
        rows = self._conn().execute(
            f"{_SELECT} WHERE site = ? AND (CAST(? AS TEXT) IS NULL OR item = ?) "
            "AND id < ? ORDER BY id DESC LIMIT ?",
            (site, item, item, before_id if before_id is not None else 2**63 - 1, limit),
        )
        return [_observation(row) for row in rows]

    def record_tight_days(self, site: str, day: date, categories: set[str]) -> None:
        if not categories:
            return
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO supply_tight_days (site, day, category) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(site, day.isoformat(), category) for category in sorted(categories)],
            )

    def tight_history(self, site: str, since: date) -> dict[str, set[date]]:
        rows = self._conn().execute(
            "SELECT category, day FROM supply_tight_days WHERE site = ? AND day >= ?",
            (site, since.isoformat()),
        )
        history: dict[str, set[date]] = {}
        for category, day in rows:
            history.setdefault(category, set()).add(date.fromisoformat(day))
        return history

    def supply_state(self, site: str) -> SupplyState | None:
        found = (
            self._conn()
            .execute("SELECT level, rule, since, at FROM supply_levels WHERE site = ?", (site,))
            .fetchone()
        )
        if found is None:
            return None
        level, rule, since, at = found
        return SupplyState(site, level, rule, datetime.fromisoformat(since) if since else None,
                           datetime.fromisoformat(at))  # fmt: skip

    def save_supply_state(self, state: SupplyState) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO supply_levels (site, level, rule, since, at) VALUES (?,?,?,?,?) "
                "ON CONFLICT (site) DO UPDATE SET level = excluded.level, rule = excluded.rule, "
                "since = excluded.since, at = excluded.at",
                (state.site, state.level, state.rule,
                 utc_text(state.since) if state.since else None, utc_text(state.at)),
            )  # fmt: skip


def _observation(row: tuple[Any, ...]) -> PriceObservation:
    row_id, site, item, unit, fen, observed_on, market, who, at = row
    return PriceObservation(
        id=row_id, site=site, item=item, unit=unit, price=yuan_of(fen),
        observed_on=date.fromisoformat(observed_on), market=market, who=who,
        at=datetime.fromisoformat(at),
    )  # fmt: skip
