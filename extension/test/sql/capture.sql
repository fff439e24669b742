-- The C capture path: the triggers of a versioned table call
-- temporal_versioning._capture_c(), which hands what it does not handle
-- itself (key changes, TRUNCATE) to the table's PL/pgSQL function.
CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric(12,2), code char(4));
SELECT temporal_versioning.enable_temporal_versioning('public', 'accounts');
SELECT tgname, tgfoid::regprocedure FROM pg_trigger WHERE tgrelid = 'accounts'::regclass ORDER BY tgname;
\i test/sql/workload.sql
-- The path each statement took: in C, but for the key change, which the
-- PL/pgSQL function works out (TRUNCATE's trigger calls it directly).
SELECT in_c, handed_to_plpgsql FROM temporal_versioning._capture_c_statements();
-- A partition of a history partitioned by time that is not laid out as the
-- history is (made after a column of the history was dropped, so its
-- columns sit at other places) gets its rows converted by column name, and
-- its own CHECK constraints, in C.
CREATE TABLE shifted (id int PRIMARY KEY, amount int);
SELECT temporal_versioning.enable_temporal_versioning('public', 'shifted', partition_history => 'daily');
ALTER TABLE temporal_versioning.shifted_history ADD COLUMN scratch int;
ALTER TABLE temporal_versioning.shifted_history DROP COLUMN scratch;
DO $$ DECLARE today text := format('temporal_versioning.shifted_history_%s', to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD'));
BEGIN
    EXECUTE format('ALTER TABLE temporal_versioning.shifted_history DETACH PARTITION %s', today);
    EXECUTE format('DROP TABLE %s', today);
END $$;
SELECT temporal_versioning.ensure_history_partitions(v.id) AS made FROM temporal_versioning.versioned_tables v WHERE v.table_name = 'shifted';
CREATE TEMP TABLE before AS SELECT * FROM temporal_versioning._capture_c_statements();
INSERT INTO shifted VALUES (1, 10), (2, 20);
UPDATE shifted SET amount = amount + 1;
SELECT s.in_c - b.in_c AS in_c, s.handed_to_plpgsql - b.handed_to_plpgsql AS handed_to_plpgsql
FROM temporal_versioning._capture_c_statements() s, before b;
ALTER TABLE temporal_versioning.shifted_history ADD CONSTRAINT amount_small CHECK (amount < 100);
UPDATE shifted SET amount = 500 WHERE id = 1;
DO $$ DECLARE c text;
BEGIN
    UPDATE shifted SET amount = 1 WHERE id = 1;
EXCEPTION WHEN check_violation THEN
    GET STACKED DIAGNOSTICS c = CONSTRAINT_NAME;
    RAISE NOTICE 'refused by %', c;
END $$;
SELECT s.in_c - b.in_c AS in_c, s.handed_to_plpgsql - b.handed_to_plpgsql AS handed_to_plpgsql
FROM temporal_versioning._capture_c_statements() s, before b;
SELECT h.temporal_operation, h.id, h.amount, h.temporal_at = t.valid_from AS at_transaction_start
FROM temporal_versioning.shifted_history h JOIN temporal_versioning.transactions t ON t.tx_id = h.temporal_tx_id ORDER BY h.temporal_id;
SELECT temporal_versioning.disable_temporal_versioning('public', 'shifted', true);
DROP TABLE shifted;
