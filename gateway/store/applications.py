"""Applications for supplies in the store: filed once, decided once, allocated once.

An application, its decision and its allocation lines are three append-only tables
(migration 0018); the state is derived. What a plan may allocate is on hand less what
approved allocations still hold back (allocated at a depot, not yet issued there), read
and written under the store's one write lock when a plan is approved. An issue against an
`APL-<n>` id is checked here too, inside the ledger's own write transaction
(check_application_issue), so two keepers cannot both issue its last allocated unit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from gateway.stock.allocation import Plan
from gateway.stock.applications import (
    PENDING_MAX,
    AllocationInputs,
    AllocationLine,
    Application,
    ApplicationDraft,
    ApplicationRefused,
    ApplicationState,
    Location,
    application_number,
)
from gateway.stock.catalogue import UNIT_DECIMALS
from gateway.stock.ledger import Movement, OnHand, of_steps
from gateway.store.records import utc_text
from gateway.store.sql import Connection

_STATE = (
    "CASE WHEN d.decision IS NULL THEN 'pending' WHEN d.decision = 'rejected' THEN 'rejected' "
    "WHEN COALESCE((SELECT -SUM(e.steps) FROM stock_entries e WHERE e.site = a.site "
    "AND e.kind = 'issue' AND e.application_id = 'APL-' || a.id AND NOT EXISTS "
    "(SELECT 1 FROM stock_entries r WHERE r.reverses = e.id)), 0) >= "
    "(SELECT SUM(x.steps) FROM stock_allocations x WHERE x.application_id = a.id) "
    "THEN 'fulfilled' ELSE 'approved' END"
)
_SELECT = (
    "SELECT a.id, a.site, a.applicant_unit, a.place_kind, a.urgency, a.medical, "  # noqa: S608
    f"a.item, a.steps, a.unit, a.lat, a.lon, a.note, a.who, a.at, {_STATE} AS state, "
    "d.who, d.at, d.reason, "
    "d.plan_sha256 FROM stock_applications a "
    "LEFT JOIN stock_application_decisions d ON d.application_id = a.id"
)
_ISSUED = (
    "SELECT e.application_id, e.depot, -SUM(e.steps) FROM stock_entries e WHERE e.site = ? "
    "AND e.kind = 'issue' AND e.application_id IN ({}) AND NOT EXISTS "
    "(SELECT 1 FROM stock_entries r WHERE r.reverses = e.id) GROUP BY e.application_id, e.depot"
)


def _steps(quantity: Decimal, unit: str) -> int:
    return int(quantity.scaleb(UNIT_DECIMALS[unit]))


class ApplicationBook:
    """Applications and their allocation in SqlStore (mixed in);
    gateway.stock.applications.ApplicationStore."""

    def _conn(self) -> Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def application_file(
        self, draft: ApplicationDraft, who: str, at: datetime
    ) -> tuple[Application, bool]:
        fingerprint = draft.fingerprint()
        with self._transaction() as conn:
            first = conn.execute(
                "SELECT id, request_sha256 FROM stock_applications WHERE site = ? AND idem_key = ?",
                (draft.site, draft.key),
            ).fetchone()
            if first is not None:
                if first[1] != fingerprint:
                    raise ApplicationRefused(
                        409, "idempotency-conflict", "idempotency_key",
                        f"the key {draft.key!r} was used for another application at this site",
                    )  # fmt: skip
                number, repeat = int(first[0]), True
            else:
                number, repeat = _insert(conn, draft, who, at, fingerprint), False
        found = self.application(draft.site, f"APL-{number}")
        assert found is not None
        return found, repeat

    def application(self, site: str, application_id: str) -> Application | None:
        number = application_number(application_id)
        if number is None:
            return None
        conn = self._conn()
        row = conn.execute(f"{_SELECT} WHERE a.site = ? AND a.id = ?", (site, number)).fetchone()
        return None if row is None else _with_lines(conn, [row], None)[0]

    def applications(
        self, site: str, *, state: ApplicationState | None, item: str | None,
        depots: frozenset[str] | None, before: int | None, limit: int,
    ) -> list[Application]:  # fmt: skip
        where, args = ["a.site = ?", "a.id < ?"], [site, before or 2**63 - 1]
        if item is not None:
            where.append("a.item = ?")
            args.append(item)
        if depots is not None:
            where.append(
                "EXISTS (SELECT 1 FROM stock_allocations x "  # noqa: S608
                f"WHERE x.application_id = a.id AND x.depot IN ({','.join('?' * len(depots))}))"
            )
            args += sorted(depots)
        query = f"{_SELECT} WHERE {' AND '.join(where)}"
        if state is not None:
            query = f"SELECT * FROM ({query}) AS found WHERE state = ?"  # noqa: S608
            args.append(state)
        conn = self._conn()
        rows = conn.execute(f"{query} ORDER BY 1 DESC LIMIT ?", (*args, limit)).fetchall()
        return _with_lines(conn, rows, depots)

    def allocation_inputs(self, site: str, item: str, depots: Sequence[str]) -> AllocationInputs:
        return _inputs(self._conn(), site, item, depots)

    def allocation_approve(
        self, site: str, item: str, *, depots: Sequence[str],
        plan_of: Callable[[AllocationInputs], Plan], fingerprint: str, who: str, at: datetime,
    ) -> Plan:  # fmt: skip
        with self._transaction() as conn:
            plan = plan_of(_inputs(conn, site, item, depots))
            if plan.fingerprint != fingerprint:
                done = conn.execute(
                    "SELECT 1 FROM stock_application_decisions WHERE plan_sha256 = ?",
                    (fingerprint,),
                ).fetchone()
                if done is not None:
                    raise ApplicationRefused(
                        409, "plan-approved", "fingerprint", "this plan was approved already"
                    )
                raise ApplicationRefused(
                    409, "plan-changed", "fingerprint",
                    "the applications or the stock changed since this plan was made: "
                    "ask for the plan again",
                )  # fmt: skip
            if not plan.lines:
                raise ApplicationRefused(
                    409, "plan-empty", "fingerprint", "the plan allocates nothing to approve"
                )
            for application_id in dict.fromkeys(line.application_id for line in plan.lines):
                conn.execute(
                    "INSERT INTO stock_application_decisions (application_id, decision, who, at, "
                    "plan_sha256) VALUES (?, 'approved', ?, ?, ?)",
                    (application_number(application_id), who, utc_text(at), fingerprint),
                )
            conn.executemany(
                "INSERT INTO stock_allocations (application_id, site, depot, item, lot, "
                "designated_to, steps, unit) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(application_number(ln.application_id), site, ln.depot, item, ln.lot,
                  ln.designated_to, _steps(ln.quantity, plan.unit), plan.unit)
                 for ln in plan.lines],
            )  # fmt: skip
        return plan

    def application_reject(
        self, site: str, application_id: str, reason: str, who: str, at: datetime
    ) -> Application:
        number = application_number(application_id)
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT d.decision FROM stock_applications a LEFT JOIN "
                "stock_application_decisions d ON d.application_id = a.id "
                "WHERE a.site = ? AND a.id = ?",
                (site, number),
            ).fetchone()
            if row is None:
                raise ApplicationRefused(
                    404, "unknown-application", "application_id",
                    f"no application {application_id} at site {site}",
                )  # fmt: skip
            if row[0] is not None:
                raise ApplicationRefused(
                    409, "application-decided", "application_id",
                    f"{application_id} was {row[0]} already",
                )  # fmt: skip
            conn.execute(
                "INSERT INTO stock_application_decisions (application_id, decision, who, at, "
                "reason) VALUES (?, 'rejected', ?, ?, ?)",
                (number, who, utc_text(at), reason),
            )
        found = self.application(site, application_id)
        assert found is not None
        return found


def check_application_issue(conn: Connection, m: Movement) -> None:
    """Refuse an issue against application `m.application_id` (APL-<n>) that its approved
    allocation at this depot does not cover. Runs inside the ledger's write transaction.

    Raises:
        ApplicationRefused: the first rule the issue breaks (the field named).
    """
    name = m.application_id or ""
    number = application_number(name)
    row = conn.execute(
        "SELECT a.item, a.applicant_unit, d.decision, d.who FROM stock_applications a "
        "LEFT JOIN stock_application_decisions d ON d.application_id = a.id "
        "WHERE a.site = ? AND a.id = ?",
        (m.site, number),
    ).fetchone()
    if row is None:
        raise ApplicationRefused(
            422, "unknown-application", "application_id",
            f"no application {name} at site {m.site} (ids of the form APL-<n> are the "
            "gateway's own)",
        )  # fmt: skip
    item, applicant, decision, approver = row
    if decision != "approved":
        raise ApplicationRefused(
            409, "application-not-approved", "application_id",
            f"{name} is {decision or 'pending'}, not approved",
        )  # fmt: skip
    if item != m.item:
        raise ApplicationRefused(422, "item-differs", "item", f"{name} is for {item}")
    if applicant != m.applicant_unit:
        raise ApplicationRefused(
            422, "applicant-differs", "applicant_unit", f"{name} is of {applicant!r}"
        )
    if approver != m.approver:
        raise ApplicationRefused(
            422, "approver-differs", "approver", f"{name} was approved by {approver!r}"
        )
    allocated = conn.execute(
        "SELECT COALESCE(SUM(steps), 0) FROM stock_allocations WHERE application_id = ? "
        "AND depot = ?",
        (number, m.depot),
    ).fetchone()[0]
    if not allocated:
        raise ApplicationRefused(
            409, "not-allocated-here", "application_id",
            f"{name} has no allocation at {m.site}/{m.depot}",
        )  # fmt: skip
    issued = _issued(conn, m.site, [name]).get((name, m.depot), 0)
    if issued - m.steps > allocated:
        raise ApplicationRefused(
            409, "over-allocation", "quantity",
            f"{name} is allocated {of_steps(allocated, m.unit)} {m.unit} at {m.depot}, "
            f"{of_steps(issued, m.unit)} issued already",
        )  # fmt: skip


def _insert(conn: Connection, draft: ApplicationDraft, who: str, at: datetime,
            fingerprint: str) -> int:  # fmt: skip
    pending = conn.execute(
        "SELECT COUNT(*) FROM stock_applications a WHERE a.site = ? AND a.item = ? AND NOT "
        "EXISTS (SELECT 1 FROM stock_application_decisions d WHERE d.application_id = a.id)",
        (draft.site, draft.item),
    ).fetchone()[0]
    if pending >= PENDING_MAX:
        raise ApplicationRefused(
            409, "too-many-pending", "item",
            f"{PENDING_MAX} applications of {draft.item} are pending at {draft.site}: "
            "approve or reject some first",
        )  # fmt: skip
    where = draft.location
    cursor = conn.execute(
        "INSERT INTO stock_applications (site, applicant_unit, place_kind, urgency, medical, "
        "item, steps, unit, lat, lon, note, who, at, idem_key, request_sha256) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (draft.site, draft.applicant_unit, draft.place_kind, draft.urgency, int(draft.medical),
         draft.item, _steps(draft.quantity, draft.unit), draft.unit,
         where and where.lat, where and where.lon, draft.note, who, utc_text(at), draft.key,
         fingerprint),
    )  # fmt: skip
    return int(cursor.fetchall()[0][0])


def _issued(conn: Connection, site: str, names: Sequence[str]) -> dict[tuple[str, str], int]:
    """Per (application id, depot), the steps issued against it net of reversals."""
    if not names:
        return {}
    rows = conn.execute(_ISSUED.format(",".join("?" * len(names))), (site, *names))
    return {(name, depot): int(steps) for name, depot, steps in rows}


def _lines(
    conn: Connection, numbers: Sequence[int], depots: frozenset[str] | None
) -> dict[int, list[AllocationLine]]:
    found: dict[int, list[AllocationLine]] = {}
    if not numbers:
        return found
    rows = conn.execute(
        "SELECT x.application_id, x.depot, x.item, x.lot, x.designated_to, "  # noqa: S608
        "l.expires_on, x.steps, x.unit FROM stock_allocations x LEFT JOIN stock_lots l "
        "ON l.item = x.item AND l.lot = x.lot "
        f"WHERE x.application_id IN ({','.join('?' * len(numbers))}) ORDER BY x.id",
        tuple(numbers),
    )
    for number, depot, item, lot, designee, expires, steps, unit in rows:
        if depots is None or depot in depots:
            found.setdefault(number, []).append(AllocationLine(
                application_id=f"APL-{number}", depot=depot, item=item, lot=lot,
                designated_to=designee, expires_on=date.fromisoformat(expires) if expires else None,
                quantity=of_steps(steps, unit), unit=unit,
            ))  # fmt: skip
    return found


def _with_lines(
    conn: Connection, rows: Iterable[tuple[Any, ...]], depots: frozenset[str] | None
) -> list[Application]:
    """Applications of `rows` with their allocation lines (at `depots` only, if given) and
    what was allocated and issued over those lines' depots."""
    rows = list(rows)
    lines = _lines(conn, [row[0] for row in rows], depots)
    issued = _issued(conn, rows[0][1], [f"APL-{row[0]}" for row in rows]) if rows else {}
    found = []
    for (number, site, applicant, place, urgency, medical, item, steps, unit, lat, lon, note,
         who, at, state, decided_by, decided_at, reason, plan) in rows:  # fmt: skip
        mine = lines.get(number, [])
        shown = {line.depot for line in mine}
        out = sum(s for (name, depot), s in issued.items()
                  if name == f"APL-{number}" and (depots is None or depot in shown))  # fmt: skip
        found.append(Application(
            id=f"APL-{number}", site=site, applicant_unit=applicant, place_kind=place,
            urgency=urgency, medical=bool(medical), item=item, quantity=of_steps(steps, unit),
            unit=unit, location=None if lat is None else Location(lat=lat, lon=lon), note=note,
            state=state, who=who, at=datetime.fromisoformat(at), decided_by=decided_by,
            decided_at=datetime.fromisoformat(decided_at) if decided_at else None,
            reason=reason, plan=plan, allocated=sum((ln.quantity for ln in mine), Decimal(0)),
            issued=of_steps(out, unit), allocations=tuple(mine),
        ))  # fmt: skip
    return found


def _inputs(conn: Connection, site: str, item: str, depots: Sequence[str]) -> AllocationInputs:
    """The pending applications of `item` at `site` and, per depot, on hand less what
    approved allocations hold back there (each application's lines, in order, less what
    was issued against it at that depot)."""
    rows = conn.execute(
        f"{_SELECT} WHERE a.site = ? AND a.item = ? "
        "AND d.decision IS NULL ORDER BY a.id LIMIT ?",  # pending: no decision
        (site, item, PENDING_MAX),
    ).fetchall()
    held_back = _held_back(conn, site, item)
    available: dict[str, tuple[OnHand, ...]] = {}
    for depot in depots:
        positions = conn.execute(
            "SELECT lot, designated_to, expires_on, steps, unit FROM stock_on_hand "
            "WHERE site = ? AND depot = ? AND item = ? AND steps != 0 "
            "ORDER BY expires_on NULLS FIRST, lot, designated_to",  # SQLite's NULL order
            (site, depot, item),
        )
        available[depot] = tuple(
            OnHand(item=item, lot=lot, designated_to=designee,
                   expires_on=date.fromisoformat(expires) if expires else None, unit=unit,
                   quantity=of_steps(max(0, steps - held_back.get((depot, lot, designee), 0)),
                                     unit))
            for lot, designee, expires, steps, unit in positions
            if steps - held_back.get((depot, lot, designee), 0) > 0
        )  # fmt: skip
    return AllocationInputs(applications=tuple(_with_lines(conn, rows, None)), available=available)


def _held_back(conn: Connection, site: str, item: str) -> dict[tuple[str, str, str], int]:
    """Per (depot, lot, designee), the steps approved allocations still hold back."""
    lines = conn.execute(
        "SELECT application_id, depot, lot, designated_to, steps FROM stock_allocations "
        "WHERE site = ? AND item = ? ORDER BY id",
        (site, item),
    ).fetchall()
    rows = conn.execute(
        "SELECT e.application_id, e.depot, -SUM(e.steps) FROM stock_entries e WHERE e.site = ? "
        "AND e.item = ? AND e.kind = 'issue' AND e.application_id LIKE 'APL-%' AND NOT EXISTS "
        "(SELECT 1 FROM stock_entries r WHERE r.reverses = e.id) "
        "GROUP BY e.application_id, e.depot",
        (site, item),
    )
    issued = {(name, depot): int(steps) for name, depot, steps in rows}
    held: dict[tuple[str, str, str], int] = {}
    for number, depot, lot, designee, steps in lines:
        # What was issued at the depot counts against the application's lines there in order.
        done = issued.get((f"APL-{number}", depot), 0)
        taken = min(done, steps)
        issued[f"APL-{number}", depot] = done - taken
        if steps - taken > 0:
            held[depot, lot, designee] = held.get((depot, lot, designee), 0) + steps - taken
    return held
