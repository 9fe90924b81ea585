"""Depot excursion state in the SQLite store: where each zone's alarm conditions stand."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from edge.contract.events import DepotReading
from gateway.store.records import utc_text

# inside: no excursion; out: one under way, not yet alarmed; raised: alarmed, not yet clear.
ExcursionPhase = Literal["inside", "out", "raised"]


@dataclass(frozen=True)
class Excursion:
    """Where one alarm condition of one depot zone stands, by the readings' own times.

    `since` is the time of the excursion's first reading outside (None when inside);
    `last_at` the newest reading evaluated: a reading not newer is not evaluated again.
    """

    site: str
    node: str
    zone: str
    condition: str
    phase: ExcursionPhase
    since: datetime | None
    last_at: datetime


class Excursions:
    """Depot excursion state of SqliteStore (mixed in)."""

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def excursions(self, site: str, node: str) -> dict[tuple[str, str], Excursion]:
        rows = self._conn().execute(
            "SELECT zone, condition, phase, since, last_at FROM depot_excursions "
            "WHERE site=? AND node=?",
            (site, node),
        )
        return {
            (zone, condition): Excursion(
                site, node, zone, condition, phase,
                datetime.fromisoformat(since) if since else None, datetime.fromisoformat(last_at),
            )
            for zone, condition, phase, since, last_at in rows
        }  # fmt: skip

    def depot_readings_after(
        self, site: str, node: str, zones: Sequence[str], after: datetime
    ) -> list[tuple[DepotReading, datetime]]:
        marks = ",".join("?" * len(zones))
        sql = (
            "SELECT r.sensor, r.bus_address, r.at, r.status, r.temperature_c, "  # noqa: S608
            "r.humidity_pct, e.received_at FROM depot_readings r JOIN events e USING (event_id) "
            f"WHERE r.site=? AND r.node=? AND r.sensor IN ({marks}) AND r.at > ? ORDER BY r.at"
        )
        rows = self._conn().execute(sql, (site, node, *zones, utc_text(after)))
        return [
            (DepotReading(sensor=sensor, bus_address=address, at=datetime.fromisoformat(at),
                          status=status, temperature_c=t, humidity_pct=h),
             datetime.fromisoformat(received_at))
            for sensor, address, at, status, t, h, received_at in rows
        ]  # fmt: skip

    def save_excursions(self, states: Sequence[Excursion]) -> None:
        if not states:
            return
        with self._transaction() as conn:
            # Never back in time: a writer that read older state loses to the newer one.
            conn.executemany(
                "INSERT INTO depot_excursions (site, node, zone, condition, phase, since, "
                "last_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT (site, node, zone, condition) "
                "DO UPDATE SET phase=excluded.phase, since=excluded.since, "
                "last_at=excluded.last_at WHERE excluded.last_at > depot_excursions.last_at",
                [
                    (s.site, s.node, s.zone, s.condition, s.phase,
                     utc_text(s.since) if s.since else None, utc_text(s.last_at))
                    for s in states
                ],
            )  # fmt: skip
