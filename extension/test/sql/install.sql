-- CREATE EXTENSION puts in the same objects as `temporal install`.
CREATE EXTENSION temporal_versioning;
SELECT temporal_versioning.version() = extversion AS versions_agree
FROM pg_extension WHERE extname = 'temporal_versioning';
SELECT array_agg(version ORDER BY version) AS migrations FROM temporal_versioning.installed_migrations;
SELECT evtname, evtevent FROM pg_event_trigger WHERE evtname LIKE 'temporal_versioning%' ORDER BY evtname;
-- The catalog's rows are dumped by pg_dump (configuration tables).
SELECT c.relname
FROM pg_extension e CROSS JOIN LATERAL unnest(e.extconfig) t(oid) JOIN pg_class c ON c.oid = t.oid
WHERE e.extname = 'temporal_versioning' ORDER BY c.relname;
-- The C library is there, and its version is the SQL's.
SELECT temporal_versioning._capture_library_version() = temporal_versioning.version() AS library_matches;
-- Every function pins its search_path but these: the C trigger function pins
-- its own where it runs SQL, the others say why in their comments.
SELECT p.proname FROM pg_proc p
WHERE p.pronamespace = 'temporal_versioning'::regnamespace
  AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
ORDER BY p.proname;
