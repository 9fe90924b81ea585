"""The stock ledger's part of the gateway's SQLite schema (docs/stock.md): the ledger and
its immutability, the scales' comparison with it, applications, daily reports, prices and
supply levels, and the ledger's indexes. gateway/store/migrations.py applies these with
the rest of the schema, in the order of their names. A released migration never changes."""

from __future__ import annotations

from gateway.store.schema import Migration

STOCK_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0014-stock-ledger",
        """
        -- The stock ledger (docs/stock.md): one row per movement, the signed change to one
        -- position (site, depot, item, lot, designee) in whole steps of the unit. Rows are
        -- never updated or deleted: triggers refuse it (0016). No INSERT OR IGNORE:
        -- a second row for an idempotency key fails loudly on its unique index.
        CREATE TABLE stock_entries (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN
                ('receipt', 'issue', 'transfer-out', 'transfer-in', 'adjustment', 'reversal')),
            site TEXT NOT NULL, depot TEXT NOT NULL, item TEXT NOT NULL,
            lot TEXT NOT NULL DEFAULT '', designated_to TEXT NOT NULL DEFAULT '',
            steps INTEGER NOT NULL CHECK (steps != 0), unit TEXT NOT NULL,
            source TEXT, applicant_unit TEXT, approver TEXT, application_id TEXT, reason TEXT,
            peer_depot TEXT,
            transfer_of INTEGER REFERENCES stock_entries (id),
            reverses INTEGER REFERENCES stock_entries (id),
            who TEXT NOT NULL, at TEXT NOT NULL,
            idem_key TEXT NOT NULL, request_sha256 TEXT NOT NULL
        );
        CREATE UNIQUE INDEX stock_entries_by_key ON stock_entries (site, depot, idem_key);
        CREATE UNIQUE INDEX stock_entries_reversed ON stock_entries (reverses)
            WHERE reverses IS NOT NULL;
        CREATE INDEX stock_entries_by_position ON stock_entries (
            site, depot, item, lot, designated_to, steps
        );
        CREATE INDEX stock_entries_by_depot ON stock_entries (site, depot, id);
        CREATE INDEX stock_entries_by_transfer ON stock_entries (transfer_of)
            WHERE transfer_of IS NOT NULL;
        CREATE INDEX stock_entries_in_transit ON stock_entries (site, peer_depot)
            WHERE kind = 'transfer-out';
        -- A lot's expiry, set by its first receipt; a lot is one item's.
        CREATE TABLE stock_lots (
            item TEXT NOT NULL, lot TEXT NOT NULL, expires_on TEXT NOT NULL,
            PRIMARY KEY (item, lot)
        ) WITHOUT ROWID;
        CREATE VIEW stock_on_hand AS
            SELECT e.site, e.depot, e.item, e.lot, e.designated_to, l.expires_on, e.unit,
                   SUM(e.steps) AS steps
            FROM stock_entries e LEFT JOIN stock_lots l ON l.item = e.item AND l.lot = e.lot
            GROUP BY e.site, e.depot, e.item, e.lot, e.designated_to, e.unit;
        """,
    ),
    Migration(
        "0016-stock-immutable",
        """
        -- Ledger entries and lots are never changed or deleted: a correction is a reversal
        -- plus a new entry (docs/stock.md). Whoever writes to the file, SQLite refuses.
        CREATE TRIGGER IF NOT EXISTS stock_entries_no_update BEFORE UPDATE ON stock_entries
        BEGIN SELECT RAISE(ABORT, 'stock ledger entries are immutable'); END;
        CREATE TRIGGER IF NOT EXISTS stock_entries_no_delete BEFORE DELETE ON stock_entries
        BEGIN SELECT RAISE(ABORT, 'stock ledger entries are immutable'); END;
        CREATE TRIGGER IF NOT EXISTS stock_lots_no_update BEFORE UPDATE ON stock_lots
        BEGIN SELECT RAISE(ABORT, 'stock lots are immutable'); END;
        CREATE TRIGGER IF NOT EXISTS stock_lots_no_delete BEFORE DELETE ON stock_lots
        BEGIN SELECT RAISE(ABORT, 'stock lots are immutable'); END;
        """,
    ),
    Migration(
        "0017-scale-discrepancy",
        """
        -- Where each depot scale's comparison with the stock ledger stands, by the weights'
        -- own times (gateway/stock/scales.py): a restart in the middle of a difference
        -- loses none of its time, and a weight not newer than last_at counts nothing.
        CREATE TABLE scale_discrepancies (
            site TEXT NOT NULL, node TEXT NOT NULL, scale TEXT NOT NULL,
            phase TEXT NOT NULL CHECK (phase IN ('ok', 'differs', 'raised')),
            since TEXT, last_at TEXT NOT NULL,
            PRIMARY KEY (site, node, scale)
        );
        """,
    ),
    Migration(
        "0018-stock-applications",
        """
        -- Applications for supplies (gateway/stock/applications.py), the command center's
        -- decision on each and the allocation lines an approved plan wrote. All three are
        -- written once and never changed or deleted: an application's state is derived
        -- (no decision: pending; fulfilled: its allocation issued in full).
        CREATE TABLE stock_applications (
            id INTEGER PRIMARY KEY,
            site TEXT NOT NULL, applicant_unit TEXT NOT NULL,
            place_kind TEXT NOT NULL CHECK (place_kind IN
                ('hospital', 'isolation-site', 'testing-point', 'other')),
            urgency TEXT NOT NULL CHECK (urgency IN ('urgent', 'routine')),
            medical INTEGER NOT NULL CHECK (medical IN (0, 1)),
            item TEXT NOT NULL, steps INTEGER NOT NULL CHECK (steps > 0), unit TEXT NOT NULL,
            lat REAL, lon REAL, note TEXT NOT NULL,
            who TEXT NOT NULL, at TEXT NOT NULL,
            idem_key TEXT NOT NULL, request_sha256 TEXT NOT NULL
        );
        CREATE UNIQUE INDEX stock_applications_by_key ON stock_applications (site, idem_key);
        CREATE INDEX stock_applications_by_item ON stock_applications (site, item, id);
        CREATE TABLE stock_application_decisions (
            application_id INTEGER PRIMARY KEY REFERENCES stock_applications (id),
            decision TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
            who TEXT NOT NULL, at TEXT NOT NULL, reason TEXT, plan_sha256 TEXT
        );
        CREATE INDEX stock_application_decisions_by_plan
            ON stock_application_decisions (plan_sha256) WHERE plan_sha256 IS NOT NULL;
        CREATE TABLE stock_allocations (
            id INTEGER PRIMARY KEY,
            application_id INTEGER NOT NULL REFERENCES stock_applications (id),
            site TEXT NOT NULL, depot TEXT NOT NULL, item TEXT NOT NULL,
            lot TEXT NOT NULL, designated_to TEXT NOT NULL,
            steps INTEGER NOT NULL CHECK (steps > 0), unit TEXT NOT NULL
        );
        CREATE INDEX stock_allocations_by_application ON stock_allocations (application_id);
        CREATE INDEX stock_allocations_by_depot ON stock_allocations (site, depot, item);
        CREATE INDEX stock_entries_by_application ON stock_entries (application_id)
            WHERE application_id IS NOT NULL;
        CREATE TRIGGER stock_applications_no_update BEFORE UPDATE ON stock_applications
        BEGIN SELECT RAISE(ABORT, 'applications are immutable'); END;
        CREATE TRIGGER stock_applications_no_delete BEFORE DELETE ON stock_applications
        BEGIN SELECT RAISE(ABORT, 'applications are immutable'); END;
        CREATE TRIGGER stock_application_decisions_no_update
            BEFORE UPDATE ON stock_application_decisions
        BEGIN SELECT RAISE(ABORT, 'decisions on applications are immutable'); END;
        CREATE TRIGGER stock_application_decisions_no_delete
            BEFORE DELETE ON stock_application_decisions
        BEGIN SELECT RAISE(ABORT, 'decisions on applications are immutable'); END;
        CREATE TRIGGER stock_allocations_no_update BEFORE UPDATE ON stock_allocations
        BEGIN SELECT RAISE(ABORT, 'approved allocations are immutable'); END;
        CREATE TRIGGER stock_allocations_no_delete BEFORE DELETE ON stock_allocations
        BEGIN SELECT RAISE(ABORT, 'approved allocations are immutable'); END;
        """,
    ),
    Migration(
        "0019-stock-daily-reports",
        """
        -- A depot's daily stock report as its keeper submitted it (docs/stock.md#daily-stock-
        -- report): who, when, whether after the deadline, and the figures as they stood, as
        -- JSON. A second submission of a day is the next version; none is changed or deleted.
        CREATE TABLE stock_daily_reports (
            id INTEGER PRIMARY KEY,
            site TEXT NOT NULL, depot TEXT NOT NULL, day TEXT NOT NULL,
            version INTEGER NOT NULL CHECK (version >= 1),
            who TEXT NOT NULL, at TEXT NOT NULL, deadline TEXT NOT NULL,
            late INTEGER NOT NULL CHECK (late IN (0, 1)),
            note TEXT NOT NULL, figures TEXT NOT NULL,
            idem_key TEXT NOT NULL, request_sha256 TEXT NOT NULL
        );
        CREATE UNIQUE INDEX stock_daily_reports_by_day
            ON stock_daily_reports (site, day, depot, version);
        CREATE UNIQUE INDEX stock_daily_reports_by_key
            ON stock_daily_reports (site, depot, idem_key);
        CREATE TRIGGER stock_daily_reports_no_update BEFORE UPDATE ON stock_daily_reports
        BEGIN SELECT RAISE(ABORT, 'submitted stock reports are immutable'); END;
        CREATE TRIGGER stock_daily_reports_no_delete BEFORE DELETE ON stock_daily_reports
        BEGIN SELECT RAISE(ABORT, 'submitted stock reports are immutable'); END;
        -- A depot's entries by time: a report day's movements and on hand at its start
        -- are range scans, not the depot's whole ledger.
        CREATE INDEX stock_entries_by_time ON stock_entries (site, depot, at);
        """,
    ),
    Migration(
        "0020-stock-prices-and-levels",
        """
        -- Market price observations (gateway/stock/prices.py), in whole fen (CNY x 100) per
        -- unit of the item; written once, never changed or deleted; keyed per site.
        CREATE TABLE stock_prices (
            id INTEGER PRIMARY KEY,
            site TEXT NOT NULL, item TEXT NOT NULL, unit TEXT NOT NULL,
            price_fen INTEGER NOT NULL CHECK (price_fen > 0),
            observed_on TEXT NOT NULL, market TEXT NOT NULL,
            who TEXT NOT NULL, at TEXT NOT NULL,
            idem_key TEXT NOT NULL, request_sha256 TEXT NOT NULL
        );
        CREATE UNIQUE INDEX stock_prices_by_key ON stock_prices (site, idem_key);
        CREATE INDEX stock_prices_by_day ON stock_prices (site, observed_on);
        CREATE TRIGGER stock_prices_no_update BEFORE UPDATE ON stock_prices
        BEGIN SELECT RAISE(ABORT, 'price observations are immutable'); END;
        CREATE TRIGGER stock_prices_no_delete BEFORE DELETE ON stock_prices
        BEGIN SELECT RAISE(ABORT, 'price observations are immutable'); END;
        -- A row per site, local day and category found below a reserve target at a check
        -- that day (gateway/stock/supply_level.py): consecutive days survive a restart.
        CREATE TABLE supply_tight_days (
            site TEXT NOT NULL, day TEXT NOT NULL, category TEXT NOT NULL,
            PRIMARY KEY (site, day, category)
        ) WITHOUT ROWID;
        -- Each site's supply alert level as last recorded, and since when it holds.
        CREATE TABLE supply_levels (
            site TEXT PRIMARY KEY,
            level TEXT CHECK (level IS NULL OR level IN ('IV', 'III', 'II', 'I')),
            rule TEXT, since TEXT, at TEXT NOT NULL
        );
        """,
    ),
    Migration(
        "0021-stock-indexes",
        """
        -- Measured at a district's size (bench/stock_ledger.py: 50 depots, 400,000 entries).
        -- A depot's on hand (the view stock_on_hand) groups by unit too: without it in the
        -- position index SQLite sorted the depot's entries in a temporary B-tree (19 ms);
        -- the new index covers the GROUP BY and, as before, a write's sum of one position.
        -- Transfers out of a depot by their own index, as transfers to it have
        -- stock_entries_in_transit: in transit walked every transfer of the site.
        DROP INDEX stock_entries_by_position;
        CREATE INDEX stock_entries_by_position ON stock_entries (
            site, depot, item, lot, designated_to, unit, steps
        );
        CREATE INDEX stock_entries_out_by_depot ON stock_entries (site, depot)
            WHERE kind = 'transfer-out';
        """,
    ),
)
