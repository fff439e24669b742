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
