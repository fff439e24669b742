-- Versioning a partitioned table. A statement fires the statement triggers
-- of the table it names, and only those: a statement on the partitioned
-- table fires its triggers (their transition tables hold the rows of every
-- partition, and a row moved to another partition is one UPDATE), a
-- statement on one partition fires that partition's. So the capture
-- triggers go on the partitioned table and on every table of its tree, all
-- writing into the one history, keyed by the partitioned table's key.
-- TRUNCATE of the partitioned table fires every partition's TRUNCATE
-- trigger, and each captures its own rows (FROM ONLY).
--
-- Partitions created or attached later get the triggers from the
-- schema-change event trigger (so versioning a partitioned table needs it).
-- The rows of a partition attached are recorded as inserted then, those of
-- a partition detached as deleted; dropping a partition of a versioned table
-- is refused (its rows would leave the table unrecorded): detach it first.

-- The tables of the partition tree under `root` (every level), not root itself.
CREATE OR REPLACE FUNCTION temporal_versioning._partition_members(root oid)
RETURNS SETOF oid
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.relid::oid FROM pg_partition_tree(root) t WHERE t.relid::oid <> root;
$$;

COMMENT ON FUNCTION temporal_versioning._partition_members(oid) IS
    'pg-temporal (internal): the partitions, at every level, of a partitioned table';

-- A versioned table as a statement reads or writes it: ONLY the table (a
-- versioned table has no inheritance children), or a partitioned table with
-- its partitions.
CREATE OR REPLACE FUNCTION temporal_versioning._scan(table_oid oid)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN c.relkind = 'p' THEN '' ELSE 'ONLY ' END || table_oid::regclass::text
    FROM pg_class c WHERE c.oid = table_oid;
$$;

COMMENT ON FUNCTION temporal_versioning._scan(oid) IS
    'pg-temporal (internal): a versioned table as a statement names it (ONLY, unless it is partitioned)';

-- The capture state of a versioned table and of all its partitions: the
-- first that is not 'enabled', or 'enabled'.
CREATE OR REPLACE FUNCTION temporal_versioning._tree_capture_state(root oid)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT s.state FROM (SELECT temporal_versioning.capture_state(r) AS state, r.n
                                          FROM (SELECT root AS r, 0 AS n
                                                UNION ALL SELECT m, 1 FROM temporal_versioning._partition_members(root) m) r) s
                     WHERE s.state <> 'enabled' ORDER BY s.n LIMIT 1),
                    temporal_versioning.capture_state(root));
$$;

COMMENT ON FUNCTION temporal_versioning._tree_capture_state(oid) IS
    'pg-temporal (internal): whether the capture triggers of a table and of all its partitions are in place and firing';

-- Records every row of one partition as inserted ('I', the key) or deleted
-- ('D', the row) by the current transaction: a partition attached or
-- detached. Returns the rows recorded.
CREATE OR REPLACE FUNCTION temporal_versioning._record_partition_rows(versioned_table_id integer, relation oid, operation "char")
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    targets text;
    sources text;
    recorded bigint;
BEGIN
    SELECT * INTO STRICT vt FROM temporal_versioning.versioned_tables v WHERE v.id = versioned_table_id;
    SELECT string_agg(quote_ident(c.history_column), ', ' ORDER BY c.attnum),
           string_agg(format('o.%I', c.column_name), ', ' ORDER BY c.attnum)
      INTO targets, sources
      FROM temporal_versioning.live_columns(vt.id) c
     WHERE operation = 'D' OR c.column_name = ANY (vt.key_columns);
    EXECUTE format('INSERT INTO temporal_versioning.%I (temporal_tx_id, temporal_operation, %s) SELECT txid_current(), %L, %s FROM ONLY %s o',
                   vt.history_table, targets, operation, sources, relation::regclass);
    GET DIAGNOSTICS recorded = ROW_COUNT;
    IF recorded > 0 THEN
        INSERT INTO temporal_versioning.transactions (tx_id, valid_from, db_user, application_name, client_addr, user_id, changeset_id)
        VALUES (txid_current(), now(),
                CASE WHEN current_setting('role') = 'none' THEN session_user::text ELSE current_setting('role') END,
                nullif(current_setting('application_name'), ''), inet_client_addr(),
                nullif(current_setting('temporal.user_id', true), ''), nullif(current_setting('temporal.changeset_id', true), ''))
        ON CONFLICT (tx_id) DO NOTHING;
    END IF;
    RETURN recorded;
END
$$;

COMMENT ON FUNCTION temporal_versioning._record_partition_rows(integer, oid, "char") IS
    'pg-temporal (internal): records the rows of a partition attached (inserted) or detached (deleted)';

-- Brings the capture triggers of a versioned partitioned table in step with
-- its partition tree: new partitions get them (their rows recorded as
-- inserted unless `initial`, on enable), partitions detached lose them
-- (their rows recorded as deleted). A table that is not partitioned just
-- gets its triggers.
CREATE OR REPLACE FUNCTION temporal_versioning._sync_partitions(versioned_table_id integer, initial boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    vt temporal_versioning.versioned_tables;
    member oid;
    rows bigint;
BEGIN
    SELECT * INTO STRICT vt FROM temporal_versioning.versioned_tables v WHERE v.id = versioned_table_id;
    IF vt.table_oid IS NULL OR NOT vt.enabled THEN
        RETURN;
    END IF;
    FOR member IN SELECT m FROM temporal_versioning._partition_members(vt.table_oid) m
                  WHERE NOT EXISTS (SELECT 1 FROM temporal_versioning.versioned_partitions p WHERE p.relid = m)
    LOOP
        INSERT INTO temporal_versioning.versioned_partitions (relid, versioned_table_id) VALUES (member, vt.id);
        CONTINUE WHEN initial;
        rows := CASE WHEN (SELECT c.relkind FROM pg_class c WHERE c.oid = member) = 'r'
                     THEN temporal_versioning._record_partition_rows(vt.id, member, 'I') ELSE 0 END;
        PERFORM temporal_versioning.record_schema_change(vt.id, 'ALTER TABLE', 'add partition',
            jsonb_build_object('partition', member::regclass::text, 'rows_recorded_inserted', rows));
    END LOOP;
    PERFORM temporal_versioning.create_capture_triggers(vt.id);
    FOR member IN SELECT p.relid FROM temporal_versioning.versioned_partitions p
                  WHERE p.versioned_table_id = vt.id
                    AND p.relid NOT IN (SELECT m FROM temporal_versioning._partition_members(vt.table_oid) m)
    LOOP
        DELETE FROM temporal_versioning.versioned_partitions p WHERE p.relid = member;
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = member);
        rows := CASE WHEN (SELECT c.relkind FROM pg_class c WHERE c.oid = member) = 'r'
                     THEN temporal_versioning._record_partition_rows(vt.id, member, 'D') ELSE 0 END;
        PERFORM temporal_versioning.record_schema_change(vt.id, 'ALTER TABLE', 'detach partition',
            jsonb_build_object('partition', member::regclass::text, 'rows_recorded_deleted', rows));
        EXECUTE (SELECT string_agg(format('DROP TRIGGER IF EXISTS %I ON %s', t, member::regclass), '; ')
                 FROM unnest(temporal_versioning._capture_trigger_names()) t);
    END LOOP;
END
$$;

COMMENT ON FUNCTION temporal_versioning._sync_partitions(integer, boolean) IS
    'pg-temporal (internal): capture triggers on every partition of a versioned partitioned table; rows of partitions attached and detached recorded';
