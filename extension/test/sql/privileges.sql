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
SELECT temporal_versioning.disable_temporal_versioning('public', 'orders', true);
DROP TABLE orders;
DROP ROLE regress_temporal_app;
