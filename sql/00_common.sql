-- Shared pieces: the installed version, lookups of versioned tables, and the
-- schema-change journal. Every function here is replaced on each install.

CREATE OR REPLACE FUNCTION temporal_versioning.version()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT '0.1.0' $$;

COMMENT ON FUNCTION temporal_versioning.version() IS
    'pg-temporal: the version of the SQL installed in this database';

-- The versioned_tables row of a live table, or of a dropped one by its last
-- known name. Raises undefined_table in PostgreSQL's own words when there is
-- no such table, and a clear error when the table is not versioned.
CREATE OR REPLACE FUNCTION temporal_versioning.find_versioned_table(schema_name text, table_name text)
RETURNS temporal_versioning.versioned_tables
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    source_oid oid;
    found temporal_versioning.versioned_tables;
BEGIN
    SELECT c.oid INTO source_oid
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = find_versioned_table.schema_name AND c.relname = find_versioned_table.table_name;

    IF source_oid IS NOT NULL THEN
        SELECT * INTO found FROM temporal_versioning.versioned_tables v WHERE v.table_oid = source_oid;
    ELSE
        SELECT * INTO found FROM temporal_versioning.versioned_tables v
        WHERE v.table_oid IS NULL
          AND v.schema_name = find_versioned_table.schema_name
          AND v.table_name = find_versioned_table.table_name
        ORDER BY v.id DESC LIMIT 1;
        IF found.id IS NULL THEN
            RAISE EXCEPTION 'relation "%.%" does not exist', schema_name, table_name
                USING ERRCODE = 'undefined_table';
        END IF;
    END IF;

    IF found.id IS NULL THEN
        RAISE EXCEPTION 'table "%.%" is not versioned', schema_name, table_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Turn versioning on first: temporal enable %s',
                                format('%I.%I', schema_name, table_name));
    END IF;
    RETURN found;
END
$$;

COMMENT ON FUNCTION temporal_versioning.find_versioned_table(text, text) IS
    'pg-temporal: the catalog row of a versioned table (live or dropped), or a clear error';

CREATE OR REPLACE FUNCTION temporal_versioning.record_schema_change(
    versioned_table_id integer, command_tag text, change text, details jsonb DEFAULT '{}')
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO temporal_versioning.schema_changes (versioned_table_id, command_tag, change, details, statement)
    VALUES (versioned_table_id, command_tag, change, details, current_query());
$$;

COMMENT ON FUNCTION temporal_versioning.record_schema_change(integer, text, text, jsonb) IS
    'pg-temporal: journal one schema change (or enable/disable) of a versioned table';

-- The type a history column gets for a source column: the same type, except
-- that a domain becomes its base type, since history columns hold NULLs (the
-- non-key columns of an INSERT) that a NOT NULL or CHECK domain would refuse.
CREATE OR REPLACE FUNCTION temporal_versioning.history_column_type(type_oid oid, type_modifier integer)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t pg_type;
BEGIN
    SELECT * INTO STRICT t FROM pg_type WHERE oid = type_oid;
    WHILE t.typtype = 'd' LOOP
        type_modifier := t.typtypmod;
        SELECT * INTO STRICT t FROM pg_type WHERE oid = t.typbasetype;
    END LOOP;
    RETURN format_type(t.oid, type_modifier);
END
$$;

COMMENT ON FUNCTION temporal_versioning.history_column_type(oid, integer) IS
    'pg-temporal: the type of the history column that keeps a source column (domains become their base type)';

-- SQL testing whether two values of a column differ in a way a reader could
-- see: types whose equality is byte equality compare directly (text types
-- under COLLATE "C", so a case-insensitive collation cannot hide a change);
-- every other type by its printed form, so that 1.0 -> 1.00 or a reformatted
-- json counts. Capture and revert use the same test.
CREATE OR REPLACE FUNCTION temporal_versioning.differs_sql(left_value text, right_value text, value_type text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN to_regtype(value_type) IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'oid'::regtype,
                                        'bool'::regtype, 'date'::regtype, 'timestamp'::regtype,
                                        'timestamptz'::regtype, 'time'::regtype, 'uuid'::regtype,
                                        'bytea'::regtype, '"char"'::regtype)
        THEN format('%s IS DISTINCT FROM %s', left_value, right_value)
        WHEN to_regtype(value_type) IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'name'::regtype)
        THEN format('%s COLLATE "C" IS DISTINCT FROM %s COLLATE "C"', left_value, right_value)
        ELSE format('%s::text IS DISTINCT FROM %s::text', left_value, right_value)
    END;
$$;

COMMENT ON FUNCTION temporal_versioning.differs_sql(text, text, text) IS
    'pg-temporal: SQL testing whether two values of a column differ visibly';
