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

-- A stream saw a table's shape (a Relation message in the transaction that
-- commits at `at`, after `events_before` of its events: the columns' names, type
-- OIDs and type modifiers). Returns the schema
-- event's changes, [[column, from type or null, to type or null], ...] in
-- column order, when the shape differs from the one the stream saw before
-- that point (or when this very point showed a change already: a
-- replay after a restart); NULL otherwise. A column renamed shows as one
-- dropped and one added: pgoutput sends names, not identities.
CREATE OR REPLACE FUNCTION temporal_versioning._stream_shape(
    slot text, relation_oid oid, relation text, names text[], types oid[], typmods integer[], at pg_lsn, events_before integer)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    shape jsonb;
    known temporal_versioning.stream_shapes;
    earlier temporal_versioning.stream_shapes;
    changes jsonb;
BEGIN
    SELECT jsonb_agg(jsonb_build_array(u.name, format_type(u.type, CASE WHEN u.typmod >= 0 THEN u.typmod END)) ORDER BY u.i)
      INTO shape
      FROM unnest(names, types, typmods) WITH ORDINALITY AS u(name, type, typmod, i);
    shape := coalesce(shape, '[]');
    SELECT * INTO known FROM temporal_versioning.stream_shapes s
    WHERE s.slot_name = _stream_shape.slot AND s.relation_oid = _stream_shape.relation_oid
      AND s.lsn = at AND s.events_before = _stream_shape.events_before;
    IF known.lsn IS NOT NULL THEN
        RETURN temporal_versioning._stream_shape_changes(known.previous, known.columns);
    END IF;
    SELECT * INTO earlier FROM temporal_versioning.stream_shapes s
    WHERE s.slot_name = _stream_shape.slot AND s.relation_oid = _stream_shape.relation_oid
      AND (s.lsn, s.events_before) < (at, _stream_shape.events_before)
    ORDER BY s.lsn DESC, s.events_before DESC LIMIT 1;
    IF earlier.lsn IS NOT NULL AND earlier.columns = shape THEN
        RETURN NULL;
    END IF;
    INSERT INTO temporal_versioning.stream_shapes (slot_name, relation_oid, lsn, events_before, relation, columns, previous)
    VALUES (slot, relation_oid, at, _stream_shape.events_before, relation, shape, earlier.columns);
    RETURN temporal_versioning._stream_shape_changes(earlier.columns, shape);
END
$$;

COMMENT ON FUNCTION temporal_versioning._stream_shape(text, oid, text, text[], oid[], integer[], pg_lsn, integer) IS
    'pg-temporal (internal): records a table shape a stream saw and returns the changes of a schema event, if any';

-- The columns added, dropped or retyped from one shape to the next, or NULL
-- when there is no earlier shape or nothing changed.
CREATE OR REPLACE FUNCTION temporal_versioning._stream_shape_changes(earlier jsonb, later jsonb)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN earlier IS NULL THEN NULL ELSE (
        SELECT jsonb_agg(jsonb_build_array(c.name, o.value->1, n.value->1) ORDER BY coalesce(n.i, 1000000 + o.i))
        FROM (SELECT e.value->>0 AS name FROM jsonb_array_elements(earlier) e
              UNION SELECT e.value->>0 FROM jsonb_array_elements(later) e) c
        LEFT JOIN LATERAL (SELECT e.value, e.i FROM jsonb_array_elements(earlier) WITH ORDINALITY AS e(value, i)
                           WHERE e.value->>0 = c.name) o ON true
        LEFT JOIN LATERAL (SELECT e.value, e.i FROM jsonb_array_elements(later) WITH ORDINALITY AS e(value, i)
                           WHERE e.value->>0 = c.name) n ON true
        WHERE o.value IS NULL OR n.value IS NULL OR o.value->1 <> n.value->1) END;
$$;

COMMENT ON FUNCTION temporal_versioning._stream_shape_changes(jsonb, jsonb) IS
    'pg-temporal (internal): the columns added, dropped or retyped between two table shapes';
