-- ALTER EXTENSION UPDATE: from an empty extension (the first step of moving a
-- plain install into the extension) to the current version.
DROP EXTENSION temporal_versioning;
DROP SCHEMA temporal_versioning CASCADE;
CREATE EXTENSION temporal_versioning VERSION 'unpackaged';
SELECT count(*) AS members FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'temporal_versioning');
ALTER EXTENSION temporal_versioning UPDATE;
SELECT extversion = temporal_versioning.version() AS updated FROM pg_extension WHERE extname = 'temporal_versioning';
SELECT count(*) > 100 AS has_members FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'temporal_versioning');
-- Updating again finds nothing to do.
ALTER EXTENSION temporal_versioning UPDATE;
SELECT count(*) AS migrations FROM temporal_versioning.installed_migrations;
