"""Drives `temporal mcp` with the official MCP Python SDK, as an assistant's
client would, and checks what it answers. Prints one line per failed check and
"N checks, M failed"; exits 1 when any failed.

  mcp_client.py TEMPORAL_BINARY CONNINFO restricted|unrestricted T0

The database holds public.items (id int primary key, v text), versioned, with
rows 1 'a' and 2 'b' at T0, then id 1 set to 'z', id 2 deleted, id 3 'c' added.
psycopg (in the same venv) reads the table to see that nothing changed behind
a refusal, and changes it to make a preview stale.
"""
import asyncio
import json
import os
import subprocess
import sys
import time

import psycopg
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

BINARY, CONNINFO, MODE, T0 = sys.argv[1:5]
WRITE_TOOLS = {"enable_temporal_versioning", "disable_temporal_versioning"}
ALL_TOOLS = {
    "enable_temporal_versioning", "disable_temporal_versioning", "list_temporal_tables", "get_temporal_status",
    "query_temporal_data", "get_change_history", "get_row_history", "compare_temporal_data",
    "revert_table_data", "revert_changeset", "get_stream_status",
}
checks = 0
failures = []


def check(condition, what):
    global checks
    checks += 1
    if not condition:
        failures.append(what)
        print("FAILED:", what, flush=True)


def table_state():
    with psycopg.connect(CONNINFO) as connection:
        exists = connection.execute("SELECT to_regclass('public.items') IS NOT NULL").fetchone()[0]
        rows = connection.execute("SELECT id, v FROM public.items ORDER BY id").fetchall() if exists else None
        versioned = connection.execute(
            "SELECT count(*) FROM temporal_versioning.versioned_tables WHERE table_name = 'items' AND enabled").fetchone()[0]
        return exists, rows, versioned


def text(result):
    return result.content[0].text if result.content else ""


async def call(session, name, arguments):
    return await session.call_tool(name, arguments)


async def main():
    params = StdioServerParameters(command=BINARY, args=["mcp", "--db", CONNINFO, "--mode", MODE], env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            info = await session.initialize()
            check(info.server_info.name == "pg-temporal", f"server name {info.server_info.name}")
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            expected = ALL_TOOLS - WRITE_TOOLS if MODE == "restricted" else ALL_TOOLS
            check(set(tools) == expected, f"{MODE} offers {sorted(tools)}")
            for tool in tools.values():
                schema = tool.input_schema
                check(schema.get("type") == "object" and "properties" in schema, f"{tool.name} has an object schema")
                check(schema.get("additionalProperties") is False, f"{tool.name} refuses unknown arguments")
                check(tool.annotations is not None and tool.annotations.read_only_hint is not None,
                      f"{tool.name} has readOnlyHint")
                check(bool(tool.description), f"{tool.name} has a description")
            for name in ("revert_table_data", "revert_changeset"):
                check("preview" in tools[name].description.lower() and "plan_id" in tools[name].description,
                      f"{name} says to preview first")
                check(tools[name].annotations.destructive_hint is True, f"{name} is marked destructive")
            check(tools["query_temporal_data"].input_schema["properties"]["limit"]["default"] == 100, "limit defaults to 100")
            check(tools["get_temporal_status"].annotations.read_only_hint is True, "status is read-only")

            before = table_state()

            # Every read tool answers, structured.
            key = {"schema_name": "public", "table_name": "items"}
            reads = {
                "list_temporal_tables": {},
                "get_temporal_status": key,
                "query_temporal_data": {**key, "timestamp": T0},
                "get_change_history": {**key, "start_time": "2000-01-01", "end_time": "2100-01-01"},
                "get_row_history": {**key, "primary_key_column": "id", "primary_key_value": "1"},
                "compare_temporal_data": {**key, "timestamp1": T0, "timestamp2": "now"},
                "get_stream_status": {},
                "revert_table_data": {**key, "timestamp": T0},
            }
            results = {}
            for name, arguments in reads.items():
                result = await call(session, name, arguments)
                results[name] = result
                check(not result.is_error, f"{name} answers: {text(result)[:300]}")
                check(result.structured_content is not None, f"{name} gives structured content")
            # The changeset of the DELETE, from the change log, previewed.
            deletes = [row for row in (results["get_change_history"].structured_content or {}).get("rows", [])
                       if row.get("change_type") == "DELETE"]
            check(len(deletes) == 1, f"one DELETE in the log: {deletes}")
            undo_delete = await call(session, "revert_changeset", {"changeset_id": str(deletes[0]["changeset"] or deletes[0]["tx_id"]) if deletes else "x"})
            check(not undo_delete.is_error and (undo_delete.structured_content or {}).get("inserts") == 1,
                  f"revert_changeset previews the DELETE's undoing: {text(undo_delete)[:300]}")
            missing = await call(session, "revert_changeset", {"changeset_id": "no such changeset"})
            check(missing.is_error and "no changes found" in text(missing), f"an unknown changeset: {text(missing)[:200]}")
            as_of = results["query_temporal_data"].structured_content or {"rows": [], "truncated": None}
            check(sorted((row["id"], row["v"]) for row in as_of["rows"]) == [(1, "a"), (2, "b")], f"as of T0: {as_of}")
            check(as_of["truncated"] is False, "two rows are not truncated")
            history = results["get_change_history"].structured_content or {}
            check(history.get("row_count", 0) >= 5, f"change history: {history['row_count']} changes")
            diff = results["compare_temporal_data"].structured_content or {}
            check(diff.get("row_count") == 3, f"compare: {diff}")
            differences = diff.get("differences", {})
            check((len(differences.get("added", [])), len(differences.get("deleted", [])), len(differences.get("modified", []))) == (1, 1, 1)
                  and differences["modified"][0]["changed"] == ["v"], f"compare groups as temporal diff --format json: {differences}")
            plan = results["revert_table_data"].structured_content or {}
            check(plan["applied"] is False and (plan["inserts"], plan["updates"], plan["deletes"]) == (1, 1, 1) and plan["plan_id"],
                  f"revert preview: {plan}")
            limited = await call(session, "query_temporal_data", {**key, "timestamp": T0, "limit": 1})
            check(limited.structured_content["row_count"] == 1 and limited.structured_content["truncated"] is True,
                  "a limit cuts the rows, and says so")
            operation = await call(session, "get_change_history", {**key, "start_time": "2000-01-01", "end_time": "2100-01-01",
                                                                   "operation": "DELETE"})
            check(all(row["change_type"] == "DELETE" for row in operation.structured_content["rows"]), "operation filter")

            # Bad input: clear tool errors in PostgreSQL's words, nothing changed.
            bad = [
                ("get_temporal_status", {"schema_name": "public", "table_name": "no_such_table"}, "does not exist"),
                ("query_temporal_data", {**key, "timestamp": "not a time"}, "invalid input syntax"),
                ("query_temporal_data", {**key}, "needs timestamp"),
                ("query_temporal_data", {**key, "timestamp": T0, "sql": "SELECT 1"}, "has no parameter sql"),
                ("query_temporal_data", {**key, "timestamp": T0, "limit": "ten"}, "limit must be a integer"),
                ("no_such_tool", {}, "unknown tool"),
                # Injection through every kind of argument: quotes, semicolons, comments, a writable CTE.
                ("query_temporal_data", {**key, "timestamp": "2026-01-01'; DROP TABLE public.items; --"}, "invalid input syntax"),
                ("query_temporal_data", {**key, "timestamp": "now() WITH x AS (DELETE FROM public.items RETURNING 1) SELECT 1"}, "invalid input syntax"),
                ("get_row_history", {**key, "primary_key_column": "id", "primary_key_value": "1; DELETE FROM public.items"}, None),
                ("get_row_history", {**key, "primary_key_column": "id) OR true --", "primary_key_value": "1"}, None),
                ("get_row_history", {**key, "primary_key_column": "id", "primary_key_value": "1' OR '1'='1"}, None),
                ("get_temporal_status", {"schema_name": "public\"; DROP TABLE public.items; --", "table_name": "items"}, None),
                ("get_temporal_status", {"schema_name": "public", "table_name": "items\" CASCADE; --"}, None),
                ("get_temporal_status", {"schema_name": "public", "table_name": "public.items"}, None),
                ("compare_temporal_data", {**key, "timestamp1": T0, "timestamp2": "x'::timestamptz); DELETE FROM public.items; --"}, "invalid input syntax"),
                ("revert_changeset", {"changeset_id": "'); DELETE FROM public.items; --"}, "no changes found"),
            ]
            for name, arguments, words in bad:
                result = await call(session, name, arguments)
                if words is not None:
                    check(result.is_error and words in text(result), f"{name} {arguments}: {text(result)[:200]}")
                else:
                    # Either an error or an empty answer; never an effect.
                    content = result.structured_content or {}
                    check(result.is_error or content.get("row_count", 0) == 0 or content.get("inserts", 0) == 0,
                          f"{name} {arguments} found something: {text(result)[:200]}")
                check(table_state() == before, f"{name} {arguments} changed nothing")

            if MODE == "restricted":
                for name, arguments in [
                    ("enable_temporal_versioning", {"schema_name": "public", "table_name": "items"}),
                    ("disable_temporal_versioning", {**key, "drop_history": True}),
                    ("revert_table_data", {**key, "timestamp": T0, "dry_run": False, "plan_id": plan["plan_id"]}),
                    ("revert_changeset", {"changeset_id": "x", "dry_run": False, "plan_id": "x"}),
                ]:
                    result = await call(session, name, arguments)
                    check(result.is_error and "UNRESTRICTED" in text(result), f"restricted refuses {name}: {text(result)[:200]}")
                    check(table_state() == before, f"restricted {name} changed nothing")
            else:
                # Preview first, enforced: no plan_id, a wrong one, a stale one.
                result = await call(session, "revert_table_data", {**key, "timestamp": T0, "dry_run": False})
                check(result.is_error and "plan_id" in text(result), f"apply without a plan_id: {text(result)[:200]}")
                result = await call(session, "revert_table_data", {**key, "timestamp": T0, "dry_run": False, "plan_id": "0" * 32})
                check(result.is_error and "changed since the preview" in text(result), f"a wrong plan_id: {text(result)[:200]}")
                check(table_state() == before, "a refused apply changed nothing")
                with psycopg.connect(CONNINFO, autocommit=True) as connection:
                    connection.execute("UPDATE public.items SET v = 'moved' WHERE id = 3")
                stale = table_state()
                result = await call(session, "revert_table_data", {**key, "timestamp": T0, "dry_run": False, "plan_id": plan["plan_id"]})
                check(result.is_error and "changed since the preview" in text(result), f"a stale plan_id: {text(result)[:200]}")
                check(table_state() == stale, "a stale apply changed nothing")
                fresh = (await call(session, "revert_table_data", {**key, "timestamp": T0})).structured_content
                done = await call(session, "revert_table_data", {**key, "timestamp": T0, "dry_run": False, "plan_id": fresh["plan_id"]})
                check(not done.is_error and done.structured_content["applied"] is True, f"apply the fresh plan: {text(done)[:300]}")
                check(table_state()[1] == [(1, "a"), (2, "b")], f"reverted to T0: {table_state()}")
                changeset = done.structured_content.get("changeset")
                check(bool(changeset), "the revert has a changeset of its own")
                undo = (await call(session, "revert_changeset", {"changeset_id": changeset})).structured_content
                check(undo["applied"] is False and undo["rows"], f"the revert's changeset can be previewed: {undo}")
                applied = await call(session, "revert_changeset", {"changeset_id": changeset, "dry_run": False, "plan_id": undo["plan_id"]})
                check(not applied.is_error, f"and undone: {text(applied)[:200]}")
                check(table_state()[1] == stale[1], f"undone: {table_state()}")
                # enable and disable, on a table of their own.
                with psycopg.connect(CONNINFO, autocommit=True) as connection:
                    connection.execute("CREATE TABLE public.extra (id int PRIMARY KEY)")
                extra = {"schema_name": "public", "table_name": "extra"}
                result = await call(session, "enable_temporal_versioning", {**extra, "history_table_suffix": "_versions"})
                check(not result.is_error, f"enable: {text(result)[:200]}")
                status = (await call(session, "get_temporal_status", extra)).structured_content
                check("extra_versions" in json.dumps(status), f"status after enable: {status}")
                result = await call(session, "disable_temporal_versioning", {**extra, "drop_history": True})
                check(not result.is_error, f"disable: {text(result)[:200]}")

            # A lost connection is made again at the next call.
            with psycopg.connect(CONNINFO, autocommit=True) as connection:
                killed = connection.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'temporal mcp'").fetchone()[0]
            check(killed == 1, f"one server connection ({killed})")
            result = await call(session, "list_temporal_tables", {})
            check(not result.is_error, f"after the connection was lost: {text(result)[:200]}")


def pipelined():
    """Requests written all at once, stdin closed right after: every one is answered."""
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "pipe", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "list_temporal_tables", "arguments": {}}},
        # Ids the SDK does not answer must not keep the server waiting at the end.
        {"jsonrpc": "2.0", "id": None, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1.5, "method": "ping"},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call",
         "params": {"name": "query_temporal_data", "arguments": {"schema_name": "public", "table_name": "items",
                                                                 "timestamp": T0, "limit": 1e300}}},
    ]
    started = time.monotonic()
    process = subprocess.run([BINARY, "mcp", "--db", CONNINFO, "--mode", MODE],
                             input="".join(json.dumps(r) + "\n" for r in requests), capture_output=True, text=True, timeout=120)
    answers = {}
    for line in process.stdout.splitlines():
        if line.strip():
            message = json.loads(line)
            answers[message.get("id")] = message
    check({1, 2, 3, 4} <= set(answers), f"pipelined requests answered: {sorted(str(a) for a in answers)}; stderr {process.stderr[-300:]}")
    check(time.monotonic() - started < 30, "the server ends soon after stdin closes")
    check(process.returncode == 0, f"and exits 0: {process.returncode} {process.stderr[-300:]}")
    huge = answers.get(4, {}).get("result", {})
    check(huge.get("isError") is True and "limit must be a integer" in json.dumps(huge), f"a limit of 1e300 is refused: {huge}")


asyncio.run(main())
pipelined()
print(f"{checks} checks, {len(failures)} failed")
sys.exit(1 if failures else 0)
