"""bench/mcp: a query_temporal_data call (limit 100) through `temporal mcp`,
against the same question asked with `temporal as-of --limit 100 --format
json` through the CLI. The MCP server runs once, as an assistant's client
keeps it: every call goes over its one connection. The client is the official
MCP Python SDK; its own time counts, as it would for an assistant."""
import asyncio
import os
import statistics
import subprocess
import time

from benchlib import TEMPORAL, log, print_table, psql

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
CALLS = int(os.environ.get("BENCH_CALLS", "30"))
DB = os.environ.get("BENCH_DB", "bench_mcp")


async def mcp_calls(instant):
    params = StdioServerParameters(command=TEMPORAL, args=["mcp", "--db", f"dbname={DB}"], env=dict(os.environ))
    times = []
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            arguments = {"schema_name": "public", "table_name": "items", "timestamp": instant, "limit": 100}
            started = time.monotonic()
            first = await session.call_tool("query_temporal_data", arguments)
            connect_and_call = time.monotonic() - started
            assert not first.is_error, first
            assert first.structured_content["row_count"] == 100
            for _ in range(CALLS):
                started = time.monotonic()
                result = await session.call_tool("query_temporal_data", arguments)
                times.append(time.monotonic() - started)
                assert result.structured_content["row_count"] == 100
    return connect_and_call, times


def main():
    psql(f"DROP DATABASE IF EXISTS {DB}", "postgres")
    psql(f"CREATE DATABASE {DB}", "postgres")
    version = psql("SHOW server_version", DB)
    subprocess.run([TEMPORAL, "install", "--db", f"dbname={DB}"], check=True, capture_output=True)
    psql(f"""CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(12,2), updated_at timestamptz);
             INSERT INTO items SELECT g, 'item ' || g, g / 7.0, now() FROM generate_series(1, {ROWS}) g""", DB)
    subprocess.run([TEMPORAL, "enable", "items", "--db", f"dbname={DB}"], check=True, capture_output=True)
    instant = psql("SELECT now()", DB)
    time.sleep(0.1)
    psql("UPDATE items SET price = price + 1 WHERE id % 100 = 0", DB)
    psql("VACUUM ANALYZE items", DB)

    log(f"{CALLS} runs of temporal as-of --limit 100")
    cli = []
    for _ in range(CALLS):
        started = time.monotonic()
        subprocess.run([TEMPORAL, "as-of", "items", "--at", instant, "--limit", "100", "--format", "json", "--db", f"dbname={DB}"],
                       check=True, capture_output=True)
        cli.append(time.monotonic() - started)
    log(f"{CALLS} calls of query_temporal_data in one MCP session")
    first, calls = asyncio.run(mcp_calls(instant))
    cli_median, mcp_median = statistics.median(cli), statistics.median(calls)
    print_table(
        f"bench/mcp: PostgreSQL {version}, {ROWS:,} rows, limit 100, median of {CALLS}",
        ["measure", "temporal mcp", "temporal as-of (CLI)", "ratio", "target"],
        [["query_temporal_data, ms per call", f"{mcp_median * 1000:.1f}", f"{cli_median * 1000:.1f}",
          f"{mcp_median / cli_median:.2f}x time", "<= 2x"]],
        notes=[f"The session's first call, which also connects, took {first * 1000:.1f} ms. "
               "The CLI's time includes starting the process and connecting, as a user running it pays."])
    psql(f"DROP DATABASE {DB}", "postgres")


if __name__ == "__main__":
    main()
