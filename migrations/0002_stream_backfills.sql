-- 0002: backfills of change streams (temporal stream setup --snapshot).
--
-- Everything that existed at a slot's consistent point is copied, inside the
-- snapshot the slot exported, into a table of its own (copy_table), numbered
-- in key order; `temporal stream run` writes it to the sink in chunks before
-- it streams, and checkpoints rows_done after each chunk is durably written,
-- so that a run killed at any moment goes on where it stopped.
CREATE TABLE temporal_versioning.stream_backfills (
    id              integer     GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slot_name       name        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('history', 'snapshot')),
    schema_name     name        NOT NULL,
    table_name      name        NOT NULL,
    copy_table      name        NOT NULL UNIQUE,
    key_columns     name[]      NOT NULL,
    -- The table's columns, in order (history copies name them b1.., a1..).
    column_names    name[]      NOT NULL,
    consistent_lsn  pg_lsn      NOT NULL,
    snapshot_at     timestamptz NOT NULL,
    history_since   timestamptz,
    rows_total      bigint      NOT NULL,
    rows_done       bigint      NOT NULL DEFAULT 0,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX stream_backfills_slot ON temporal_versioning.stream_backfills (slot_name, id);

COMMENT ON TABLE temporal_versioning.stream_backfills IS
    'pg-temporal: snapshots and history backfills of change streams, with their progress';
