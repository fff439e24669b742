-- Following schema changes of versioned tables. Two event triggers keep each
-- history table in step with its source table and journal every change in
-- temporal_versioning.schema_changes; they also stop the two commands that
-- would silently end capture (dropping a capture trigger, dropping the history
-- of a table still versioned). Creating event triggers needs a superuser (on
-- managed services, rds_superuser or azure_pg_admin); without one, install
-- warns and versioning works without following schema changes.

-- Follows the capture triggers of a versioned table being disabled and
-- enabled again (ALTER TABLE ... DISABLE / ENABLE [ALWAYS] TRIGGER). While
-- capture is off, writes go unrecorded, so when it is back the history
-- restarts: versioning_since moves to now, as after disable and enable, and
-- time travel refuses the instants before it instead of answering wrongly.
-- Each change of state is journaled ('capture triggers changed').
CREATE OR REPLACE FUNCTION temporal_versioning._follow_capture_state(
    vt temporal_versioning.versioned_tables, current_schema_name name, current_table_name name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    state text := temporal_versioning._tree_capture_state(vt.table_oid);
    journaled text;
BEGIN
    -- create_capture_triggers is putting them in place: judge once it is done.
    -- (Marked in the catalog, which a table's owner cannot write.)
    IF (SELECT v.options->>'creating_triggers_in' FROM temporal_versioning.versioned_tables v WHERE v.id = vt.id)
       = txid_current()::text THEN
        RETURN;
    END IF;
    -- Renaming a capture trigger away, or replacing it with one that calls
    -- another function, would end capture as silently as dropping it, which
    -- is refused too.
    IF state IN ('missing', 'replaced') THEN
        RAISE EXCEPTION 'cannot change the capture triggers of "%.%": capture would stop (%)', current_schema_name, current_table_name, state
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = format('Turn versioning off instead: temporal disable %I.%I', current_schema_name, current_table_name);
    END IF;
    -- The state last journaled; enable and disable start afresh with 'enabled'.
    SELECT s.details->>'capture' INTO journaled
    FROM temporal_versioning.schema_changes s
    WHERE s.versioned_table_id = vt.id
      AND s.change IN ('capture triggers changed', 'enable versioning', 'disable versioning')
    ORDER BY s.id DESC LIMIT 1;
    journaled := coalesce(journaled, 'enabled');
    IF state = journaled THEN
        RETURN;
    END IF;
    IF state <> 'enabled' THEN
        RAISE WARNING 'capture of "%.%" is %: changes are not being recorded', current_schema_name, current_table_name, state
            USING DETAIL = 'Once capture is back, the history restarts then: time travel to earlier instants is refused.',
                  HINT = format('Turn it back on: ALTER TABLE %I.%I %s', current_schema_name, current_table_name,
                                (SELECT string_agg(format('ENABLE ALWAYS TRIGGER %I', t), ', ')
                                 FROM unnest(temporal_versioning._capture_trigger_names()) t));
        PERFORM temporal_versioning.record_schema_change(vt.id, 'ALTER TABLE', 'capture triggers changed',
                                                         jsonb_build_object('capture', state));
        RETURN;
    END IF;
    UPDATE temporal_versioning.versioned_tables v SET versioning_since = now() WHERE v.id = vt.id;
    RAISE WARNING 'capture of "%.%" is back on after being %: its history restarts now', current_schema_name, current_table_name, journaled
        USING DETAIL = 'Changes made while capture was off are not in the history; time travel to earlier instants is refused.';
    PERFORM temporal_versioning.record_schema_change(vt.id, 'ALTER TABLE', 'capture triggers changed',
        jsonb_build_object('capture', state, 'was', journaled, 'versioning_since', now()));
END
$$;

COMMENT ON FUNCTION temporal_versioning._follow_capture_state(temporal_versioning.versioned_tables, name, name) IS
    'pg-temporal (internal): journal capture triggers being turned off and on, and restart the history when they are back';

-- Moves a history's temporal_id sequence at least 31 values on, past the
-- block of ids the C capture path may have taken from its last nextval
-- (never past its maximum), by drawing values, so that it never moves back.
-- A descending sequence is left alone (the C path takes one id a nextval
-- from it), and so is every sequence where the C path is not installed.
CREATE OR REPLACE FUNCTION temporal_versioning._skip_id_block(seq regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    last bigint;
    target numeric;
    s pg_catalog.pg_sequence;
BEGIN
    SELECT * INTO s FROM pg_catalog.pg_sequence q WHERE q.seqrelid = seq;
    IF NOT FOUND OR s.seqincrement <= 0 OR pg_catalog.to_regprocedure('temporal_versioning._capture_c()') IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT last_value FROM %s', seq) INTO last;
    -- (In numeric: nothing overflows near the ends of bigint.)
    target := least(last::numeric + 31, s.seqmax);
    LOOP
        -- At its maximum, a nextval would fail the user's statement.
        EXIT WHEN last::numeric + s.seqincrement > s.seqmax;
        last := pg_catalog.nextval(seq);
        EXIT WHEN last >= target;
    END LOOP;
END
$$;

COMMENT ON FUNCTION temporal_versioning._skip_id_block(regclass) IS
    'pg-temporal (internal): move a history''s temporal_id sequence past the ids the C capture path may have taken from its last nextval';

CREATE OR REPLACE FUNCTION temporal_versioning.on_alter_table()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    altered oid;
    vt temporal_versioning.versioned_tables;
    current_schema_name name;
    current_table_name name;
    state text;
    -- pg_restore (or psql running a pg_dump script, which always sets
    -- check_function_bodies off) loads the catalog's rows, then creates each
    -- versioned table's constraints and capture triggers one statement at a
    -- time, each trigger first enabled for origin only, then ALWAYS: until
    -- the last is done, capture is 'missing' or 'enabled (origin only)'
    -- without anyone having turned it off, and that is not journaled (it
    -- would restart the history). Removing a trigger is still refused:
    -- DROP TRIGGER by on_sql_drop, a rename (ALTER TRIGGER) below.
    restoring boolean := current_setting('check_function_bodies') = 'off' AND tg_tag <> 'ALTER TRIGGER';
BEGIN
    -- A versioned table may not join an inheritance tree or a partitioned
    -- table (ATTACH PARTITION, INHERIT, CREATE TABLE ... INHERITS): a
    -- statement on the parent would change its rows without firing its
    -- statement triggers. (A versioned partitioned table has partitions, of
    -- course: they carry capture triggers too, see 35_partitions.sql.)
    SELECT * INTO vt FROM temporal_versioning.versioned_tables v
    WHERE v.enabled
      AND EXISTS (SELECT 1 FROM pg_inherits i
                  WHERE i.inhrelid = v.table_oid
                     OR (i.inhparent = v.table_oid AND (SELECT c.relkind FROM pg_class c WHERE c.oid = v.table_oid) <> 'p'))
    LIMIT 1;
    IF vt.id IS NOT NULL THEN
        RAISE EXCEPTION 'versioned table "%.%" cannot be part of an inheritance tree or a partitioned table', vt.schema_name, vt.table_name
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A statement on the parent changes its rows without firing its statement triggers, so changes would be missed.',
                  HINT = format('Turn versioning off first: temporal disable %I.%I', vt.schema_name, vt.table_name);
    END IF;

    -- A sequence a history's temporal_id is drawn from, altered (ALTER
    -- SEQUENCE; ALTER TABLE ... ALTER COLUMN temporal_id SET or RESTART on an
    -- identity, which reports the sequence too): the C capture path may have
    -- given out up to 31 values past the sequence's last one (one nextval, a
    -- block of ids: next_history_id in capture.c), which a lower increment or
    -- a RESTART would give out again. The sequence moves past them (31 ids
    -- lost). The sequence is found as the C path finds it: the history's
    -- identity, or the sequence of its column default.
    FOR altered IN
        SELECT DISTINCT c.objid FROM pg_event_trigger_ddl_commands() c
        WHERE c.classid = 'pg_class'::regclass
          AND (SELECT r.relkind FROM pg_class r WHERE r.oid = c.objid) = 'S'
          AND EXISTS (
              SELECT FROM temporal_versioning.versioned_tables v
              JOIN pg_class h ON h.relname = v.history_table AND h.relnamespace = 'temporal_versioning'::regnamespace
              JOIN pg_attribute a ON a.attrelid = h.oid AND a.attname = 'temporal_id' AND NOT a.attisdropped
              WHERE EXISTS (SELECT FROM pg_depend d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = c.objid AND d.deptype = 'i'
                              AND d.refclassid = 'pg_class'::regclass AND d.refobjid = h.oid AND d.refobjsubid = a.attnum)
                 OR EXISTS (SELECT FROM pg_attrdef ad JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                            WHERE ad.adrelid = h.oid AND ad.adnum = a.attnum
                              AND d.refclassid = 'pg_class'::regclass AND d.refobjid = c.objid))
    LOOP
        PERFORM temporal_versioning._skip_id_block(altered::regclass);
    END LOOP;

    -- The tables altered, and the tables of the triggers created or altered
    -- (CREATE OR REPLACE TRIGGER could swap a capture trigger's function).
    FOR altered IN
        SELECT DISTINCT CASE WHEN c.classid = 'pg_trigger'::regclass
                             THEN (SELECT t.tgrelid FROM pg_trigger t WHERE t.oid = c.objid) ELSE c.objid END
        FROM pg_event_trigger_ddl_commands() c
        WHERE (c.classid = 'pg_class'::regclass AND c.object_type IN ('table', 'table column'))
           OR c.classid = 'pg_trigger'::regclass
    LOOP
        CONTINUE WHEN altered IS NULL;
        -- A table in the partition tree of a versioned partitioned table
        -- (created or attached there, or one there detached from it): its
        -- partitions get their capture triggers, and the rows that joined or
        -- left the table are recorded.
        SELECT * INTO vt FROM temporal_versioning.versioned_tables v
        WHERE v.enabled AND v.table_oid <> altered
          AND (v.table_oid = pg_partition_root(altered)
               OR v.id = (SELECT p.versioned_table_id FROM temporal_versioning.versioned_partitions p WHERE p.relid = altered));
        IF vt.id IS NOT NULL THEN
            -- (Not while create_capture_triggers is putting them there.)
            CONTINUE WHEN vt.options->>'creating_triggers_in' = txid_current()::text;
            PERFORM temporal_versioning._sync_partitions(vt.id, initial => false);
            CONTINUE WHEN restoring AND temporal_versioning._tree_capture_state(vt.table_oid) IN ('missing', 'enabled (origin only)');
            PERFORM temporal_versioning._follow_capture_state(vt, vt.schema_name, vt.table_name);
            CONTINUE;
        END IF;
        SELECT * INTO vt FROM temporal_versioning.versioned_tables v WHERE v.table_oid = altered;
        CONTINUE WHEN vt.id IS NULL;
        IF vt.enabled AND (SELECT c.relkind FROM pg_class c WHERE c.oid = altered) = 'p'
           AND vt.options->>'creating_triggers_in' IS DISTINCT FROM txid_current()::text THEN
            PERFORM temporal_versioning._sync_partitions(vt.id, initial => false);
        END IF;

        SELECT n.nspname, c.relname INTO current_schema_name, current_table_name
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = altered;
        IF (current_schema_name, current_table_name) IS DISTINCT FROM (vt.schema_name, vt.table_name) THEN
            UPDATE temporal_versioning.versioned_tables v
               SET schema_name = current_schema_name, table_name = current_table_name
             WHERE v.id = vt.id;
            PERFORM temporal_versioning.record_schema_change(vt.id, 'ALTER TABLE',
                CASE WHEN current_schema_name <> vt.schema_name THEN 'set schema' ELSE 'rename table' END,
                jsonb_build_object('from', format('%I.%I', vt.schema_name, vt.table_name),
                                   'to', format('%I.%I', current_schema_name, current_table_name)));
        END IF;

        IF temporal_versioning.sync_history_columns(vt.id) > 0 AND vt.enabled THEN
            PERFORM temporal_versioning.build_capture_function(vt.id);
        END IF;

        IF vt.enabled THEN
            IF (SELECT c.relpersistence FROM pg_class c WHERE c.oid = altered) = 'u' THEN
                RAISE EXCEPTION 'cannot make versioned table "%.%" unlogged', current_schema_name, current_table_name
                    USING ERRCODE = 'object_not_in_prerequisite_state',
                          DETAIL = 'Crash recovery empties an unlogged table without firing a trigger, so its history would stop matching it.',
                          HINT = format('Turn versioning off first: temporal disable %I.%I', current_schema_name, current_table_name);
            END IF;
            CONTINUE WHEN restoring AND temporal_versioning._tree_capture_state(vt.table_oid) IN ('missing', 'enabled (origin only)');
            PERFORM temporal_versioning._follow_capture_state(vt, current_schema_name, current_table_name);
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION temporal_versioning.on_alter_table() IS
    'pg-temporal: event trigger that follows ALTER TABLE on versioned tables into their history tables';

CREATE OR REPLACE FUNCTION temporal_versioning.on_sql_drop()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dropped record;
    vt temporal_versioning.versioned_tables;
BEGIN
    FOR dropped IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
        IF dropped.object_type = 'table' THEN
            -- A partition of a versioned table, dropped on its own: its rows
            -- would leave the table unrecorded.
            SELECT v.* INTO vt FROM temporal_versioning.versioned_partitions p
            JOIN temporal_versioning.versioned_tables v ON v.id = p.versioned_table_id
            WHERE p.relid = dropped.objid;
            IF vt.id IS NOT NULL THEN
                IF vt.enabled AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = vt.table_oid) THEN
                    RAISE EXCEPTION 'cannot drop %: it is a partition of versioned table "%.%"', dropped.object_identity, vt.schema_name, vt.table_name
                        USING ERRCODE = 'dependent_objects_still_exist',
                              DETAIL = 'Its rows would leave the table without being recorded in the history.',
                              HINT = format('Detach it first (its rows are recorded as deleted), then drop it: ALTER TABLE %s DETACH PARTITION %s; DROP TABLE %s;',
                                            vt.table_oid::regclass, dropped.object_identity, dropped.object_identity);
                END IF;
                DELETE FROM temporal_versioning.versioned_partitions p WHERE p.relid = dropped.objid;
                CONTINUE;
            END IF;
            SELECT * INTO vt FROM temporal_versioning.versioned_tables v WHERE v.table_oid = dropped.objid;
            IF vt.id IS NOT NULL THEN
                -- The table is gone; its history stays.
                UPDATE temporal_versioning.versioned_tables v
                   SET enabled = false, table_oid = NULL, disabled_at = now()
                 WHERE v.id = vt.id;
                EXECUTE format('DROP FUNCTION IF EXISTS temporal_versioning.%I()', temporal_versioning._capture_function_name(vt.history_table));
                PERFORM temporal_versioning.record_schema_change(vt.id, 'DROP TABLE', 'drop table',
                    jsonb_build_object('history_kept_in', format('temporal_versioning.%I', vt.history_table)));
                CONTINUE;
            END IF;

            IF dropped.schema_name = 'temporal_versioning' THEN
                SELECT * INTO vt FROM temporal_versioning.versioned_tables v WHERE v.history_table = dropped.object_name;
                IF vt.id IS NOT NULL AND vt.enabled THEN
                    RAISE EXCEPTION 'cannot drop temporal_versioning.%: it keeps the history of "%.%", which is still versioned',
                                    vt.history_table, vt.schema_name, vt.table_name
                        USING ERRCODE = 'dependent_objects_still_exist',
                              HINT = format('Turn versioning off and drop the history with: temporal disable %I.%I --drop-history',
                                            vt.schema_name, vt.table_name);
                ELSIF vt.id IS NOT NULL THEN
                    DELETE FROM temporal_versioning.versioned_tables v WHERE v.id = vt.id;
                END IF;
            END IF;
        ELSIF dropped.object_type = 'trigger' AND dropped.original
              AND dropped.address_names[3] = ANY (temporal_versioning._capture_trigger_names()) THEN
            -- (create_capture_triggers replacing one of its own, marked in the
            -- catalog, is not a drop of capture.)
            IF EXISTS (SELECT 1 FROM temporal_versioning.versioned_tables v
                       WHERE v.enabled AND (v.options->>'creating_triggers_in') IS DISTINCT FROM txid_current()::text
                         AND ((v.schema_name = dropped.address_names[1] AND v.table_name = dropped.address_names[2])
                                            OR v.id = (SELECT p.versioned_table_id FROM temporal_versioning.versioned_partitions p
                                                       WHERE p.relid = to_regclass(format('%I.%I', dropped.address_names[1], dropped.address_names[2]))))) THEN
                RAISE EXCEPTION 'cannot drop trigger % on "%.%": it captures the history of a versioned table',
                                dropped.address_names[3], dropped.address_names[1], dropped.address_names[2]
                    USING ERRCODE = 'dependent_objects_still_exist',
                          HINT = format('Turn versioning off instead: temporal disable %I.%I',
                                        dropped.address_names[1], dropped.address_names[2]);
            END IF;
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION temporal_versioning.on_sql_drop() IS
    'pg-temporal: event trigger that keeps history when a versioned table is dropped, and guards capture';

-- The journal of schema changes as the ETL that feeds MongoDB reads it:
-- each change classified like the impact matrix of our users' migration
-- guide (seed 001): a new optional field is safe and automatic; a new
-- required field (NOT NULL without a default) needs review and breaks
-- writers that do not send it; a type change needs a migration of the
-- documents; a rename or a drop breaks readers. Only versioned tables are
-- journaled: a table that is not versioned is not covered.
CREATE OR REPLACE FUNCTION temporal_versioning.schema_change_report(
    schema_name text DEFAULT NULL, table_name text DEFAULT NULL, since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL)
RETURNS TABLE (changed_at timestamptz, source_table text, change text, column_name text, from_type text, to_type text,
               kind text, category text, mongodb text, api text, db_user text, tx_id bigint, details jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.changed_at, format('%I.%I', v.schema_name, v.table_name), s.change,
           coalesce(s.details->>'column', CASE WHEN s.change = 'rename column' THEN s.details->>'to' END),
           CASE s.change WHEN 'alter column type' THEN s.details->>'from' END,
           CASE s.change WHEN 'alter column type' THEN s.details->>'to' WHEN 'add column' THEN s.details->>'type' END,
           k.kind, k.category, k.mongodb, k.api, s.db_user, s.tx_id, s.details
    FROM temporal_versioning.schema_changes s
    JOIN temporal_versioning.versioned_tables v ON v.id = s.versioned_table_id
    CROSS JOIN LATERAL (
        SELECT CASE
            WHEN s.change = 'add column' AND coalesce((s.details->>'not_null')::boolean, false)
                 AND NOT coalesce((s.details->>'has_default')::boolean, false) THEN 'new required field'
            WHEN s.change = 'add column' THEN 'new optional field'
            WHEN s.change = 'alter column type' THEN 'type change'
            WHEN s.change = 'rename column' THEN 'field rename'
            WHEN s.change = 'drop column' THEN 'field drop'
            WHEN s.change IN ('rename table', 'set schema') THEN 'collection rename'
            WHEN s.change = 'enable versioning' THEN 'new table'
            WHEN s.change = 'drop table' THEN 'table drop'
            ELSE 'no change of shape' END AS kind) c
    CROSS JOIN LATERAL (
        SELECT c.kind,
               CASE c.kind WHEN 'new optional field' THEN 'safe' WHEN 'new table' THEN 'safe'
                           WHEN 'new required field' THEN 'review' WHEN 'type change' THEN 'migration'
                           WHEN 'no change of shape' THEN 'none' ELSE 'breaking' END AS category,
               CASE c.kind WHEN 'new optional field' THEN 'automatic' WHEN 'new table' THEN 'automatic'
                           WHEN 'new required field' THEN 'review' WHEN 'type change' THEN 'migration'
                           WHEN 'field rename' THEN 'migration' WHEN 'field drop' THEN 'migration'
                           WHEN 'collection rename' THEN 'migration' WHEN 'table drop' THEN 'review' ELSE 'none' END AS mongodb,
               CASE c.kind WHEN 'new optional field' THEN 'automatic' WHEN 'new table' THEN 'automatic'
                           WHEN 'type change' THEN 'review' WHEN 'no change of shape' THEN 'none' ELSE 'breaking' END AS api) k
    WHERE (schema_change_report.schema_name IS NULL OR v.schema_name = schema_change_report.schema_name)
      AND (schema_change_report.table_name IS NULL OR v.table_name = schema_change_report.table_name)
      AND (since IS NULL OR s.changed_at >= since)
      AND (until IS NULL OR s.changed_at < until)
    ORDER BY s.changed_at, s.id;
$$;

COMMENT ON FUNCTION temporal_versioning.schema_change_report(text, text, timestamptz, timestamptz) IS
    'pg-temporal: the schema changes of versioned tables, classified by their impact on a MongoDB ETL (seed 001''s matrix)';

DO $$
BEGIN
    DROP EVENT TRIGGER IF EXISTS temporal_versioning_alter_table;
    DROP EVENT TRIGGER IF EXISTS temporal_versioning_sql_drop;
    CREATE EVENT TRIGGER temporal_versioning_alter_table ON ddl_command_end
        WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'CREATE TRIGGER', 'ALTER TRIGGER', 'ALTER SEQUENCE')
        EXECUTE FUNCTION temporal_versioning.on_alter_table();
    CREATE EVENT TRIGGER temporal_versioning_sql_drop ON sql_drop
        EXECUTE FUNCTION temporal_versioning.on_sql_drop();
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'schema changes of versioned tables will not be followed: creating event triggers needs a superuser'
        USING HINT = 'Run temporal install as a superuser (on managed services: rds_superuser, azure_pg_admin).';
END
$$;
