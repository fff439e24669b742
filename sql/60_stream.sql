-- Context for change streaming. For a versioned table, SET LOCAL
-- temporal.user_id / temporal.changeset_id is enough: its capture triggers
-- write the context into the WAL before the transaction's first write. For a
-- table that is published but not versioned, an application calls
-- set_change_context at the start of the transaction: it sets the same
-- settings and writes them into the WAL as a transactional logical message,
-- so that `temporal stream` puts them on the transaction's change events
-- (userId, changesetId).
--
--   BEGIN;
--   SELECT temporal_versioning.set_change_context('user-17', 'cs-789');
--   UPDATE ...;
--   COMMIT;

-- Writes a transaction's context into the WAL as a transactional logical
-- message (prefix temporal.context), which `temporal stream` attaches to the
-- transaction's later events, and marks the transaction as done so that the
-- capture triggers do not write it again. Raised rights: the caller need not
-- be allowed to call pg_logical_emit_message itself.
CREATE OR REPLACE FUNCTION temporal_versioning._emit_context_message(user_id text, changeset_id text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_logical_emit_message(true, 'temporal.context',
        json_build_object('user_id', user_id, 'changeset_id', changeset_id)::text);
    PERFORM set_config('temporal.context_emitted', 'on', true);
END
$$;

COMMENT ON FUNCTION temporal_versioning._emit_context_message(text, text) IS
    'pg-temporal (internal): write a transaction''s user and changeset into the WAL for change streaming';

CREATE OR REPLACE FUNCTION temporal_versioning.set_change_context(user_id text, changeset_id text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM set_config('temporal.user_id', coalesce(user_id, ''), true);
    PERFORM set_config('temporal.changeset_id', coalesce(changeset_id, ''), true);
    -- Logical messages need wal_level = logical; without it, only history gets the context.
    IF current_setting('wal_level') = 'logical' THEN
        PERFORM temporal_versioning._emit_context_message(user_id, changeset_id);
    END IF;
END
$$;

COMMENT ON FUNCTION temporal_versioning.set_change_context(text, text) IS
    'pg-temporal: set the user and changeset of the current transaction, for history and for change streaming';
