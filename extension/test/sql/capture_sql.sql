-- The PL/pgSQL capture path, the reference: the same workload must leave
-- the same history as the C path (capture.out).
SET temporal.capture = sql;
CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric(12,2), code char(4));
SELECT temporal_versioning.enable_temporal_versioning('public', 'accounts');
SELECT tgname, tgfoid::regprocedure FROM pg_trigger WHERE tgrelid = 'accounts'::regclass ORDER BY tgname;
\i test/sql/workload.sql
RESET temporal.capture;
