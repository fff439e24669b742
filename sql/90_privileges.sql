-- Nobody but the installing role (and superusers) may read or write history,
-- or call the functions that change what is versioned. Application roles keep
-- writing their tables: the capture functions run as SECURITY DEFINER.
-- To let a role read history: GRANT SELECT ON ALL TABLES IN SCHEMA temporal_versioning TO r;
REVOKE ALL ON SCHEMA temporal_versioning FROM PUBLIC;   -- USAGE is granted back below, for set_change_context
REVOKE ALL ON ALL TABLES IN SCHEMA temporal_versioning FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA temporal_versioning FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA temporal_versioning FROM PUBLIC;
-- (Capture functions, generated later, revoke PUBLIC's EXECUTE themselves.)

-- Any role may label its own transactions.
GRANT USAGE ON SCHEMA temporal_versioning TO PUBLIC;
GRANT EXECUTE ON FUNCTION temporal_versioning.set_change_context(text, text) TO PUBLIC;
-- The capture triggers run with the writer's rights until the capture
-- function itself, which is SECURITY DEFINER and revokes PUBLIC's EXECUTE.
GRANT EXECUTE ON FUNCTION temporal_versioning._emit_change_context() TO PUBLIC;
GRANT EXECUTE ON FUNCTION temporal_versioning._emit_context_message(text, text) TO PUBLIC;
