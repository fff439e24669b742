-- Application roles write their tables; they cannot read or write history,
-- nor call the capture function themselves.
CREATE TABLE orders (id int PRIMARY KEY, total int);
SELECT temporal_versioning.enable_temporal_versioning('public', 'orders');
CREATE ROLE regress_temporal_app;
GRANT ALL ON orders TO regress_temporal_app;
SET ROLE regress_temporal_app;
INSERT INTO orders VALUES (1, 100);
UPDATE orders SET total = 110;
SELECT count(*) FROM temporal_versioning.orders_history;
INSERT INTO temporal_versioning.orders_history (temporal_tx_id, temporal_operation, id) VALUES (1, 'I', 99);
DELETE FROM temporal_versioning.transactions;
SELECT temporal_versioning._capture_c();
RESET ROLE;
SELECT h.temporal_operation, h.id, h.total, t.db_user
FROM temporal_versioning.orders_history h JOIN temporal_versioning.transactions t ON t.tx_id = h.temporal_tx_id
ORDER BY h.temporal_id;
-- A CHECK a DBA put on the history runs as the history's owner, as the
-- PL/pgSQL path's INSERT does: a function the application may not call is
-- still evaluated, and still binds.
CREATE FUNCTION temporal_versioning.regress_total_ok(total int) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE AS 'BEGIN RETURN total < 1000; END';
REVOKE ALL ON FUNCTION temporal_versioning.regress_total_ok(int) FROM PUBLIC;
ALTER TABLE temporal_versioning.orders_history ADD CONSTRAINT total_ok CHECK (temporal_versioning.regress_total_ok(total));
SET ROLE regress_temporal_app;
UPDATE orders SET total = 120;
UPDATE orders SET total = 5000;
\set VERBOSITY terse
UPDATE orders SET total = 1;                       -- the old row, 5000, breaks the CHECK
\set VERBOSITY default
RESET ROLE;
SELECT id, total FROM orders;
SELECT temporal_operation, id, total FROM temporal_versioning.orders_history ORDER BY temporal_id;
SELECT temporal_versioning.disable_temporal_versioning('public', 'orders', true);
DROP FUNCTION temporal_versioning.regress_total_ok(int);
DROP TABLE orders;
DROP ROLE regress_temporal_app;
