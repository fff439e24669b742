-- The C capture path (extension/src/capture.c), when the extension's library
-- is installed: without it (make WITHOUT_C=1), capture stays in PL/pgSQL.
-- No SET clause: the function pins its own search_path where it runs SQL, and
-- a SET would cost a GUC save and restore on every statement it captures.
DO $do$
BEGIN
    CREATE OR REPLACE FUNCTION temporal_versioning._capture_c()
    RETURNS trigger
    LANGUAGE c
    AS '$libdir/temporal_versioning', 'temporal_capture';
    CREATE OR REPLACE FUNCTION temporal_versioning._capture_library_version()
    RETURNS text
    LANGUAGE c STRICT
    SET search_path = pg_catalog, pg_temp
    AS '$libdir/temporal_versioning', 'temporal_capture_library_version';
    CREATE OR REPLACE FUNCTION temporal_versioning._capture_c_statements(OUT in_c bigint, OUT handed_to_plpgsql bigint)
    RETURNS record
    LANGUAGE c STRICT
    SET search_path = pg_catalog, pg_temp
    AS '$libdir/temporal_versioning', 'temporal_capture_statements';
    CREATE OR REPLACE FUNCTION temporal_versioning._emit_change_context_c()
    RETURNS trigger
    LANGUAGE c
    AS '$libdir/temporal_versioning', 'temporal_emit_change_context';
    REVOKE ALL ON FUNCTION temporal_versioning._capture_c() FROM PUBLIC;
    REVOKE ALL ON FUNCTION temporal_versioning._emit_change_context_c() FROM PUBLIC;
    COMMENT ON FUNCTION temporal_versioning._emit_change_context_c() IS
        'pg-temporal (internal): the C form of _emit_change_context(), the trigger putting a transaction''s SET LOCAL context into the WAL';
    REVOKE ALL ON FUNCTION temporal_versioning._capture_library_version() FROM PUBLIC;
    COMMENT ON FUNCTION temporal_versioning._capture_c() IS
        'pg-temporal (internal): the C capture trigger function of versioned tables';
    COMMENT ON FUNCTION temporal_versioning._capture_c_statements() IS
        'pg-temporal: the statements this session captured in C, and handed to the tables'' PL/pgSQL capture functions';
    COMMENT ON FUNCTION temporal_versioning._capture_library_version() IS
        'pg-temporal (internal): the version of the extension''s C library';
EXCEPTION WHEN undefined_file OR undefined_function THEN
    RAISE WARNING 'the C capture library of temporal_versioning is not installed, or is another version''s: capture stays in PL/pgSQL'
        USING HINT = 'Build and install it with make install in extension/.';
END
$do$;
