-- Shared pieces: the installed version, lookups of versioned tables, and the
-- schema-change journal. Every function here is replaced on each install.

CREATE OR REPLACE FUNCTION temporal_versioning.version()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT '0.4.0' $$;

COMMENT ON FUNCTION temporal_versioning.version() IS
    'pg-temporal: the version of the SQL installed in this database';

-- Functions of earlier releases that this one replaced or renamed.
DROP FUNCTION IF EXISTS temporal_versioning.differs_sql(text, text, text);
DROP FUNCTION IF EXISTS temporal_versioning.differs_sql(text[], text[], text[]);
DROP FUNCTION IF EXISTS temporal_versioning.jsonb_object_sql(text, name[], name[]);
DROP FUNCTION IF EXISTS temporal_versioning.as_of_sql(integer);
DROP FUNCTION IF EXISTS temporal_versioning.prepare_as_of(text, text, timestamptz);
DROP FUNCTION IF EXISTS temporal_versioning.apply_revert_plan(temporal_versioning.versioned_tables, regclass, text);
DROP FUNCTION IF EXISTS temporal_versioning.run_revert(integer[], regclass[], text);
DROP FUNCTION IF EXISTS temporal_versioning.revert_transactions(bigint[], text, boolean, text, text);

-- The name of a versioned table's capture trigger function, from its
-- history table's: the one place that builds it.
CREATE OR REPLACE FUNCTION temporal_versioning._capture_function_name(history_table name)
RETURNS name
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT (history_table || '_capture')::name;
$$;

COMMENT ON FUNCTION temporal_versioning._capture_function_name(name) IS
    'pg-temporal (internal): the name of the capture trigger function of a history table';

-- The history table of a versioned table.
CREATE OR REPLACE FUNCTION temporal_versioning._history_relation(vt temporal_versioning.versioned_tables)
RETURNS regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('temporal_versioning.%I', vt.history_table)::regclass;
$$;

COMMENT ON FUNCTION temporal_versioning._history_relation(temporal_versioning.versioned_tables) IS
    'pg-temporal (internal): the history table of a versioned table';

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

-- Whether every type a value of this type is made of (itself, a domain's
-- base, an array's element, a composite's fields, a range's subtype) is owned
-- by a superuser. Only the owner of a type may CREATE CAST from or to it, so
-- for such a type no role but a superuser can have defined a cast, operator
-- or output a conversion could run. Functions that run with raised rights, or
-- on a DBA's behalf, never convert a value of any other type through a cast.
CREATE OR REPLACE FUNCTION temporal_versioning._type_is_trusted(type_oid oid)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pending oid[] := ARRAY[type_oid];
    seen oid[] := '{}';
    current oid;
    t pg_type;
BEGIN
    WHILE cardinality(pending) > 0 LOOP
        current := pending[1];
        pending := pending[2:];
        CONTINUE WHEN current = ANY (seen);
        seen := seen || current;
        SELECT * INTO t FROM pg_type WHERE oid = current;
        IF t.oid IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = t.typowner AND r.rolsuper) THEN
            RETURN false;
        END IF;
        pending := pending
            || array_remove(ARRAY[t.typbasetype, t.typelem], 0::oid)
            || ARRAY(SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = current)
            || ARRAY(SELECT r.rngtypid FROM pg_range r WHERE r.rngmultitypid = current)
            || ARRAY(SELECT a.atttypid FROM pg_attribute a
                     WHERE t.typrelid <> 0 AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped);
    END LOOP;
    RETURN true;
END
$$;

COMMENT ON FUNCTION temporal_versioning._type_is_trusted(oid) IS
    'pg-temporal (internal): whether a type and every type inside it belong to superusers, so no cast on it can be a table owner''s code';

-- The base type of a domain (of a domain ...), or the type itself.
CREATE OR REPLACE FUNCTION temporal_versioning._base_type(type_oid oid)
RETURNS oid
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE chain(oid, base) AS (
        SELECT t.oid, t.typbasetype FROM pg_type t WHERE t.oid = type_oid
        UNION ALL
        SELECT t.oid, t.typbasetype FROM chain c JOIN pg_type t ON t.oid = c.base WHERE c.base <> 0)
    SELECT oid FROM chain WHERE base = 0;
$$;

COMMENT ON FUNCTION temporal_versioning._base_type(oid) IS
    'pg-temporal (internal): the base type of a domain, or the type itself';

-- SQL for a value as jsonb. to_jsonb() calls a cast to json when the value's
-- type has one, and the owner of a type may create such a cast: a value of a
-- type that is not trusted (see _type_is_trusted) becomes the JSON string of
-- its text, printed by the type's output function (format's %s), which only a
-- superuser can define.
CREATE OR REPLACE FUNCTION temporal_versioning._jsonb_value_sql(value_sql text, type_oid oid)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    -- to_jsonb reads a domain as its base type (a cast on a domain is never
    -- used), so the base type is the one to trust.
    SELECT CASE WHEN temporal_versioning._type_is_trusted(temporal_versioning._base_type(type_oid)) THEN value_sql
                ELSE format('CASE WHEN pg_catalog.num_nulls(%1$s) OPERATOR(pg_catalog.=) 0'
                            ' THEN pg_catalog.to_jsonb(pg_catalog.format(''%%s'', %1$s)) END', value_sql) END;
$$;

COMMENT ON FUNCTION temporal_versioning._jsonb_value_sql(text, oid) IS
    'pg-temporal (internal): SQL turning a value into jsonb without running a cast a table owner could define';

-- SQL testing whether rows differ in a way a reader could see, given the
-- values of each side and their (history) types. Types whose equality is
-- byte equality compare with their built-in operator (text types under
-- COLLATE "C", so a case-insensitive collation cannot hide a change); every
-- other column by the bytes of its value, through one record image
-- comparison (record_image_ne, the *<> operator), so that 1.0 -> 1.00 or a reformatted json
-- counts, and no cast, operator or output function of a table owner's type is
-- ever run (the capture function runs with its owner's rights). Capture and
-- revert use the same test.
CREATE OR REPLACE FUNCTION temporal_versioning.differs_sql(left_values text[], right_values text[], value_types text[],
                                                           relabel boolean DEFAULT false)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH columns AS (
        SELECT i, left_values[i] AS l, right_values[i] AS r, to_regtype(value_types[i]) AS type,
               value_types[i] AS type_name
        FROM generate_subscripts(value_types, 1) i),
    tests AS (
        SELECT i, format('%s IS DISTINCT FROM %s', l, r) AS test FROM columns
        WHERE type IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'oid'::regtype,
                       'bool'::regtype, 'date'::regtype, 'timestamp'::regtype,
                       'timestamptz'::regtype, 'time'::regtype, 'uuid'::regtype,
                       'bytea'::regtype, '"char"'::regtype)
        UNION ALL
        SELECT i, format('%s COLLATE "C" IS DISTINCT FROM %s COLLATE "C"', l, r) FROM columns
        WHERE type IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'name'::regtype)
        UNION ALL
        SELECT min(i), format('pg_catalog.record_image_ne(ROW(%s), ROW(%s))',
                              -- Both sides must have the same types: with `relabel` (a live
                              -- column of a domain against its history column), both are cast to
                              -- the history type, typmod and all, which only relabels the domain.
                              string_agg(CASE WHEN relabel THEN format('%s::%s', l, type_name) ELSE l END, ', ' ORDER BY i),
                              string_agg(CASE WHEN relabel THEN format('%s::%s', r, type_name) ELSE r END, ', ' ORDER BY i))
        FROM columns
        WHERE type NOT IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'oid'::regtype,
                           'bool'::regtype, 'date'::regtype, 'timestamp'::regtype,
                           'timestamptz'::regtype, 'time'::regtype, 'uuid'::regtype,
                           'bytea'::regtype, '"char"'::regtype,
                           'text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'name'::regtype)
        HAVING count(*) > 0)
    SELECT coalesce(string_agg(test, ' OR ' ORDER BY i), 'false') FROM tests;
$$;

COMMENT ON FUNCTION temporal_versioning.differs_sql(text[], text[], text[], boolean) IS
    'pg-temporal: SQL testing whether two rows differ visibly, without running any cast or operator a table owner defined';
