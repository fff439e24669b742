-- Context for change streaming. An application calls set_change_context at
-- the start of a transaction, instead of SET LOCAL: it sets temporal.user_id
-- and temporal.changeset_id for the history, and writes them into the WAL
-- as a transactional logical message, so that `temporal stream` puts them on
-- the transaction's change events (userId, changesetId).
--
--   BEGIN;
--   SELECT temporal_versioning.set_change_context('user-17', 'cs-789');
--   UPDATE ...;
--   COMMIT;

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
        PERFORM pg_logical_emit_message(true, 'temporal.context',
            json_build_object('user_id', user_id, 'changeset_id', changeset_id)::text);
    END IF;
END
$$;

COMMENT ON FUNCTION temporal_versioning.set_change_context(text, text) IS
    'pg-temporal: set the user and changeset of the current transaction, for history and for change streaming';
