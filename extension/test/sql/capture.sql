-- The C capture path: the triggers of a versioned table call
-- temporal_versioning._capture_c(), which hands what it does not handle
-- itself (key changes, TRUNCATE) to the table's PL/pgSQL function.
CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric(12,2), code char(4));
SELECT temporal_versioning.enable_temporal_versioning('public', 'accounts');
SELECT tgname, tgfoid::regprocedure FROM pg_trigger WHERE tgrelid = 'accounts'::regclass ORDER BY tgname;
\i test/sql/workload.sql
