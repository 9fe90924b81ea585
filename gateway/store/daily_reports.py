"""Submitted daily stock reports in the store: every version kept, none changed.

A submission runs in one transaction under the store's write lock (the key looked up, the
day's newest version numbered, the row inserted), so two keepers submitting one depot's day
at once get versions 1 and 2, never two of one number.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Any

from gateway.stock.daily_report import VERSIONS_MAX, DepotFigures, Submission, SubmissionDraft
from gateway.stock.ledger import StockRefused
from gateway.store.records import utc_text
from gateway.store.sql import Connection

_COLUMNS = "site, depot, day, version, who, at, deadline, late, note, figures, idem_key"
_FROM = "FROM stock_daily_reports"
_INSERT = (
    "INSERT INTO stock_daily_reports (site, depot, day, version, who, at, deadline, late, note, "
    "figures, idem_key, request_sha256) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)


class DailyStockReports:
    """The daily stock reports of SqlStore (mixed in); daily_report.DailyReportStore."""

    def _conn(self) -> Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def stock_report_submit(self, draft: SubmissionDraft) -> tuple[Submission, bool]:
        """See DailyReportStore; 409 too-many-versions past VERSIONS_MAX of one day."""
        fingerprint = draft.fingerprint()
        with self._transaction() as conn:
            first = conn.execute(
                f"SELECT {_COLUMNS}, request_sha256 {_FROM} "
                "WHERE site = ? AND depot = ? AND idem_key = ?",
                (draft.site, draft.depot, draft.key),
            ).fetchone()
            if first is not None:
                if first[-1] != fingerprint:
                    raise StockRefused(
                        409, "idempotency-conflict", "idempotency_key",
                        f"the key {draft.key!r} was used for another submission at this depot",
                    )  # fmt: skip
                return _submission(first[:-1]), True
            (newest,) = conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM stock_daily_reports "
                "WHERE site = ? AND day = ? AND depot = ?",
                (draft.site, draft.day.isoformat(), draft.depot),
            ).fetchone()
            if newest >= VERSIONS_MAX:
                raise StockRefused(
                    409, "too-many-versions", "day",
                    f"{draft.depot}'s report of {draft.day} was submitted {newest} times already",
                )  # fmt: skip
            row = (
                draft.site, draft.depot, draft.day.isoformat(), newest + 1, draft.who,
                utc_text(draft.at), utc_text(draft.deadline), int(draft.at > draft.deadline),
                draft.note, draft.figures.model_dump_json(), draft.key,
            )  # fmt: skip
            conn.execute(_INSERT, (*row, fingerprint))
        return _submission(row), False

    def stock_report_latest(self, site: str, day: date) -> dict[str, Submission]:
        rows = self._conn().execute(
            f"SELECT {_COLUMNS} {_FROM} r WHERE site = ? AND day = ? "
            f"AND version = (SELECT MAX(version) {_FROM} n "
            "WHERE n.site = r.site AND n.day = r.day AND n.depot = r.depot)",
            (site, day.isoformat()),
        )
        return {row[1]: _submission(row) for row in rows}

    def stock_report_versions(self, site: str, depot: str, day: date) -> list[Submission]:
        rows = self._conn().execute(
            f"SELECT {_COLUMNS} {_FROM} WHERE site = ? AND day = ? AND depot = ? ORDER BY version",
            (site, day.isoformat(), depot),
        )
        return [_submission(row) for row in rows]

    def stock_reports_submitted(self, site: str, day: date) -> set[str]:
        rows = self._conn().execute(
            "SELECT DISTINCT depot FROM stock_daily_reports WHERE site = ? AND day = ?",
            (site, day.isoformat()),
        )
        return {depot for (depot,) in rows}


def _submission(row: tuple[Any, ...]) -> Submission:
    site, depot, day, version, who, at, deadline, late, note, figures, key = row
    return Submission(
        site=site, depot=depot, day=date.fromisoformat(day), version=version, who=who,
        at=datetime.fromisoformat(at), deadline=datetime.fromisoformat(deadline),
        late=bool(late), note=note, figures=DepotFigures.model_validate_json(figures),
        idempotency_key=key,
    )  # fmt: skip
