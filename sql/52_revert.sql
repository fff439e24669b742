-- Reverting: a table to its state at an instant (revert_table_data), or
-- undoing one changeset or transaction across every table it touched
-- (revert_changeset, revert_transaction).
--
-- A revert runs with the caller's rights, usually a DBA's, on a table an
-- application may own, so it must not resolve anything through a search_path
-- the table's owner can write to: every function here pins search_path to
-- pg_catalog, and only the DELETE, UPDATE and INSERT on the user's table run
-- with the caller's own search_path (which the public entry points pass on),
-- so that the table's triggers resolve names as for any other write. The SQL
-- of those statements names every object and operator by its schema.
--
-- Both build a plan first: for every key the revert would touch, the action
-- (delete, update, insert), the key, the row now (before) and the row after.
-- A dry run returns the plan; a real run locks the tables against writers,
-- applies the plan with one DELETE, one UPDATE and one INSERT per table (so
-- the table's own triggers and constraints act as for any write), and
-- returns the same plan. The revert is captured like any change, under the
-- changeset revert:..., so it can be reverted in turn.

-- The query for the plan of one table: temporal_action, temporal_key,
-- temporal_before, temporal_after, then the wanted value of every column the
-- revert writes. targets_sql selects the history rows whose images are the
-- wanted state (the first per key, in temporal_id order, wins; an INSERT image
-- means absent); it may use $1. Columns added at or after existed_since did
-- not exist in the wanted state: an update leaves them as they are, an insert
-- gives them their default. A dry run runs this query; a real run keeps its
-- rows in a temporary table and applies them (a read-only transaction allows
-- the first, so previews work in read-only mode).
CREATE OR REPLACE FUNCTION temporal_versioning.revert_plan_sql(
    vt temporal_versioning.versioned_tables, targets_sql text, existed_since timestamptz)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    blocking record;
    added smallint[];
    names name[];
    history_names name[];
    kept name[];
    kept_history name[];
    kept_history_types text[];
    differs text;
BEGIN
    -- A revert must put back exactly what was there; refuse what the table as
    -- it is now cannot hold.
    SELECT * INTO blocking FROM temporal_versioning.schema_changes_since(vt.id, existed_since) s
    WHERE s.change <> 'add column' LIMIT 1;
    IF blocking.change IS NOT NULL THEN
        RAISE EXCEPTION 'cannot revert "%.%": column "%" %', vt.schema_name, vt.table_name, blocking.column_name,
            CASE blocking.change WHEN 'drop column' THEN format('was dropped at %s', blocking.changed_at)
                 ELSE format('changed type at %s with a conversion the history could not repeat', blocking.changed_at) END
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('The values the revert needs are kept in temporal_versioning.%I.%I, but the table has no column to put them back in.',
                                  vt.history_table, blocking.kept_in),
                  HINT = 'Revert to an instant after that schema change, or restore the column first.';
    END IF;
    added := ARRAY(SELECT s.attnum FROM temporal_versioning.schema_changes_since(vt.id, existed_since) s
                   WHERE s.change = 'add column' AND s.attnum IS NOT NULL);

    SELECT array_agg(c.column_name ORDER BY c.attnum), array_agg(c.history_column ORDER BY c.attnum),
           array_agg(c.column_name ORDER BY c.attnum) FILTER (WHERE NOT c.is_generated AND c.attnum <> ALL (added)),
           array_agg(c.history_column ORDER BY c.attnum) FILTER (WHERE NOT c.is_generated AND c.attnum <> ALL (added)),
           array_agg(c.history_type ORDER BY c.attnum) FILTER (WHERE NOT c.is_generated AND c.attnum <> ALL (added))
      INTO names, history_names, kept, kept_history, kept_history_types
      FROM temporal_versioning.live_columns(vt.id) c;
    SELECT temporal_versioning.differs_sql(coalesce(array_agg(format('s.%I', kept[i]) ORDER BY i), '{}'),
                                           coalesce(array_agg(format('t.%I', kept_history[i]) ORDER BY i), '{}'),
                                           coalesce(kept_history_types, '{}'), relabel => true)
      INTO differs FROM generate_subscripts(kept, 1) i;

    RETURN format(
        'WITH target AS (SELECT DISTINCT ON (%1$s) h.* FROM (%2$s) h ORDER BY %1$s, h.temporal_id), '
        'planned AS ('
        '  SELECT CASE WHEN t.temporal_operation = ''I'' THEN CASE WHEN s.%3$I IS NULL THEN NULL ELSE ''delete'' END'
        '              WHEN s.%3$I IS NULL THEN ''insert'''
        '              WHEN %4$s THEN ''update'' END AS temporal_action,'
        '         %5$s AS temporal_key,'
        '         CASE WHEN s.%3$I IS NULL THEN NULL ELSE %6$s END AS temporal_before,'
        '         CASE WHEN t.temporal_operation = ''I'' THEN NULL ELSE %7$s END AS temporal_after,'
        '         %8$s'
        '  FROM target t LEFT JOIN %9$s s ON %10$s) '
        'SELECT * FROM planned WHERE temporal_action IS NOT NULL',
        temporal_versioning.key_list_sql('h', vt.key_columns),
        targets_sql,
        vt.key_columns[1],
        differs,
        temporal_versioning.jsonb_object_sql('t', vt.key_columns, vt.key_columns, temporal_versioning._history_relation(vt)),
        temporal_versioning.jsonb_object_sql('s', names, names, vt.table_oid::regclass),
        temporal_versioning.jsonb_object_sql('t', kept, kept_history, temporal_versioning._history_relation(vt)),
        (SELECT string_agg(format('t.%I AS %I', kept_history[i], kept[i]), ', ' ORDER BY i) FROM generate_subscripts(kept, 1) i),
        temporal_versioning._scan(vt.table_oid),
        temporal_versioning.key_join_sql('s', 't', vt.key_columns));
END
$$;

COMMENT ON FUNCTION temporal_versioning.revert_plan_sql(temporal_versioning.versioned_tables, text, timestamptz) IS
    'pg-temporal: the query planning, row by row, what a revert of one table would delete, update and insert';

-- Keeps a plan's rows in pg_temp."temporal_revert_plan_<id>" for a real run,
-- so that the statements applying it and the rows reported are the same.
CREATE OR REPLACE FUNCTION temporal_versioning.materialize_revert_plan(
    vt temporal_versioning.versioned_tables, plan_sql text, parameter anyelement)
RETURNS regclass
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    plan_name text := 'temporal_revert_plan_' || vt.id;
BEGIN
    IF to_regclass(format('pg_temp.%I', plan_name)) IS NOT NULL THEN
        EXECUTE format('DROP TABLE pg_temp.%I', plan_name);
    END IF;
    EXECUTE format('CREATE TEMP TABLE %I ON COMMIT DROP AS %s', plan_name, plan_sql) USING parameter;
    RETURN format('pg_temp.%I', plan_name)::regclass;
END
$$;

COMMENT ON FUNCTION temporal_versioning.materialize_revert_plan(temporal_versioning.versioned_tables, text, anyelement) IS
    'pg-temporal: keep the rows of a revert plan in a temporary table for the run that applies it';

-- The rows a revert reports, from a plan query or a kept plan, in a stable order.
CREATE OR REPLACE FUNCTION temporal_versioning.revert_report_sql(plan_source text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('SELECT p.temporal_action, p.temporal_key, p.temporal_before, p.temporal_after FROM %s p '
                  'ORDER BY array_position(ARRAY[''delete'', ''update'', ''insert''], p.temporal_action), p.temporal_key',
                  plan_source);
$$;

COMMENT ON FUNCTION temporal_versioning.revert_report_sql(text) IS
    'pg-temporal: the query reporting a revert plan, deletes first, then updates, then inserts';

-- The statement carrying out one action of a plan on its table: one DELETE,
-- UPDATE or INSERT, or NULL when there is nothing to do. Every name in it is
-- schema-qualified and every operator is pg_catalog's, since it runs with the
-- caller's search_path.
CREATE OR REPLACE FUNCTION temporal_versioning._revert_dml_sql(
    vt temporal_versioning.versioned_tables, plan regclass, action text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    columns name[];
    non_key name[];
    chosen text;
    plan_name text;
BEGIN
    columns := ARRAY(SELECT a.attname FROM pg_attribute a
                     WHERE a.attrelid = plan AND a.attnum > 0 AND NOT a.attisdropped
                       AND a.attname NOT IN ('temporal_action', 'temporal_key', 'temporal_before', 'temporal_after')
                     ORDER BY a.attnum);
    non_key := ARRAY(SELECT c FROM unnest(columns) c WHERE c <> ALL (vt.key_columns));
    chosen := format('p.temporal_action OPERATOR(pg_catalog.=) %L::pg_catalog.text', action);
    -- The plan by its schema: pg_temp is on our path, so its regclass would print bare.
    plan_name := format('pg_temp.%I', (SELECT c.relname FROM pg_class c WHERE c.oid = plan));
    IF action = 'delete' THEN
        RETURN format('DELETE FROM %s s USING %s p WHERE %s AND %s',
                      temporal_versioning._scan(vt.table_oid), plan_name, chosen, temporal_versioning.key_join_sql('s', 'p', vt.key_columns));
    ELSIF action = 'update' THEN
        IF cardinality(non_key) = 0 THEN
            RETURN NULL;
        END IF;
        RETURN format('UPDATE %s s SET (%s) = ROW(%s) FROM %s p WHERE %s AND %s',
                      temporal_versioning._scan(vt.table_oid),
                      (SELECT string_agg(format('%I', c), ', ') FROM unnest(non_key) c),
                      (SELECT string_agg(format('p.%I', c), ', ') FROM unnest(non_key) c),
                      plan_name, chosen, temporal_versioning.key_join_sql('s', 'p', vt.key_columns));
    END IF;
    RETURN format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s p WHERE %s',
                  vt.table_oid::regclass,
                  (SELECT string_agg(format('%I', c), ', ') FROM unnest(columns) c),
                  (SELECT string_agg(format('p.%I', c), ', ') FROM unnest(columns) c),
                  plan_name, chosen);
END
$$;

COMMENT ON FUNCTION temporal_versioning._revert_dml_sql(temporal_versioning.versioned_tables, regclass, text) IS
    'pg-temporal (internal): the DELETE, UPDATE or INSERT carrying out one action of a revert plan';

-- Labels the changes of a real revert with changeset `label`, runs the plans
-- of `tables` in foreign-key order (deletes children first, inserts parents
-- first) with the caller's search_path, and puts the caller's changeset
-- setting back. The label ends with the revert's transaction id, so that two
-- reverts to the same instant can each be undone by their changeset.
CREATE OR REPLACE FUNCTION temporal_versioning._run_revert(
    tables integer[], plans regclass[], label text, caller_search_path text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    previous text := current_setting('temporal.changeset_id', true);
    ordered integer[];
    i integer;
    vt temporal_versioning.versioned_tables;
    action text;
    statement text;
BEGIN
    IF EXISTS (SELECT 1 FROM temporal_versioning.transactions t WHERE t.tx_id = txid_current_if_assigned()) THEN
        RAISE WARNING 'this transaction changed versioned tables before the revert: the revert is recorded under its context, not changeset %', label
            USING HINT = 'Run a revert in a transaction of its own.';
    END IF;
    PERFORM set_config('temporal.changeset_id', format('%s:tx:%s', label, txid_current()), true);

    -- Positions in `tables`, parents (referenced tables) before children.
    WITH RECURSIVE edges AS (
        SELECT DISTINCT child.n AS child, parent.n AS parent
        FROM pg_constraint c
        JOIN temporal_versioning.versioned_tables vc ON vc.table_oid = c.conrelid
        JOIN temporal_versioning.versioned_tables vp ON vp.table_oid = c.confrelid
        JOIN unnest(tables) WITH ORDINALITY AS child(id, n) ON child.id = vc.id
        JOIN unnest(tables) WITH ORDINALITY AS parent(id, n) ON parent.id = vp.id
        WHERE c.contype = 'f' AND c.conrelid <> c.confrelid),
    depth(n, level) AS (
        SELECT n::bigint, 0 FROM generate_subscripts(tables, 1) n
        UNION ALL
        SELECT e.child, d.level + 1 FROM depth d JOIN edges e ON e.parent = d.n WHERE d.level < cardinality(tables))
    SELECT array_agg(n ORDER BY level, n) INTO ordered
    FROM (SELECT n, max(level) AS level FROM depth GROUP BY n) levels;

    FOREACH action IN ARRAY ARRAY['delete', 'update', 'insert'] LOOP
        FOR i IN SELECT CASE WHEN action = 'delete' THEN ordered[cardinality(ordered) + 1 - k] ELSE ordered[k] END
                 FROM generate_subscripts(ordered, 1) k LOOP
            SELECT * INTO STRICT vt FROM temporal_versioning.versioned_tables v WHERE v.id = tables[i];
            statement := temporal_versioning._revert_dml_sql(vt, plans[i], action);
            CONTINUE WHEN statement IS NULL;
            -- The user's table, its triggers and constraints see the caller's
            -- search_path; this function's own SET puts ours back on return.
            PERFORM pg_catalog.set_config('search_path', caller_search_path, true);
            EXECUTE statement;
            -- (Qualified: this runs while the caller's search_path is in force.)
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        END LOOP;
    END LOOP;

    PERFORM set_config('temporal.changeset_id', coalesce(previous, ''), true);
END
$$;

COMMENT ON FUNCTION temporal_versioning._run_revert(integer[], regclass[], text, text) IS
    'pg-temporal (internal): apply revert plans in foreign-key order under a revert: changeset';

CREATE OR REPLACE FUNCTION temporal_versioning._revert_table_data(
    schema_name text, table_name text, "timestamp" timestamptz, dry_run boolean, caller_search_path text)
RETURNS TABLE (action text, key jsonb, before jsonb, after jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    plan_sql text;
    plan regclass;
BEGIN
    vt := temporal_versioning.time_travel_table(schema_name, table_name, ARRAY["timestamp"]);
    plan_sql := temporal_versioning.revert_plan_sql(
        vt, temporal_versioning.changes_after_sql(vt.history_table, 1), "timestamp");
    IF dry_run THEN
        RETURN QUERY EXECUTE temporal_versioning.revert_report_sql(format('(%s)', plan_sql)) USING "timestamp";
        RETURN;
    END IF;
    IF NOT vt.enabled THEN
        RAISE EXCEPTION 'versioning of "%.%" is off', schema_name, table_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'A revert must itself be captured, so that it can be undone.',
                  HINT = format('Turn versioning on again first: temporal enable %I.%I', schema_name, table_name);
    END IF;
    -- Readers go on; writers wait until the revert commits.
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', vt.table_oid::regclass);
    plan := temporal_versioning.materialize_revert_plan(vt, plan_sql, "timestamp");
    PERFORM temporal_versioning._run_revert(ARRAY[vt.id], ARRAY[plan],
        format('revert:%I.%I:to:%s', vt.schema_name, vt.table_name, "timestamp"), caller_search_path);
    RETURN QUERY EXECUTE temporal_versioning.revert_report_sql(plan::text);
END
$$;

COMMENT ON FUNCTION temporal_versioning._revert_table_data(text, text, timestamptz, boolean, text) IS
    'pg-temporal (internal): revert_table_data, with the caller''s search_path for the statements on the table';

-- The public entry points are SQL functions without a SET clause, so that
-- they can hand the caller's search_path on; they name nothing unqualified.
CREATE OR REPLACE FUNCTION temporal_versioning.revert_table_data(
    schema_name text, table_name text, "timestamp" timestamptz, dry_run boolean DEFAULT true)
RETURNS TABLE (action text, key jsonb, before jsonb, after jsonb)
LANGUAGE sql
AS $$
    SELECT * FROM temporal_versioning._revert_table_data($1, $2, $3, $4, pg_catalog.current_setting('search_path'));
$$;

COMMENT ON FUNCTION temporal_versioning.revert_table_data(text, text, timestamptz, boolean) IS
    'pg-temporal: put a table back as it was at an instant (dry_run, the default, only shows what would change)';

-- Undoes the changes of the given transactions in every versioned table they
-- touched (or only in schema_name.table_name). A key changed again by another
-- transaction afterwards is a conflict: nothing is reverted, and the
-- conflicting keys are listed.
CREATE OR REPLACE FUNCTION temporal_versioning._revert_transactions(
    tx_ids bigint[], label text, dry_run boolean, schema_name text, table_name text, caller_search_path text)
RETURNS TABLE (source_table text, action text, key jsonb, before jsonb, after jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    only_table temporal_versioning.versioned_tables;
    tables integer[] := '{}';
    plan_sqls text[] := '{}';
    plans regclass[] := '{}';
    first_at timestamptz;
    conflicts text;
    touched boolean;
    i integer;
BEGIN
    IF schema_name IS NOT NULL THEN
        only_table := temporal_versioning.time_travel_table(schema_name, table_name);
    END IF;
    SELECT min(t.valid_from) INTO first_at FROM temporal_versioning.transactions t WHERE t.tx_id = ANY (tx_ids);

    FOR vt IN
        SELECT * FROM temporal_versioning.versioned_tables v
        WHERE v.table_oid IS NOT NULL AND (only_table.id IS NULL OR v.id = only_table.id)
        ORDER BY v.table_oid
    LOOP
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM temporal_versioning.%I h WHERE h.temporal_tx_id = ANY ($1))', vt.history_table)
            INTO touched USING tx_ids;
        CONTINUE WHEN NOT touched;
        -- The conflict check and the revert's own capture need every change
        -- since to be recorded.
        IF vt.enabled AND temporal_versioning.capture_state(vt.table_oid) <> 'enabled' THEN
            RAISE EXCEPTION 'capture of "%.%" is %', vt.schema_name, vt.table_name, temporal_versioning.capture_state(vt.table_oid)
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'Changes made while capture is not firing are not in the history, so a revert could overwrite them and could not itself be undone.';
        END IF;
        IF NOT dry_run THEN
            IF NOT vt.enabled THEN
                RAISE EXCEPTION 'versioning of "%.%" is off', vt.schema_name, vt.table_name
                    USING ERRCODE = 'object_not_in_prerequisite_state',
                          DETAIL = 'A revert must itself be captured, so that it can be undone.';
            END IF;
            EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', vt.table_oid::regclass);
        END IF;
        IF first_at < vt.versioning_since THEN
            RAISE EXCEPTION 'cannot revert changes to "%.%" made before its history restarted at %',
                            vt.schema_name, vt.table_name, vt.versioning_since
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;

        EXECUTE format(
            'WITH mine AS (SELECT DISTINCT ON (%1$s) h.* FROM temporal_versioning.%2$I h'
            '              WHERE h.temporal_tx_id = ANY ($1) ORDER BY %1$s, h.temporal_id) '
            'SELECT string_agg(DISTINCT %3$s::text, '', '') FROM mine m JOIN temporal_versioning.%2$I h ON %4$s'
            ' WHERE h.temporal_id > m.temporal_id AND h.temporal_tx_id <> ALL ($1)',
            temporal_versioning.key_list_sql('h', vt.key_columns), vt.history_table,
            temporal_versioning.jsonb_object_sql('m', vt.key_columns, vt.key_columns, temporal_versioning._history_relation(vt)),
            temporal_versioning.key_join_sql('h', 'm', vt.key_columns))
        INTO conflicts USING tx_ids;
        IF conflicts IS NOT NULL THEN
            RAISE EXCEPTION 'cannot revert %: rows of "%.%" were changed again afterwards', label, vt.schema_name, vt.table_name
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'Changed later by other transactions: ' || left(conflicts, 2000),
                      HINT = 'Revert the later changes first, or put the table back as it was at an instant: temporal revert --to';
        END IF;

        tables := tables || vt.id;
        plan_sqls := plan_sqls || temporal_versioning.revert_plan_sql(
            vt, format('SELECT h.* FROM temporal_versioning.%I h WHERE h.temporal_tx_id = ANY ($1)', vt.history_table),
            first_at);
    END LOOP;

    IF cardinality(tables) = 0 THEN
        RAISE EXCEPTION 'no changes found for %', label
            USING ERRCODE = 'no_data_found',
                  HINT = 'temporal log shows the changesets and transactions that were recorded.';
    END IF;
    IF NOT dry_run THEN
        FOR i IN 1 .. cardinality(tables) LOOP
            SELECT * INTO STRICT vt FROM temporal_versioning.versioned_tables v WHERE v.id = tables[i];
            plans := plans || temporal_versioning.materialize_revert_plan(vt, plan_sqls[i], tx_ids);
        END LOOP;
        PERFORM temporal_versioning._run_revert(tables, plans, 'revert:' || label, caller_search_path);
    END IF;
    FOR i IN 1 .. cardinality(tables) LOOP
        SELECT * INTO STRICT vt FROM temporal_versioning.versioned_tables v WHERE v.id = tables[i];
        RETURN QUERY EXECUTE format('SELECT %L::text, r.* FROM (%s) r', format('%I.%I', vt.schema_name, vt.table_name),
                                    temporal_versioning.revert_report_sql(
                                        CASE WHEN dry_run THEN format('(%s)', plan_sqls[i]) ELSE plans[i]::text END))
            USING tx_ids;
    END LOOP;
END
$$;

COMMENT ON FUNCTION temporal_versioning._revert_transactions(bigint[], text, boolean, text, text, text) IS
    'pg-temporal (internal): undo the changes of some transactions in every versioned table they touched';

CREATE OR REPLACE FUNCTION temporal_versioning._changeset_transactions(changeset_id text)
RETURNS bigint[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY(SELECT t.tx_id FROM temporal_versioning.transactions t
                 WHERE t.changeset_id = _changeset_transactions.changeset_id ORDER BY t.tx_id);
$$;

COMMENT ON FUNCTION temporal_versioning._changeset_transactions(text) IS
    'pg-temporal (internal): the transactions recorded under a changeset';

CREATE OR REPLACE FUNCTION temporal_versioning.revert_changeset(
    changeset_id text, dry_run boolean DEFAULT true, schema_name text DEFAULT NULL, table_name text DEFAULT NULL)
RETURNS TABLE (source_table text, action text, key jsonb, before jsonb, after jsonb)
LANGUAGE sql
AS $$
    SELECT * FROM temporal_versioning._revert_transactions(
        temporal_versioning._changeset_transactions($1), pg_catalog.format('changeset %s', $1), $2, $3, $4,
        pg_catalog.current_setting('search_path'));
$$;

COMMENT ON FUNCTION temporal_versioning.revert_changeset(text, boolean, text, text) IS
    'pg-temporal: undo every change recorded under a changeset (dry_run, the default, only shows it)';

CREATE OR REPLACE FUNCTION temporal_versioning.revert_transaction(
    tx_id bigint, dry_run boolean DEFAULT true, schema_name text DEFAULT NULL, table_name text DEFAULT NULL)
RETURNS TABLE (source_table text, action text, key jsonb, before jsonb, after jsonb)
LANGUAGE sql
AS $$
    SELECT * FROM temporal_versioning._revert_transactions(
        ARRAY[$1], pg_catalog.format('transaction %s', $1), $2, $3, $4, pg_catalog.current_setting('search_path'));
$$;

COMMENT ON FUNCTION temporal_versioning.revert_transaction(bigint, boolean, text, text) IS
    'pg-temporal: undo every change one transaction made (dry_run, the default, only shows it)';
