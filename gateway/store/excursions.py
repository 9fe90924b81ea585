"""Depot excursion state in the store, either engine: where each zone's conditions stand."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from edge.contract.events import DepotReading
from gateway.store.records import utc_text
from gateway.store.sql import Connection

# inside: no excursion; out: one under way, not yet alarmed; raised: alarmed, not yet clear.
ExcursionPhase = Literal["inside", "out", "raised"]


@dataclass(frozen=True)
class Excursion:
    """Where one alarm condition of one depot zone stands, by the readings' own times.

    `since` is the time of the excursion's first reading outside (None when inside);
    `last_at` the newest reading evaluated: a reading not newer is not evaluated again.
    Cumulative conditions keep the local `day` their sum is for and its seconds in the
    alarm range (`day_out_s`); cumulative and rate conditions the reading they compare the
    next one with (`ref_at`, `ref_value`).
    """

    site: str
    node: str
    zone: str
    condition: str
    phase: ExcursionPhase
    since: datetime | None
    last_at: datetime
    day: str | None = None
    day_out_s: float = 0.0
    ref_at: datetime | None = None
    ref_value: float | None = None


class Excursions:
    """Depot excursion state of SqlStore (mixed in)."""

    def _conn(self) -> Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def excursions(self, site: str, node: str) -> dict[tuple[str, str], Excursion]:
        rows = self._conn().execute(
            "SELECT zone, condition, phase, since, last_at, day, day_out_s, ref_at, ref_value "
            "FROM depot_excursions WHERE site=? AND node=?",
            (site, node),
        )
        return {
            (zone, condition): Excursion(
                site, node, zone, condition, phase, _time(since), datetime.fromisoformat(last_at),
                day, day_out_s, _time(ref_at), ref_value,
            )
            for zone, condition, phase, since, last_at, day, day_out_s, ref_at, ref_value in rows
        }  # fmt: skip

    def excursions_last_at(self, site: str, node: str) -> datetime | None:
        row = (
            self._conn()
            .execute(
                "SELECT MAX(last_at) FROM depot_excursions WHERE site=? AND node=?", (site, node)
            )
            .fetchone()
        )
        return datetime.fromisoformat(row[0]) if row[0] else None

    def zones_last_evaluated(self) -> dict[tuple[str, str, str], datetime]:
        rows = self._conn().execute(
            "SELECT site, node, zone, MAX(last_at) FROM depot_excursions GROUP BY site, node, zone"
        )
        return {(site, node, zone): datetime.fromisoformat(at) for site, node, zone, at in rows}

    def depot_readings_after(
        self, site: str, node: str, zones: Sequence[str], after: datetime
    ) -> list[tuple[DepotReading, datetime]]:
        marks = ",".join("?" * len(zones))
        # Readings of one time in the order they arrived, whichever engine plans the sort.
        sql = (
            "SELECT r.sensor, r.bus_address, r.at, r.status, r.temperature_c, "  # noqa: S608
            "r.humidity_pct, e.received_at FROM depot_readings r JOIN events e USING (event_id) "
            f"WHERE r.site=? AND r.node=? AND r.sensor IN ({marks}) AND r.at > ? "
            "ORDER BY r.at, r.arrival"
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
                "last_at, day, day_out_s, ref_at, ref_value) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (site, node, zone, condition) DO UPDATE SET phase=excluded.phase, "
                "since=excluded.since, last_at=excluded.last_at, day=excluded.day, "
                "day_out_s=excluded.day_out_s, ref_at=excluded.ref_at, "
                "ref_value=excluded.ref_value WHERE excluded.last_at > depot_excursions.last_at",
                [
                    (s.site, s.node, s.zone, s.condition, s.phase,
                     utc_text(s.since) if s.since else None, utc_text(s.last_at),
                     s.day, s.day_out_s, utc_text(s.ref_at) if s.ref_at else None, s.ref_value)
                    for s in states
                ],
            )  # fmt: skip


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
