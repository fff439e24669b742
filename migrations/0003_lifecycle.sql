-- 0003: the lifecycle of history: retention policies, prunes and the floor.
--
-- A prune deletes the changes of transactions older than an instant, the
-- floor. The state of a table at T is rebuilt from the changes after T, so
-- every instant at or after the floor reads exactly as before; time travel
-- below it is refused with the floor in the message. The floor is recorded
-- before anything is deleted, and each prune is journaled (who, when, how
-- many rows, the archive written before the delete).
ALTER TABLE temporal_versioning.versioned_tables ADD COLUMN history_floor timestamptz;

COMMENT ON COLUMN temporal_versioning.versioned_tables.history_floor IS
    'pg-temporal: changes before this instant were pruned; time travel to an earlier instant is refused';

CREATE TABLE temporal_versioning.retention_policies (
    versioned_table_id integer     PRIMARY KEY REFERENCES temporal_versioning.versioned_tables (id) ON DELETE CASCADE,
    keep               interval    NOT NULL CHECK (keep > interval '0'),
    -- Where a prune writes its archive; NULL: pruned without one.
    archive_dir        text,
    set_by             text        NOT NULL DEFAULT session_user,
    set_at             timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE temporal_versioning.retention_policies IS
    'pg-temporal: how long the history of a table is kept (temporal retention set), applied by temporal maintain';

CREATE TABLE temporal_versioning.prunes (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    versioned_table_id integer     NOT NULL REFERENCES temporal_versioning.versioned_tables (id) ON DELETE CASCADE,
    -- The changes in [range_start, floor) are pruned.
    range_start        timestamptz NOT NULL,
    floor              timestamptz NOT NULL,
    -- Transactions below cutoff_tx are older than the floor; between it and
    -- max_old_tx each is looked up.
    cutoff_tx          bigint      NOT NULL,
    max_old_tx         bigint      NOT NULL,
    -- The heap pages of the history still to read: [next_page, end_page).
    next_page          bigint      NOT NULL DEFAULT 0,
    end_page           bigint      NOT NULL,
    pruned_by          text        NOT NULL DEFAULT session_user,
    started_at         timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    state              text        NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done')),
    rows_deleted       bigint      NOT NULL DEFAULT 0,
    -- The archive: its path, its length once each batch's delete committed
    -- (a batch written but not committed is cut off on resume), and its
    -- sha256 once done. NULL archive_file: pruned without an archive.
    archive_file       text,
    archive_bytes      bigint      NOT NULL DEFAULT 0,
    archive_sha256     text,
    -- The columns of each archived row: the history's, then the transaction's.
    archive_columns    text[]
);
CREATE INDEX prunes_table ON temporal_versioning.prunes (versioned_table_id, id);

COMMENT ON TABLE temporal_versioning.prunes IS
    'pg-temporal: every prune of a history: its floor, who ran it, how many rows, and the archive written first';
