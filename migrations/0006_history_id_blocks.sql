-- 0006: the temporal_id sequence of every history moves by 32 a nextval, as
-- enable now makes it: the C capture path takes a statement's ids a block at
-- a time (one nextval per 32 rows); the PL/pgSQL path one nextval per row.
-- Existing ids stay as they are and new ones keep growing. A sequence whose
-- increment someone changed from 1 is left alone.
DO $m0006$
DECLARE
    seq regclass;
BEGIN
    FOR seq IN
        SELECT pg_catalog.pg_get_serial_sequence(format('temporal_versioning.%I', vt.history_table), 'temporal_id')::regclass
          FROM temporal_versioning.versioned_tables vt
         WHERE pg_catalog.to_regclass(format('temporal_versioning.%I', vt.history_table)) IS NOT NULL
    LOOP
        IF seq IS NOT NULL AND (SELECT s.seqincrement FROM pg_catalog.pg_sequence s WHERE s.seqrelid = seq) = 1 THEN
            EXECUTE format('ALTER SEQUENCE %s INCREMENT BY 32', seq);
        END IF;
    END LOOP;
END
$m0006$;
