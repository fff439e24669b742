-- What is versioned, and what its history holds.

-- State of the capture triggers of a table: 'enabled' when all of them are
-- in place, pg-temporal's own (the right function, events and timing, no
-- column list or WHEN) and fire always; 'replaced' when one is not
-- pg-temporal's; 'disabled' when any is disabled; 'missing' when any is
-- gone; 'dropped' when the table itself is gone.
CREATE OR REPLACE FUNCTION temporal_versioning.capture_state(table_oid oid)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN table_oid IS NULL OR NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = table_oid) THEN 'dropped'
        WHEN count(t.oid) < cardinality(temporal_versioning._capture_trigger_names()) THEN 'missing'
        WHEN bool_or(NOT coalesce(temporal_versioning._capture_trigger_function_is_ours(table_oid, e.n::integer, t.tgfoid), false)
                     OR t.tgtype <> (temporal_versioning._capture_trigger_types())[e.n]
                     OR t.tgattr::text <> '' OR t.tgqual IS NOT NULL) THEN 'replaced'
        WHEN bool_and(t.tgenabled = 'A') THEN 'enabled'
        WHEN bool_or(t.tgenabled = 'D') THEN 'disabled'
        ELSE 'enabled (origin only)'
    END
    FROM unnest(temporal_versioning._capture_trigger_names()) WITH ORDINALITY AS e(name, n)
    JOIN pg_trigger t ON t.tgrelid = table_oid AND t.tgname = e.name;
$$;

COMMENT ON FUNCTION temporal_versioning.capture_state(oid) IS
    'pg-temporal: whether the capture triggers of a table are in place and firing';

-- The size on disk of a table with its indexes and TOAST, and of all its
-- partitions when it is partitioned (a partitioned history).
CREATE OR REPLACE FUNCTION temporal_versioning._relation_bytes(relation oid)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT sum(pg_total_relation_size(t.relid))::bigint FROM pg_partition_tree(relation) t),
                    pg_total_relation_size(relation));
$$;

COMMENT ON FUNCTION temporal_versioning._relation_bytes(oid) IS
    'pg-temporal (internal): the size of a table with its indexes, TOAST and partitions';

-- The changes of a history made since `since` (found through the BRIN
-- index on temporal_tx_id: the first transaction since then, and on).
CREATE OR REPLACE FUNCTION temporal_versioning._changes_since(vt temporal_versioning.versioned_tables, since timestamptz)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF to_regclass(format('temporal_versioning.%I', vt.history_table)) IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT count(*) FROM temporal_versioning.%I h WHERE h.temporal_tx_id >= $1'
                   ' AND h.temporal_tx_id IN (SELECT t.tx_id FROM temporal_versioning.transactions t WHERE t.valid_from >= $2)',
                   vt.history_table)
        INTO n
        USING (SELECT coalesce(min(t.tx_id), 9223372036854775807) FROM temporal_versioning.transactions t WHERE t.valid_from >= since), since;
    RETURN n;
END
$$;

COMMENT ON FUNCTION temporal_versioning._changes_since(temporal_versioning.versioned_tables, timestamptz) IS
    'pg-temporal (internal): how many changes a history holds since an instant';

-- The growth of a table's history over the last `days` days (UTC): the
-- changes of each day, and their bytes, estimated from the history's
-- average bytes per change.
CREATE OR REPLACE FUNCTION temporal_versioning.history_growth(schema_name text, table_name text, days integer DEFAULT 7)
RETURNS TABLE (day date, changes bigint, bytes_estimate bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    since timestamptz;
    per_change numeric;
BEGIN
    vt := temporal_versioning.find_versioned_table(history_growth.schema_name, history_growth.table_name);
    since := timezone('UTC', date_trunc('day', timezone('UTC', now()))) - (greatest(days, 1) - 1) * interval '1 day';
    EXECUTE format('SELECT temporal_versioning._relation_bytes(%L::regclass)::numeric / greatest(count(*), 1) FROM temporal_versioning.%I',
                   format('temporal_versioning.%I', vt.history_table), vt.history_table)
        INTO per_change;
    RETURN QUERY EXECUTE format(
        'SELECT d.day::date, coalesce(c.n, 0), round(coalesce(c.n, 0) * $3)::bigint'
        ' FROM generate_series(timezone(''UTC'', $2)::date, timezone(''UTC'', now())::date, interval ''1 day'') AS d(day)'
        ' LEFT JOIN (SELECT timezone(''UTC'', t.valid_from)::date AS day, count(*) AS n'
        '            FROM temporal_versioning.%I h JOIN temporal_versioning.transactions t ON t.tx_id = h.temporal_tx_id'
        '            WHERE h.temporal_tx_id >= $1 AND t.valid_from >= $2 GROUP BY 1) c ON c.day = d.day::date'
        ' ORDER BY 1', vt.history_table)
        USING (SELECT coalesce(min(t.tx_id), 9223372036854775807) FROM temporal_versioning.transactions t WHERE t.valid_from >= since),
              since, per_change;
END
$$;

COMMENT ON FUNCTION temporal_versioning.history_growth(text, text, integer) IS
    'pg-temporal: changes and (estimated) bytes per day of a history over the last days';

-- (0.3.0 added the floor and the last week's changes; 0.4.0 the partitioning
-- of the history and where its key index is, with the next step to move it.)
DROP FUNCTION IF EXISTS temporal_versioning.list_temporal_tables();
DROP FUNCTION IF EXISTS temporal_versioning.get_temporal_status(text, text);

CREATE OR REPLACE FUNCTION temporal_versioning.list_temporal_tables()
RETURNS TABLE (
    schema_name      name,
    table_name       name,
    history_table    text,
    enabled          boolean,
    capture          text,
    key_columns      name[],
    versioning_since timestamptz,
    created_at       timestamptz,
    history_rows     bigint,
    history_bytes    bigint,
    history_floor    timestamptz,
    changes_7d       bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT v.schema_name, v.table_name,
           format('temporal_versioning.%I', v.history_table),
           v.enabled,
           CASE WHEN v.enabled THEN temporal_versioning.capture_state(v.table_oid) ELSE 'off' END,
           v.key_columns, v.versioning_since, v.created_at,
           -- reltuples is the planner's estimate, so listing stays instant on any
           -- size (NULL until the history was first analyzed); status counts exactly.
           CASE WHEN c.relkind = 'p' THEN (SELECT sum(pc.reltuples) FILTER (WHERE pc.reltuples >= 0)::bigint
                                           FROM pg_partition_tree(c.oid) t JOIN pg_class pc ON pc.oid = t.relid WHERE t.isleaf)
                ELSE nullif(c.reltuples, -1)::bigint END,
           temporal_versioning._relation_bytes(c.oid),
           v.history_floor,
           temporal_versioning._changes_since(v, now() - interval '7 days')
    FROM temporal_versioning.versioned_tables v
    LEFT JOIN pg_class c ON c.oid = to_regclass(format('temporal_versioning.%I', v.history_table))
    ORDER BY v.schema_name, v.table_name, v.id;
$$;

COMMENT ON FUNCTION temporal_versioning.list_temporal_tables() IS
    'pg-temporal: every table that is or was versioned, with its history size (rows estimated)';

CREATE OR REPLACE FUNCTION temporal_versioning.get_temporal_status(schema_name text, table_name text)
RETURNS TABLE (
    source_table     text,
    history_table    text,
    enabled          boolean,
    capture          text,
    key_columns      name[],
    versioning_since timestamptz,
    created_at       timestamptz,
    inserts          bigint,
    updates          bigint,
    deletes          bigint,
    truncates        bigint,
    total_changes    bigint,
    first_change     timestamptz,
    last_change      timestamptz,
    history_bytes    bigint,
    schema_changes   bigint,
    history_floor    timestamptz,
    changes_7d       bigint,
    growth_7d        jsonb,
    partitioned_by   text,
    key_index        text,
    key_index_step   text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
BEGIN
    vt := temporal_versioning.find_versioned_table(get_temporal_status.schema_name, get_temporal_status.table_name);
    RETURN QUERY EXECUTE format($q$
        WITH per_transaction AS (
            SELECT h.temporal_tx_id,
                   count(*) FILTER (WHERE h.temporal_operation = 'I') AS inserts,
                   count(*) FILTER (WHERE h.temporal_operation = 'U') AS updates,
                   count(*) FILTER (WHERE h.temporal_operation = 'D') AS deletes,
                   bool_or(h.temporal_operation = 'T') AS truncated,
                   count(*) AS changes
            FROM temporal_versioning.%I h
            GROUP BY h.temporal_tx_id)
        SELECT format('%%I.%%I', $1.schema_name, $1.table_name), format('temporal_versioning.%%I', $1.history_table),
               $1.enabled,
               CASE WHEN $1.enabled THEN temporal_versioning.capture_state($1.table_oid) ELSE 'off' END,
               $1.key_columns, $1.versioning_since, $1.created_at,
               coalesce(sum(p.inserts), 0)::bigint, coalesce(sum(p.updates), 0)::bigint,
               coalesce(sum(p.deletes), 0)::bigint, count(*) FILTER (WHERE p.truncated),
               coalesce(sum(p.changes), 0)::bigint,
               min(t.valid_from), max(t.valid_from),
               temporal_versioning._relation_bytes(format('temporal_versioning.%%I', $1.history_table)::regclass),
               (SELECT count(*) FROM temporal_versioning.schema_changes s WHERE s.versioned_table_id = $1.id),
               $1.history_floor,
               coalesce(sum(p.changes) FILTER (WHERE t.valid_from >= now() - interval '7 days'), 0)::bigint,
               (SELECT jsonb_agg(jsonb_build_object('day', g.day, 'changes', g.changes, 'bytes_estimate', g.bytes_estimate) ORDER BY g.day)
                FROM temporal_versioning.history_growth($1.schema_name, $1.table_name, 7) g),
               $1.options->>'partition_history',
               CASE WHEN $1.options ? 'partition_history' THEN coalesce($1.options->>'history_key_index', 'all') END,
               -- (what maintain, which aligns the tables versioned now, runs next)
               CASE WHEN $1.options ? 'partition_history' AND $1.enabled AND $1.table_oid IS NOT NULL
                    THEN temporal_versioning.key_index_step($1.schema_name, $1.table_name) END
        FROM per_transaction p
        LEFT JOIN temporal_versioning.transactions t ON t.tx_id = p.temporal_tx_id
    $q$, vt.history_table) USING vt;
END
$$;

COMMENT ON FUNCTION temporal_versioning.get_temporal_status(text, text) IS
    'pg-temporal: capture state and exact change counts of one versioned table';
