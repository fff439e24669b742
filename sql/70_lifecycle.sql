-- The lifecycle of history: retention policies, prunes and their archives.
--
-- A prune of a table's history at a floor F deletes the changes of the
-- transactions older than F. Time travel to T reads only the changes after T
-- (see 50_time_travel_common.sql), so every T >= F reads exactly as before,
-- and an instant below F is refused with F in the message. The order of
-- work makes a prune safe to kill at any moment:
--
--   1. _prune_start records the floor (committed before anything is deleted)
--      and the prune, with the heap pages of the history that can hold the
--      old changes;
--   2. the client walks those pages in bounded ranges; for each, in one
--      REPEATABLE READ transaction, it copies the old rows out (to the
--      archive, written and fsynced), deletes exactly those rows, and records
--      the new length of the archive (_prune_progress);
--   3. _prune_finish records the archive's sha256.
--
-- A killed prune is resumed by the next one of its table: the archive is cut
-- back to the length recorded with the last committed batch, and the walk
-- goes on from there. No lock is taken on the source table, and the history
-- gets only the ROW EXCLUSIVE lock that capture itself takes.

-- The transaction columns an archived row carries after the history's own.
CREATE OR REPLACE FUNCTION temporal_versioning._archive_transaction_columns()
RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY['transaction.valid_from', 'transaction.db_user', 'transaction.application_name',
                 'transaction.client_addr', 'transaction.user_id', 'transaction.changeset_id'];
$$;

COMMENT ON FUNCTION temporal_versioning._archive_transaction_columns() IS
    'pg-temporal: the transaction columns an archived history row carries after its own';

-- An instant as it names an archive: 20260101T000000Z (UTC), with the
-- microseconds when there are any (20260101T000000.250000Z), so that two
-- prunes within one second do not name the same file.
CREATE OR REPLACE FUNCTION temporal_versioning._archive_instant(at timestamptz)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT to_char(at AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS')
           || CASE WHEN extract(microseconds FROM at)::bigint % 1000000 <> 0
                   THEN to_char(at AT TIME ZONE 'UTC', '.US') ELSE '' END || 'Z';
$$;

COMMENT ON FUNCTION temporal_versioning._archive_instant(timestamptz) IS
    'pg-temporal: an instant as an archive''s name writes it (UTC, to the second)';

CREATE OR REPLACE FUNCTION temporal_versioning.set_retention(
    schema_name text, table_name text, keep interval, archive_dir text DEFAULT NULL)
RETURNS temporal_versioning.retention_policies
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    policy temporal_versioning.retention_policies;
BEGIN
    vt := temporal_versioning.find_versioned_table(schema_name, table_name);
    IF keep IS NULL OR keep <= interval '0' THEN
        RAISE EXCEPTION 'a retention of % keeps nothing', keep
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a positive length, such as 90 days.';
    END IF;
    INSERT INTO temporal_versioning.retention_policies AS p (versioned_table_id, keep, archive_dir)
    VALUES (vt.id, keep, archive_dir)
    ON CONFLICT (versioned_table_id) DO UPDATE
        SET keep = excluded.keep, archive_dir = excluded.archive_dir, set_by = session_user, set_at = now()
    RETURNING * INTO policy;
    RETURN policy;
END
$$;

COMMENT ON FUNCTION temporal_versioning.set_retention(text, text, interval, text) IS
    'pg-temporal: keep the history of a table for this long (applied by temporal maintain), archiving into archive_dir';

CREATE OR REPLACE FUNCTION temporal_versioning.unset_retention(schema_name text, table_name text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
BEGIN
    vt := temporal_versioning.find_versioned_table(schema_name, table_name);
    DELETE FROM temporal_versioning.retention_policies p WHERE p.versioned_table_id = vt.id;
    RETURN FOUND;
END
$$;

COMMENT ON FUNCTION temporal_versioning.unset_retention(text, text) IS
    'pg-temporal: keep the history of a table for ever again';

-- Every versioned table with its policy (if any), its floor, the floor its
-- policy asks for now, and its last prune.
CREATE OR REPLACE FUNCTION temporal_versioning.retention_status()
RETURNS TABLE (schema_name name, table_name name, keep interval, archive_dir text, history_floor timestamptz,
               due_floor timestamptz, last_prune_at timestamptz, last_prune_rows bigint, last_archive text,
               unfinished_prune boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT v.schema_name, v.table_name, p.keep, p.archive_dir, v.history_floor,
           now() - p.keep, last.finished_at, last.rows_deleted, last.archive_file,
           EXISTS (SELECT 1 FROM temporal_versioning.prunes r WHERE r.versioned_table_id = v.id AND r.state = 'running')
    FROM temporal_versioning.versioned_tables v
    LEFT JOIN temporal_versioning.retention_policies p ON p.versioned_table_id = v.id
    LEFT JOIN LATERAL (SELECT r.finished_at, r.rows_deleted, r.archive_file FROM temporal_versioning.prunes r
                       WHERE r.versioned_table_id = v.id AND r.state = 'done' ORDER BY r.id DESC LIMIT 1) last ON true
    WHERE v.table_oid IS NOT NULL OR p.versioned_table_id IS NOT NULL OR v.history_floor IS NOT NULL
    ORDER BY v.schema_name, v.table_name;
$$;

COMMENT ON FUNCTION temporal_versioning.retention_status() IS
    'pg-temporal: retention policy, floor and last prune of every versioned table';

-- The changes of the history of vt, alias h, older than the prune's floor.
CREATE OR REPLACE FUNCTION temporal_versioning._prune_condition(p temporal_versioning.prunes)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('(h.temporal_tx_id OPERATOR(pg_catalog.<) %1$s OR (h.temporal_tx_id OPERATOR(pg_catalog.<=) %2$s AND EXISTS ('
                  'SELECT 1 FROM temporal_versioning.transactions x WHERE x.tx_id OPERATOR(pg_catalog.=) h.temporal_tx_id'
                  ' AND x.valid_from OPERATOR(pg_catalog.<) %3$L::pg_catalog.timestamptz)))',
                  p.cutoff_tx, p.max_old_tx, p.floor);
$$;

COMMENT ON FUNCTION temporal_versioning._prune_condition(temporal_versioning.prunes) IS
    'pg-temporal: the condition on history rows (alias h) that a prune deletes';

-- What a prune of the table at `floor` would do, changing nothing: the
-- changes it would delete and the archive it would write.
CREATE OR REPLACE FUNCTION temporal_versioning.prune_preview(schema_name text, table_name text, floor timestamptz)
RETURNS TABLE (history_table name, range_start timestamptz, new_floor timestamptz, changes bigint,
               transactions bigint, archive_name text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    start timestamptz;
    new_floor timestamptz;
    partitions_sql text;
    n bigint;
    txs bigint;
BEGIN
    vt := temporal_versioning._prune_check(schema_name, table_name, prune_preview.floor);
    IF vt.options ? 'partition_history' THEN
        -- Whole partitions: those _prune_partitions_start would take.
        SELECT least(coalesce(vt.history_floor, vt.created_at), min(p.range_start)), max(p.range_end),
               string_agg(format('SELECT h.temporal_tx_id FROM temporal_versioning.%I h', p.partition_name), ' UNION ALL ')
          INTO start, new_floor, partitions_sql
          FROM temporal_versioning._history_partitions(vt) p
         WHERE p.range_end <= least(prune_preview.floor, now(),
                                    coalesce((SELECT min(a.xact_start) FROM pg_stat_activity a
                                              WHERE a.xact_start IS NOT NULL AND a.pid <> pg_backend_pid()), 'infinity'));
        IF partitions_sql IS NULL THEN
            RETURN QUERY SELECT vt.history_table, vt.history_floor, vt.history_floor, 0::bigint, 0::bigint, NULL::text;
            RETURN;
        END IF;
        EXECUTE format('SELECT count(*), count(DISTINCT u.temporal_tx_id) FROM (%s) u', partitions_sql) INTO n, txs;
        RETURN QUERY SELECT vt.history_table, start, new_floor, n, txs,
            format('%s_%s_%s.copy.gz', vt.history_table, temporal_versioning._archive_instant(start),
                   temporal_versioning._archive_instant(new_floor));
        RETURN;
    END IF;
    start := least(coalesce(vt.history_floor, vt.created_at), prune_preview.floor);
    EXECUTE format('SELECT count(*), count(DISTINCT h.temporal_tx_id) FROM temporal_versioning.%I h'
                   ' JOIN temporal_versioning.transactions t ON t.tx_id = h.temporal_tx_id WHERE t.valid_from < $1',
                   vt.history_table)
        INTO n, txs USING prune_preview.floor;
    RETURN QUERY SELECT vt.history_table, start, prune_preview.floor, n, txs,
        format('%s_%s_%s.copy.gz', vt.history_table, temporal_versioning._archive_instant(start),
               temporal_versioning._archive_instant(prune_preview.floor));
END
$$;

COMMENT ON FUNCTION temporal_versioning.prune_preview(text, text, timestamptz) IS
    'pg-temporal: what a prune at a floor would delete, changing nothing';

-- Checks a prune request: a versioned table and a finite floor not in the future.
CREATE OR REPLACE FUNCTION temporal_versioning._prune_check(schema_name text, table_name text, floor timestamptz)
RETURNS temporal_versioning.versioned_tables
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
BEGIN
    vt := temporal_versioning.find_versioned_table(schema_name, table_name);
    IF floor IS NULL OR NOT isfinite(floor) THEN
        RAISE EXCEPTION 'floor "%" is not a finite point in time', floor
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF floor > now() THEN
        RAISE EXCEPTION 'floor % is in the future', floor
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The database''s time is now %s; a prune deletes the changes made before its floor.', now());
    END IF;
    RETURN vt;
END
$$;

COMMENT ON FUNCTION temporal_versioning._prune_check(text, text, timestamptz) IS
    'pg-temporal: checks a prune request: a versioned table and a finite floor not in the future';

-- Starts a prune of the table at `floor`, or returns its unfinished one (the
-- caller finishes that first). Records the floor before anything is
-- deleted. Returns NULL when there is nothing older than the floor.
CREATE OR REPLACE FUNCTION temporal_versioning._prune_start(
    schema_name text, table_name text, floor timestamptz, archive_dir text)
RETURNS temporal_versioning.prunes
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    p temporal_versioning.prunes;
    cutoff bigint;
    max_old bigint;
    last_page bigint;
    start timestamptz;
    columns text[];
BEGIN
    vt := temporal_versioning._prune_check(schema_name, table_name, _prune_start.floor);
    IF vt.options ? 'partition_history' THEN
        RAISE EXCEPTION 'the history of "%.%" is partitioned: its prunes drop partitions', schema_name, table_name
            USING ERRCODE = 'wrong_object_type', HINT = 'Use temporal_versioning._prune_partitions_start.';
    END IF;
    -- One prune of a table at a time (the client also holds an advisory lock).
    PERFORM 1 FROM temporal_versioning.versioned_tables v WHERE v.id = vt.id FOR UPDATE;
    SELECT * INTO p FROM temporal_versioning.prunes r WHERE r.versioned_table_id = vt.id AND r.state = 'running'
    ORDER BY r.id LIMIT 1;
    IF p.id IS NOT NULL THEN
        RETURN p;
    END IF;

    SELECT min(t.tx_id) INTO cutoff FROM temporal_versioning.transactions t WHERE t.valid_from >= _prune_start.floor;
    SELECT max(t.tx_id) INTO max_old FROM temporal_versioning.transactions t WHERE t.valid_from < _prune_start.floor;
    IF max_old IS NULL THEN
        RETURN NULL;
    END IF;
    -- Below the cutoff, every change is deleted unchecked. A transaction
    -- still running got its xid at its first write, not at its start: it
    -- may have an xid below the others' and have started after the floor.
    -- So the cutoff is never above the oldest running transaction's xid.
    cutoff := least(coalesce(cutoff, max_old + 1), txid_snapshot_xmin(txid_current_snapshot()));
    -- The last heap page holding an old change (found through the BRIN
    -- index on temporal_tx_id): the walk ends there.
    EXECUTE format('SELECT max((h.ctid::text::point)[0])::bigint + 1 FROM temporal_versioning.%I h'
                   ' WHERE h.temporal_tx_id <= $1', vt.history_table)
        INTO last_page USING max_old;
    -- Nothing older than the floor: the floor stays where it is (moving it
    -- would refuse instants nothing was pruned from, and leave a gap no
    -- archive covers).
    IF last_page IS NULL THEN
        RETURN NULL;
    END IF;

    -- The archive's range starts at the oldest change it can hold (rows put
    -- back below the floor by a restore included).
    start := least(coalesce(vt.history_floor, vt.created_at), _prune_start.floor,
                   (SELECT min(t.valid_from) FROM temporal_versioning.transactions t WHERE t.tx_id <= max_old));
    columns := ARRAY(SELECT a.attname::text FROM pg_attribute a
                     WHERE a.attrelid = temporal_versioning._history_relation(vt) AND a.attnum > 0 AND NOT a.attisdropped
                     ORDER BY a.attnum) || temporal_versioning._archive_transaction_columns();
    -- The floor first: from here on, time travel below it is refused.
    IF vt.history_floor IS NULL OR vt.history_floor < _prune_start.floor THEN
        UPDATE temporal_versioning.versioned_tables v SET history_floor = _prune_start.floor WHERE v.id = vt.id;
    END IF;
    INSERT INTO temporal_versioning.prunes AS r (versioned_table_id, range_start, floor, cutoff_tx, max_old_tx, end_page,
                                                 archive_file, archive_columns)
    VALUES (vt.id, start, _prune_start.floor, cutoff, max_old, last_page,
            CASE WHEN archive_dir IS NOT NULL THEN
                rtrim(archive_dir, '/') || '/' || format('%s_%s_%s.copy.gz', vt.history_table,
                                                         temporal_versioning._archive_instant(start),
                                                         temporal_versioning._archive_instant(_prune_start.floor))
            END,
            columns)
    RETURNING * INTO p;
    RETURN p;
END
$$;

COMMENT ON FUNCTION temporal_versioning._prune_start(text, text, timestamptz, text) IS
    'pg-temporal: records the floor and starts a prune (or returns the unfinished one)';

-- The statements of one batch of a prune, over the heap pages [from_page,
-- to_page): the COPY of the old rows (the history's columns, then the
-- transaction's) and the DELETE of the same rows. Run both in one
-- REPEATABLE READ transaction, so that they see the same rows.
CREATE OR REPLACE FUNCTION temporal_versioning._prune_batch_sql(prune_id bigint, from_page bigint, to_page bigint)
RETURNS TABLE (copy_sql text, delete_sql text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p temporal_versioning.prunes;
    vt temporal_versioning.versioned_tables;
    n integer;
    condition text;
BEGIN
    SELECT * INTO STRICT p FROM temporal_versioning.prunes r WHERE r.id = prune_id;
    SELECT * INTO STRICT vt FROM temporal_versioning.versioned_tables v WHERE v.id = p.versioned_table_id;
    n := cardinality(p.archive_columns) - cardinality(temporal_versioning._archive_transaction_columns());
    condition := format('h.ctid OPERATOR(pg_catalog.>=) ''(%s,0)''::pg_catalog.tid AND h.ctid OPERATOR(pg_catalog.<) ''(%s,0)''::pg_catalog.tid AND %s',
                        from_page, to_page, temporal_versioning._prune_condition(p));
    copy_sql := format('COPY (SELECT %s, t.valid_from, t.db_user, t.application_name, t.client_addr, t.user_id, t.changeset_id'
                       ' FROM temporal_versioning.%I h LEFT JOIN LATERAL (SELECT x.* FROM temporal_versioning.transactions x'
                       ' WHERE x.tx_id OPERATOR(pg_catalog.=) h.temporal_tx_id) t ON true WHERE %s ORDER BY h.temporal_id) TO STDOUT',
                       (SELECT string_agg(format('h.%I', c), ', ' ORDER BY i) FROM unnest(p.archive_columns[1:n]) WITH ORDINALITY AS u(c, i)),
                       vt.history_table, condition);
    delete_sql := format('DELETE FROM temporal_versioning.%I h WHERE %s', vt.history_table, condition);
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION temporal_versioning._prune_batch_sql(bigint, bigint, bigint) IS
    'pg-temporal: the COPY and DELETE of one batch of a prune';

CREATE OR REPLACE FUNCTION temporal_versioning._prune_progress(prune_id bigint, next_page bigint, rows bigint, archive_bytes bigint)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE temporal_versioning.prunes r
    SET next_page = _prune_progress.next_page, rows_deleted = r.rows_deleted + _prune_progress.rows,
        archive_bytes = _prune_progress.archive_bytes
    WHERE r.id = prune_id;
$$;

COMMENT ON FUNCTION temporal_versioning._prune_progress(bigint, bigint, bigint, bigint) IS
    'pg-temporal: records a committed batch of a prune: next page, rows deleted, archive length';

-- Marks a prune done, with its archive's sha256.
CREATE OR REPLACE FUNCTION temporal_versioning._prune_finish(prune_id bigint, archive_sha256 text)
RETURNS temporal_versioning.prunes
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p temporal_versioning.prunes;
BEGIN
    UPDATE temporal_versioning.prunes r
    SET state = 'done', finished_at = now(), archive_sha256 = _prune_finish.archive_sha256
    WHERE r.id = prune_id
    RETURNING * INTO p;
    RETURN p;
END
$$;

COMMENT ON FUNCTION temporal_versioning._prune_finish(bigint, text) IS
    'pg-temporal: marks a prune done with its archive''s sha256';

-- Deletes up to `batch` transactions older than every history's floor
-- (none while a history has no floor). Returns how many.
CREATE OR REPLACE FUNCTION temporal_versioning._forget_old_transactions(batch integer)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lowest timestamptz;
    n bigint;
BEGIN
    SELECT min(coalesce(v.history_floor, '-infinity')) INTO lowest FROM temporal_versioning.versioned_tables v;
    IF lowest IS NULL OR lowest = '-infinity' THEN
        RETURN 0;
    END IF;
    DELETE FROM temporal_versioning.transactions t
    WHERE t.tx_id IN (SELECT x.tx_id FROM temporal_versioning.transactions x WHERE x.valid_from < lowest LIMIT batch);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

COMMENT ON FUNCTION temporal_versioning._forget_old_transactions(integer) IS
    'pg-temporal: deletes transactions older than every history''s floor, up to a batch';

-- Makes pg_temp.temporal_restore, with a column c1..cN for each column of an
-- archive of the table's history (`columns`, as its manifest lists them):
-- of the history column's type where the history has it, of the
-- transaction column's type for the transaction's, text otherwise. Returns
-- the COPY that fills it.
CREATE OR REPLACE FUNCTION temporal_versioning._archive_restore_prepare(schema_name text, table_name text, columns text[])
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    n integer;
BEGIN
    vt := temporal_versioning.find_versioned_table(schema_name, table_name);
    n := cardinality(columns) - cardinality(temporal_versioning._archive_transaction_columns());
    IF n < 1 OR columns[n + 1:] IS DISTINCT FROM temporal_versioning._archive_transaction_columns()
       OR NOT 'temporal_id' = ANY (columns[1:n]) OR NOT 'temporal_tx_id' = ANY (columns[1:n]) THEN
        RAISE EXCEPTION 'the archive''s columns are not those of a pg-temporal archive'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF to_regclass('pg_temp.temporal_restore') IS NOT NULL THEN
        DROP TABLE pg_temp.temporal_restore;
    END IF;
    EXECUTE format('CREATE TEMPORARY TABLE temporal_restore (%s) ON COMMIT DROP',
        (SELECT string_agg(format('c%s %s', i, coalesce(
                    (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                     WHERE i <= n AND a.attrelid = temporal_versioning._history_relation(vt) AND a.attname = c
                       AND a.attnum > 0 AND NOT a.attisdropped),
                    (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                     WHERE i > n AND a.attrelid = 'temporal_versioning.transactions'::regclass
                       AND a.attname = substr(c, length('transaction.') + 1)),
                    'text')), ', ' ORDER BY i)
         FROM unnest(columns) WITH ORDINALITY AS u(c, i)));
    RETURN 'COPY pg_temp.temporal_restore FROM STDIN';
END
$$;

COMMENT ON FUNCTION temporal_versioning._archive_restore_prepare(text, text, text[]) IS
    'pg-temporal: makes pg_temp.temporal_restore for an archive and returns the COPY that fills it';

-- Makes a table of its own from pg_temp.temporal_restore, its columns named
-- as the archive names them, to read an archive without touching the history.
CREATE OR REPLACE FUNCTION temporal_versioning._archive_restore_into(target_schema text, target_table text, columns text[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    restored bigint;
BEGIN
    EXECUTE format('CREATE TABLE %I.%I AS SELECT %s FROM pg_temp.temporal_restore r', target_schema, target_table,
                   (SELECT string_agg(format('r.c%s AS %I', i, c), ', ' ORDER BY i) FROM unnest(columns) WITH ORDINALITY AS u(c, i)));
    GET DIAGNOSTICS restored = ROW_COUNT;
    RETURN restored;
END
$$;

COMMENT ON FUNCTION temporal_versioning._archive_restore_into(text, text, text[]) IS
    'pg-temporal: makes a table of its own from pg_temp.temporal_restore';

-- Puts archived rows back, from pg_temp.temporal_restore (columns c1..cN in
-- the archive's order, `columns` naming them): their transactions where
-- missing, and each history row whose temporal_id is not there. When the
-- archive ends at the floor, the floor moves back to its start. Returns the
-- rows put back.
CREATE OR REPLACE FUNCTION temporal_versioning._archive_restore(
    schema_name text, table_name text, columns text[], range_start timestamptz, range_end timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    history regclass;
    n integer;
    missing text;
    targets text;
    sources text;
    restored bigint;
BEGIN
    vt := temporal_versioning.find_versioned_table(schema_name, table_name);
    history := temporal_versioning._history_relation(vt);
    n := cardinality(columns) - cardinality(temporal_versioning._archive_transaction_columns());
    SELECT string_agg(quote_ident(c), ', ') INTO missing FROM unnest(columns[1:n]) c
    WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = history AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'column % of the archive is not in temporal_versioning.%', missing, quote_ident(vt.history_table)
            USING ERRCODE = 'undefined_column',
                  DETAIL = 'The history changed shape since the archive was written.',
                  HINT = 'Restore the archive into a table of its own (temporal archive restore FILE --into TABLE) and read it from there.';
    END IF;
    SELECT string_agg(quote_ident(c), ', ' ORDER BY i), string_agg(format('r.c%s', i), ', ' ORDER BY i)
      INTO targets, sources
      FROM unnest(columns[1:n]) WITH ORDINALITY AS u(c, i);

    EXECUTE format('INSERT INTO temporal_versioning.transactions (tx_id, valid_from, db_user, application_name, client_addr, user_id, changeset_id)'
                   ' SELECT DISTINCT ON (r.c%1$s) r.c%1$s, r.c%2$s, r.c%3$s, r.c%4$s, r.c%5$s, r.c%6$s, r.c%7$s'
                   ' FROM pg_temp.temporal_restore r WHERE r.c%2$s IS NOT NULL ORDER BY r.c%1$s'
                   ' ON CONFLICT (tx_id) DO NOTHING',
                   array_position(columns, 'temporal_tx_id'), n + 1, n + 2, n + 3, n + 4, n + 5, n + 6);
    EXECUTE format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM pg_temp.temporal_restore r'
                   ' WHERE NOT EXISTS (SELECT 1 FROM %s h WHERE h.temporal_id = r.c%s) ORDER BY r.c%s',
                   history, targets, sources, history, array_position(columns, 'temporal_id'), array_position(columns, 'temporal_id'));
    GET DIAGNOSTICS restored = ROW_COUNT;
    -- The archive reaches the floor (prunes chain: each starts where the one
    -- before ended), so the floor goes back to its start.
    IF vt.history_floor IS NOT NULL AND range_end >= vt.history_floor AND range_start < vt.history_floor THEN
        UPDATE temporal_versioning.versioned_tables v
        SET history_floor = CASE WHEN range_start <= v.versioning_since THEN NULL ELSE range_start END
        WHERE v.id = vt.id;
    END IF;
    RETURN restored;
END
$$;

COMMENT ON FUNCTION temporal_versioning._archive_restore(text, text, text[], timestamptz, timestamptz) IS
    'pg-temporal: puts archived history rows back (from pg_temp.temporal_restore), lowering the floor to the archive''s start';

-- History partitioned by time (enable --partition-history daily|weekly|
-- monthly). The history is range-partitioned on temporal_at, the start of
-- the change's transaction (its valid_from), in UTC periods; a DEFAULT
-- partition takes the changes of a period that has no partition yet, so a
-- write never fails. ensure_history_partitions (run by enable and by
-- temporal maintain) creates the partitions of the current period and the
-- next ones, moving in any rows the default partition took. A prune drops
-- whole partitions.

-- The length of one period.
CREATE OR REPLACE FUNCTION temporal_versioning._history_period(kind text)
RETURNS interval
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE kind WHEN 'daily' THEN interval '1 day' WHEN 'weekly' THEN interval '7 days' WHEN 'monthly' THEN interval '1 month' END;
$$;

COMMENT ON FUNCTION temporal_versioning._history_period(text) IS
    'pg-temporal (internal): the length of a history partition''s period';

-- The start of the period (UTC) that holds `at`.
CREATE OR REPLACE FUNCTION temporal_versioning._history_period_start(kind text, at timestamptz)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT timezone('UTC', date_trunc(CASE kind WHEN 'daily' THEN 'day' WHEN 'weekly' THEN 'week' ELSE 'month' END,
                                      timezone('UTC', at)));
$$;

COMMENT ON FUNCTION temporal_versioning._history_period_start(text, timestamptz) IS
    'pg-temporal (internal): the start (UTC) of the history period holding an instant';

-- The partitions of a partitioned history with their ranges, oldest first
-- (not the default partition).
CREATE OR REPLACE FUNCTION temporal_versioning._history_partitions(vt temporal_versioning.versioned_tables)
RETURNS TABLE (partition_name name, range_start timestamptz, range_end timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.relname, b.bounds[1]::timestamptz, b.bounds[2]::timestamptz
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                            'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS bounds) b
    WHERE i.inhparent = temporal_versioning._history_relation(vt) AND b.bounds IS NOT NULL AND NOT i.inhdetachpending
    ORDER BY 2;
$$;

COMMENT ON FUNCTION temporal_versioning._history_partitions(temporal_versioning.versioned_tables) IS
    'pg-temporal (internal): the partitions of a history partitioned by time, with their ranges';

-- Creates the partitions of a history partitioned by time for the current
-- period and the `ahead` next ones, and for any period whose changes the
-- default partition took (moving them in). Each is made apart, with a CHECK
-- of its range, and attached, so that the history's parent is never locked
-- against writers. Returns the partitions created.
CREATE OR REPLACE FUNCTION temporal_versioning.ensure_history_partitions(versioned_table_id integer, ahead integer DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    kind text;
    history regclass;
    fallback text;
    period_start timestamptz;
    period_end timestamptz;
    partition_name text;
    columns text;
    created integer := 0;
BEGIN
    SELECT * INTO STRICT vt FROM temporal_versioning.versioned_tables v WHERE v.id = versioned_table_id;
    kind := vt.options->>'partition_history';
    IF kind IS NULL OR to_regclass(format('temporal_versioning.%I', vt.history_table)) IS NULL THEN
        RETURN 0;
    END IF;
    history := temporal_versioning._history_relation(vt);
    fallback := format('temporal_versioning.%I', vt.history_table || '_default');
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO columns
    FROM pg_attribute a WHERE a.attrelid = history AND a.attnum > 0 AND NOT a.attisdropped;
    FOR period_start IN
        EXECUTE format('SELECT DISTINCT temporal_versioning._history_period_start(%L, d.temporal_at) FROM %s d
                        UNION SELECT temporal_versioning._history_period_start(%L, now()) + temporal_versioning._history_period(%L) * g
                        FROM generate_series(0, %s) g ORDER BY 1',
                       kind, fallback, kind, kind, greatest(ahead, 0))
    LOOP
        period_end := period_start + temporal_versioning._history_period(kind);
        CONTINUE WHEN EXISTS (SELECT 1 FROM temporal_versioning._history_partitions(vt) p
                              WHERE p.range_start < period_end AND p.range_end > period_start);
        partition_name := vt.history_table || '_' || to_char(timezone('UTC', period_start), 'YYYYMMDD');
        EXECUTE format('CREATE TABLE temporal_versioning.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', partition_name, history);
        EXECUTE format('ALTER TABLE temporal_versioning.%I ADD CONSTRAINT %I CHECK (temporal_at >= %L AND temporal_at < %L)',
                       partition_name, 'range', period_start, period_end);
        -- Writers of this period wait (briefly) until its partition is attached.
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', fallback);
        EXECUTE format('WITH moved AS (DELETE FROM %1$s d WHERE d.temporal_at >= %3$L AND d.temporal_at < %4$L RETURNING %2$s)'
                       ' INSERT INTO temporal_versioning.%5$I (%2$s) SELECT %2$s FROM moved',
                       fallback, columns, period_start, period_end, partition_name);
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION temporal_versioning.%I FOR VALUES FROM (%L) TO (%L)',
                       history, partition_name, period_start, period_end);
        EXECUTE format('ALTER TABLE temporal_versioning.%I DROP CONSTRAINT %I', partition_name, 'range');
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

COMMENT ON FUNCTION temporal_versioning.ensure_history_partitions(integer, integer) IS
    'pg-temporal: creates the partitions of a history partitioned by time for now and the next periods (run by temporal maintain)';

-- Where the key index (key, temporal_id) of a history partitioned by time
-- is: on every partition ('all', the default), or only on the partitions
-- whose period has ended and on the DEFAULT one ('closed'), so that writes
-- into the current period do not maintain it (a third of a bulk DELETE's
-- capture time, see bench/README.md). Time travel and row history into the
-- current period then read its partition without that index.
--
-- This records the choice; the indexes follow through key_index_step, whose
-- statements temporal maintain runs one at a time: CREATE INDEX
-- CONCURRENTLY, so that writers are never blocked by a build, and the brief
-- DROP or ATTACH of the partitioned index under a lock_timeout. Returns
-- whether the choice changed.
CREATE OR REPLACE FUNCTION temporal_versioning.set_history_key_index(schema_name text, table_name text, scope text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
BEGIN
    vt := temporal_versioning.find_versioned_table(schema_name, table_name);
    IF scope IS NULL OR scope NOT IN ('all', 'closed') THEN
        RAISE EXCEPTION 'the key index of a history is on "all" its partitions or on the "closed" ones, not "%"', scope
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF scope = 'closed' AND NOT vt.options ? 'partition_history' THEN
        RAISE EXCEPTION 'the history of %.% is not partitioned by time', quote_ident(vt.schema_name), quote_ident(vt.table_name)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Only a history partitioned by time (temporal enable --partition-history) has closed partitions.';
    END IF;
    UPDATE temporal_versioning.versioned_tables v
       SET options = CASE WHEN scope = 'closed' THEN v.options || '{"history_key_index": "closed"}'
                          ELSE v.options - 'history_key_index' END
     WHERE v.id = vt.id AND coalesce(v.options->>'history_key_index', 'all') <> scope;
    RETURN FOUND;
END
$$;

COMMENT ON FUNCTION temporal_versioning.set_history_key_index(text, text, text) IS
    'pg-temporal: key index of a history partitioned by time on all its partitions, or on the closed ones only';

-- The next statement that brings the key index of a history partitioned by
-- time in line with its choice (set_history_key_index), or NULL when it is.
-- Each is run on its own, outside a transaction block, and the function is
-- asked again; a statement that failed (or was killed) is offered again, or
-- what it left behind is cleaned up first (an index being built, by
-- another run or by hand, is left alone). temporal maintain runs these under
-- an advisory lock per table, so that two runs do not cross. With psql alone:
--   SELECT temporal_versioning.key_index_step('public', 'events') \gexec
-- until it returns nothing.
--   closed: no key index of its own on the current and coming partitions;
--           on each closed partition and the DEFAULT one, a key index of its
--           own (CREATE INDEX CONCURRENTLY), then DROP INDEX of the
--           partitioned one (which drops its partitions' copies);
--   all:    CREATE INDEX ON ONLY the history, then on each partition a key
--           index (CREATE INDEX CONCURRENTLY, or the one it has) attached to it.
CREATE OR REPLACE FUNCTION temporal_versioning.key_index_step(schema_name text, table_name text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    history regclass;
    key_names name[];
    key_list text;
    relation regclass;
    parent_index regclass;
    index regclass;
BEGIN
    vt := temporal_versioning.find_versioned_table(schema_name, table_name);
    IF NOT vt.options ? 'partition_history' OR vt.table_oid IS NULL THEN
        RETURN NULL;
    END IF;
    history := temporal_versioning._history_relation(vt);
    key_names := vt.key_columns || 'temporal_id'::name;
    SELECT string_agg(format('%I', k), ', ' ORDER BY o) INTO key_list FROM unnest(key_names) WITH ORDINALITY AS u(k, o);

    IF vt.options->>'history_key_index' = 'closed' THEN
        -- A key index of its own on the current or a coming partition (left
        -- by 'all' half done, or by a build killed there) would be written.
        FOR relation IN
            SELECT format('temporal_versioning.%I', p.partition_name)::regclass
            FROM temporal_versioning._history_partitions(vt) p WHERE p.range_end > now()
        LOOP
            SELECT k.index INTO index FROM temporal_versioning._key_indexes(relation, key_names) k
            WHERE NOT k.attached AND NOT k.building LIMIT 1;
            IF index IS NOT NULL THEN
                RETURN format('DROP INDEX CONCURRENTLY %s', index);
            END IF;
        END LOOP;
        FOR relation IN
            SELECT format('temporal_versioning.%I', p.partition_name)::regclass
            FROM temporal_versioning._history_partitions(vt) p WHERE p.range_end <= now()
            UNION ALL
            SELECT to_regclass(format('temporal_versioning.%I', vt.history_table || '_default'))
        LOOP
            CONTINUE WHEN relation IS NULL;
            -- What a build that failed or was killed left: an invalid index.
            SELECT k.index INTO index FROM temporal_versioning._key_indexes(relation, key_names) k
            WHERE NOT k.valid AND NOT k.attached AND NOT k.building LIMIT 1;
            IF index IS NOT NULL THEN
                RETURN format('DROP INDEX CONCURRENTLY %s', index);
            END IF;
            IF EXISTS (SELECT FROM temporal_versioning._key_indexes(relation, key_names) k WHERE k.building) THEN
                RETURN NULL;    -- (another session is building it: the next run goes on)
            END IF;
            IF NOT EXISTS (SELECT FROM temporal_versioning._key_indexes(relation, key_names) k WHERE k.valid AND NOT k.attached) THEN
                RETURN format('CREATE INDEX CONCURRENTLY ON %s (%s)', relation, key_list);
            END IF;
        END LOOP;
        SELECT k.index INTO index FROM temporal_versioning._key_indexes(history, key_names) k LIMIT 1;
        IF index IS NOT NULL THEN
            RETURN format('DROP INDEX %s', index);
        END IF;
        RETURN NULL;
    END IF;

    SELECT k.index INTO parent_index FROM temporal_versioning._key_indexes(history, key_names) k LIMIT 1;
    IF parent_index IS NULL THEN
        RETURN format('CREATE INDEX ON ONLY %s (%s)', history, key_list);
    END IF;
    FOR relation IN SELECT i.inhrelid::regclass FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                    WHERE i.inhparent = history AND c.relkind = 'r' AND NOT i.inhdetachpending ORDER BY c.relname
    LOOP
        CONTINUE WHEN EXISTS (SELECT FROM temporal_versioning._key_indexes(relation, key_names) k
                              JOIN pg_inherits h ON h.inhrelid = k.index AND h.inhparent = parent_index);
        SELECT k.index INTO index FROM temporal_versioning._key_indexes(relation, key_names) k
        WHERE NOT k.valid AND NOT k.attached AND NOT k.building LIMIT 1;
        IF index IS NOT NULL THEN
            RETURN format('DROP INDEX CONCURRENTLY %s', index);
        END IF;
        SELECT k.index INTO index FROM temporal_versioning._key_indexes(relation, key_names) k
        WHERE k.valid AND NOT k.attached LIMIT 1;
        IF index IS NOT NULL THEN
            RETURN format('ALTER INDEX %s ATTACH PARTITION %s', parent_index, index);
        END IF;
        IF EXISTS (SELECT FROM temporal_versioning._key_indexes(relation, key_names) k WHERE k.building) THEN
            RETURN NULL;    -- (another session is building it: the next run goes on)
        END IF;
        RETURN format('CREATE INDEX CONCURRENTLY ON %s (%s)', relation, key_list);
    END LOOP;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION temporal_versioning.key_index_step(text, text) IS
    'pg-temporal: the next statement (run on its own) that puts the key index of a partitioned history where set_history_key_index asked, or NULL';

-- Starts a prune of a partitioned history at `floor`, or returns its
-- unfinished one: the partitions that end at or before the floor, and before
-- every running transaction began (one that began earlier could still write
-- into them). The floor recorded is the end of the last of them. Returns
-- NULL when no partition is that old.
CREATE OR REPLACE FUNCTION temporal_versioning._prune_partitions_start(
    schema_name text, table_name text, floor timestamptz, archive_dir text)
RETURNS temporal_versioning.prunes
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    p temporal_versioning.prunes;
    oldest timestamptz;
    names text[];
    first_start timestamptz;
    last_end timestamptz;
    start timestamptz;
BEGIN
    vt := temporal_versioning._prune_check(schema_name, table_name, _prune_partitions_start.floor);
    PERFORM 1 FROM temporal_versioning.versioned_tables v WHERE v.id = vt.id FOR UPDATE;
    SELECT * INTO p FROM temporal_versioning.prunes r WHERE r.versioned_table_id = vt.id AND r.state = 'running'
    ORDER BY r.id LIMIT 1;
    IF p.id IS NOT NULL THEN
        RETURN p;
    END IF;
    IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user)
       AND NOT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') THEN
        RAISE EXCEPTION 'pruning a partitioned history needs to see every running transaction'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'A partition is dropped only once no running transaction began before its end.',
                  HINT = format('GRANT pg_read_all_stats TO %I', current_user);
    END IF;
    SELECT min(x.started) INTO oldest FROM (
        SELECT a.xact_start AS started FROM pg_stat_activity a WHERE a.xact_start IS NOT NULL AND a.pid <> pg_backend_pid()
        UNION ALL SELECT x.prepared FROM pg_prepared_xacts x) x;
    SELECT array_agg(p2.partition_name::text ORDER BY p2.range_start), min(p2.range_start), max(p2.range_end)
      INTO names, first_start, last_end
      FROM temporal_versioning._history_partitions(vt) p2
     WHERE p2.range_end <= least(_prune_partitions_start.floor, coalesce(oldest, 'infinity'), now());
    IF names IS NULL THEN
        RETURN NULL;
    END IF;
    start := least(coalesce(vt.history_floor, vt.created_at), first_start);
    IF vt.history_floor IS NULL OR vt.history_floor < last_end THEN
        UPDATE temporal_versioning.versioned_tables v SET history_floor = last_end WHERE v.id = vt.id;
    END IF;
    INSERT INTO temporal_versioning.prunes AS r (versioned_table_id, range_start, floor, cutoff_tx, max_old_tx, end_page,
                                                 archive_file, archive_columns, partitions)
    VALUES (vt.id, start, last_end, 0, 0, 2 * cardinality(names),
            CASE WHEN archive_dir IS NOT NULL THEN
                rtrim(archive_dir, '/') || '/' || format('%s_%s_%s.copy.gz', vt.history_table,
                                                         temporal_versioning._archive_instant(start),
                                                         temporal_versioning._archive_instant(last_end))
            END,
            ARRAY(SELECT a.attname::text FROM pg_attribute a
                  WHERE a.attrelid = temporal_versioning._history_relation(vt) AND a.attnum > 0 AND NOT a.attisdropped
                  ORDER BY a.attnum) || temporal_versioning._archive_transaction_columns(),
            names)
    RETURNING * INTO p;
    RETURN p;
END
$$;

COMMENT ON FUNCTION temporal_versioning._prune_partitions_start(text, text, timestamptz, text) IS
    'pg-temporal (internal): records the floor and starts a prune of a partitioned history (or returns the unfinished one)';

-- The statements of one step of a partitioned prune: the COPY of partition
-- i's rows for its archive (step 2i), or the DETACH and DROP of it (step
-- 2i + 1), whichever `step` is; detach_sql is NULL once it is detached.
CREATE OR REPLACE FUNCTION temporal_versioning._prune_partition_step(prune_id bigint, step bigint)
RETURNS TABLE (partition_name text, copy_sql text, count_sql text, detach_sql text, drop_sql text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p temporal_versioning.prunes;
    vt temporal_versioning.versioned_tables;
    n integer;
    relation regclass;
BEGIN
    SELECT * INTO STRICT p FROM temporal_versioning.prunes r WHERE r.id = prune_id;
    SELECT * INTO STRICT vt FROM temporal_versioning.versioned_tables v WHERE v.id = p.versioned_table_id;
    partition_name := p.partitions[step / 2 + 1];
    relation := to_regclass(format('temporal_versioning.%I', partition_name));
    n := cardinality(p.archive_columns) - cardinality(temporal_versioning._archive_transaction_columns());
    IF relation IS NOT NULL THEN
        copy_sql := format('COPY (SELECT %s, t.valid_from, t.db_user, t.application_name, t.client_addr, t.user_id, t.changeset_id'
                           ' FROM %s h LEFT JOIN LATERAL (SELECT x.* FROM temporal_versioning.transactions x'
                           ' WHERE x.tx_id OPERATOR(pg_catalog.=) h.temporal_tx_id) t ON true ORDER BY h.temporal_id) TO STDOUT',
                           (SELECT string_agg(format('h.%I', c), ', ' ORDER BY i) FROM unnest(p.archive_columns[1:n]) WITH ORDINALITY AS u(c, i)),
                           relation);
        count_sql := format('SELECT pg_catalog.count(*) FROM %s', relation);
        IF EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = relation) THEN
            detach_sql := format('ALTER TABLE %s DETACH PARTITION %s', temporal_versioning._history_relation(vt), relation);
        END IF;
        drop_sql := format('DROP TABLE %s', relation);
    END IF;
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION temporal_versioning._prune_partition_step(bigint, bigint) IS
    'pg-temporal (internal): the COPY, DETACH and DROP of one partition of a partitioned prune';
