-- 0001: the catalog of pg-temporal.
--
-- Released migrations are never edited: a change to these tables is a new,
-- higher-numbered file. The installer runs each pending migration, then the
-- files of sql/ (functions and event triggers, replaced on every install), in
-- one transaction.

-- One row per table that is or was versioned. The row outlives the table: after
-- DROP TABLE, table_oid is NULL and the history stays.
CREATE TABLE temporal_versioning.versioned_tables (
    id               integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema_name      name        NOT NULL,
    table_name       name        NOT NULL,
    table_oid        oid,
    history_table    name        NOT NULL UNIQUE,
    key_columns      name[]      NOT NULL,
    enabled          boolean     NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- Start of the current unbroken stretch of capture. Time travel to an
    -- earlier instant is refused: changes made while versioning was off are
    -- not in the history.
    versioning_since timestamptz NOT NULL DEFAULT now(),
    disabled_at      timestamptz,
    options          jsonb       NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX versioned_tables_table_oid ON temporal_versioning.versioned_tables (table_oid)
    WHERE table_oid IS NOT NULL;

COMMENT ON TABLE temporal_versioning.versioned_tables IS
    'pg-temporal: tables that are or were versioned, with their history table and key';

-- One row per transaction that changed a versioned table: when, who, and the
-- application's own context. History rows point here through temporal_tx_id
-- instead of carrying the context themselves: a history row costs 17 bytes
-- more than the row it keeps, not 50 to 100.
CREATE TABLE temporal_versioning.transactions (
    tx_id            bigint      PRIMARY KEY,       -- txid_current() of the writing transaction
    valid_from       timestamptz NOT NULL,          -- the transaction's timestamp, now()
    db_user          text        NOT NULL,          -- the session's role (SET ROLE counts)
    application_name text,
    client_addr      inet,                          -- NULL over a Unix socket
    user_id          text,                          -- SET LOCAL temporal.user_id
    changeset_id     text                           -- SET LOCAL temporal.changeset_id
);
CREATE INDEX transactions_valid_from ON temporal_versioning.transactions
    USING brin (valid_from) WITH (autosummarize = on);
CREATE INDEX transactions_changeset_id ON temporal_versioning.transactions (changeset_id)
    WHERE changeset_id IS NOT NULL;

COMMENT ON TABLE temporal_versioning.transactions IS
    'pg-temporal: the time, user and application context of every transaction that changed a versioned table';

-- Which source column each history column follows. attnum survives RENAME and
-- ALTER TYPE, so a renamed column keeps its history, and a dropped column's
-- history column stays (source_attnum NULL) with every value it ever held.
CREATE TABLE temporal_versioning.versioned_columns (
    versioned_table_id integer NOT NULL REFERENCES temporal_versioning.versioned_tables (id) ON DELETE CASCADE,
    history_column     name     NOT NULL,
    source_attnum      smallint,
    PRIMARY KEY (versioned_table_id, history_column)
);

-- Every schema change of a versioned table, and every enable and disable.
CREATE TABLE temporal_versioning.schema_changes (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    versioned_table_id integer     NOT NULL REFERENCES temporal_versioning.versioned_tables (id) ON DELETE CASCADE,
    changed_at         timestamptz NOT NULL DEFAULT now(),
    tx_id              bigint      NOT NULL DEFAULT txid_current(),
    db_user            text        NOT NULL DEFAULT session_user,
    command_tag        text        NOT NULL,
    change             text        NOT NULL,
    details            jsonb       NOT NULL DEFAULT '{}',
    statement          text
);
CREATE INDEX schema_changes_table ON temporal_versioning.schema_changes (versioned_table_id, changed_at);

COMMENT ON TABLE temporal_versioning.schema_changes IS
    'pg-temporal: schema changes of versioned tables, as followed into their history tables';
