-- 0006: the temporal_id sequence of every history moves by 32 a nextval, as
-- enable now makes it: the C capture path takes a statement's ids a block at
-- a time (one nextval per 32 rows); the PL/pgSQL path one nextval per row.
-- Existing ids stay as they are and new ones keep growing. Left alone, and
-- written one id per nextval as before: a sequence whose increment someone
-- changed from 1, one with a cache (its backends hand out values they drew
-- before), and one this role does not own (with a WARNING).
DO $m0006$
DECLARE
    seq regclass;
BEGIN
    FOR seq IN
        SELECT pg_catalog.pg_get_serial_sequence(format('temporal_versioning.%I', vt.history_table), 'temporal_id')::regclass
          FROM temporal_versioning.versioned_tables vt
         WHERE pg_catalog.to_regclass(format('temporal_versioning.%I', vt.history_table)) IS NOT NULL
    LOOP
        CONTINUE WHEN seq IS NULL
            OR NOT EXISTS (SELECT FROM pg_catalog.pg_sequence s WHERE s.seqrelid = seq AND s.seqincrement = 1 AND s.seqcache = 1);
        IF NOT pg_catalog.pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = seq), 'USAGE') THEN
            RAISE WARNING 'sequence % keeps its increment of 1: only its owner can change it', seq
                USING HINT = format('As its owner: ALTER SEQUENCE %s INCREMENT BY 32 (the C capture path then takes 32 ids a nextval)', seq);
            CONTINUE;
        END IF;
        EXECUTE format('ALTER SEQUENCE %s INCREMENT BY 32', seq);
    END LOOP;
END
$m0006$;
