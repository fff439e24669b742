-- (Included by capture.sql and capture_sql.sql.)
INSERT INTO accounts VALUES (1, 'ann', 10, 'a'), (2, 'bob', 20, 'b'), (3, 'cy', 30, 'c');
UPDATE accounts SET balance = balance + 5 WHERE id = 1;
UPDATE accounts SET owner = owner;                 -- nothing a reader could see: no history
UPDATE accounts SET code = 'a  ' WHERE id = 1;     -- char(4): the same value
UPDATE accounts SET id = id + 10 WHERE id = 2;     -- a key change: delete and insert
DELETE FROM accounts WHERE id = 3;
BEGIN;
SAVEPOINT s;
INSERT INTO accounts VALUES (4, 'di', 4, 'd');
ROLLBACK TO s;                                     -- gone from the history too
INSERT INTO accounts VALUES (5, 'ed', 5, 'e');
UPDATE accounts SET balance = 6 WHERE id = 5;
COMMIT;
SET session_replication_role = replica;            -- a subscriber's changes are history too
UPDATE accounts SET balance = 7 WHERE id = 5;
RESET session_replication_role;
ALTER TABLE accounts ADD COLUMN note text;
UPDATE accounts SET note = 'new column' WHERE id = 5;
ALTER TABLE accounts DROP COLUMN code;
UPDATE accounts SET owner = 'edd' WHERE id = 5;
TRUNCATE accounts;
SELECT temporal_operation, id, owner, balance, code, note
FROM temporal_versioning.accounts_history ORDER BY temporal_id;
SELECT count(*) AS history_rows_without_transaction FROM temporal_versioning.accounts_history h
WHERE NOT EXISTS (SELECT FROM temporal_versioning.transactions t WHERE t.tx_id = h.temporal_tx_id);
SELECT temporal_versioning.capture_state('accounts'::regclass);
SELECT temporal_versioning.disable_temporal_versioning('public', 'accounts', true);
DROP TABLE accounts;
-- A constraint a DBA put on a history binds capture as it binds INSERT:
-- PostgreSQL's own error, and the statement changes nothing.
CREATE TABLE checked (id int PRIMARY KEY, amount int);
SELECT temporal_versioning.enable_temporal_versioning('public', 'checked');
ALTER TABLE temporal_versioning.checked_history ADD CONSTRAINT amount_small CHECK (amount < 100);
INSERT INTO checked VALUES (1, 500), (2, 5);
UPDATE checked SET amount = amount + 1 WHERE id = 2;
\set VERBOSITY terse
UPDATE checked SET amount = 1 WHERE id = 1;        -- (its DETAIL names the transaction)
\set VERBOSITY default
SELECT * FROM checked ORDER BY id;
SELECT temporal_operation, id, amount FROM temporal_versioning.checked_history ORDER BY temporal_id;
-- A default on a history column: an INSERT's history row (the key alone)
-- gets it, as the PL/pgSQL path's INSERT gives it.
ALTER TABLE temporal_versioning.checked_history ALTER COLUMN amount SET DEFAULT 42;
INSERT INTO checked VALUES (3, 7);
SELECT temporal_operation, id, amount FROM temporal_versioning.checked_history WHERE id = 3 ORDER BY temporal_id;
ALTER TABLE temporal_versioning.checked_history ALTER COLUMN amount DROP DEFAULT;
-- SET LOCAL context: the first write of the transaction puts it into the
-- WAL once (the setting says so), and the transactions row keeps it; a
-- transaction without one emits nothing.
BEGIN;
SET LOCAL temporal.user_id = 'u-7';
SET LOCAL temporal.changeset_id = '';
SELECT coalesce(current_setting('temporal.context_emitted', true), '') AS emitted_before;
UPDATE checked SET amount = 3 WHERE id = 2;
SELECT current_setting('temporal.context_emitted', true) AS emitted_after;
SELECT user_id, changeset_id FROM temporal_versioning.transactions WHERE tx_id = txid_current();
COMMIT;
BEGIN;
UPDATE checked SET amount = 4 WHERE id = 2;
SELECT coalesce(current_setting('temporal.context_emitted', true), '') AS emitted_without_context;
COMMIT;
SELECT temporal_versioning.disable_temporal_versioning('public', 'checked', true);
DROP TABLE checked;
-- A check that reads temporal_operation alone, with immutable functions,
-- gives every row of a kind the same answer: the C path checks the first row
-- of each kind in a statement with it, the next ones without it. A kind it
-- refuses still gets PostgreSQL's error; a check that reads another column
-- too still sees every row (the statement's last row breaks one), and so
-- does one with a volatile function (it counts the rows it saw).
CREATE TABLE gated (id int PRIMARY KEY, amount int);
SELECT temporal_versioning.enable_temporal_versioning('public', 'gated');
INSERT INTO gated SELECT g, CASE WHEN g = 50 THEN 2000 ELSE g END FROM generate_series(1, 50) g;
CREATE SEQUENCE gate_calls;
ALTER TABLE temporal_versioning.gated_history ADD CONSTRAINT no_deletes CHECK (temporal_operation <> 'D');
ALTER TABLE temporal_versioning.gated_history ADD CONSTRAINT small_updates CHECK (temporal_operation <> 'U' OR amount < 1000);
ALTER TABLE temporal_versioning.gated_history ADD CONSTRAINT counted CHECK (temporal_operation <> 'X' AND nextval('gate_calls') > 0);
\set VERBOSITY terse
UPDATE gated SET amount = amount + 1;
UPDATE gated SET amount = amount + 1 WHERE id < 50;
DELETE FROM gated WHERE id > 10 AND id < 50;
\set VERBOSITY default
SELECT count(*) AS rows_left, sum(amount) AS amounts FROM gated;
SELECT temporal_operation, count(*) FROM temporal_versioning.gated_history GROUP BY 1 ORDER BY 1;
SELECT setval('gate_calls', 1, false) AS counting_from;
UPDATE gated SET amount = amount + 1 WHERE id <= 10;
SELECT last_value AS rows_counted FROM gate_calls;
ALTER TABLE temporal_versioning.gated_history DROP CONSTRAINT no_deletes;
DELETE FROM gated WHERE id > 10 AND id < 50;
SELECT temporal_operation, count(*) FROM temporal_versioning.gated_history GROUP BY 1 ORDER BY 1;
SELECT temporal_versioning.disable_temporal_versioning('public', 'gated', true);
DROP TABLE gated;
DROP SEQUENCE gate_calls;
-- A history partitioned by time: a transaction's rows go to the partition
-- of its start (the C path finds it as the executor's routing does), with
-- temporal_at the transaction's start. With the key index on closed
-- partitions only, the partitions of today and ahead are written without it.
CREATE TABLE ledger (id int PRIMARY KEY, amount int, memo text);
SELECT temporal_versioning.enable_temporal_versioning('public', 'ledger', partition_history => 'daily');
SELECT temporal_versioning.set_history_key_index('public', 'ledger', 'closed') AS changed;
SELECT temporal_versioning.key_index_step('public', 'ledger') \gexec
SELECT temporal_versioning.key_index_step('public', 'ledger') \gexec
SELECT temporal_versioning.key_index_step('public', 'ledger') IS NULL AS key_index_in_place;
SELECT CASE WHEN c.relname ~ '_\d{8}$' THEN 'today''s partition' ELSE c.relname END AS relation,
       temporal_versioning._has_btree_index(c.oid, '{id,temporal_id}') AS key_index
FROM pg_partition_tree('temporal_versioning.ledger_history') t JOIN pg_class c ON c.oid = t.relid
WHERE c.relname !~ '_\d{8}$' OR c.relname = format('ledger_history_%s', to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD'))
ORDER BY 1;
INSERT INTO ledger SELECT g, g, 'm' || g FROM generate_series(1, 1500) g;
UPDATE ledger SET amount = amount + 1 WHERE id % 2 = 0;
DELETE FROM ledger WHERE id > 1490;
UPDATE ledger SET memo = NULL WHERE id = 7;
SELECT h.tableoid = format('temporal_versioning.ledger_history_%s', to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD'))::regclass AS in_todays_partition,
       h.temporal_operation, count(*), bool_and(h.temporal_at = t.valid_from) AS at_transaction_start,
       count(DISTINCT h.temporal_id) AS ids
FROM temporal_versioning.ledger_history h JOIN temporal_versioning.transactions t ON t.tx_id = h.temporal_tx_id
GROUP BY 1, 2 ORDER BY 2;
SELECT temporal_operation, id, amount, memo FROM temporal_versioning.ledger_history WHERE id IN (7, 1495) ORDER BY temporal_id;
-- temporal_id's sequence moves by 32 a nextval. The C path gives a
-- statement's rows the values of each nextval's block in turn (no other
-- session draws here, so a statement's ids are contiguous); the PL/pgSQL
-- path a nextval per row (32 apart).
SELECT s.seqincrement FROM pg_sequence s
WHERE s.seqrelid = pg_get_serial_sequence('temporal_versioning.ledger_history', 'temporal_id')::regclass;
SELECT temporal_operation, count(*), max(temporal_id) - min(temporal_id) + 1 = count(*) AS contiguous,
       (max(temporal_id) - min(temporal_id)) / (count(*) - 1) AS step
FROM temporal_versioning.ledger_history WHERE temporal_operation IN ('I', 'D') GROUP BY 1 ORDER BY 1;
-- Altering the sequence (here to a lower increment, and no longer owned by
-- the column whose default draws from it) first moves it past the block its
-- last nextval gave, which a statement of 20 rows used part of: the ids
-- after it are still new, and larger.
UPDATE ledger SET amount = amount + 1 WHERE id <= 20;
ALTER SEQUENCE temporal_versioning.ledger_history_seq OWNED BY NONE INCREMENT BY 1;
INSERT INTO ledger SELECT g, g, 'late' FROM generate_series(2001, 2040) g;
SELECT count(*) = count(DISTINCT temporal_id) AS ids_unique,
       min(temporal_id) FILTER (WHERE id > 2000) > max(temporal_id) FILTER (WHERE id <= 2000) AS later_ids_larger
FROM temporal_versioning.ledger_history;
ALTER SEQUENCE temporal_versioning.ledger_history_seq OWNED BY temporal_versioning.ledger_history.temporal_id;
SELECT temporal_versioning.disable_temporal_versioning('public', 'ledger', true);
DROP TABLE ledger;
-- The history's BRIN index on temporal_tx_id finds every transaction's rows
-- (the C path gives that index one row per block range, not every row):
-- here with a range per page, summarised between statements, so that each
-- statement writes into summarised ranges and must widen their summaries:
-- the page the statement before it ended on, then pages freed by VACUUM.
-- The range size is the one the index was built with, not a later ALTER
-- INDEX SET, which takes effect on REINDEX.
CREATE TABLE brinned (id int PRIMARY KEY, memo text);
SELECT temporal_versioning.enable_temporal_versioning('public', 'brinned');
DROP INDEX temporal_versioning.brinned_history_temporal_tx_id_idx;
CREATE INDEX brinned_history_temporal_tx_id_idx ON temporal_versioning.brinned_history
    USING brin (temporal_tx_id) WITH (pages_per_range = 1);
ALTER TABLE temporal_versioning.brinned_history SET (autovacuum_enabled = off);
-- Each transaction's rows, and how many a scan through the index finds.
CREATE FUNCTION pg_temp.through_brin() RETURNS TABLE (transaction bigint, operation "char", history_rows bigint, found_by_scan bigint, plan text)
LANGUAGE plpgsql AS $$
DECLARE line text; tx bigint;
BEGIN
    SET LOCAL enable_seqscan = off;
    FOR tx, operation, history_rows IN
        SELECT h.temporal_tx_id, min(h.temporal_operation), count(*) FROM temporal_versioning.brinned_history h GROUP BY 1 ORDER BY 1
    LOOP
        transaction := coalesce(transaction, 0) + 1;
        plan := 'seq scan';
        FOR line IN EXECUTE format('EXPLAIN (COSTS OFF) SELECT * FROM temporal_versioning.brinned_history WHERE temporal_tx_id = %s', tx) LOOP
            IF line LIKE '%Bitmap Index Scan on brinned_history_temporal_tx_id_idx%' THEN plan := 'through the BRIN index'; END IF;
        END LOOP;
        EXECUTE format('SELECT count(*) FROM temporal_versioning.brinned_history WHERE temporal_tx_id = %s', tx) INTO found_by_scan;
        RETURN NEXT;
    END LOOP;
END $$;
INSERT INTO brinned SELECT g, repeat('m', 40) || g FROM generate_series(1, 600) g;
SELECT brin_summarize_new_values('temporal_versioning.brinned_history_temporal_tx_id_idx') > 0 AS summarised;
UPDATE brinned SET memo = memo || '+' WHERE id > 200;
UPDATE brinned SET memo = 'one' WHERE id = 7;
SELECT * FROM pg_temp.through_brin();
DELETE FROM temporal_versioning.brinned_history WHERE id % 3 = 0;
-- (VACUUM summarises the ranges not summarised yet.)
VACUUM (TRUNCATE false) temporal_versioning.brinned_history;
ALTER INDEX temporal_versioning.brinned_history_temporal_tx_id_idx SET (pages_per_range = 128);
CREATE TEMP TABLE pages_before AS
    SELECT pg_relation_size('temporal_versioning.brinned_history') / current_setting('block_size')::int AS pages;
DELETE FROM brinned WHERE id <= 250;
-- (Its rows went into summarised ranges, pages VACUUM freed, and not only new ones.)
SELECT count(*) FILTER (WHERE (h.ctid::text::point)[0] < b.pages) > 0 AS into_summarised_ranges
FROM temporal_versioning.brinned_history h, pages_before b WHERE h.temporal_operation = 'D';
SELECT * FROM pg_temp.through_brin();
SELECT temporal_versioning.disable_temporal_versioning('public', 'brinned', true);
DROP TABLE brinned;
