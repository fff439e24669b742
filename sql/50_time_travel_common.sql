-- Building blocks of time travel: which columns a reconstruction has, the
-- changes after an instant, and the checks every time-travel call makes.
--
-- The state of a table at T is the live row of every key that did not change
-- after T, and, for each key that did, the image kept by its first change
-- after T (absent when that change was an INSERT). Every query here reads the
-- changes after T only, through the BRIN index on temporal_tx_id, so its cost
-- follows the number of changes, not the size of the table.

-- The live columns of a versioned table, in order, with the history column
-- that keeps each one.
CREATE OR REPLACE FUNCTION temporal_versioning.live_columns(versioned_table_id integer)
RETURNS TABLE (attnum smallint, column_name name, history_column name, column_type text,
               history_type text, is_generated boolean, is_identity_always boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.attnum, a.attname, c.history_column, format_type(a.atttypid, a.atttypmod),
           temporal_versioning.history_column_type(a.atttypid, a.atttypmod),
           a.attgenerated <> '', a.attidentity = 'a'
    FROM temporal_versioning.versioned_tables v
    JOIN pg_attribute a ON a.attrelid = v.table_oid AND a.attnum > 0 AND NOT a.attisdropped
    -- By name: a followed column's history column always has its name (sync
    -- renames it along), and names, unlike attnums, survive a dump and
    -- restore (which leaves out dropped columns) until the next sync
    -- re-links the attnums.
    JOIN temporal_versioning.versioned_columns c
      ON c.versioned_table_id = v.id AND c.source_attnum IS NOT NULL AND c.history_column = a.attname
    WHERE v.id = live_columns.versioned_table_id
    ORDER BY a.attnum;
$$;

COMMENT ON FUNCTION temporal_versioning.live_columns(integer) IS
    'pg-temporal: the live columns of a versioned table and the history columns that keep them';

-- The generated SQL below may run with a caller's search_path (a client runs
-- the as-of query itself, so that rows stream), so it names every built-in
-- function and operator by its schema.

-- SQL for a jsonb object of the given columns of `alias`, whose types are
-- those of the same-named columns of source_relation:
-- pg_catalog.jsonb_build_object('a', alias."a", ...). Objects are built 50
-- columns at a time and concatenated, since a function takes at most 100
-- arguments. Values of types a table owner could have given a cast to json
-- become their text (see _jsonb_value_sql).
CREATE OR REPLACE FUNCTION temporal_versioning.jsonb_object_sql(alias text, keys name[], sources name[], source_relation regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(string_agg(chunk, ' OPERATOR(pg_catalog.||) '), '''{}''::pg_catalog.jsonb')
    FROM (
        SELECT 'pg_catalog.jsonb_build_object(' || string_agg(
                   format('%L::pg_catalog.text, %s', keys[i],
                          temporal_versioning._jsonb_value_sql(
                              format('%s.%I', alias, sources[i]),
                              (SELECT a.atttypid FROM pg_attribute a
                               WHERE a.attrelid = source_relation AND a.attname = sources[i] AND NOT a.attisdropped))),
                   ', ' ORDER BY i) || ')' AS chunk
        FROM generate_subscripts(keys, 1) AS i
        GROUP BY (i - 1) / 50
        ORDER BY (i - 1) / 50
    ) chunks;
$$;

COMMENT ON FUNCTION temporal_versioning.jsonb_object_sql(text, name[], name[], regclass) IS
    'pg-temporal: SQL building a jsonb object from columns, for tables of any width, without running a table owner''s cast';

-- SQL joining two aliases on the key: a."k1" = b."k1" AND a."k2" = b."k2",
-- with pg_catalog's equality.
CREATE OR REPLACE FUNCTION temporal_versioning.key_join_sql(left_alias text, right_alias text, keys name[])
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(format('%s.%I OPERATOR(pg_catalog.=) %s.%I', left_alias, k, right_alias, k), ' AND ' ORDER BY i)
    FROM unnest(keys) WITH ORDINALITY AS u(k, i);
$$;

COMMENT ON FUNCTION temporal_versioning.key_join_sql(text, text, name[]) IS
    'pg-temporal: SQL equating the key columns of two aliases';

-- SQL listing the key columns of an alias: a."k1", a."k2".
CREATE OR REPLACE FUNCTION temporal_versioning.key_list_sql(alias text, keys name[])
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(format('%s.%I', alias, k), ', ' ORDER BY i)
    FROM unnest(keys) WITH ORDINALITY AS u(k, i);
$$;

COMMENT ON FUNCTION temporal_versioning.key_list_sql(text, name[]) IS
    'pg-temporal: SQL listing the key columns of an alias';

-- SQL selecting the history rows of transactions that started after the
-- instant in parameter $<param>. The range condition on temporal_tx_id lets
-- the BRIN index skip everything older; the IN list is exact.
CREATE OR REPLACE FUNCTION temporal_versioning.changes_after_sql(history_table name, param integer)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(
        '(SELECT h.* FROM temporal_versioning.%1$I h'
        ' WHERE h.temporal_tx_id OPERATOR(pg_catalog.>=) (SELECT coalesce(pg_catalog.min(t.tx_id), 9223372036854775807)'
        '       FROM temporal_versioning.transactions t WHERE t.valid_from OPERATOR(pg_catalog.>) $%2$s)'
        '   AND h.temporal_tx_id OPERATOR(pg_catalog.=) ANY (SELECT t.tx_id FROM temporal_versioning.transactions t'
        '       WHERE t.valid_from OPERATOR(pg_catalog.>) $%2$s))',
        history_table, param);
$$;

COMMENT ON FUNCTION temporal_versioning.changes_after_sql(name, integer) IS
    'pg-temporal: SQL for the changes of a history table made by transactions after an instant';

-- The versioned table to travel in, after the checks every time-travel
-- request makes: the table still exists, and each instant lies inside the
-- unbroken stretch of history and not in the future.
CREATE OR REPLACE FUNCTION temporal_versioning.time_travel_table(
    schema_name text, table_name text, instants timestamptz[] DEFAULT '{}', needs_live_table boolean DEFAULT true)
RETURNS temporal_versioning.versioned_tables
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    instant timestamptz;
    state text;
BEGIN
    vt := temporal_versioning.find_versioned_table(schema_name, table_name);
    IF needs_live_table AND vt.table_oid IS NULL THEN
        RAISE EXCEPTION 'table "%.%" was dropped', schema_name, table_name
            USING ERRCODE = 'undefined_table',
                  DETAIL = format('Its history is kept in temporal_versioning.%I; the changes can be read with temporal log and temporal history.', vt.history_table);
    END IF;
    -- Reading the past through the live table needs every change since to be
    -- in the history: not so while versioning is off or capture is paused.
    IF needs_live_table AND NOT vt.enabled THEN
        RAISE EXCEPTION 'versioning of "%.%" is off since %', schema_name, table_name, vt.disabled_at
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Changes made since then are not in its history, so the table cannot be rebuilt as it was.',
                  HINT = format('The recorded changes can still be read with temporal log and temporal history; temporal enable %I.%I restarts the history.',
                                vt.schema_name, vt.table_name);
    END IF;
    IF NOT needs_live_table AND vt.enabled THEN
        state := temporal_versioning.capture_state(vt.table_oid);
        IF state <> 'enabled' THEN
            RAISE WARNING 'capture of "%.%" is %: the latest version shown is read from the table and may hold changes that were not recorded',
                schema_name, table_name, state;
        END IF;
    END IF;
    IF needs_live_table THEN
        state := temporal_versioning.capture_state(vt.table_oid);
        IF state <> 'enabled' THEN
            RAISE EXCEPTION 'capture of "%.%" is %', schema_name, table_name, state
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'Changes made while capture is not firing are not in the history, so the table cannot be rebuilt as it was.',
                      HINT = format('Turn capture back on (ALTER TABLE %I.%I %s); the history restarts then.',
                                    vt.schema_name, vt.table_name,
                                    (SELECT string_agg(format('ENABLE ALWAYS TRIGGER %I', t), ', ')
                                     FROM unnest(temporal_versioning._capture_trigger_names()) t));
        END IF;
    END IF;
    FOREACH instant IN ARRAY instants LOOP
        IF instant IS NULL OR NOT isfinite(instant) THEN
            RAISE EXCEPTION 'instant "%" is not a finite point in time', instant
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF instant > now() THEN
            RAISE EXCEPTION 'instant % is in the future', instant
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('The database''s time is now %s.', now());
        END IF;
        IF vt.history_floor IS NOT NULL AND instant < vt.history_floor AND vt.history_floor > vt.versioning_since THEN
            RAISE EXCEPTION 'instant % is before the floor of the history of "%.%"', instant, schema_name, table_name
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('Changes made before %s were pruned (temporal prune or temporal maintain); the earliest instant that can be reconstructed is %s.',
                                      vt.history_floor, vt.history_floor),
                      HINT = format('Use an instant at or after %s, or put the archive of the earlier changes back first: temporal archive restore FILE --into-history.',
                                    vt.history_floor);
        END IF;
        IF instant < vt.versioning_since THEN
            RAISE EXCEPTION 'instant % is before the history of "%.%" begins', instant, schema_name, table_name
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('The earliest instant that can be reconstructed is %s%s.', vt.versioning_since,
                                      CASE WHEN vt.created_at < vt.versioning_since
                                           THEN ', when versioning was last turned on (changes made while it was off are not known)'
                                           ELSE ', when versioning was turned on' END),
                      HINT = format('Use an instant at or after %s.', vt.versioning_since);
        END IF;
    END LOOP;
    RETURN vt;
END
$$;

COMMENT ON FUNCTION temporal_versioning.time_travel_table(text, text, timestamptz[], boolean) IS
    'pg-temporal: the versioned table for a time-travel request, after checking its instants';

-- What the schema changes since an instant mean for a reconstruction of the
-- table at that instant, as a caveat per affected column: columns added since
-- (their values are today's), dropped since (not shown), or retyped with a
-- conversion the history could not repeat (old values kept apart).
CREATE OR REPLACE FUNCTION temporal_versioning.schema_changes_since(versioned_table_id integer, since timestamptz)
RETURNS TABLE (change text, column_name text, attnum smallint, changed_at timestamptz, kept_in text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.change, coalesce(s.details->>'column', s.details->>'to'),
           (s.details->>'attnum')::smallint, s.changed_at, s.details->>'history_kept_in'
    FROM temporal_versioning.schema_changes s
    WHERE s.versioned_table_id = schema_changes_since.versioned_table_id
      AND s.changed_at >= since
      AND (s.change IN ('add column', 'drop column')
           OR (s.change = 'alter column type' AND NOT (s.details->>'history_converted')::boolean))
    ORDER BY s.id;
$$;

COMMENT ON FUNCTION temporal_versioning.schema_changes_since(integer, timestamptz) IS
    'pg-temporal: the column changes since an instant that a reconstruction must account for';

-- Raises a WARNING for each schema change since the instant that makes a
-- read of the past differ from what the table held then.
CREATE OR REPLACE FUNCTION temporal_versioning.warn_schema_changes_since(vt temporal_versioning.versioned_tables, since timestamptz)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT * FROM temporal_versioning.schema_changes_since(vt.id, since) LOOP
        IF c.change = 'add column' THEN
            RAISE WARNING 'column "%" of "%.%" was added at %, after %: rows shown from the table itself carry today''s value',
                c.column_name, vt.schema_name, vt.table_name, c.changed_at, since;
        ELSIF c.change = 'drop column' THEN
            RAISE WARNING 'column "%" of "%.%" was dropped at %: its values at % are not shown',
                c.column_name, vt.schema_name, vt.table_name, c.changed_at, since
                USING HINT = format('They are kept in temporal_versioning.%I.%I.', vt.history_table, c.kept_in);
        ELSE
            RAISE WARNING 'column "%" of "%.%" changed type at % with a conversion the history could not repeat: its earlier values are not shown',
                c.column_name, vt.schema_name, vt.table_name, c.changed_at
                USING HINT = format('They are kept in temporal_versioning.%I.%I.', vt.history_table, c.kept_in);
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION temporal_versioning.warn_schema_changes_since(temporal_versioning.versioned_tables, timestamptz) IS
    'pg-temporal: warn about schema changes since an instant that a read of the past cannot undo';
