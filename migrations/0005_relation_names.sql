-- 0005: the catalog names the relations it follows by regclass, not by a bare
-- oid. pg_dump writes a regclass as the relation's qualified name and
-- pg_restore reads it back as the new relation's oid, so a dumped and
-- restored database keeps knowing which tables are versioned (oids change in
-- a restore). Both columns keep comparing with oids as before.
ALTER TABLE temporal_versioning.versioned_tables ALTER COLUMN table_oid TYPE regclass;
ALTER TABLE temporal_versioning.versioned_partitions ALTER COLUMN relid TYPE regclass;
