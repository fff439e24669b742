-- History tables and the capture trigger function that fills them.
--
-- A history table holds one row per change of a key, with the row as it was
-- BEFORE the change (for an INSERT, only the key):
--
--   temporal_id         bigint   order of changes (identity, never reused)
--   temporal_tx_id      bigint   the writing transaction: temporal_versioning.transactions
--   temporal_operation  "char"   I insert, U update, D delete, T truncate
--   <every source column, nullable>
--
-- Storing the row before the change, like temporal_tables and periods do,
-- means rows that existed before `enable` need no baseline copy: the first
-- change to such a row records it. The state at T is the live row, unless the
-- key changed after T, in which case it is the image kept by its first change
-- after T (absent if that change was an INSERT). Time travel therefore reads
-- the changes after T, never the whole history.

-- Renames whatever history column is called wanted_name out of the way, so
-- that a source column of that name can take it. A renamed column that still
-- follows a live source column gets its right name back later in the sync.
CREATE OR REPLACE FUNCTION temporal_versioning.make_room_for_column(
    versioned_table_id integer, history_table regclass, wanted_name name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_name name;
    n integer := 1;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                   WHERE attrelid = history_table AND attname = wanted_name AND NOT attisdropped) THEN
        RETURN;
    END IF;
    LOOP
        new_name := left(wanted_name, 50) || '_old' || n;
        EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_attribute
                              WHERE attrelid = history_table AND attname = new_name AND NOT attisdropped);
        n := n + 1;
    END LOOP;
    EXECUTE format('ALTER TABLE %s RENAME COLUMN %I TO %I', history_table, wanted_name, new_name);
    UPDATE temporal_versioning.versioned_columns c
       SET history_column = new_name
     WHERE c.versioned_table_id = make_room_for_column.versioned_table_id
       AND c.history_column = wanted_name;
END
$$;

COMMENT ON FUNCTION temporal_versioning.make_room_for_column(integer, regclass, name) IS
    'pg-temporal: rename a history column out of the way of a source column that needs its name';

-- Brings a history table in step with its source table: adds new columns,
-- follows renames and type changes, and keeps the columns of dropped ones.
-- Used by enable (journal => false) and by the DDL event trigger.
CREATE OR REPLACE FUNCTION temporal_versioning.sync_history_columns(
    versioned_table_id integer, journal boolean DEFAULT true)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    history regclass;
    source record;
    mapped temporal_versioning.versioned_columns;
    history_type text;
    converted boolean;
    kept_in name;
    changes integer := 0;
BEGIN
    SELECT * INTO STRICT vt FROM temporal_versioning.versioned_tables v WHERE v.id = versioned_table_id;
    history := format('temporal_versioning.%I', vt.history_table)::regclass;

    -- A source column may not take the name of one of the history's own
    -- columns: the history could not keep both. This refuses the enable, or
    -- the ALTER TABLE that adds or renames such a column, before any change.
    SELECT a.attname INTO kept_in
      FROM pg_attribute a
     WHERE a.attrelid = vt.table_oid AND a.attnum > 0 AND NOT a.attisdropped
       AND (a.attname IN ('temporal_id', 'temporal_tx_id', 'temporal_operation')
            OR (a.attname = 'temporal_at' AND vt.options ? 'partition_history'))
     ORDER BY a.attnum LIMIT 1;
    IF kept_in IS NOT NULL THEN
        RAISE EXCEPTION 'column "%" of %.% has a name pg-temporal''s history tables use for themselves',
                        kept_in, quote_ident(vt.schema_name), quote_ident(vt.table_name)
            USING ERRCODE = 'duplicate_column',
                  HINT = 'History tables use temporal_id, temporal_tx_id and temporal_operation; give the column another name.';
    END IF;

    -- A restored dump recreates the table without its dropped columns, so
    -- the columns' attnums can shift. When every column the history follows
    -- is still there by name, and some not at its recorded attnum, the
    -- columns are followed by name: nothing was renamed or dropped. (The one
    -- change that looks the same, dropping a column and adding one of the
    -- same name in a single ALTER TABLE, keeps its history in the same
    -- column; its type change, if any, is followed as usual.)
    IF EXISTS (SELECT 1 FROM temporal_versioning.versioned_columns c
                   WHERE c.versioned_table_id = vt.id AND c.source_attnum IS NOT NULL
                     AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                                     WHERE a.attrelid = vt.table_oid AND a.attnum = c.source_attnum
                                       AND a.attname = c.history_column AND NOT a.attisdropped))
       AND NOT EXISTS (SELECT 1 FROM temporal_versioning.versioned_columns c
                       WHERE c.versioned_table_id = vt.id AND c.source_attnum IS NOT NULL
                         AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                                         WHERE a.attrelid = vt.table_oid AND a.attnum > 0
                                           AND a.attname = c.history_column AND NOT a.attisdropped)) THEN
        UPDATE temporal_versioning.versioned_columns c
           SET source_attnum = (SELECT a.attnum FROM pg_attribute a
                                WHERE a.attrelid = vt.table_oid AND a.attnum > 0
                                  AND a.attname = c.history_column AND NOT a.attisdropped)
         WHERE c.versioned_table_id = vt.id AND c.source_attnum IS NOT NULL;
    END IF;

    -- Dropped source columns first: their history columns stay, with all their values.
    FOR mapped IN
        SELECT c.* FROM temporal_versioning.versioned_columns c
        WHERE c.versioned_table_id = vt.id AND c.source_attnum IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                          WHERE a.attrelid = vt.table_oid AND a.attnum = c.source_attnum AND NOT a.attisdropped)
    LOOP
        IF mapped.history_column = ANY (vt.key_columns) THEN
            RAISE EXCEPTION 'cannot drop column "%" of table "%.%": it is the versioning key',
                            mapped.history_column, vt.schema_name, vt.table_name
                USING ERRCODE = 'dependent_objects_still_exist',
                      HINT = 'Keep the column, or turn versioning off first (temporal disable).';
        END IF;
        UPDATE temporal_versioning.versioned_columns c SET source_attnum = NULL
         WHERE c.versioned_table_id = vt.id AND c.history_column = mapped.history_column;
        IF journal THEN
            PERFORM temporal_versioning.record_schema_change(vt.id, 'ALTER TABLE', 'drop column',
                jsonb_build_object('column', mapped.history_column, 'attnum', mapped.source_attnum,
                                   'history_kept_in', mapped.history_column));
        END IF;
        changes := changes + 1;
    END LOOP;

    FOR source IN
        SELECT a.attnum, a.attname,
               temporal_versioning.history_column_type(a.atttypid, a.atttypmod) AS type
        FROM pg_attribute a
        WHERE a.attrelid = vt.table_oid AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
    LOOP
        SELECT c.* INTO mapped FROM temporal_versioning.versioned_columns c
        WHERE c.versioned_table_id = vt.id AND c.source_attnum = source.attnum;

        IF mapped.history_column IS NULL THEN
            PERFORM temporal_versioning.make_room_for_column(vt.id, history, source.attname);
            EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s', history, source.attname, source.type);
            INSERT INTO temporal_versioning.versioned_columns (versioned_table_id, history_column, source_attnum)
            VALUES (vt.id, source.attname, source.attnum);
            IF journal THEN
                PERFORM temporal_versioning.record_schema_change(vt.id, 'ALTER TABLE', 'add column',
                    jsonb_build_object('column', source.attname, 'attnum', source.attnum, 'type', source.type)
                    || (SELECT jsonb_build_object('not_null', a.attnotnull, 'has_default', a.atthasdef)
                        FROM pg_attribute a WHERE a.attrelid = vt.table_oid AND a.attnum = source.attnum));
            END IF;
            changes := changes + 1;
            CONTINUE;
        END IF;

        IF mapped.history_column <> source.attname THEN
            PERFORM temporal_versioning.make_room_for_column(vt.id, history, source.attname);
            EXECUTE format('ALTER TABLE %s RENAME COLUMN %I TO %I', history, mapped.history_column, source.attname);
            UPDATE temporal_versioning.versioned_columns c SET history_column = source.attname
             WHERE c.versioned_table_id = vt.id AND c.source_attnum = source.attnum;
            UPDATE temporal_versioning.versioned_tables v
               SET key_columns = array_replace(v.key_columns, mapped.history_column, source.attname)
             WHERE v.id = vt.id;
            vt.key_columns := array_replace(vt.key_columns, mapped.history_column, source.attname);
            IF journal THEN
                PERFORM temporal_versioning.record_schema_change(vt.id, 'ALTER TABLE', 'rename column',
                    jsonb_build_object('from', mapped.history_column, 'to', source.attname, 'attnum', source.attnum));
            END IF;
            changes := changes + 1;
        END IF;

        SELECT format_type(a.atttypid, a.atttypmod) INTO history_type
        FROM pg_attribute a WHERE a.attrelid = history AND a.attname = source.attname AND NOT a.attisdropped;
        IF history_type <> source.type THEN
            -- ALTER COLUMN TYPE without USING converts with the plain cast, so
            -- the history can be converted the same way. With USING, when an
            -- old value does not convert, or when either type is a table
            -- owner's own, the old column is kept as it is and a new one
            -- starts: history is never rewritten into a guess.
            -- Only between types no table owner can have given a cast or an
            -- input function: this runs with pg-temporal's rights.
            converted := false;
            IF current_query() !~* '\musing\M'
               AND temporal_versioning._type_is_trusted(to_regtype(history_type))
               AND temporal_versioning._type_is_trusted(to_regtype(source.type)) THEN
                BEGIN
                    -- The assignment cast, like the ALTER without USING: an explicit
                    -- one would silently cut a varchar(5) or bit(n) value short.
                    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE %s', history, source.attname, source.type);
                    converted := true;
                EXCEPTION WHEN OTHERS THEN
                    converted := false;
                END;
            END IF;
            kept_in := NULL;
            IF NOT converted THEN
                PERFORM temporal_versioning.make_room_for_column(vt.id, history, source.attname);
                SELECT c.history_column INTO kept_in FROM temporal_versioning.versioned_columns c
                WHERE c.versioned_table_id = vt.id AND c.source_attnum = source.attnum;
                UPDATE temporal_versioning.versioned_columns c SET source_attnum = NULL
                 WHERE c.versioned_table_id = vt.id AND c.history_column = kept_in;
                EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s', history, source.attname, source.type);
                INSERT INTO temporal_versioning.versioned_columns (versioned_table_id, history_column, source_attnum)
                VALUES (vt.id, source.attname, source.attnum);
            END IF;
            IF journal THEN
                PERFORM temporal_versioning.record_schema_change(vt.id, 'ALTER TABLE', 'alter column type',
                    jsonb_build_object('column', source.attname, 'attnum', source.attnum, 'from', history_type, 'to', source.type,
                                       'history_converted', converted, 'history_kept_in', kept_in));
            END IF;
            changes := changes + 1;
        END IF;
    END LOOP;

    -- (A dump being restored creates the history's indexes itself, later.)
    IF current_setting('check_function_bodies') <> 'off' THEN
        PERFORM temporal_versioning.ensure_history_indexes(vt.id);
    END IF;
    RETURN changes;
END
$$;

COMMENT ON FUNCTION temporal_versioning.sync_history_columns(integer, boolean) IS
    'pg-temporal: bring a history table in step with its source table without losing any history';

-- The plain btree indexes of `relation` on exactly these columns, in this
-- order (by name: a partition's attnums can differ from its parent's), as
-- CREATE INDEX ON relation (columns) makes them, with whether each is valid
-- (an invalid one is a build that failed, or one still running: `building`)
-- and whether it is a partition of a partitioned index. A UNIQUE,
-- expression, partial or INCLUDE index, or one with another operator class,
-- collation or order, is not a key index: it could not be attached to one.
CREATE OR REPLACE FUNCTION temporal_versioning._key_indexes(relation regclass, columns name[])
RETURNS TABLE (index regclass, valid boolean, attached boolean, building boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT i.indexrelid::regclass, i.indisvalid, EXISTS (SELECT FROM pg_inherits h WHERE h.inhrelid = i.indexrelid),
           EXISTS (SELECT FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid)
    FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
    WHERE i.indrelid = relation AND am.amname = 'btree' AND i.indexprs IS NULL AND i.indpred IS NULL
      AND i.indnkeyatts = i.indnatts AND NOT i.indisunique AND NOT i.indisexclusion
      AND (SELECT array_agg(a.attname ORDER BY k.ord)
           FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
           LEFT JOIN pg_attribute a ON a.attrelid = relation AND a.attnum = k.attnum) = columns
      AND NOT EXISTS (
           SELECT FROM unnest(i.indkey::int2[], i.indclass::oid[], i.indcollation::oid[], i.indoption::int2[])
                       AS k(attnum, opclass, coll, opt)
           JOIN pg_attribute a ON a.attrelid = relation AND a.attnum = k.attnum
           JOIN pg_opclass o ON o.oid = k.opclass
           WHERE NOT o.opcdefault OR k.opt <> 0 OR k.coll <> a.attcollation)
    ORDER BY i.indexrelid;
$$;

COMMENT ON FUNCTION temporal_versioning._key_indexes(regclass, name[]) IS
    'pg-temporal (internal): the plain btree indexes of a relation on exactly these columns';

-- Whether `relation` has a valid plain btree index on exactly these columns.
CREATE OR REPLACE FUNCTION temporal_versioning._has_btree_index(relation regclass, columns name[])
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT FROM temporal_versioning._key_indexes(relation, columns) k WHERE k.valid);
$$;

COMMENT ON FUNCTION temporal_versioning._has_btree_index(regclass, name[]) IS
    'pg-temporal (internal): whether a relation has a valid btree index on exactly these columns';

-- Whether a table (with its partitions) has a row.
CREATE OR REPLACE FUNCTION temporal_versioning._has_rows(relation regclass)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_one boolean;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT FROM %s)', relation) INTO found_one;
    RETURN found_one;
END
$$;

COMMENT ON FUNCTION temporal_versioning._has_rows(regclass) IS
    'pg-temporal (internal): whether a table has a row';

-- The two indexes time travel needs: the key with temporal_id, for one row's
-- history and the first change of a key after an instant; and a BRIN on
-- temporal_tx_id, for the changes after an instant. BRIN costs next to
-- nothing on the write path because history is appended in tx order.
--
-- A history partitioned by time whose key index is on its closed partitions
-- only (set_history_key_index) gets that index from key_index_step, one
-- CREATE INDEX CONCURRENTLY at a time (temporal maintain runs them), never
-- here: this runs inside enable and inside the DDL of the versioned table.
CREATE OR REPLACE FUNCTION temporal_versioning.ensure_history_indexes(versioned_table_id integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    history regclass;
BEGIN
    SELECT * INTO STRICT vt FROM temporal_versioning.versioned_tables v WHERE v.id = versioned_table_id;
    history := format('temporal_versioning.%I', vt.history_table)::regclass;

    -- (Any key index of the partitioned history counts, valid or not: an
    -- invalid one is being completed by key_index_step. A partitioned
    -- history that has rows gets its index from key_index_step too,
    -- concurrently: this runs inside enable and the DDL of the table.)
    IF vt.options->>'history_key_index' IS DISTINCT FROM 'closed'
       AND NOT EXISTS (SELECT FROM temporal_versioning._key_indexes(history, vt.key_columns || 'temporal_id'::name))
       AND (NOT vt.options ? 'partition_history' OR NOT temporal_versioning._has_rows(history)) THEN
        EXECUTE format('CREATE INDEX ON %s (%s)', history,
                       (SELECT string_agg(format('%I', k), ', ' ORDER BY o)
                        FROM unnest(vt.key_columns || 'temporal_id'::name) WITH ORDINALITY AS u(k, o)));
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
                   JOIN pg_am am ON am.oid = ic.relam
                   JOIN pg_attribute a ON a.attrelid = history AND a.attnum = i.indkey[0]
                   WHERE i.indrelid = history AND am.amname = 'brin' AND a.attname = 'temporal_tx_id') THEN
        EXECUTE format('CREATE INDEX ON %s USING brin (temporal_tx_id) WITH (autosummarize = on)', history);
    END IF;
END
$$;

COMMENT ON FUNCTION temporal_versioning.ensure_history_indexes(integer) IS
    'pg-temporal: create the indexes of a history table that time travel needs, if missing';

-- (Re)writes the capture trigger function of one versioned table. The
-- function has static SQL naming every column, so PL/pgSQL plans each
-- statement once per session; it is regenerated whenever the columns change.
--
-- One statement per trigger event, reading the transition tables:
--   INSERT    the keys of the new rows
--   UPDATE    the old rows, joined to the new ones on the key; an update that
--             changed nothing a reader could see is skipped; an update of a
--             key is the DELETE of the old key and the INSERT of the new one
--   DELETE    the old rows
--   TRUNCATE  (BEFORE) every row of the table
-- then, once per transaction, its context in temporal_versioning.transactions.
CREATE OR REPLACE FUNCTION temporal_versioning.build_capture_function(versioned_table_id integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $build$
DECLARE
    vt temporal_versioning.versioned_tables;
    column_list text;
    old_values text;
    update_values text;
    key_list text;
    new_keys text;
    join_condition text;
    first_key text;
    changed_condition text;
BEGIN
    SELECT * INTO STRICT vt FROM temporal_versioning.versioned_tables v WHERE v.id = versioned_table_id;

    SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum),
           string_agg(format('o.%I', a.attname), ', ' ORDER BY a.attnum),
           string_agg(CASE WHEN a.attname = ANY (vt.key_columns)
                           THEN format('COALESCE(o.%1$I, n.%1$I)', a.attname)
                           ELSE format('o.%I', a.attname) END, ', ' ORDER BY a.attnum)
      INTO column_list, old_values, update_values
      FROM pg_attribute a
     WHERE a.attrelid = vt.table_oid AND a.attnum > 0 AND NOT a.attisdropped;

    SELECT string_agg(format('%I', k), ', '),
           string_agg(format('n.%I', k), ', '),
           string_agg(format('o.%1$I = n.%1$I', k), ' AND ')
      INTO key_list, new_keys, join_condition
      FROM unnest(vt.key_columns) k;
    first_key := quote_ident(vt.key_columns[1]);

    -- Did an UPDATE change the row? See differs_sql: built-in types by their
    -- own operators, every other type by the bytes of its values.
    SELECT temporal_versioning.differs_sql(
               coalesce(array_agg(format('o.%I', a.attname) ORDER BY a.attnum), '{}'),
               coalesce(array_agg(format('n.%I', a.attname) ORDER BY a.attnum), '{}'),
               coalesce(array_agg(temporal_versioning.history_column_type(a.atttypid, a.atttypmod) ORDER BY a.attnum), '{}'))
      INTO changed_condition
      FROM pg_attribute a
     WHERE a.attrelid = vt.table_oid AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname <> ALL (vt.key_columns);

    EXECUTE format($fn$
CREATE OR REPLACE FUNCTION temporal_versioning.%1$I()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $capture$
-- Generated by temporal_versioning.build_capture_function(%2$s); do not edit.
DECLARE
    captured bigint;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO temporal_versioning.%3$I (temporal_tx_id, temporal_operation, %4$s)
        SELECT txid_current(),
               CASE WHEN n.%5$s IS NULL THEN 'D' WHEN o.%5$s IS NULL THEN 'I' ELSE 'U' END,
               %6$s
          FROM old_rows o FULL JOIN new_rows n ON %7$s
         WHERE o.%5$s IS NULL OR n.%5$s IS NULL OR %12$s;
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO temporal_versioning.%3$I (temporal_tx_id, temporal_operation, %8$s)
        SELECT txid_current(), 'I', %9$s FROM new_rows n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO temporal_versioning.%3$I (temporal_tx_id, temporal_operation, %4$s)
        SELECT txid_current(), 'D', %10$s FROM old_rows o;
    ELSE
        -- TRUNCATE fires BEFORE, while the rows are still there. The table is
        -- named through TG_RELID so that a rename cannot break this.
        EXECUTE %11$L || TG_RELID::regclass::text || ' o';
    END IF;
    GET DIAGNOSTICS captured = ROW_COUNT;
    IF captured > 0 THEN
        INSERT INTO temporal_versioning.transactions
               (tx_id, valid_from, db_user, application_name, client_addr, user_id, changeset_id)
        VALUES (txid_current(), now(),
                CASE WHEN current_setting('role') = 'none' THEN session_user::text
                     ELSE current_setting('role') END,
                nullif(current_setting('application_name'), ''),
                inet_client_addr(),
                nullif(current_setting('temporal.user_id', true), ''),
                nullif(current_setting('temporal.changeset_id', true), ''))
        ON CONFLICT (tx_id) DO NOTHING;
    END IF;
    RETURN NULL;
END
$capture$
$fn$,
        temporal_versioning._capture_function_name(vt.history_table),
        vt.id,
        vt.history_table,
        column_list,
        first_key,
        update_values,
        join_condition,
        key_list,
        new_keys,
        old_values,
        format('INSERT INTO temporal_versioning.%I (temporal_tx_id, temporal_operation, %s) SELECT txid_current(), %L, %s FROM ONLY ',
               vt.history_table, column_list, 'T', old_values),
        changed_condition);

    -- Default privileges in a schema cannot take back the EXECUTE every
    -- function grants PUBLIC, so each generated function revokes it itself.
    EXECUTE format('REVOKE ALL ON FUNCTION temporal_versioning.%I() FROM PUBLIC', temporal_versioning._capture_function_name(vt.history_table));
    EXECUTE format('COMMENT ON FUNCTION temporal_versioning.%I() IS %L',
                   temporal_versioning._capture_function_name(vt.history_table),
                   format('pg-temporal: captures every change of %I.%I into temporal_versioning.%I',
                          vt.schema_name, vt.table_name, vt.history_table));
END
$build$;

COMMENT ON FUNCTION temporal_versioning.build_capture_function(integer) IS
    'pg-temporal: (re)generate the capture trigger function of a versioned table from its current columns';
