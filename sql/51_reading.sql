-- Reading the past: a table as it was (as_of, query_temporal_data), what
-- changed between two instants (compare_temporal_data), one row's versions
-- (get_row_history) and the log of changes (get_change_history).

-- The query for the table as it was at the instant in $1, with the table's
-- live columns. The CLI runs it directly so rows stream; as_of() wraps it,
-- `typed`, so that columns of a domain type are that domain again (which
-- checks the domain's constraints); untyped they are of its base type.
CREATE OR REPLACE FUNCTION temporal_versioning.as_of_sql(versioned_table_id integer, typed boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    live_list text;
    image_list text;
BEGIN
    SELECT * INTO STRICT vt FROM temporal_versioning.versioned_tables v WHERE v.id = versioned_table_id;
    SELECT string_agg(format('s.%I', c.column_name), ', ' ORDER BY c.attnum),
           string_agg(CASE WHEN typed THEN format('f.%I::%s AS %I', c.history_column, c.column_type, c.column_name)
                           ELSE format('f.%I AS %I', c.history_column, c.column_name) END, ', ' ORDER BY c.attnum)
      INTO live_list, image_list
      FROM temporal_versioning.live_columns(vt.id) c;
    RETURN format(
        'WITH first_after AS ('
        '  SELECT DISTINCT ON (%1$s) h.* FROM %2$s h ORDER BY %1$s, h.temporal_id) '
        'SELECT %3$s FROM %4$s s'
        ' WHERE NOT EXISTS (SELECT 1 FROM first_after f WHERE %5$s) '
        'UNION ALL '
        'SELECT %6$s FROM first_after f WHERE f.temporal_operation OPERATOR(pg_catalog.<>) ''I''::pg_catalog."char"',
        temporal_versioning.key_list_sql('h', vt.key_columns),
        temporal_versioning.changes_after_sql(vt.history_table, 1),
        live_list,
        temporal_versioning._scan(vt.table_oid),
        temporal_versioning.key_join_sql('f', 's', vt.key_columns),
        image_list);
END
$$;

COMMENT ON FUNCTION temporal_versioning.as_of_sql(integer, boolean) IS
    'pg-temporal: the query (instant in $1) reading a versioned table as it was at that instant';

-- The same query, one jsonb object per row (for JSON output), built without
-- running a cast a table owner could define (see jsonb_object_sql).
CREATE OR REPLACE FUNCTION temporal_versioning.as_of_json_sql(versioned_table_id integer)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('SELECT %s FROM (%s) r',
                  temporal_versioning.jsonb_object_sql('r', names, names, v.table_oid::regclass),
                  temporal_versioning.as_of_sql(v.id))
    FROM temporal_versioning.versioned_tables v,
         LATERAL (SELECT array_agg(c.column_name ORDER BY c.attnum) AS names
                  FROM temporal_versioning.live_columns(v.id) c) l
    WHERE v.id = as_of_json_sql.versioned_table_id;
$$;

COMMENT ON FUNCTION temporal_versioning.as_of_json_sql(integer) IS
    'pg-temporal: the as-of query (instant in $1) returning one jsonb object per row';

-- Typed time travel for psql users and applications:
--   SELECT * FROM temporal_versioning.as_of(NULL::public.customers, '2026-01-15 10:30+00');
CREATE OR REPLACE FUNCTION temporal_versioning.as_of(table_type anyelement, at timestamptz)
RETURNS SETOF anyelement
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source regclass;
    vt temporal_versioning.versioned_tables;
BEGIN
    SELECT t.typrelid INTO source FROM pg_type t WHERE t.oid = pg_typeof(table_type) AND t.typrelid <> 0;
    IF source IS NULL THEN
        RAISE EXCEPTION 'as_of needs a table''s row type, such as NULL::public.customers, not %', pg_typeof(table_type)
            USING ERRCODE = 'wrong_object_type';
    END IF;
    vt := temporal_versioning.time_travel_table(
        (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = source),
        (SELECT c.relname FROM pg_class c WHERE c.oid = source), ARRAY[at]);
    PERFORM temporal_versioning.warn_schema_changes_since(vt, at);
    RETURN QUERY EXECUTE temporal_versioning.as_of_sql(vt.id, typed => true) USING at;
END
$$;

COMMENT ON FUNCTION temporal_versioning.as_of(anyelement, timestamptz) IS
    'pg-temporal: a versioned table as it was at an instant, as rows of its own type';

CREATE OR REPLACE FUNCTION temporal_versioning.query_temporal_data(
    schema_name text, table_name text, "timestamp" timestamptz, "limit" integer DEFAULT NULL)
RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
BEGIN
    vt := temporal_versioning.time_travel_table(schema_name, table_name, ARRAY["timestamp"]);
    PERFORM temporal_versioning.warn_schema_changes_since(vt, "timestamp");
    RETURN QUERY EXECUTE temporal_versioning.as_of_json_sql(vt.id) || ' LIMIT $2' USING "timestamp", "limit";
END
$$;

COMMENT ON FUNCTION temporal_versioning.query_temporal_data(text, text, timestamptz, integer) IS
    'pg-temporal: a versioned table as it was at an instant, one jsonb object per row';

-- The query (instants in $1 < $2) for every key whose state differs between
-- the two instants: change (added, deleted, modified), key, before, after and
-- the changed columns in table order. Only keys changed after $1 are read.
CREATE OR REPLACE FUNCTION temporal_versioning.compare_sql(versioned_table_id integer)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    names name[];
    history_names name[];
    keys text;
BEGIN
    SELECT * INTO STRICT vt FROM temporal_versioning.versioned_tables v WHERE v.id = versioned_table_id;
    SELECT array_agg(c.column_name ORDER BY c.attnum), array_agg(c.history_column ORDER BY c.attnum)
      INTO names, history_names FROM temporal_versioning.live_columns(vt.id) c;
    keys := temporal_versioning.key_list_sql('h', vt.key_columns);
    RETURN format(
        'WITH after_first AS (SELECT * FROM %1$s h), '
        'state_first AS (SELECT DISTINCT ON (%2$s) h.* FROM after_first h ORDER BY %2$s, h.temporal_id), '
        'state_second AS (SELECT DISTINCT ON (%2$s) h.* FROM after_first h'
        '                 WHERE h.temporal_tx_id IN (SELECT t.tx_id FROM temporal_versioning.transactions t WHERE t.valid_from > $2)'
        '                 ORDER BY %2$s, h.temporal_id), '
        'states AS ('
        '  SELECT %3$s AS key,'
        '         CASE WHEN a.temporal_operation = ''I'' THEN NULL ELSE %4$s END AS before,'
        '         CASE WHEN b.temporal_operation IS NULL THEN CASE WHEN s IS NULL THEN NULL ELSE %5$s END'
        '              WHEN b.temporal_operation = ''I'' THEN NULL ELSE %6$s END AS after'
        '  FROM state_first a'
        '  LEFT JOIN state_second b ON %7$s'
        '  LEFT JOIN %8$s s ON %9$s) '
        'SELECT CASE WHEN before IS NULL THEN ''added'' WHEN after IS NULL THEN ''deleted'' ELSE ''modified'' END AS change,'
        '       key, before, after,'
        '       CASE WHEN before IS NOT NULL AND after IS NOT NULL THEN'
        '            ARRAY(SELECT c FROM unnest(%10$L::text[]) WITH ORDINALITY AS u(c, n)'
        '                  WHERE (before->c)::text IS DISTINCT FROM (after->c)::text ORDER BY n) END AS changed_columns '
        'FROM states WHERE before::text IS DISTINCT FROM after::text',
        temporal_versioning.changes_after_sql(vt.history_table, 1),
        keys,
        temporal_versioning.jsonb_object_sql('a', vt.key_columns, vt.key_columns, temporal_versioning._history_relation(vt)),
        temporal_versioning.jsonb_object_sql('a', names, history_names, temporal_versioning._history_relation(vt)),
        temporal_versioning.jsonb_object_sql('s', names, names, vt.table_oid::regclass),
        temporal_versioning.jsonb_object_sql('b', names, history_names, temporal_versioning._history_relation(vt)),
        temporal_versioning.key_join_sql('b', 'a', vt.key_columns),
        temporal_versioning._scan(vt.table_oid),
        temporal_versioning.key_join_sql('s', 'a', vt.key_columns),
        names);
END
$$;

COMMENT ON FUNCTION temporal_versioning.compare_sql(integer) IS
    'pg-temporal: the query (instants in $1 and $2) for the rows that differ between two instants';

CREATE OR REPLACE FUNCTION temporal_versioning.compare_temporal_data(
    schema_name text, table_name text, timestamp1 timestamptz, timestamp2 timestamptz)
RETURNS TABLE (change text, key jsonb, before jsonb, after jsonb, changed_columns text[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
BEGIN
    IF timestamp1 >= timestamp2 THEN
        RAISE EXCEPTION 'the first instant (%) must be before the second (%)', timestamp1, timestamp2
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    vt := temporal_versioning.time_travel_table(schema_name, table_name, ARRAY[timestamp1, timestamp2]);
    PERFORM temporal_versioning.warn_schema_changes_since(vt, timestamp1);
    RETURN QUERY EXECUTE temporal_versioning.compare_sql(vt.id) || ' ORDER BY 1, 2' USING timestamp1, timestamp2;
END
$$;

COMMENT ON FUNCTION temporal_versioning.compare_temporal_data(text, text, timestamptz, timestamptz) IS
    'pg-temporal: the rows added, deleted and modified between two instants, with the changed columns';

-- The columns a row image has, as (name shown, history column): the live
-- table's columns, or, once the table is dropped, every history column.
CREATE OR REPLACE FUNCTION temporal_versioning.image_columns(versioned_table_id integer)
RETURNS TABLE (column_name name, history_column name)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.column_name, c.history_column FROM temporal_versioning.live_columns(versioned_table_id) c
    UNION ALL
    (SELECT a.attname, a.attname
     FROM temporal_versioning.versioned_tables v
     JOIN pg_attribute a ON a.attrelid = format('temporal_versioning.%I', v.history_table)::regclass
     JOIN temporal_versioning.versioned_columns c ON c.versioned_table_id = v.id AND c.history_column = a.attname
     WHERE v.id = image_columns.versioned_table_id AND v.table_oid IS NULL AND NOT a.attisdropped
     ORDER BY a.attnum);
$$;

COMMENT ON FUNCTION temporal_versioning.image_columns(integer) IS
    'pg-temporal: the columns of a row image, for a live table or a dropped one';

-- SQL for the live row (alias s) matching `condition` as jsonb, or NULL once the table is dropped.
CREATE OR REPLACE FUNCTION temporal_versioning.live_row_sql(vt temporal_versioning.versioned_tables, condition text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN vt.table_oid IS NULL THEN 'NULL::jsonb' ELSE
        format('(SELECT %s FROM %s s WHERE %s)',
               temporal_versioning.jsonb_object_sql('s', names, names, vt.table_oid::regclass), temporal_versioning._scan(vt.table_oid), condition) END
    FROM (SELECT array_agg(c.column_name ORDER BY c.attnum) AS names FROM temporal_versioning.live_columns(vt.id) c) l;
$$;

COMMENT ON FUNCTION temporal_versioning.live_row_sql(temporal_versioning.versioned_tables, text) IS
    'pg-temporal: SQL reading one live row as jsonb';

CREATE OR REPLACE FUNCTION temporal_versioning.operation_name(operation "char")
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE operation WHEN 'I' THEN 'INSERT' WHEN 'U' THEN 'UPDATE' WHEN 'D' THEN 'DELETE' ELSE 'TRUNCATE' END;
$$;

COMMENT ON FUNCTION temporal_versioning.operation_name("char") IS
    'pg-temporal: INSERT, UPDATE, DELETE or TRUNCATE for a history row''s temporal_operation';

-- Every version of one row, oldest first. A key given as a jsonb object of
-- its columns ({"id": 12345}, or every column of a composite key); values are
-- cast to the columns' types, never spliced into SQL. Version 0, operation
-- EXISTING, is the row as it was when versioning began, if it existed then.
CREATE OR REPLACE FUNCTION temporal_versioning.get_row_history(schema_name text, table_name text, key jsonb)
RETURNS TABLE (version integer, temporal_id bigint, change_type text, valid_from timestamptz, valid_to timestamptz,
               tx_id bigint, db_user text, application_name text, client_addr inet, user_id text,
               changeset text, row_data jsonb, changed_columns text[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    names name[];
    history_names name[];
    key_condition text;
    live_condition text;
    unknown text;
    live_row text;
BEGIN
    vt := temporal_versioning.time_travel_table(schema_name, table_name, needs_live_table => false);
    IF key IS NULL OR jsonb_typeof(key) <> 'object' THEN
        RAISE EXCEPTION 'the key must be a JSON object of key columns, such as {"id": 12345}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(quote_ident(k), ', ') INTO unknown FROM jsonb_object_keys(key) k WHERE k <> ALL (vt.key_columns);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'column % is not part of the key of "%.%"', unknown, schema_name, table_name
            USING ERRCODE = 'undefined_column',
                  HINT = format('The key is (%s).', array_to_string(vt.key_columns, ', '));
    END IF;
    SELECT string_agg(quote_ident(k), ', ') INTO unknown FROM unnest(vt.key_columns) k WHERE NOT key ? k;
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'a value for key column % is missing', unknown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('The key of "%s.%s" is (%s); give every column.', schema_name, table_name, array_to_string(vt.key_columns, ', '));
    END IF;

    -- A key value is cast to its column's type when no table owner can have
    -- given that type a cast from text; otherwise the key is compared as the
    -- text its type's output function prints. (For the history, h, and the
    -- live table, s.)
    SELECT string_agg(format(c.test, 'h', c.k, c.type), ' AND '), string_agg(format(c.test, 's', c.k, c.type), ' AND ')
      INTO key_condition, live_condition
      FROM (SELECT k, format_type(a.atttypid, a.atttypmod) AS type,
                   CASE WHEN temporal_versioning._type_is_trusted(a.atttypid)
                        THEN '%1$s.%2$I = ($1->>%2$L)::%3$s'
                        ELSE 'format(''%%s'', %1$s.%2$I) = ($1->>%2$L)' END AS test
            FROM unnest(vt.key_columns) k
            JOIN pg_attribute a ON a.attrelid = temporal_versioning._history_relation(vt) AND a.attname = k) c;

    SELECT array_agg(c.column_name ORDER BY c.n), array_agg(c.history_column ORDER BY c.n)
      INTO names, history_names
      FROM temporal_versioning.image_columns(vt.id) WITH ORDINALITY AS c(column_name, history_column, n);
    live_row := temporal_versioning.live_row_sql(vt, live_condition);

    RETURN QUERY EXECUTE format(
        'WITH changes AS ('
        '  SELECT h.temporal_id, h.temporal_operation, h.temporal_tx_id,'
        '         CASE WHEN h.temporal_operation = ''I'' THEN NULL ELSE %1$s END AS image'
        '  FROM temporal_versioning.%2$I h WHERE %3$s), '
        'versions AS ('
        '  SELECT c.*, lead(c.image) OVER w AS next_image, lead(c.temporal_tx_id) OVER w AS next_tx,'
        '         row_number() OVER w AS n, count(*) OVER () AS total'
        '  FROM changes c WINDOW w AS (ORDER BY c.temporal_id)), '
        'live AS (SELECT %4$s AS row_data), '
        'rows AS ('
        '  SELECT 0 AS version, NULL::bigint AS temporal_id, ''EXISTING'' AS operation, NULL::bigint AS tx_id,'
        '         v.temporal_tx_id AS next_tx, v.image AS row_data'
        '  FROM versions v WHERE v.n = 1 AND v.temporal_operation <> ''I'' '
        '  UNION ALL '
        '  SELECT v.n::integer, v.temporal_id,'
        '         temporal_versioning.operation_name(v.temporal_operation),'
        '         v.temporal_tx_id, v.next_tx,'
        '         CASE WHEN v.temporal_operation IN (''D'', ''T'') THEN NULL'
        '              WHEN v.n < v.total THEN v.next_image ELSE (SELECT row_data FROM live) END'
        '  FROM versions v), '
        'with_previous AS (SELECT r.*, lag(r.row_data) OVER (ORDER BY r.version) AS previous FROM rows r) '
        'SELECT r.version, r.temporal_id, r.operation, t.valid_from, n.valid_from,'
        '       r.tx_id, t.db_user, t.application_name, t.client_addr, t.user_id, t.changeset_id, r.row_data,'
        '       CASE WHEN r.version > 0 AND r.previous IS NOT NULL AND r.row_data IS NOT NULL THEN'
        '            ARRAY(SELECT c FROM unnest(%5$L::text[]) WITH ORDINALITY AS u(c, i)'
        '                  WHERE (r.previous->c)::text IS DISTINCT FROM (r.row_data->c)::text ORDER BY i) END '
        'FROM with_previous r'
        ' LEFT JOIN temporal_versioning.transactions t ON t.tx_id = r.tx_id'
        ' LEFT JOIN temporal_versioning.transactions n ON n.tx_id = r.next_tx '
        'ORDER BY r.version',
        temporal_versioning.jsonb_object_sql('h', names, history_names, temporal_versioning._history_relation(vt)),
        vt.history_table,
        key_condition,
        live_row,
        names) USING key;
END
$$;

COMMENT ON FUNCTION temporal_versioning.get_row_history(text, text, jsonb) IS
    'pg-temporal: every version of one row (key as a jsonb object), oldest first, with who and when';

CREATE OR REPLACE FUNCTION temporal_versioning.get_row_history(
    schema_name text, table_name text, primary_key_column text, primary_key_value text)
RETURNS TABLE (version integer, temporal_id bigint, change_type text, valid_from timestamptz, valid_to timestamptz,
               tx_id bigint, db_user text, application_name text, client_addr inet, user_id text,
               changeset text, row_data jsonb, changed_columns text[])
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM temporal_versioning.get_row_history(schema_name, table_name,
                                                      jsonb_build_object(primary_key_column, primary_key_value));
$$;

COMMENT ON FUNCTION temporal_versioning.get_row_history(text, text, text, text) IS
    'pg-temporal: every version of one row of a single-column key, oldest first';

-- The log of changes, oldest first: what each change did to its row (before
-- and after), who made it and when. Filters: the window [start_time,
-- end_time] of transaction times, the operation, a user (database role or
-- temporal.user_id) and a changeset.
CREATE OR REPLACE FUNCTION temporal_versioning.get_change_history(
    schema_name text, table_name text,
    start_time timestamptz DEFAULT NULL, end_time timestamptz DEFAULT NULL,
    operation text DEFAULT NULL, "limit" integer DEFAULT NULL,
    user_name text DEFAULT NULL, changeset_id text DEFAULT NULL)
RETURNS TABLE (temporal_id bigint, changed_at timestamptz, change_type text, key jsonb, tx_id bigint,
               db_user text, application_name text, client_addr inet, user_id text, changeset text,
               before jsonb, after jsonb, changed_columns text[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    op "char";
    names name[];
    history_names name[];
    after_live text;
BEGIN
    vt := temporal_versioning.time_travel_table(schema_name, table_name, needs_live_table => false);
    IF operation IS NOT NULL THEN
        op := CASE upper(operation) WHEN 'INSERT' THEN 'I' WHEN 'UPDATE' THEN 'U'
                                    WHEN 'DELETE' THEN 'D' WHEN 'TRUNCATE' THEN 'T' END;
        IF op IS NULL THEN
            RAISE EXCEPTION 'unknown operation "%"', operation
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Use INSERT, UPDATE, DELETE or TRUNCATE.';
        END IF;
    END IF;
    IF start_time IS NOT NULL AND vt.history_floor IS NOT NULL AND start_time < vt.history_floor THEN
        RAISE WARNING 'changes to "%.%" made before % were pruned: the log starts there', schema_name, table_name, vt.history_floor
            USING HINT = 'temporal archive list shows the archives that hold them.';
    END IF;
    IF start_time IS NOT NULL AND end_time IS NOT NULL AND start_time > end_time THEN
        RAISE EXCEPTION 'the start of the window (%) is after its end (%)', start_time, end_time
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT array_agg(c.column_name ORDER BY c.n), array_agg(c.history_column ORDER BY c.n)
      INTO names, history_names
      FROM temporal_versioning.image_columns(vt.id) WITH ORDINALITY AS c(column_name, history_column, n);
    after_live := temporal_versioning.live_row_sql(vt, temporal_versioning.key_join_sql('s', 'h', vt.key_columns));

    RETURN QUERY EXECUTE format(
        'WITH window_changes AS ('
        '  SELECT h.*, t.valid_from, t.db_user, t.application_name, t.client_addr, t.user_id, t.changeset_id'
        '  FROM temporal_versioning.%1$I h JOIN temporal_versioning.transactions t ON t.tx_id = h.temporal_tx_id'
        '  WHERE ($1 IS NULL OR (h.temporal_tx_id >= (SELECT coalesce(min(x.tx_id), 9223372036854775807)'
        '                                             FROM temporal_versioning.transactions x WHERE x.valid_from >= $1)'
        '                        AND t.valid_from >= $1))'
        '    AND ($2 IS NULL OR t.valid_from <= $2)'
        '    AND ($3 IS NULL OR h.temporal_operation = $3)'
        '    AND ($5 IS NULL OR t.db_user = $5 OR t.user_id = $5)'
        '    AND ($6 IS NULL OR t.changeset_id = $6)'
        '  ORDER BY h.temporal_id LIMIT $4) '
        'SELECT h.temporal_id, h.valid_from,'
        '       temporal_versioning.operation_name(h.temporal_operation),'
        '       %2$s, h.temporal_tx_id, h.db_user, h.application_name, h.client_addr, h.user_id, h.changeset_id,'
        '       b.before, a.after,'
        '       CASE WHEN b.before IS NOT NULL AND a.after IS NOT NULL THEN'
        '            ARRAY(SELECT c FROM unnest(%3$L::text[]) WITH ORDINALITY AS u(c, i)'
        '                  WHERE (b.before->c)::text IS DISTINCT FROM (a.after->c)::text ORDER BY i) END '
        'FROM window_changes h'
        ' CROSS JOIN LATERAL (SELECT CASE WHEN h.temporal_operation = ''I'' THEN NULL ELSE %4$s END AS before) b'
        ' CROSS JOIN LATERAL ('
        '   SELECT CASE WHEN h.temporal_operation IN (''D'', ''T'') THEN NULL'
        '               WHEN nx.temporal_id IS NULL THEN %5$s'
        '               WHEN nx.temporal_operation = ''I'' THEN NULL'
        '               ELSE nx.image END AS after'
        '   FROM (SELECT NULL) dummy LEFT JOIN LATERAL ('
        '     SELECT n.temporal_id, n.temporal_operation, %6$s AS image FROM temporal_versioning.%1$I n'
        '     WHERE %7$s AND n.temporal_id > h.temporal_id ORDER BY n.temporal_id LIMIT 1) nx ON true) a '
        'ORDER BY h.temporal_id',
        vt.history_table,
        temporal_versioning.jsonb_object_sql('h', vt.key_columns, vt.key_columns, temporal_versioning._history_relation(vt)),
        names,
        temporal_versioning.jsonb_object_sql('h', names, history_names, temporal_versioning._history_relation(vt)),
        after_live,
        temporal_versioning.jsonb_object_sql('n', names, history_names, temporal_versioning._history_relation(vt)),
        temporal_versioning.key_join_sql('n', 'h', vt.key_columns))
    USING start_time, end_time, op, "limit", user_name, changeset_id;
END
$$;

COMMENT ON FUNCTION temporal_versioning.get_change_history(text, text, timestamptz, timestamptz, text, integer, text, text) IS
    'pg-temporal: the changes of a versioned table in a time window, with before and after, who and when';

-- For clients that stream: checks the request like as_of() does, raises its
-- warnings, and returns the query to run with the instant as $1 (rows, or one
-- jsonb object per row with as_json). Running it directly avoids
-- materializing a whole table inside a function; it names every built-in by
-- its schema, so it is safe to run with any search_path.
CREATE OR REPLACE FUNCTION temporal_versioning.prepare_as_of(schema_name text, table_name text, at timestamptz,
                                                             as_json boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
BEGIN
    vt := temporal_versioning.time_travel_table(schema_name, table_name, ARRAY[at]);
    PERFORM temporal_versioning.warn_schema_changes_since(vt, at);
    IF as_json THEN
        RETURN temporal_versioning.as_of_json_sql(vt.id);
    END IF;
    RETURN temporal_versioning.as_of_sql(vt.id);
END
$$;

COMMENT ON FUNCTION temporal_versioning.prepare_as_of(text, text, timestamptz, boolean) IS
    'pg-temporal: check an as-of request and return its query (instant in $1), for clients that stream rows';
