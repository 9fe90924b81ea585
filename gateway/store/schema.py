"""The gateway's SQLite schema: its named migrations but the stock ledger's (those are in
gateway/store/schema_stock.py); gateway/store/migrations.py applies both in the order of
their names. A released migration's name and statements never change: a later change is
a migration of its own."""

from __future__ import annotations

from typing import NamedTuple


class Migration(NamedTuple):
    """One schema change: a name that never changes once released, and its statements."""

    name: str
    sql: str


# Times are ISO 8601 text in UTC (they sort as text); node times keep the node's offset
# in the payload and are stored in UTC beside it for filtering.
GATEWAY_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0001-events",
        """
        CREATE TABLE events (
            event_id TEXT PRIMARY KEY,
            site TEXT NOT NULL, node TEXT NOT NULL, kind TEXT NOT NULL,
            epoch INTEGER NOT NULL, seq INTEGER NOT NULL,
            node_time TEXT NOT NULL, received_at TEXT NOT NULL,
            payload TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX events_by_node_seq ON events (site, node, epoch, seq);
        CREATE TABLE passages (
            event_id TEXT PRIMARY KEY,
            site TEXT NOT NULL, node TEXT NOT NULL, seq INTEGER NOT NULL,
            node_time TEXT NOT NULL,
            direction TEXT NOT NULL, subject TEXT NOT NULL, outcome TEXT NOT NULL,
            colour TEXT, credential TEXT NOT NULL, reasons TEXT NOT NULL,
            temperature_c REAL, fever INTEGER NOT NULL,
            subject_ref TEXT, vehicle_plate TEXT, occupants INTEGER
        ) WITHOUT ROWID;
        -- By time alone: the newest across every site (the dashboard's ticker) is a
        -- backward walk of this index, and a site filter is checked along the way.
        CREATE INDEX passages_by_time ON passages (node_time);
        -- Covers the counts since a cut-off (summaries, reports) without reading rows.
        CREATE INDEX passages_by_node ON passages (
            site, node, node_time, subject, outcome, colour, fever, temperature_c, occupants
        );
        CREATE TABLE holds (
            event_id TEXT PRIMARY KEY,
            site TEXT NOT NULL, node TEXT NOT NULL, seq INTEGER NOT NULL,
            node_time TEXT NOT NULL, passage_id TEXT NOT NULL,
            reasons TEXT NOT NULL, colour TEXT, temperature_c REAL, subject_ref TEXT
        ) WITHOUT ROWID;
        CREATE INDEX holds_by_time ON holds (node_time);
        CREATE TABLE hold_resolutions (
            event_id TEXT PRIMARY KEY,
            site TEXT NOT NULL, node TEXT NOT NULL, seq INTEGER NOT NULL,
            node_time TEXT NOT NULL, hold_id TEXT NOT NULL, resolution TEXT NOT NULL,
            volunteer_id TEXT NOT NULL, temperature_c REAL, registration_id TEXT, note TEXT
        ) WITHOUT ROWID;
        CREATE INDEX hold_resolutions_by_hold ON hold_resolutions (hold_id);
        CREATE INDEX hold_resolutions_by_time ON hold_resolutions (node_time);
        CREATE TABLE registrations (
            event_id TEXT PRIMARY KEY,
            site TEXT NOT NULL, node TEXT NOT NULL, seq INTEGER NOT NULL,
            node_time TEXT NOT NULL,
            name TEXT NOT NULL, id_hash TEXT NOT NULL, id_last4 TEXT NOT NULL, phone TEXT,
            origin TEXT, destination TEXT, reason TEXT, vehicle_plate TEXT,
            hold_id TEXT, volunteer_id TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX registrations_by_time ON registrations (node_time);
        CREATE TABLE shifts (
            event_id TEXT PRIMARY KEY,
            site TEXT NOT NULL, node TEXT NOT NULL, seq INTEGER NOT NULL,
            node_time TEXT NOT NULL, action TEXT NOT NULL,
            volunteer_id TEXT NOT NULL, role TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX shifts_by_node ON shifts (site, node, node_time);
        CREATE TABLE disinfections (
            event_id TEXT PRIMARY KEY,
            site TEXT NOT NULL, node TEXT NOT NULL, seq INTEGER NOT NULL,
            node_time TEXT NOT NULL, volunteer_id TEXT NOT NULL, area TEXT NOT NULL, agent TEXT
        ) WITHOUT ROWID;
        CREATE INDEX disinfections_by_time ON disinfections (node_time);
        CREATE TABLE daily_reports (
            event_id TEXT PRIMARY KEY,
            site TEXT NOT NULL, node TEXT NOT NULL, seq INTEGER NOT NULL,
            node_time TEXT NOT NULL, day TEXT NOT NULL,
            period_start TEXT NOT NULL, period_end TEXT NOT NULL,
            counts TEXT NOT NULL, zero_report INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX daily_reports_by_day ON daily_reports (site, day, node);
        CREATE TABLE device_faults (
            event_id TEXT PRIMARY KEY,
            site TEXT NOT NULL, node TEXT NOT NULL, seq INTEGER NOT NULL,
            node_time TEXT NOT NULL, device TEXT NOT NULL, fault TEXT NOT NULL,
            state TEXT NOT NULL, detail TEXT
        ) WITHOUT ROWID;
        CREATE INDEX device_faults_by_node ON device_faults (site, node, node_time);
        CREATE TABLE depot_readings (
            event_id TEXT NOT NULL, site TEXT NOT NULL, node TEXT NOT NULL,
            sensor TEXT NOT NULL, bus_address INTEGER NOT NULL, at TEXT NOT NULL,
            status TEXT NOT NULL, temperature_c REAL, humidity_pct REAL,
            PRIMARY KEY (event_id, sensor)
        ) WITHOUT ROWID;
        CREATE INDEX depot_readings_by_sensor ON depot_readings (site, node, sensor, at);
        CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY,
            received_at TEXT NOT NULL, topic TEXT NOT NULL,
            payload BLOB NOT NULL, reason TEXT NOT NULL
        );
        """,
    ),
    Migration(
        "0002-nodes",
        """
        CREATE TABLE nodes (
            site TEXT NOT NULL, node TEXT NOT NULL, role TEXT NOT NULL,
            online INTEGER NOT NULL DEFAULT 0,
            session INTEGER, version TEXT, config_hash TEXT, devices TEXT,
            heartbeat_s INTEGER, first_seen TEXT, last_seen TEXT, offline_reason TEXT,
            trust_list_age_s REAL, trust_list_age_at TEXT,
            clock_skew_s REAL, outbox_depth INTEGER, last_seq INTEGER,
            epoch INTEGER NOT NULL DEFAULT 0,
            seq_contiguous INTEGER NOT NULL DEFAULT 0,
            seq_max INTEGER NOT NULL DEFAULT 0,
            gap_since TEXT,
            PRIMARY KEY (site, node)
        ) WITHOUT ROWID;
        """,
    ),
    Migration(
        "0003-alarms",
        """
        CREATE TABLE alarms (
            alarm_id TEXT PRIMARY KEY,
            kind TEXT NOT NULL, site TEXT NOT NULL, node TEXT, subject TEXT NOT NULL,
            severity TEXT NOT NULL, state TEXT NOT NULL, message TEXT NOT NULL,
            raised_at TEXT NOT NULL,
            acknowledged_at TEXT, acknowledged_by TEXT,
            cleared_at TEXT, cleared_by TEXT
        ) WITHOUT ROWID;
        -- One live alarm per condition: raising it again while open changes nothing.
        CREATE UNIQUE INDEX alarms_live ON alarms (kind, site, IFNULL(node, ''), subject)
            WHERE state != 'cleared';
        CREATE INDEX alarms_by_state ON alarms (state, raised_at);
        """,
    ),
    Migration(
        "0004-access",
        """
        CREATE TABLE tokens (
            token_hash TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
            created_at TEXT NOT NULL, revoked_at TEXT
        ) WITHOUT ROWID;
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL, who TEXT NOT NULL, role TEXT NOT NULL,
            action TEXT NOT NULL, resource TEXT NOT NULL, detail TEXT
        );
        CREATE INDEX audit_log_by_time ON audit_log (at);
        """,
    ),
    Migration(
        "0005-receipts",
        """
        -- The node's outbox database (from its birth): receipts name it, and another
        -- one means the node lost its state and counts seq from 1 again.
        ALTER TABLE nodes ADD COLUMN outbox_id TEXT;
        """,
    ),
    Migration(
        "0006-dead-letter-bounds",
        """
        -- A dead letter keeps the first KiB of its payload, with the whole one's size and
        -- hash; the letters kept before this keep no more than new ones do.
        ALTER TABLE dead_letters ADD COLUMN size INTEGER;
        ALTER TABLE dead_letters ADD COLUMN sha256 TEXT;
        UPDATE dead_letters SET size = length(payload), sha256 = sha256_hex(payload),
            payload = substr(payload, 1, 1024);
        -- Counts that outlive the rows they count (dead letters dropped past the cap).
        CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO counters (name, value) VALUES ('dead_letters_dropped', 0);
        """,
    ),
    Migration(
        "0007-accepted-gaps",
        """
        -- The contiguous mark before a person accepted a gap as lost: an event the node
        -- sends later inside the range accepted moves the mark back to it.
        ALTER TABLE nodes ADD COLUMN accepted_from INTEGER;
        """,
    ),
    Migration(
        "0008-event-chain",
        """
        -- Each event's link in its node's chain: the SHA-256 of its payload as received
        -- (what the next event's prev_hash names), its own prev_hash, and what ingest
        -- found wrong with the link ('break' or 'fork'; NULL when it linked or had no
        -- neighbour stored yet). Events stored before carry no prev_hash.
        ALTER TABLE events ADD COLUMN sha256 TEXT;
        ALTER TABLE events ADD COLUMN prev_hash TEXT;
        ALTER TABLE events ADD COLUMN chain TEXT;
        UPDATE events SET sha256 = sha256_hex(payload),
            prev_hash = json_extract(payload, '$.prev_hash');
        """,
    ),
    Migration(
        "0009-depot-readings-per-sample",
        """
        -- A batch may hold several poll rounds: one row per sensor and sample time, not
        -- per sensor (the old key kept only the first reading of each sensor).
        CREATE TABLE depot_readings_new (
            event_id TEXT NOT NULL, site TEXT NOT NULL, node TEXT NOT NULL,
            sensor TEXT NOT NULL, bus_address INTEGER NOT NULL, at TEXT NOT NULL,
            status TEXT NOT NULL, temperature_c REAL, humidity_pct REAL,
            PRIMARY KEY (event_id, sensor, at)
        ) WITHOUT ROWID;
        INSERT INTO depot_readings_new SELECT event_id, site, node, sensor, bus_address, at,
            status, temperature_c, humidity_pct FROM depot_readings;
        DROP TABLE depot_readings;
        ALTER TABLE depot_readings_new RENAME TO depot_readings;
        CREATE INDEX depot_readings_by_sensor ON depot_readings (site, node, sensor, at);
        """,
    ),
    Migration(
        "0010-depot-excursions",
        """
        -- Where each alarm condition of each depot zone stands (gateway/depot_rules.py),
        -- by the readings' own times: kept here, not in memory, so an excursion under
        -- way when the gateway restarts still alarms at its time, and a replica could
        -- take over. phase: inside, out (under way, not alarmed yet) or raised.
        CREATE TABLE depot_excursions (
            site TEXT NOT NULL, node TEXT NOT NULL, zone TEXT NOT NULL,
            condition TEXT NOT NULL, phase TEXT NOT NULL, since TEXT, last_at TEXT NOT NULL,
            PRIMARY KEY (site, node, zone, condition)
        ) WITHOUT ROWID;
        """,
    ),
    Migration(
        "0011-depot-day-rate-escalation",
        """
        -- Cumulative and rate conditions (gateway/depot_rules.py): the local day a
        -- cumulative sum is for and its seconds in the alarm range so far, and the reading
        -- a condition compares the next one with (ref_at, ref_value). An alarm's
        -- escalation (alarms.escalate_after_min): when its one second alert went out.
        ALTER TABLE depot_excursions ADD COLUMN day TEXT;
        ALTER TABLE depot_excursions ADD COLUMN day_out_s REAL NOT NULL DEFAULT 0;
        ALTER TABLE depot_excursions ADD COLUMN ref_at TEXT;
        ALTER TABLE depot_excursions ADD COLUMN ref_value REAL;
        ALTER TABLE alarms ADD COLUMN escalated_at TEXT;
        """,
    ),
    Migration(
        "0012-depot-rollups",
        """
        -- Raw readings get an arrival number (AUTOINCREMENT: never reused, even once the
        -- newest row is deleted): the rollups (gateway/depot_rollups.py) follow it from a
        -- watermark, so a late reading is rolled into its bucket again, whatever its time.
        CREATE TABLE depot_readings_new (
            arrival INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL, site TEXT NOT NULL, node TEXT NOT NULL,
            sensor TEXT NOT NULL, bus_address INTEGER NOT NULL, at TEXT NOT NULL,
            status TEXT NOT NULL, temperature_c REAL, humidity_pct REAL,
            UNIQUE (event_id, sensor, at)
        );
        INSERT INTO depot_readings_new (event_id, site, node, sensor, bus_address, at, status,
            temperature_c, humidity_pct) SELECT event_id, site, node, sensor, bus_address, at,
            status, temperature_c, humidity_pct FROM depot_readings ORDER BY at;
        DROP TABLE depot_readings;
        ALTER TABLE depot_readings_new RENAME TO depot_readings;
        CREATE INDEX depot_readings_by_sensor ON depot_readings (site, node, sensor, at);
        -- Minute and hour rollups of each zone (bucket: its start, UTC). The figures are
        -- those of the ok readings; faults counts the others.
        CREATE TABLE depot_rollups (
            site TEXT NOT NULL, node TEXT NOT NULL, zone TEXT NOT NULL,
            resolution TEXT NOT NULL, bucket TEXT NOT NULL,
            readings INTEGER NOT NULL, faults INTEGER NOT NULL,
            temperature_min_c REAL, temperature_max_c REAL, temperature_mean_c REAL,
            humidity_min_pct REAL, humidity_max_pct REAL, humidity_mean_pct REAL,
            PRIMARY KEY (site, node, zone, resolution, bucket)
        ) WITHOUT ROWID;
        -- Each zone rolled so far, and how far retention has deleted: its raw readings
        -- before raw_before, its minute rollups before minutes_before (NULL: none yet).
        CREATE TABLE depot_series (
            site TEXT NOT NULL, node TEXT NOT NULL, zone TEXT NOT NULL,
            raw_before TEXT, minutes_before TEXT,
            PRIMARY KEY (site, node, zone)
        ) WITHOUT ROWID;
        -- The newest arrival rolled up: every reading stored before this one is rolled.
        INSERT INTO counters (name, value) VALUES ('depot_rolled_through', 0);
        """,
    ),
    Migration(
        "0013-token-depots",
        """
        -- The depots a token of role depot may see, as a JSON list of "site/node" (at most
        -- 64; gateway/access.py). Tokens made before hold none: such a depot token sees
        -- no depot until it is made again with its depots (safe by default).
        ALTER TABLE tokens ADD COLUMN depots TEXT NOT NULL DEFAULT '[]';
        """,
    ),
    Migration(
        "0015-scale-readings",
        """
        -- Settled weights from depot platform scales (event kind `weight`): one row per
        -- scale and sample time, so a batch holding several reports keeps each of them.
        -- Only stable weights ever arrive (the node sends no other); the ledger
        -- comparison reads them by scale and time.
        CREATE TABLE scale_readings (
            event_id TEXT NOT NULL, site TEXT NOT NULL, node TEXT NOT NULL,
            scale TEXT NOT NULL, item TEXT NOT NULL, at TEXT NOT NULL,
            basis TEXT NOT NULL, shown_kg REAL NOT NULL, tare_kg REAL NOT NULL,
            net_kg REAL NOT NULL,
            PRIMARY KEY (event_id, scale, at)
        ) WITHOUT ROWID;
        CREATE INDEX scale_readings_by_scale ON scale_readings (site, node, scale, at);
        """,
    ),
    Migration(
        "0022-node-config-serial",
        """
        -- The serial of the signed node config a node runs, from its births and heartbeats
        -- (the fleet view's config version beside its hash); null until a node says it.
        ALTER TABLE nodes ADD COLUMN config_serial INTEGER;
        """,
    ),
    Migration(
        "0023-retention",
        """
        -- Retention (gateway/store/retention.py): events by arrival, oldest first, for the
        -- scrub of personal fields and the purge; the time a payload's personal fields
        -- were removed (its sha256 stays the hash of what was received); the scrub's
        -- progress; and per node and outbox life the highest seq purged, where the chain
        -- audit starts that life.
        ALTER TABLE events ADD COLUMN scrubbed_at TEXT;
        CREATE INDEX events_by_received ON events (received_at);
        CREATE TABLE retention_marks (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE retention_purged (
            site TEXT NOT NULL, node TEXT NOT NULL, epoch INTEGER NOT NULL,
            seq_through INTEGER NOT NULL, purged_at TEXT NOT NULL,
            PRIMARY KEY (site, node, epoch)
        ) WITHOUT ROWID;
        """,
    ),
    Migration(
        "0024-depot-readings-partitioned",
        """
        -- PostgreSQL only: depot_readings there is partitioned by month of `at`, so
        -- retention drops a rolled-up month whole (gateway/store/schema_pg.py). SQLite's
        -- one file has no partitions; the name is kept in both histories.
        """,
    ),
    Migration(
        "0025-passages-by-time-dropped",
        """
        -- Read by nothing: every count names its gate, and passages_by_node answers it.
        -- One B-tree fewer written per stored passage (bench/sqlite_floor.py).
        DROP INDEX passages_by_time;
        """,
    ),
)
