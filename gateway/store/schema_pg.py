"""The gateway's schema on PostgreSQL (issue #16): the same tables, keys, unique indexes,
checks and immutability as the SQLite schema (gateway/store/schema.py, schema_stock.py),
for the same query code (the gateway/store mixins, `?` read as `%s`).

No PostgreSQL store was ever released, so its history starts with one baseline named
after the SQLite migration it equals, "0022-postgresql-baseline": SQLite's final state
after 0001..0022, without the backfills and table rebuilds that history needed. A later
change is a migration in both lists, under the same name.

Translation rules (the query code depends on them):
- TEXT is `TEXT COLLATE "C"`: byte order, as SQLite's BINARY collation. Times stay ISO
  text in UTC (they sort as text), not timestamptz.
- INTEGER is BIGINT (flags stay 0/1 integers), REAL is DOUBLE PRECISION, BLOB is BYTEA.
- A rowid key (`id INTEGER PRIMARY KEY`, AUTOINCREMENT) is an identity column of the same
  name; an identity never hands out a number twice, as AUTOINCREMENT. WITHOUT ROWID goes.
- IFNULL in index expressions is COALESCE; partial indexes keep their WHERE.
- SQLite's `RAISE(ABORT, 'msg')` triggers call gatepost_refuse('msg'): SQLSTATE 23000
  (integrity_constraint_violation) with the same message text.

Where PostgreSQL differs, on purpose (each marked "PG:" below):
- A primary key column is NOT NULL. SQLite lets a rowid table's TEXT key be NULL
  (supply_levels.site), a legacy quirk no caller relies on.
- stock_application_decisions.application_id is a plain BIGINT key, not an identity: in
  SQLite it aliases the rowid, but it is always the application's id, given by the caller.
- The view stock_on_hand groups by l.expires_on too (PostgreSQL wants every selected
  column grouped; a lot has one expiry, so the groups are the same) and casts its SUM to
  BIGINT (PostgreSQL sums BIGINT as NUMERIC).
"""

from __future__ import annotations

from gateway.store.depot_months import PARTITION_DEPOT_READINGS
from gateway.store.schema import Migration

# The refusal every immutability trigger calls: the message is the trigger's argument, so
# each table refuses with the text its SQLite trigger raises.
_REFUSE = """
CREATE FUNCTION gatepost_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = TG_ARGV[0], ERRCODE = 'integrity_constraint_violation';
END;
$$;
"""

# SQLite's built-ins the shared queries use that PostgreSQL names otherwise: the
# two-argument MAX and MIN (NULL when either is NULL, as SQLite's; GREATEST and LEAST skip
# NULLs) and json_group_array (here over text, giving JSON text; '[]' for no rows).
_SQLITE_FUNCTIONS = """
CREATE FUNCTION max(a anycompatible, b anycompatible) RETURNS anycompatible
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT GREATEST(a, b)';
CREATE FUNCTION min(a anycompatible, b anycompatible) RETURNS anycompatible
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS 'SELECT LEAST(a, b)';
CREATE FUNCTION gatepost_json_text_array(items text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT array_to_json(items)::text';
CREATE AGGREGATE json_group_array(text) (
    SFUNC = array_append, STYPE = text[], FINALFUNC = gatepost_json_text_array, INITCOND = '{}'
);
"""

_EVENTS = """
CREATE TABLE events (
    event_id TEXT COLLATE "C" PRIMARY KEY,
    site TEXT COLLATE "C" NOT NULL, node TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    epoch BIGINT NOT NULL, seq BIGINT NOT NULL,
    node_time TEXT COLLATE "C" NOT NULL, received_at TEXT COLLATE "C" NOT NULL,
    payload TEXT COLLATE "C" NOT NULL,
    sha256 TEXT COLLATE "C", prev_hash TEXT COLLATE "C", chain TEXT COLLATE "C"
);
CREATE INDEX events_by_node_seq ON events (site, node, epoch, seq);
CREATE TABLE passages (
    event_id TEXT COLLATE "C" PRIMARY KEY,
    site TEXT COLLATE "C" NOT NULL, node TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL,
    node_time TEXT COLLATE "C" NOT NULL,
    direction TEXT COLLATE "C" NOT NULL, subject TEXT COLLATE "C" NOT NULL,
    outcome TEXT COLLATE "C" NOT NULL,
    colour TEXT COLLATE "C", credential TEXT COLLATE "C" NOT NULL,
    reasons TEXT COLLATE "C" NOT NULL,
    temperature_c DOUBLE PRECISION, fever BIGINT NOT NULL,
    subject_ref TEXT COLLATE "C", vehicle_plate TEXT COLLATE "C", occupants BIGINT
);
CREATE INDEX passages_by_time ON passages (node_time);
CREATE INDEX passages_by_node ON passages (
    site, node, node_time, subject, outcome, colour, fever, temperature_c, occupants
);
CREATE TABLE holds (
    event_id TEXT COLLATE "C" PRIMARY KEY,
    site TEXT COLLATE "C" NOT NULL, node TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL,
    node_time TEXT COLLATE "C" NOT NULL, passage_id TEXT COLLATE "C" NOT NULL,
    reasons TEXT COLLATE "C" NOT NULL, colour TEXT COLLATE "C",
    temperature_c DOUBLE PRECISION, subject_ref TEXT COLLATE "C"
);
CREATE INDEX holds_by_time ON holds (node_time);
CREATE TABLE hold_resolutions (
    event_id TEXT COLLATE "C" PRIMARY KEY,
    site TEXT COLLATE "C" NOT NULL, node TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL,
    node_time TEXT COLLATE "C" NOT NULL, hold_id TEXT COLLATE "C" NOT NULL,
    resolution TEXT COLLATE "C" NOT NULL, volunteer_id TEXT COLLATE "C" NOT NULL,
    temperature_c DOUBLE PRECISION, registration_id TEXT COLLATE "C", note TEXT COLLATE "C"
);
CREATE INDEX hold_resolutions_by_hold ON hold_resolutions (hold_id);
CREATE INDEX hold_resolutions_by_time ON hold_resolutions (node_time);
CREATE TABLE registrations (
    event_id TEXT COLLATE "C" PRIMARY KEY,
    site TEXT COLLATE "C" NOT NULL, node TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL,
    node_time TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL, id_hash TEXT COLLATE "C" NOT NULL,
    id_last4 TEXT COLLATE "C" NOT NULL, phone TEXT COLLATE "C",
    origin TEXT COLLATE "C", destination TEXT COLLATE "C", reason TEXT COLLATE "C",
    vehicle_plate TEXT COLLATE "C", hold_id TEXT COLLATE "C",
    volunteer_id TEXT COLLATE "C" NOT NULL
);
CREATE INDEX registrations_by_time ON registrations (node_time);
CREATE TABLE shifts (
    event_id TEXT COLLATE "C" PRIMARY KEY,
    site TEXT COLLATE "C" NOT NULL, node TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL,
    node_time TEXT COLLATE "C" NOT NULL, action TEXT COLLATE "C" NOT NULL,
    volunteer_id TEXT COLLATE "C" NOT NULL, role TEXT COLLATE "C" NOT NULL
);
CREATE INDEX shifts_by_node ON shifts (site, node, node_time);
CREATE TABLE disinfections (
    event_id TEXT COLLATE "C" PRIMARY KEY,
    site TEXT COLLATE "C" NOT NULL, node TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL,
    node_time TEXT COLLATE "C" NOT NULL, volunteer_id TEXT COLLATE "C" NOT NULL,
    area TEXT COLLATE "C" NOT NULL, agent TEXT COLLATE "C"
);
CREATE INDEX disinfections_by_time ON disinfections (node_time);
CREATE TABLE daily_reports (
    event_id TEXT COLLATE "C" PRIMARY KEY,
    site TEXT COLLATE "C" NOT NULL, node TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL,
    node_time TEXT COLLATE "C" NOT NULL, day TEXT COLLATE "C" NOT NULL,
    period_start TEXT COLLATE "C" NOT NULL, period_end TEXT COLLATE "C" NOT NULL,
    counts TEXT COLLATE "C" NOT NULL, zero_report BIGINT NOT NULL
);
CREATE INDEX daily_reports_by_day ON daily_reports (site, day, node);
CREATE TABLE device_faults (
    event_id TEXT COLLATE "C" PRIMARY KEY,
    site TEXT COLLATE "C" NOT NULL, node TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL,
    node_time TEXT COLLATE "C" NOT NULL, device TEXT COLLATE "C" NOT NULL,
    fault TEXT COLLATE "C" NOT NULL, state TEXT COLLATE "C" NOT NULL,
    detail TEXT COLLATE "C"
);
CREATE INDEX device_faults_by_node ON device_faults (site, node, node_time);
CREATE TABLE dead_letters (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    received_at TEXT COLLATE "C" NOT NULL, topic TEXT COLLATE "C" NOT NULL,
    payload BYTEA NOT NULL, reason TEXT COLLATE "C" NOT NULL,
    size BIGINT, sha256 TEXT COLLATE "C"
);
"""

_NODES_ALARMS_ACCESS = """
CREATE TABLE nodes (
    site TEXT COLLATE "C" NOT NULL, node TEXT COLLATE "C" NOT NULL,
    role TEXT COLLATE "C" NOT NULL,
    online BIGINT NOT NULL DEFAULT 0,
    session BIGINT, version TEXT COLLATE "C", config_hash TEXT COLLATE "C",
    devices TEXT COLLATE "C",
    heartbeat_s BIGINT, first_seen TEXT COLLATE "C", last_seen TEXT COLLATE "C",
    offline_reason TEXT COLLATE "C",
    trust_list_age_s DOUBLE PRECISION, trust_list_age_at TEXT COLLATE "C",
    clock_skew_s DOUBLE PRECISION, outbox_depth BIGINT, last_seq BIGINT,
    epoch BIGINT NOT NULL DEFAULT 0,
    seq_contiguous BIGINT NOT NULL DEFAULT 0,
    seq_max BIGINT NOT NULL DEFAULT 0,
    gap_since TEXT COLLATE "C", outbox_id TEXT COLLATE "C", accepted_from BIGINT,
    config_serial BIGINT,
    PRIMARY KEY (site, node)
);
CREATE TABLE alarms (
    alarm_id TEXT COLLATE "C" PRIMARY KEY,
    kind TEXT COLLATE "C" NOT NULL, site TEXT COLLATE "C" NOT NULL, node TEXT COLLATE "C",
    subject TEXT COLLATE "C" NOT NULL,
    severity TEXT COLLATE "C" NOT NULL, state TEXT COLLATE "C" NOT NULL,
    message TEXT COLLATE "C" NOT NULL,
    raised_at TEXT COLLATE "C" NOT NULL,
    acknowledged_at TEXT COLLATE "C", acknowledged_by TEXT COLLATE "C",
    cleared_at TEXT COLLATE "C", cleared_by TEXT COLLATE "C",
    escalated_at TEXT COLLATE "C"
);
-- One live alarm per condition: raising it again while open changes nothing.
CREATE UNIQUE INDEX alarms_live ON alarms (kind, site, COALESCE(node, ''), subject)
    WHERE state != 'cleared';
CREATE INDEX alarms_by_state ON alarms (state, raised_at);
CREATE TABLE tokens (
    token_hash TEXT COLLATE "C" PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE, role TEXT COLLATE "C" NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL, revoked_at TEXT COLLATE "C",
    depots TEXT COLLATE "C" NOT NULL DEFAULT '[]'
);
CREATE TABLE audit_log (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at TEXT COLLATE "C" NOT NULL, who TEXT COLLATE "C" NOT NULL,
    role TEXT COLLATE "C" NOT NULL,
    action TEXT COLLATE "C" NOT NULL, resource TEXT COLLATE "C" NOT NULL,
    detail TEXT COLLATE "C"
);
CREATE INDEX audit_log_by_time ON audit_log (at);
-- Counts that outlive the rows they count.
CREATE TABLE counters (name TEXT COLLATE "C" PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO counters (name, value) VALUES ('dead_letters_dropped', 0);
INSERT INTO counters (name, value) VALUES ('depot_rolled_through', 0);
"""

_DEPOTS = """
CREATE TABLE depot_readings (
    arrival BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    event_id TEXT COLLATE "C" NOT NULL, site TEXT COLLATE "C" NOT NULL,
    node TEXT COLLATE "C" NOT NULL,
    sensor TEXT COLLATE "C" NOT NULL, bus_address BIGINT NOT NULL,
    at TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL, temperature_c DOUBLE PRECISION,
    humidity_pct DOUBLE PRECISION,
    UNIQUE (event_id, sensor, at)
);
CREATE INDEX depot_readings_by_sensor ON depot_readings (site, node, sensor, at);
CREATE TABLE depot_excursions (
    site TEXT COLLATE "C" NOT NULL, node TEXT COLLATE "C" NOT NULL,
    zone TEXT COLLATE "C" NOT NULL,
    condition TEXT COLLATE "C" NOT NULL, phase TEXT COLLATE "C" NOT NULL,
    since TEXT COLLATE "C", last_at TEXT COLLATE "C" NOT NULL,
    day TEXT COLLATE "C", day_out_s DOUBLE PRECISION NOT NULL DEFAULT 0,
    ref_at TEXT COLLATE "C", ref_value DOUBLE PRECISION,
    PRIMARY KEY (site, node, zone, condition)
);
CREATE TABLE depot_rollups (
    site TEXT COLLATE "C" NOT NULL, node TEXT COLLATE "C" NOT NULL,
    zone TEXT COLLATE "C" NOT NULL,
    resolution TEXT COLLATE "C" NOT NULL, bucket TEXT COLLATE "C" NOT NULL,
    readings BIGINT NOT NULL, faults BIGINT NOT NULL,
    temperature_min_c DOUBLE PRECISION, temperature_max_c DOUBLE PRECISION,
    temperature_mean_c DOUBLE PRECISION,
    humidity_min_pct DOUBLE PRECISION, humidity_max_pct DOUBLE PRECISION,
    humidity_mean_pct DOUBLE PRECISION,
    PRIMARY KEY (site, node, zone, resolution, bucket)
);
CREATE TABLE depot_series (
    site TEXT COLLATE "C" NOT NULL, node TEXT COLLATE "C" NOT NULL,
    zone TEXT COLLATE "C" NOT NULL,
    raw_before TEXT COLLATE "C", minutes_before TEXT COLLATE "C",
    PRIMARY KEY (site, node, zone)
);
CREATE TABLE scale_readings (
    event_id TEXT COLLATE "C" NOT NULL, site TEXT COLLATE "C" NOT NULL,
    node TEXT COLLATE "C" NOT NULL,
    scale TEXT COLLATE "C" NOT NULL, item TEXT COLLATE "C" NOT NULL,
    at TEXT COLLATE "C" NOT NULL,
    basis TEXT COLLATE "C" NOT NULL, shown_kg DOUBLE PRECISION NOT NULL,
    tare_kg DOUBLE PRECISION NOT NULL, net_kg DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (event_id, scale, at)
);
CREATE INDEX scale_readings_by_scale ON scale_readings (site, node, scale, at);
CREATE TABLE scale_discrepancies (
    site TEXT COLLATE "C" NOT NULL, node TEXT COLLATE "C" NOT NULL,
    scale TEXT COLLATE "C" NOT NULL,
    phase TEXT COLLATE "C" NOT NULL CHECK (phase IN ('ok', 'differs', 'raised')),
    since TEXT COLLATE "C", last_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (site, node, scale)
);
"""

_STOCK_LEDGER = """
CREATE TABLE stock_entries (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    kind TEXT COLLATE "C" NOT NULL CHECK (kind IN
        ('receipt', 'issue', 'transfer-out', 'transfer-in', 'adjustment', 'reversal')),
    site TEXT COLLATE "C" NOT NULL, depot TEXT COLLATE "C" NOT NULL,
    item TEXT COLLATE "C" NOT NULL,
    lot TEXT COLLATE "C" NOT NULL DEFAULT '', designated_to TEXT COLLATE "C" NOT NULL DEFAULT '',
    steps BIGINT NOT NULL CHECK (steps != 0), unit TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C", applicant_unit TEXT COLLATE "C", approver TEXT COLLATE "C",
    application_id TEXT COLLATE "C", reason TEXT COLLATE "C",
    peer_depot TEXT COLLATE "C",
    transfer_of BIGINT REFERENCES stock_entries (id),
    reverses BIGINT REFERENCES stock_entries (id),
    who TEXT COLLATE "C" NOT NULL, at TEXT COLLATE "C" NOT NULL,
    idem_key TEXT COLLATE "C" NOT NULL, request_sha256 TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX stock_entries_by_key ON stock_entries (site, depot, idem_key);
CREATE UNIQUE INDEX stock_entries_reversed ON stock_entries (reverses)
    WHERE reverses IS NOT NULL;
CREATE INDEX stock_entries_by_position ON stock_entries (
    site, depot, item, lot, designated_to, unit, steps
);
CREATE INDEX stock_entries_by_depot ON stock_entries (site, depot, id);
CREATE INDEX stock_entries_by_transfer ON stock_entries (transfer_of)
    WHERE transfer_of IS NOT NULL;
CREATE INDEX stock_entries_in_transit ON stock_entries (site, peer_depot)
    WHERE kind = 'transfer-out';
CREATE INDEX stock_entries_out_by_depot ON stock_entries (site, depot)
    WHERE kind = 'transfer-out';
CREATE INDEX stock_entries_by_application ON stock_entries (application_id)
    WHERE application_id IS NOT NULL;
CREATE INDEX stock_entries_by_time ON stock_entries (site, depot, at);
CREATE TABLE stock_lots (
    item TEXT COLLATE "C" NOT NULL, lot TEXT COLLATE "C" NOT NULL,
    expires_on TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (item, lot)
);
-- PG: l.expires_on is grouped too (one per lot, so the same groups as SQLite's) and the
-- sum is cast back to BIGINT (PostgreSQL sums BIGINT as NUMERIC).
CREATE VIEW stock_on_hand AS
    SELECT e.site, e.depot, e.item, e.lot, e.designated_to, l.expires_on, e.unit,
           SUM(e.steps)::BIGINT AS steps
    FROM stock_entries e LEFT JOIN stock_lots l ON l.item = e.item AND l.lot = e.lot
    GROUP BY e.site, e.depot, e.item, e.lot, e.designated_to, l.expires_on, e.unit;
CREATE TRIGGER stock_entries_no_update BEFORE UPDATE ON stock_entries
    FOR EACH ROW EXECUTE FUNCTION gatepost_refuse('stock ledger entries are immutable');
CREATE TRIGGER stock_entries_no_delete BEFORE DELETE ON stock_entries
    FOR EACH ROW EXECUTE FUNCTION gatepost_refuse('stock ledger entries are immutable');
CREATE TRIGGER stock_lots_no_update BEFORE UPDATE ON stock_lots
    FOR EACH ROW EXECUTE FUNCTION gatepost_refuse('stock lots are immutable');
CREATE TRIGGER stock_lots_no_delete BEFORE DELETE ON stock_lots
    FOR EACH ROW EXECUTE FUNCTION gatepost_refuse('stock lots are immutable');
"""

_STOCK_APPLICATIONS = """
CREATE TABLE stock_applications (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    site TEXT COLLATE "C" NOT NULL, applicant_unit TEXT COLLATE "C" NOT NULL,
    place_kind TEXT COLLATE "C" NOT NULL CHECK (place_kind IN
        ('hospital', 'isolation-site', 'testing-point', 'other')),
    urgency TEXT COLLATE "C" NOT NULL CHECK (urgency IN ('urgent', 'routine')),
    medical BIGINT NOT NULL CHECK (medical IN (0, 1)),
    item TEXT COLLATE "C" NOT NULL, steps BIGINT NOT NULL CHECK (steps > 0),
    unit TEXT COLLATE "C" NOT NULL,
    lat DOUBLE PRECISION, lon DOUBLE PRECISION, note TEXT COLLATE "C" NOT NULL,
    who TEXT COLLATE "C" NOT NULL, at TEXT COLLATE "C" NOT NULL,
    idem_key TEXT COLLATE "C" NOT NULL, request_sha256 TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX stock_applications_by_key ON stock_applications (site, idem_key);
CREATE INDEX stock_applications_by_item ON stock_applications (site, item, id);
-- PG: the key is the application's id, given by the caller: no identity of its own.
CREATE TABLE stock_application_decisions (
    application_id BIGINT PRIMARY KEY REFERENCES stock_applications (id),
    decision TEXT COLLATE "C" NOT NULL CHECK (decision IN ('approved', 'rejected')),
    who TEXT COLLATE "C" NOT NULL, at TEXT COLLATE "C" NOT NULL, reason TEXT COLLATE "C",
    plan_sha256 TEXT COLLATE "C"
);
CREATE INDEX stock_application_decisions_by_plan
    ON stock_application_decisions (plan_sha256) WHERE plan_sha256 IS NOT NULL;
CREATE TABLE stock_allocations (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    application_id BIGINT NOT NULL REFERENCES stock_applications (id),
    site TEXT COLLATE "C" NOT NULL, depot TEXT COLLATE "C" NOT NULL,
    item TEXT COLLATE "C" NOT NULL,
    lot TEXT COLLATE "C" NOT NULL, designated_to TEXT COLLATE "C" NOT NULL,
    steps BIGINT NOT NULL CHECK (steps > 0), unit TEXT COLLATE "C" NOT NULL
);
CREATE INDEX stock_allocations_by_application ON stock_allocations (application_id);
CREATE INDEX stock_allocations_by_depot ON stock_allocations (site, depot, item);
CREATE TRIGGER stock_applications_no_update BEFORE UPDATE ON stock_applications
    FOR EACH ROW EXECUTE FUNCTION gatepost_refuse('applications are immutable');
CREATE TRIGGER stock_applications_no_delete BEFORE DELETE ON stock_applications
    FOR EACH ROW EXECUTE FUNCTION gatepost_refuse('applications are immutable');
CREATE TRIGGER stock_application_decisions_no_update
    BEFORE UPDATE ON stock_application_decisions
    FOR EACH ROW EXECUTE FUNCTION gatepost_refuse('decisions on applications are immutable');
CREATE TRIGGER stock_application_decisions_no_delete
    BEFORE DELETE ON stock_application_decisions
    FOR EACH ROW EXECUTE FUNCTION gatepost_refuse('decisions on applications are immutable');
CREATE TRIGGER stock_allocations_no_update BEFORE UPDATE ON stock_allocations
    FOR EACH ROW EXECUTE FUNCTION gatepost_refuse('approved allocations are immutable');
CREATE TRIGGER stock_allocations_no_delete BEFORE DELETE ON stock_allocations
    FOR EACH ROW EXECUTE FUNCTION gatepost_refuse('approved allocations are immutable');
"""

_STOCK_REPORTS_PRICES_SUPPLY = """
CREATE TABLE stock_daily_reports (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    site TEXT COLLATE "C" NOT NULL, depot TEXT COLLATE "C" NOT NULL,
    day TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL CHECK (version >= 1),
    who TEXT COLLATE "C" NOT NULL, at TEXT COLLATE "C" NOT NULL,
    deadline TEXT COLLATE "C" NOT NULL,
    late BIGINT NOT NULL CHECK (late IN (0, 1)),
    note TEXT COLLATE "C" NOT NULL, figures TEXT COLLATE "C" NOT NULL,
    idem_key TEXT COLLATE "C" NOT NULL, request_sha256 TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX stock_daily_reports_by_day
    ON stock_daily_reports (site, day, depot, version);
CREATE UNIQUE INDEX stock_daily_reports_by_key
    ON stock_daily_reports (site, depot, idem_key);
CREATE TRIGGER stock_daily_reports_no_update BEFORE UPDATE ON stock_daily_reports
    FOR EACH ROW EXECUTE FUNCTION gatepost_refuse('submitted stock reports are immutable');
CREATE TRIGGER stock_daily_reports_no_delete BEFORE DELETE ON stock_daily_reports
    FOR EACH ROW EXECUTE FUNCTION gatepost_refuse('submitted stock reports are immutable');
CREATE TABLE stock_prices (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    site TEXT COLLATE "C" NOT NULL, item TEXT COLLATE "C" NOT NULL,
    unit TEXT COLLATE "C" NOT NULL,
    price_fen BIGINT NOT NULL CHECK (price_fen > 0),
    observed_on TEXT COLLATE "C" NOT NULL, market TEXT COLLATE "C" NOT NULL,
    who TEXT COLLATE "C" NOT NULL, at TEXT COLLATE "C" NOT NULL,
    idem_key TEXT COLLATE "C" NOT NULL, request_sha256 TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX stock_prices_by_key ON stock_prices (site, idem_key);
CREATE INDEX stock_prices_by_day ON stock_prices (site, observed_on);
CREATE TRIGGER stock_prices_no_update BEFORE UPDATE ON stock_prices
    FOR EACH ROW EXECUTE FUNCTION gatepost_refuse('price observations are immutable');
CREATE TRIGGER stock_prices_no_delete BEFORE DELETE ON stock_prices
    FOR EACH ROW EXECUTE FUNCTION gatepost_refuse('price observations are immutable');
CREATE TABLE supply_tight_days (
    site TEXT COLLATE "C" NOT NULL, day TEXT COLLATE "C" NOT NULL,
    category TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (site, day, category)
);
-- PG: site is NOT NULL (a key); SQLite's rowid table would take a NULL key.
CREATE TABLE supply_levels (
    site TEXT COLLATE "C" PRIMARY KEY,
    level TEXT COLLATE "C" CHECK (level IS NULL OR level IN ('IV', 'III', 'II', 'I')),
    rule TEXT COLLATE "C", since TEXT COLLATE "C", at TEXT COLLATE "C" NOT NULL
);
"""

# The schema SQLite has after 0001..0022, in one step; later migrations as SQLite's.
PG_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "0022-postgresql-baseline",
        _REFUSE
        + _SQLITE_FUNCTIONS
        + _EVENTS
        + _NODES_ALARMS_ACCESS
        + _DEPOTS
        + _STOCK_LEDGER
        + _STOCK_APPLICATIONS
        + _STOCK_REPORTS_PRICES_SUPPLY,
    ),
    Migration(
        "0023-retention",
        """
        ALTER TABLE events ADD COLUMN scrubbed_at TEXT COLLATE "C";
        CREATE INDEX events_by_received ON events (received_at);
        CREATE TABLE retention_marks (
            name TEXT COLLATE "C" PRIMARY KEY, value TEXT COLLATE "C" NOT NULL
        );
        CREATE TABLE retention_purged (
            site TEXT COLLATE "C" NOT NULL, node TEXT COLLATE "C" NOT NULL,
            epoch BIGINT NOT NULL, seq_through BIGINT NOT NULL,
            purged_at TEXT COLLATE "C" NOT NULL,
            PRIMARY KEY (site, node, epoch)
        );
        """,
    ),
    Migration("0024-depot-readings-partitioned", PARTITION_DEPOT_READINGS),
    Migration("0025-passages-by-time-dropped", "DROP INDEX passages_by_time;"),
)
