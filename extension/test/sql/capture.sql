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
