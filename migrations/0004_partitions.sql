-- 0004: versioning partitioned tables. The capture triggers of a versioned
-- partitioned table are on it and on every table of its partition tree; this
-- records which, so that a partition detached or dropped later is noticed
-- (its rows leave the table) even once the catalog has forgotten it was one.
CREATE TABLE temporal_versioning.versioned_partitions (
    relid              oid         PRIMARY KEY,
    versioned_table_id integer     NOT NULL REFERENCES temporal_versioning.versioned_tables (id) ON DELETE CASCADE,
    added_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX versioned_partitions_table ON temporal_versioning.versioned_partitions (versioned_table_id);

COMMENT ON TABLE temporal_versioning.versioned_partitions IS
    'pg-temporal: the partitions (at every level) of versioned partitioned tables, which carry capture triggers too';

-- A prune of a history partitioned by time drops whole partitions: these,
-- oldest first (its next_page and end_page then count steps: archive, then
-- drop, for each).
ALTER TABLE temporal_versioning.prunes ADD COLUMN partitions text[];

-- The shapes a stream saw of each published table, at the point of the
-- Relation message that showed each (its transaction's commit LSN and the
-- events before it there): a stream writes a schema event when a table's
-- shape differs from the one before, and, replaying the same WAL after a
-- restart, writes it again at the same point (and nothing for a shape it knew).
CREATE TABLE temporal_versioning.stream_shapes (
    slot_name    name        NOT NULL,
    relation_oid oid         NOT NULL,
    lsn          pg_lsn      NOT NULL,
    events_before integer    NOT NULL,
    relation     text        NOT NULL,
    columns      jsonb       NOT NULL,
    previous     jsonb,
    seen_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (slot_name, relation_oid, lsn, events_before)
);

COMMENT ON TABLE temporal_versioning.stream_shapes IS
    'pg-temporal: the table shapes each change stream saw, for its schema events';
