"""bench/capture-cost: where the time of capturing a single-row UPDATE goes.

Measures the backend's CPU time (utime + stime from /proc/self/stat, read by
the backend itself) per single-row UPDATE (a prepared statement, as pgbench -M
prepared runs it in bench/capture), each its own transaction, with
synchronous_commit off so that WAL flushes do not blur it, for:

  no versioning        the same table without triggers
  empty trigger        the capture triggers fire, but the generated function
                       only returns (no SECURITY DEFINER, no SET clauses)
  + definer, SET       ... as generated: SECURITY DEFINER, pinned search_path, jit off
  + history row        ... and the history INSERT (no transactions row)
  + transactions row   the generated function as shipped (history row + transactions row)
  pg-temporal          ... and the BEFORE statement trigger that hands SET LOCAL
                       context to the change stream (off in every variant above)

The variants are copies of the generated function with parts taken out, for
measuring only: they are not correct capture functions (the first three record
nothing). Variants run round-robin; each figure is the median of REPEAT runs
of STATEMENTS statements. CPU time, not wall time: this machine's wall time
varies by +-15% between runs, its CPU time per statement by a few percent.
"""
import os
import re

from benchlib import log, median, print_table, psql, psql_script, temporal
from capture import COLUMNS, rows_sql

ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "15"))
STATEMENTS = int(os.environ.get("BENCH_STATEMENTS", "10000"))
DB = os.environ.get("BENCH_DB", "bench_capture_cost")
CAPTURE = "temporal_versioning.bench_cost_history_capture"


def function_variants():
    """The generated capture function's definition, and copies with parts taken out."""
    shipped = psql(f"SELECT pg_get_functiondef('{CAPTURE}'::regproc)", DB)
    head, body = shipped.split("AS $function$", 1)
    plain_head = re.sub(r"^ (SECURITY DEFINER|SET .*)\n", "", head, flags=re.MULTILINE)
    empty = "AS $function$\nBEGIN\n    RETURN NULL;\nEND\n$function$"
    transactions = re.search(r"\n    IF captured > 0 THEN\n.*?\n    END IF;\n", body, flags=re.DOTALL)
    if head == plain_head or transactions is None:
        raise RuntimeError("the generated capture function no longer has the expected shape; update this benchmark")
    without_transactions = body[:transactions.start()] + "\n" + body[transactions.end():]
    return {
        "empty trigger": plain_head + empty,
        "+ definer, SET": head + empty,
        "+ history row": head + "AS $function$" + without_transactions,
        "+ transactions row": shipped,
        "pg-temporal": shipped,
    }


def cpu_per_statement(table):
    """Backend CPU microseconds per single-row UPDATE, each in its own transaction."""
    probe = "SELECT 'cpu ' || pg_read_file('/proc/self/stat');\n"
    prepare = f"PREPARE single_row(bigint) AS UPDATE {table} SET balance = balance + 1, updated_at = now() WHERE id = $1;\n"
    updates = "".join(f"EXECUTE single_row({1 + (i * 7919) % ROWS});\n" for i in range(STATEMENTS))
    output = psql_script("SET synchronous_commit = off;\n" + prepare + probe + updates + probe, DB)
    # /proc/PID/stat: "pid (comm) state ...", utime and stime are fields 14 and 15.
    start, end = [sum(int(f) for f in line.rsplit(") ", 1)[1].split()[11:13])
                  for line in output.splitlines() if line.startswith("cpu ")]
    return (end - start) / os.sysconf("SC_CLK_TCK") * 1e6 / STATEMENTS


def main():
    psql(f"DROP DATABASE IF EXISTS {DB}", "postgres")
    psql(f"CREATE DATABASE {DB}", "postgres")
    temporal("install", db=DB)
    for table in ("bench_plain", "bench_cost"):
        psql(f"CREATE TABLE {table} ({COLUMNS}) WITH (autovacuum_enabled = off);"
             f"INSERT INTO {table} {rows_sql(1, ROWS)}", DB)
    temporal("enable", "public.bench_cost", db=DB)
    variants = function_variants()
    version = psql("SHOW server_version", DB)

    results = {}
    for run in range(REPEAT):
        for name in ["no versioning", *variants]:
            log(f"run {run + 1}/{REPEAT}: {name}")
            if name != "no versioning":
                psql(variants[name], DB)
                context = "ENABLE ALWAYS" if name == "pg-temporal" else "DISABLE"
                psql(f"ALTER TABLE bench_cost {context} TRIGGER temporal_capture_context", DB)
            table = "bench_plain" if name == "no versioning" else "bench_cost"
            psql(f"VACUUM {table}", DB)
            results.setdefault(name, []).append(cpu_per_statement(table))
    psql(variants["pg-temporal"], DB)
    psql("ALTER TABLE bench_cost ENABLE ALWAYS TRIGGER temporal_capture_context", DB)

    rows, previous = [], None
    for name in ["no versioning", *variants]:
        value = median(results[name])
        step = "" if previous is None else f"{value - previous:+.1f}"
        rows.append([name, f"{value:.1f}", step, " ".join(f"{v:.0f}" for v in sorted(results[name]))])
        previous = value
    base, full = median(results["no versioning"]), median(results["pg-temporal"])
    print_table(
        f"bench/capture-cost: PostgreSQL {version}, single-row UPDATE of a {ROWS:,}-row table, "
        f"backend CPU per statement (us), median of {REPEAT} runs of {STATEMENTS:,}",
        ["variant", "CPU us / statement", "step", "all runs (sorted)"], rows,
        notes=[f"Capture adds {full - base:.1f} us of backend CPU per single-row UPDATE "
               f"({full / base:.2f}x the unversioned statement's CPU).",
               "The intermediate variants are measuring copies, not correct capture functions."])


if __name__ == "__main__":
    main()
