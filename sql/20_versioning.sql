-- Turning versioning on and off. Names and parameters follow the versioning API
-- this project mirrors: enable_temporal_versioning, disable_temporal_versioning.

-- The names of the capture triggers every versioned table carries.
CREATE OR REPLACE FUNCTION temporal_versioning._capture_trigger_names()
RETURNS name[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY['temporal_capture_context', 'temporal_capture_insert', 'temporal_capture_update',
                 'temporal_capture_delete', 'temporal_capture_truncate']::name[];
$$;

COMMENT ON FUNCTION temporal_versioning._capture_trigger_names() IS
    'pg-temporal (internal): the names of the triggers that capture a versioned table';

-- The tgtype of each trigger of _capture_trigger_names(), in the same order:
-- statement level; BEFORE INSERT/UPDATE/DELETE/TRUNCATE, AFTER INSERT, AFTER
-- UPDATE, AFTER DELETE, BEFORE TRUNCATE.
CREATE OR REPLACE FUNCTION temporal_versioning._capture_trigger_types()
RETURNS smallint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY[62, 4, 16, 8, 34]::smallint[];
$$;

COMMENT ON FUNCTION temporal_versioning._capture_trigger_types() IS
    'pg-temporal (internal): the trigger type (pg_trigger.tgtype) each capture trigger must have';

-- The C capture function of the temporal_versioning extension (extension/),
-- when the database has it; NULL with the plain SQL install.
CREATE OR REPLACE FUNCTION temporal_versioning._c_capture_function()
RETURNS regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT to_regprocedure('temporal_versioning._capture_c()');
$$;

COMMENT ON FUNCTION temporal_versioning._c_capture_function() IS
    'pg-temporal (internal): the extension''s C capture function, or NULL when it is not installed';

-- Whether the capture triggers of a versioned table call the C capture
-- function rather than the table's generated PL/pgSQL one: when the
-- extension's C library is installed, unless the session (or the database,
-- ALTER DATABASE ... SET temporal.capture = sql) asks for the PL/pgSQL path.
-- (A history partitioned by time is written by C too: a transaction's rows
-- all go to the partition of its start, which C finds as the executor would.)
CREATE OR REPLACE FUNCTION temporal_versioning._uses_c_capture(vt temporal_versioning.versioned_tables)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT temporal_versioning._c_capture_function() IS NOT NULL
       AND coalesce(current_setting('temporal.capture', true), '') <> 'sql';
$$;

COMMENT ON FUNCTION temporal_versioning._uses_c_capture(temporal_versioning.versioned_tables) IS
    'pg-temporal (internal): whether new capture triggers of a table call the C capture function';

-- The function each capture trigger of a table is created to call, in the
-- order of _capture_trigger_names(): the INSERT, UPDATE and DELETE triggers
-- call the C capture function when _uses_c_capture says so (it falls back to
-- the table's PL/pgSQL function itself where it must); the context trigger
-- calls the C form of _emit_change_context() when the C library is there and
-- temporal.capture is not sql; the TRUNCATE trigger always the PL/pgSQL
-- function.
CREATE OR REPLACE FUNCTION temporal_versioning._capture_trigger_functions(table_oid oid)
RETURNS regprocedure[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY[coalesce(CASE WHEN temporal_versioning._c_capture_function() IS NOT NULL
                                    AND coalesce(current_setting('temporal.capture', true), '') <> 'sql'
                               THEN to_regprocedure('temporal_versioning._emit_change_context_c()') END,
                          to_regprocedure('temporal_versioning._emit_change_context()'))]
           || array_fill(CASE WHEN temporal_versioning._uses_c_capture(v) THEN temporal_versioning._c_capture_function()
                              ELSE to_regprocedure(format('temporal_versioning.%I()', temporal_versioning._capture_function_name(v.history_table))) END,
                         ARRAY[3])
           || to_regprocedure(format('temporal_versioning.%I()', temporal_versioning._capture_function_name(v.history_table)))
    FROM temporal_versioning.versioned_tables v
    WHERE v.table_oid = coalesce(pg_partition_root(_capture_trigger_functions.table_oid), _capture_trigger_functions.table_oid);
$$;

COMMENT ON FUNCTION temporal_versioning._capture_trigger_functions(oid) IS
    'pg-temporal (internal): the function each capture trigger of a versioned table is created to call';

-- Whether a capture trigger (by its position in _capture_trigger_names())
-- calls a function pg-temporal put there: the one it would create now, or,
-- for the INSERT, UPDATE and DELETE triggers, the other capture path's.
CREATE OR REPLACE FUNCTION temporal_versioning._capture_trigger_function_is_ours(table_oid oid, trigger_position integer, function_oid oid)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT function_oid = (temporal_versioning._capture_trigger_functions(table_oid))[trigger_position]
        OR (trigger_position = 1
            AND coalesce(function_oid = ANY (ARRAY[to_regprocedure('temporal_versioning._emit_change_context()'),
                                                   to_regprocedure('temporal_versioning._emit_change_context_c()')]::oid[]), false))
        OR (trigger_position BETWEEN 2 AND 4
            AND (function_oid = temporal_versioning._c_capture_function()
                 OR function_oid = (temporal_versioning._capture_trigger_functions(table_oid))[5]));
$$;

COMMENT ON FUNCTION temporal_versioning._capture_trigger_function_is_ours(oid, integer, oid) IS
    'pg-temporal (internal): whether a capture trigger calls one of the functions pg-temporal puts there';

-- Before the first write of a transaction to a versioned table, puts the
-- context the application set with SET LOCAL temporal.user_id /
-- temporal.changeset_id into the WAL as a transactional logical message, so
-- that `temporal stream` gives the transaction's events the same userId and
-- changesetId as its history (set_change_context does the same, and marks the
-- transaction so that this trigger does not repeat it). It costs two setting
-- reads per statement when no context is set. Runs with the writer's rights:
-- everything it calls is a schema-qualified built-in.
CREATE OR REPLACE FUNCTION temporal_versioning._emit_change_context()
RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    user_id pg_catalog.text;
    changeset_id pg_catalog.text;
BEGIN
    IF pg_catalog.current_setting('temporal.context_emitted', true) OPERATOR(pg_catalog.=) 'on' THEN
        RETURN NULL;
    END IF;
    -- (No NULLIF or IS DISTINCT FROM: they find their = through search_path;
    -- and the variables' type is named by its schema, for the same reason.)
    user_id := pg_catalog.current_setting('temporal.user_id', true);
    changeset_id := pg_catalog.current_setting('temporal.changeset_id', true);
    IF user_id OPERATOR(pg_catalog.=) '' THEN user_id := NULL; END IF;
    IF changeset_id OPERATOR(pg_catalog.=) '' THEN changeset_id := NULL; END IF;
    IF (user_id IS NOT NULL OR changeset_id IS NOT NULL)
       AND pg_catalog.current_setting('wal_level') OPERATOR(pg_catalog.=) 'logical' THEN
        PERFORM temporal_versioning._emit_context_message(user_id, changeset_id);
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION temporal_versioning._emit_change_context() IS
    'pg-temporal (internal): trigger putting a transaction''s SET LOCAL context into the WAL for change streaming, once';

-- Creates the capture triggers of one table that it does not have yet (all of
-- them on enable; on an upgrade, the ones a newer release added).
CREATE OR REPLACE FUNCTION temporal_versioning.create_capture_triggers(versioned_table_id integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    target oid;
    source regclass;
    definitions text[];
    created name[];
    i integer;
BEGIN
    SELECT * INTO STRICT vt FROM temporal_versioning.versioned_tables v WHERE v.id = versioned_table_id;
    -- Tells the schema-change event trigger to judge the triggers once all are there.
    UPDATE temporal_versioning.versioned_tables v
       SET options = v.options || jsonb_build_object('creating_triggers_in', txid_current()::text)
     WHERE v.id = vt.id;
    -- In the order of _capture_trigger_names().
    definitions := ARRAY[
        'BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s',
        'AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION %s',
        'AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION %s',
        'AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION %s',
        'BEFORE TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION %s'];
    -- Every table of its partition tree (see 35_partitions.sql), then the
    -- table itself, last: its ALTER TABLE below has the event trigger judge
    -- the capture state of them all.
    FOR target IN SELECT m FROM temporal_versioning._partition_members(vt.table_oid) m UNION ALL SELECT vt.table_oid LOOP
        source := target::regclass;
        created := '{}';
        FOR i IN 1 .. cardinality(definitions) LOOP
            -- A trigger of that name must be ours: one that calls another function
            -- (planted before enable, say) would silently capture nothing.
            IF EXISTS (SELECT 1 FROM pg_trigger t
                       WHERE t.tgrelid = target AND t.tgname = (temporal_versioning._capture_trigger_names())[i]
                         AND (NOT temporal_versioning._capture_trigger_function_is_ours(vt.table_oid, i, t.tgfoid)
                              OR t.tgtype <> (temporal_versioning._capture_trigger_types())[i]
                              OR t.tgattr::text <> '' OR t.tgqual IS NOT NULL)) THEN
                RAISE EXCEPTION 'trigger "%" on % is not pg-temporal''s', (temporal_versioning._capture_trigger_names())[i], source
                    USING ERRCODE = 'duplicate_object',
                          DETAIL = 'pg-temporal captures changes with triggers of that name.',
                          HINT = 'Rename or drop that trigger first.';
            END IF;
            -- Ours, but calling the other capture path's function (the C
            -- library was installed or removed, or temporal.capture changed):
            -- replaced, in this transaction, so capture never stops.
            IF EXISTS (SELECT 1 FROM pg_trigger t
                       WHERE t.tgrelid = target AND t.tgname = (temporal_versioning._capture_trigger_names())[i]
                         AND t.tgfoid <> (temporal_versioning._capture_trigger_functions(vt.table_oid))[i]) THEN
                EXECUTE format('DROP TRIGGER %I ON %s', (temporal_versioning._capture_trigger_names())[i], source);
            END IF;
            CONTINUE WHEN EXISTS (SELECT 1 FROM pg_trigger t
                                  WHERE t.tgrelid = target AND t.tgname = (temporal_versioning._capture_trigger_names())[i]);
            EXECUTE format('CREATE TRIGGER %I ', (temporal_versioning._capture_trigger_names())[i])
                 || format(definitions[i], source, (temporal_versioning._capture_trigger_functions(vt.table_oid))[i]::text);
            created := created || (temporal_versioning._capture_trigger_names())[i];
        END LOOP;
        -- ALWAYS: changes applied by a logical replication subscriber (which runs
        -- with session_replication_role = replica) are history too. One ALTER
        -- TABLE, so that the schema-change event trigger sees them all in place.
        IF target = vt.table_oid THEN
            UPDATE temporal_versioning.versioned_tables v SET options = v.options - 'creating_triggers_in' WHERE v.id = vt.id;
        END IF;
        IF cardinality(created) > 0 THEN
            EXECUTE format('ALTER TABLE %s ', source)
                 || (SELECT string_agg(format('ENABLE ALWAYS TRIGGER %I', t), ', ') FROM unnest(created) t);
        END IF;
    END LOOP;
    UPDATE temporal_versioning.versioned_tables v SET options = v.options - 'creating_triggers_in' WHERE v.id = vt.id;
END
$$;

COMMENT ON FUNCTION temporal_versioning.create_capture_triggers(integer) IS
    'pg-temporal: create the statement-level capture triggers a versioned table does not have yet';

-- (0.3.0 added partition_history; the older signature would make calls ambiguous.)
DROP FUNCTION IF EXISTS temporal_versioning.enable_temporal_versioning(text, text, text, text[]);

CREATE OR REPLACE FUNCTION temporal_versioning.enable_temporal_versioning(
    schema_name text,
    table_name text,
    history_table_suffix text DEFAULT '_history',
    key_columns text[] DEFAULT NULL,
    partition_history text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source record;
    key name[];
    history_name name;
    existing temporal_versioning.versioned_tables;
    vt_id integer;
    missing text;
    nullable text;
BEGIN
    IF partition_history IS NOT NULL AND partition_history NOT IN ('daily', 'weekly', 'monthly') THEN
        RAISE EXCEPTION 'history partitions are daily, weekly or monthly, not "%"', partition_history
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF history_table_suffix IS NULL OR history_table_suffix = '' THEN
        RAISE EXCEPTION 'history_table_suffix must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The history table is named <table><suffix> in schema temporal_versioning; the default suffix is _history.';
    END IF;

    SELECT c.oid, c.relkind, c.relispartition, c.relpersistence, n.nspname, c.relname INTO source
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = enable_temporal_versioning.schema_name AND c.relname = enable_temporal_versioning.table_name;
    IF source.oid IS NULL THEN
        RAISE EXCEPTION 'relation "%.%" does not exist', schema_name, table_name USING ERRCODE = 'undefined_table';
    END IF;
    IF source.nspname = 'temporal_versioning' THEN
        RAISE EXCEPTION 'cannot version "%.%": it belongs to pg-temporal itself', schema_name, table_name
            USING ERRCODE = 'wrong_object_type';
    END IF;
    IF source.relispartition THEN
        RAISE EXCEPTION 'cannot version "%.%": it is a partition', schema_name, table_name
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A partitioned table is versioned as one table, with all its partitions.',
                  HINT = format('Version its partitioned table: temporal enable %s', pg_partition_root(source.oid)::regclass);
    END IF;
    IF source.relkind = 'p' AND (SELECT count(*) FROM pg_event_trigger e
                                 WHERE e.evtname IN ('temporal_versioning_alter_table', 'temporal_versioning_sql_drop')
                                   AND e.evtenabled <> 'D') < 2 THEN
        RAISE EXCEPTION 'cannot version partitioned table "%.%" without pg-temporal''s event triggers', schema_name, table_name
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Partitions created or attached later get capture triggers from them; without them their changes would be missed.',
                  HINT = 'Run temporal install as a superuser (on managed services: rds_superuser, azure_pg_admin).';
    END IF;
    IF source.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%.%" is not a table', schema_name, table_name USING ERRCODE = 'wrong_object_type';
    END IF;
    IF source.relpersistence = 't' THEN
        RAISE EXCEPTION 'cannot version temporary table "%.%"', schema_name, table_name USING ERRCODE = 'wrong_object_type';
    END IF;
    IF source.relpersistence = 'u' THEN
        RAISE EXCEPTION 'cannot version unlogged table "%.%"', schema_name, table_name
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'Crash recovery empties an unlogged table without firing a trigger, so its history would stop matching it.',
                  HINT = format('Make it logged first: ALTER TABLE %I.%I SET LOGGED', schema_name, table_name);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = source.oid OR (inhparent = source.oid AND source.relkind <> 'p')) THEN
        RAISE EXCEPTION 'cannot version "%.%": tables in an inheritance tree are not supported', schema_name, table_name
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A statement on the parent changes the children without firing their statement triggers.';
    END IF;

    -- Serialise with concurrent writers: once this commits, every write is captured.
    EXECUTE format('LOCK TABLE %I.%I IN SHARE ROW EXCLUSIVE MODE', source.nspname, source.relname);

    SELECT * INTO existing FROM temporal_versioning.versioned_tables v WHERE v.table_oid = source.oid;
    IF existing.enabled THEN
        RAISE EXCEPTION 'table "%.%" is already versioned', schema_name, table_name
            USING ERRCODE = 'duplicate_object',
                  DETAIL = format('Its history is in temporal_versioning.%I.', existing.history_table),
                  HINT = 'See it with: temporal status ' || format('%I.%I', schema_name, table_name);
    END IF;

    -- The key: the primary key, or the columns given, which must be NOT NULL
    -- and carry a unique index, or time travel could not tell rows apart.
    IF key_columns IS NULL OR cardinality(key_columns) = 0 THEN
        SELECT array_agg(a.attname ORDER BY k.ord) INTO key
        FROM pg_index i
        CROSS JOIN LATERAL unnest(i.indkey::smallint[]) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = source.oid AND i.indisprimary;
        IF key IS NULL THEN
            RAISE EXCEPTION 'table "%.%" has no primary key', schema_name, table_name
                USING ERRCODE = 'invalid_table_definition',
                      DETAIL = 'Versioning needs a key that identifies each row, to follow it through time.',
                      HINT = format('Add one (ALTER TABLE %I.%I ADD PRIMARY KEY (...)), or name NOT NULL columns with a unique index: temporal enable %I.%I --key col1,col2',
                                    schema_name, table_name, schema_name, table_name);
        END IF;
    ELSE
        SELECT string_agg(quote_ident(k), ', ') INTO missing
        FROM unnest(key_columns) k
        WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                          WHERE a.attrelid = source.oid AND a.attname = k AND a.attnum > 0 AND NOT a.attisdropped);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'column % of relation "%.%" does not exist', missing, schema_name, table_name
                USING ERRCODE = 'undefined_column';
        END IF;
        IF (SELECT count(DISTINCT k) FROM unnest(key_columns) k) <> cardinality(key_columns) THEN
            RAISE EXCEPTION 'key columns must not repeat' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        key := key_columns::name[];
        SELECT string_agg(quote_ident(a.attname), ', ') INTO nullable
        FROM pg_attribute a
        WHERE a.attrelid = source.oid AND a.attname = ANY (key) AND NOT a.attnotnull;
        IF nullable IS NOT NULL THEN
            RAISE EXCEPTION 'key column % of "%.%" allows NULL', nullable, schema_name, table_name
                USING ERRCODE = 'invalid_table_definition',
                      HINT = format('Make it NOT NULL first: ALTER TABLE %I.%I ALTER COLUMN ... SET NOT NULL', schema_name, table_name);
        END IF;
        IF NOT EXISTS (
            SELECT 1 FROM pg_index i
            WHERE i.indrelid = source.oid AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
              AND (SELECT array_agg(a.attname ORDER BY a.attname) FROM pg_attribute a
                   WHERE a.attrelid = source.oid AND a.attnum = ANY (i.indkey::smallint[]))
                  = (SELECT array_agg(k ORDER BY k) FROM unnest(key) k)) THEN
            RAISE EXCEPTION 'no unique index on (%) of "%.%"',
                            (SELECT string_agg(quote_ident(k), ', ') FROM unnest(key) k), schema_name, table_name
                USING ERRCODE = 'invalid_table_definition',
                      DETAIL = 'Versioning needs a key that identifies each row, to follow it through time.',
                      HINT = format('Create one: CREATE UNIQUE INDEX ON %I.%I (%s)', schema_name, table_name,
                                    (SELECT string_agg(quote_ident(k), ', ') FROM unnest(key) k));
        END IF;
    END IF;

    IF existing.id IS NOT NULL THEN
        -- Versioning was on before and its history was kept: resume into it.
        IF existing.history_table <> source.relname || history_table_suffix
           AND history_table_suffix <> '_history' THEN
            RAISE EXCEPTION 'the history of "%.%" is kept in temporal_versioning.%', schema_name, table_name, existing.history_table
                USING ERRCODE = 'duplicate_object',
                      HINT = 'Enable without --suffix to resume into it, or drop it first: temporal disable --drop-history';
        END IF;
        IF existing.key_columns <> key THEN
            RAISE EXCEPTION 'the kept history of "%.%" is keyed on (%), not (%)', schema_name, table_name,
                            array_to_string(existing.key_columns, ', '), array_to_string(key, ', ')
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use the same key, or drop the old history first: temporal disable --drop-history';
        END IF;
        IF partition_history IS DISTINCT FROM existing.options->>'partition_history' AND partition_history IS NOT NULL THEN
            RAISE EXCEPTION 'the kept history of "%.%" is not partitioned %', schema_name, table_name, partition_history
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Enable without --partition-history to resume into it, or drop it first: temporal disable --drop-history';
        END IF;
        UPDATE temporal_versioning.versioned_tables v
           SET enabled = true, versioning_since = now(), disabled_at = NULL,
               schema_name = source.nspname, table_name = source.relname
         WHERE v.id = existing.id;
        vt_id := existing.id;
        PERFORM temporal_versioning.sync_history_columns(vt_id, journal => true);
        history_name := existing.history_table;
    ELSE
        -- Checked as text: a name would already be cut to 63 bytes.
        IF octet_length(source.relname || history_table_suffix) > (CASE WHEN partition_history IS NULL THEN 55 ELSE 54 END) THEN
            RAISE EXCEPTION 'history table name "%" is too long', source.relname || history_table_suffix
                USING ERRCODE = 'name_too_long',
                      HINT = 'Names are limited to 63 bytes and pg-temporal adds up to 8; choose a shorter suffix (--suffix).';
        END IF;
        history_name := source.relname || history_table_suffix;
        IF to_regclass(format('temporal_versioning.%I', history_name)) IS NOT NULL THEN
            RAISE EXCEPTION 'relation "temporal_versioning.%" already exists', history_name
                USING ERRCODE = 'duplicate_table',
                      DETAIL = (SELECT format('It keeps the history of %I.%I.', v.schema_name, v.table_name)
                                FROM temporal_versioning.versioned_tables v WHERE v.history_table = history_name),
                      HINT = 'Choose another suffix (--suffix), or drop the old history: temporal disable --drop-history';
        END IF;
        -- temporal_id's sequence moves by 32 a nextval: the C capture path
        -- takes a statement's ids a block at a time, from one nextval to the
        -- next (next_history_id in extension/src/capture.c); the PL/pgSQL
        -- path takes one nextval per row. Either way the ids only grow.
        IF partition_history IS NULL THEN
            EXECUTE format(
                'CREATE TABLE temporal_versioning.%I ('
                '  temporal_id bigint GENERATED ALWAYS AS IDENTITY (INCREMENT BY 32),'
                '  temporal_tx_id bigint NOT NULL,'
                '  temporal_operation "char" NOT NULL CHECK (temporal_operation IN (''I'', ''U'', ''D'', ''T'')))',
                history_name);
        ELSE
            -- Range-partitioned on temporal_at, the transaction's start (its
            -- valid_from), so that a partition holds the changes of one
            -- period and a prune drops it whole. (A sequence, not an
            -- identity: PostgreSQL 15 has none on partitioned tables.)
            IF EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = source.oid AND a.attname = 'temporal_at'
                                                      AND a.attnum > 0 AND NOT a.attisdropped) THEN
                RAISE EXCEPTION 'column "temporal_at" of %.% has the name a partitioned history uses for itself',
                                quote_ident(source.nspname), quote_ident(source.relname)
                    USING ERRCODE = 'duplicate_column';
            END IF;
            EXECUTE format('CREATE SEQUENCE temporal_versioning.%I INCREMENT BY 32', history_name || '_seq');
            EXECUTE format(
                'CREATE TABLE temporal_versioning.%I ('
                '  temporal_id bigint NOT NULL DEFAULT pg_catalog.nextval(%L::pg_catalog.regclass),'
                '  temporal_tx_id bigint NOT NULL,'
                '  temporal_operation "char" NOT NULL CHECK (temporal_operation IN (''I'', ''U'', ''D'', ''T'')),'
                '  temporal_at timestamptz NOT NULL DEFAULT pg_catalog.now())'
                ' PARTITION BY RANGE (temporal_at)',
                history_name, format('temporal_versioning.%I', history_name || '_seq'));
            EXECUTE format('ALTER SEQUENCE temporal_versioning.%I OWNED BY temporal_versioning.%I.temporal_id',
                           history_name || '_seq', history_name);
            -- Where a change goes when its period has no partition yet: a
            -- write never fails; temporal maintain moves such rows out.
            EXECUTE format('CREATE TABLE temporal_versioning.%I PARTITION OF temporal_versioning.%I DEFAULT',
                           history_name || '_default', history_name);
        END IF;
        EXECUTE format('COMMENT ON TABLE temporal_versioning.%I IS %L', history_name,
            format('pg-temporal history of %I.%I: one row per change, holding the row as it was before the change '
                   '(only the key for an INSERT). Join temporal_tx_id to temporal_versioning.transactions for when and who.',
                   source.nspname, source.relname));
        EXECUTE format('COMMENT ON COLUMN temporal_versioning.%I.temporal_operation IS %L', history_name,
                       'I insert (key only), U update, D delete, T truncate (row before the change)');

        INSERT INTO temporal_versioning.versioned_tables (schema_name, table_name, table_oid, history_table, key_columns, options)
        VALUES (source.nspname, source.relname, source.oid, history_name, key,
                CASE WHEN partition_history IS NULL THEN '{}'::jsonb
                     ELSE jsonb_build_object('partition_history', partition_history) END)
        RETURNING id INTO vt_id;
        IF partition_history IS NOT NULL THEN
            PERFORM temporal_versioning.ensure_history_partitions(vt_id);
        END IF;
        PERFORM temporal_versioning.sync_history_columns(vt_id, journal => false);
    END IF;

    PERFORM temporal_versioning.build_capture_function(vt_id);
    -- The triggers, on the table and (partitioned) on every partition.
    PERFORM temporal_versioning._sync_partitions(vt_id, initial => true);
    PERFORM temporal_versioning.record_schema_change(vt_id, 'ENABLE', 'enable versioning',
        jsonb_build_object('key_columns', key, 'history_table', history_name, 'resumed', existing.id IS NOT NULL));
    RETURN format('temporal_versioning.%I', history_name);
END
$$;

COMMENT ON FUNCTION temporal_versioning.enable_temporal_versioning(text, text, text, text[], text) IS
    'pg-temporal: start capturing every change of a table into temporal_versioning.<table><suffix>';

CREATE OR REPLACE FUNCTION temporal_versioning.disable_temporal_versioning(
    schema_name text,
    table_name text,
    drop_history boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
BEGIN
    vt := temporal_versioning.find_versioned_table(schema_name, table_name);
    IF NOT vt.enabled AND NOT drop_history THEN
        RAISE EXCEPTION 'versioning of "%.%" is already off', schema_name, table_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Its history is kept in temporal_versioning.%I.', vt.history_table),
                  HINT = 'To remove that history too: temporal disable --drop-history';
    END IF;

    -- Off in the catalog first: the sql_drop guard lets the triggers go then.
    IF drop_history THEN
        DELETE FROM temporal_versioning.versioned_tables v WHERE v.id = vt.id;
    ELSE
        UPDATE temporal_versioning.versioned_tables v SET enabled = false, disabled_at = now() WHERE v.id = vt.id;
    END IF;
    IF vt.table_oid IS NOT NULL THEN
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', vt.table_oid::regclass);
        EXECUTE (SELECT string_agg(format('DROP TRIGGER IF EXISTS %I ON %s', t, r::regclass), '; ')
                 FROM unnest(temporal_versioning._capture_trigger_names()) t,
                      (SELECT vt.table_oid AS r UNION SELECT m FROM temporal_versioning._partition_members(vt.table_oid) m
                       UNION SELECT p.relid FROM temporal_versioning.versioned_partitions p
                       WHERE p.versioned_table_id = vt.id AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p.relid)) tree);
    END IF;
    DELETE FROM temporal_versioning.versioned_partitions p WHERE p.versioned_table_id = vt.id;
    EXECUTE format('DROP FUNCTION IF EXISTS temporal_versioning.%I()', temporal_versioning._capture_function_name(vt.history_table));

    IF drop_history THEN
        EXECUTE format('DROP TABLE IF EXISTS temporal_versioning.%I', vt.history_table);
        RETURN format('versioning of %I.%I is off; its history was dropped', vt.schema_name, vt.table_name);
    END IF;

    PERFORM temporal_versioning.record_schema_change(vt.id, 'DISABLE', 'disable versioning', '{}');
    RETURN format('versioning of %I.%I is off; its history is kept in temporal_versioning.%I',
                  vt.schema_name, vt.table_name, vt.history_table);
END
$$;

COMMENT ON FUNCTION temporal_versioning.disable_temporal_versioning(text, text, boolean) IS
    'pg-temporal: stop capturing changes of a table; keep its history unless drop_history';
