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
