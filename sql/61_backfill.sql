-- Backfills of change streams: what existed at a slot's consistent point
-- (the table's rows, and the changes its history kept), copied inside the
-- snapshot the slot exported, so that `temporal stream run` can write it in
-- chunks before it streams and go on where it stopped after a crash. The
-- copies live in temporal_versioning until the backfill is done.

-- Copies one table (a snapshot) and, with history_since, the changes its
-- history kept since then, and records both in stream_backfills. Runs in the
-- transaction that imported the slot's snapshot, so it reads exactly what
-- existed at the slot's consistent point: the changes after it come from the
-- stream. Returns the backfills it recorded.
CREATE OR REPLACE FUNCTION temporal_versioning._backfill_prepare(
    slot_name name, schema_name text, table_name text, consistent_lsn pg_lsn, snapshot_at timestamptz,
    with_history boolean, history_since timestamptz)
RETURNS SETOF temporal_versioning.stream_backfills
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source regclass;
    key name[];
    names name[];
    vt temporal_versioning.versioned_tables;
    backfill temporal_versioning.stream_backfills;
BEGIN
    source := to_regclass(format('%I.%I', schema_name, table_name));
    IF source IS NULL THEN
        RAISE EXCEPTION 'relation "%.%" does not exist', schema_name, table_name USING ERRCODE = 'undefined_table';
    END IF;
    SELECT array_agg(a.attname ORDER BY k.ord) INTO key
    FROM pg_index i
    CROSS JOIN LATERAL unnest(i.indkey::smallint[]) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = source AND i.indisprimary;
    IF key IS NULL THEN
        RAISE EXCEPTION 'table "%.%" has no primary key', schema_name, table_name
            USING ERRCODE = 'invalid_table_definition',
                  DETAIL = 'A snapshot is written in chunks in key order, and each row''s events name it by its key.',
                  HINT = format('Add one: ALTER TABLE %I.%I ADD PRIMARY KEY (...)', schema_name, table_name);
    END IF;
    names := ARRAY(SELECT a.attname FROM pg_attribute a
                   WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum);

    IF with_history THEN
        vt := temporal_versioning.find_versioned_table(schema_name, table_name);
        IF history_since IS NOT NULL AND history_since < greatest(vt.created_at, vt.history_floor) THEN
            RAISE EXCEPTION 'the history of "%.%" begins at %', schema_name, table_name, greatest(vt.created_at, vt.history_floor)
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('--history-since %s is earlier%s.', history_since,
                                      CASE WHEN vt.history_floor > vt.created_at THEN ' (the changes before were pruned)' ELSE '' END),
                      HINT = format('Use an instant at or after %s, or --history-since all.', greatest(vt.created_at, vt.history_floor));
        END IF;
        backfill := temporal_versioning._backfill_record(slot_name, 'history', schema_name, table_name, key, names,
                                                         consistent_lsn, snapshot_at, history_since);
        PERFORM temporal_versioning._backfill_copy_history(backfill, vt, source);
        RETURN NEXT temporal_versioning._backfill_count(backfill.id);
    END IF;

    backfill := temporal_versioning._backfill_record(slot_name, 'snapshot', schema_name, table_name, key, names,
                                                     consistent_lsn, snapshot_at, NULL);
    EXECUTE format('CREATE TABLE temporal_versioning.%I AS '
                   'SELECT row_number() OVER (ORDER BY %s) AS temporal_backfill_row, %s FROM %s s',
                   backfill.copy_table,
                   temporal_versioning.key_list_sql('s', key),
                   (SELECT string_agg(format('s.%I', n), ', ' ORDER BY i) FROM unnest(names) WITH ORDINALITY AS u(n, i)),
                   temporal_versioning._scan(source));
    RETURN NEXT temporal_versioning._backfill_count(backfill.id);
END
$$;

COMMENT ON FUNCTION temporal_versioning._backfill_prepare(name, text, text, pg_lsn, timestamptz, boolean, timestamptz) IS
    'pg-temporal (internal): copy a table and its recent history at a slot''s consistent point, for the stream to write before it streams';

-- A new stream_backfills row, with the name of its copy.
CREATE OR REPLACE FUNCTION temporal_versioning._backfill_record(
    slot_name name, kind text, schema_name text, table_name text, key name[], names name[],
    consistent_lsn pg_lsn, snapshot_at timestamptz, history_since timestamptz)
RETURNS temporal_versioning.stream_backfills
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    backfill temporal_versioning.stream_backfills;
BEGIN
    INSERT INTO temporal_versioning.stream_backfills
        (slot_name, kind, schema_name, table_name, copy_table, key_columns, column_names,
         consistent_lsn, snapshot_at, history_since, rows_total)
    VALUES (slot_name, kind, schema_name, table_name, format('backfill_new_%s', txid_current()),
            key, names, consistent_lsn, snapshot_at, history_since, 0)
    RETURNING * INTO backfill;
    UPDATE temporal_versioning.stream_backfills b SET copy_table = format('backfill_%s', b.id)
     WHERE b.id = backfill.id RETURNING * INTO backfill;
    RETURN backfill;
END
$$;

COMMENT ON FUNCTION temporal_versioning._backfill_record(name, text, text, text, name[], name[], pg_lsn, timestamptz, timestamptz) IS
    'pg-temporal (internal): record a backfill and name its copy';

-- Numbers and indexes a backfill's copy and records how many rows it holds.
CREATE OR REPLACE FUNCTION temporal_versioning._backfill_count(backfill_id integer)
RETURNS temporal_versioning.stream_backfills
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    backfill temporal_versioning.stream_backfills;
    total bigint;
BEGIN
    SELECT * INTO STRICT backfill FROM temporal_versioning.stream_backfills b WHERE b.id = backfill_id;
    EXECUTE format('CREATE UNIQUE INDEX ON temporal_versioning.%I (temporal_backfill_row)', backfill.copy_table);
    EXECUTE format('SELECT count(*) FROM temporal_versioning.%I', backfill.copy_table) INTO total;
    UPDATE temporal_versioning.stream_backfills b SET rows_total = total WHERE b.id = backfill.id RETURNING * INTO backfill;
    RETURN backfill;
END
$$;

COMMENT ON FUNCTION temporal_versioning._backfill_count(integer) IS
    'pg-temporal (internal): index a backfill''s copy and count its rows';

-- The changes a history kept since history_since, each with the row before
-- it (b1, b2, ... in the table's column order; NULL for an INSERT) and after
-- it (a1, a2, ...: the image kept by the key's next change, or the row as it
-- was at the consistent point when there is none; absent after a DELETE or
-- TRUNCATE), with its transaction's time and context, numbered in temporal_id
-- order. The next change is looked up over the whole history, not only the
-- part since history_since.
CREATE OR REPLACE FUNCTION temporal_versioning._backfill_copy_history(
    backfill temporal_versioning.stream_backfills, vt temporal_versioning.versioned_tables, source regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    history_columns name[];
BEGIN
    history_columns := ARRAY(SELECT c.history_column FROM unnest(backfill.column_names) WITH ORDINALITY AS u(n, i)
                             JOIN temporal_versioning.live_columns(vt.id) c ON c.column_name = u.n ORDER BY u.i);
    EXECUTE format(
        'CREATE TABLE temporal_versioning.%1$I AS '
        'WITH w AS ('
        '  SELECT h.*, lead(h.temporal_id) OVER k AS temporal_next_id, lead(h.temporal_operation) OVER k AS temporal_next_op, %2$s'
        '  FROM temporal_versioning.%3$I h WINDOW k AS (PARTITION BY %4$s ORDER BY h.temporal_id)) '
        'SELECT row_number() OVER (ORDER BY w.temporal_id) AS temporal_backfill_row,'
        '       w.temporal_id, w.temporal_tx_id, w.temporal_operation::text AS temporal_operation,'
        '       t.valid_from AS temporal_valid_from, t.user_id AS temporal_user_id, t.changeset_id AS temporal_changeset_id,'
        '       CASE WHEN w.temporal_operation IN (''D'', ''T'') THEN false'
        '            WHEN w.temporal_next_id IS NULL THEN s.%5$I IS NOT NULL'
        '            ELSE w.temporal_next_op <> ''I'' END AS temporal_after_present,'
        '       %6$s, %7$s '
        'FROM w JOIN temporal_versioning.transactions t ON t.tx_id = w.temporal_tx_id '
        'LEFT JOIN %8$s s ON %9$s '
        'WHERE $1 IS NULL OR t.valid_from >= $1',
        backfill.copy_table,
        (SELECT string_agg(format('lead(h.%I) OVER k AS %I', c, 'temporal_next_' || i), ', ' ORDER BY i)
         FROM unnest(history_columns) WITH ORDINALITY AS u(c, i)),
        vt.history_table,
        temporal_versioning.key_list_sql('h', vt.key_columns),
        backfill.key_columns[1],
        (SELECT string_agg(format('CASE WHEN w.temporal_operation = ''I'' THEN NULL ELSE w.%I END AS %I', c, 'b' || i), ', ' ORDER BY i)
         FROM unnest(history_columns) WITH ORDINALITY AS u(c, i)),
        (SELECT string_agg(format('CASE WHEN w.temporal_operation IN (''D'', ''T'') THEN NULL'
                                  ' WHEN w.temporal_next_id IS NULL THEN s.%I'
                                  ' WHEN w.temporal_next_op = ''I'' THEN NULL ELSE w.%I END AS %I',
                                  backfill.column_names[i], 'temporal_next_' || i, 'a' || i), ', ' ORDER BY i)
         FROM generate_subscripts(history_columns, 1) i),
        temporal_versioning._scan(source),
        temporal_versioning.key_join_sql('s', 'w', vt.key_columns))
    USING backfill.history_since;
END
$$;

COMMENT ON FUNCTION temporal_versioning._backfill_copy_history(temporal_versioning.stream_backfills, temporal_versioning.versioned_tables, regclass) IS
    'pg-temporal (internal): copy the changes a history kept, with the rows before and after each, for a backfill';

-- Marks a chunk of a backfill durably written (rows_done), or the backfill
-- done, which drops its copy.
CREATE OR REPLACE FUNCTION temporal_versioning._backfill_progress(backfill_id integer, rows_done bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    backfill temporal_versioning.stream_backfills;
BEGIN
    UPDATE temporal_versioning.stream_backfills b
       SET rows_done = _backfill_progress.rows_done, updated_at = clock_timestamp(),
           state = CASE WHEN _backfill_progress.rows_done >= b.rows_total THEN 'done' ELSE 'running' END,
           finished_at = CASE WHEN _backfill_progress.rows_done >= b.rows_total THEN clock_timestamp() END
     WHERE b.id = backfill_id
    RETURNING * INTO backfill;
    IF backfill.state = 'done' THEN
        EXECUTE format('DROP TABLE IF EXISTS temporal_versioning.%I', backfill.copy_table);
    END IF;
END
$$;

COMMENT ON FUNCTION temporal_versioning._backfill_progress(integer, bigint) IS
    'pg-temporal (internal): checkpoint a backfill after a chunk is written; drop its copy when done';

-- Forgets the backfills of a slot (dropped with it) and drops their copies.
CREATE OR REPLACE FUNCTION temporal_versioning._backfill_forget(slot_name name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    backfill temporal_versioning.stream_backfills;
BEGIN
    FOR backfill IN SELECT * FROM temporal_versioning.stream_backfills b WHERE b.slot_name = _backfill_forget.slot_name LOOP
        EXECUTE format('DROP TABLE IF EXISTS temporal_versioning.%I', backfill.copy_table);
    END LOOP;
    DELETE FROM temporal_versioning.stream_backfills b WHERE b.slot_name = _backfill_forget.slot_name;
    DELETE FROM temporal_versioning.stream_shapes s WHERE s.slot_name = _backfill_forget.slot_name;
END
$$;

COMMENT ON FUNCTION temporal_versioning._backfill_forget(name) IS
    'pg-temporal (internal): forget the backfills (dropping their copies) and the table shapes of a dropped slot';
