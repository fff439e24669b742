"""bench/export: what `temporal export` costs against the tools a DBA would
script it with, on one server.

- one table of ROWS rows to JSON lines: `temporal export --format jsonl
  --jobs 1` against `psql -c "COPY (SELECT row_to_json(t) FROM t) TO STDOUT"
  > file` (rows/s);
- two such tables: `--jobs 2` against the two psql COPYs one after the other;
- `export --at T` with CHANGES single-row changes after T (the table is
  versioned) against `export` of now;
- `export compare` of the two exports before and after those changes.
Medians of REPEAT runs, variants round-robin; every file is fsynced by
temporal export, so psql's file is synced too (sync FILE) before the clock stops.
"""
import os
import shutil
import subprocess
import tempfile
import time

from benchlib import TEMPORAL, log, median, print_table, psql, temporal

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
CHANGES = int(os.environ.get("BENCH_CHANGES", "1000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
DB = "bench_export"


def load(table):
    psql(f"""DROP TABLE IF EXISTS {table};
             CREATE TABLE {table} (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, city text,
                                   balance numeric(12,2) NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL);
             INSERT INTO {table} SELECT g, 'Customer ' || g, 'customer' || g || '@example.com',
                    (ARRAY['Berlin','Paris','Lisbon','Oslo'])[1 + g % 4], (g % 10000) / 3.0, 'active',
                    '2026-01-01'::timestamptz + g * interval '1 second'
             FROM generate_series(1, {ROWS}) g;""", DB)


def timed_run(command, **kwargs):
    began = time.time()
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {result.stderr.strip()}")
    return time.time() - began, result.stdout.strip()


def psql_copy(tables, directory):
    began = time.time()
    for table in tables:
        path = os.path.join(directory, f"{table}.psql.jsonl")
        with open(path, "w") as out:
            subprocess.run(["psql", "-X", "-q", "-At", "-d", DB, "-c",
                            f"COPY (SELECT row_to_json(t) FROM {table} t) TO STDOUT"], stdout=out, check=True)
        subprocess.run(["sync", path], check=True)
    return time.time() - began


def export(directory, *arguments):
    seconds, path = timed_run([TEMPORAL, "export", "--dir", directory, *arguments, "--db", f"dbname={DB}"])
    time.sleep(1.05)  # the next export is named by the next second
    return seconds, path


def main():
    psql(f"DROP DATABASE IF EXISTS {DB}", "postgres")
    psql(f"CREATE DATABASE {DB}", "postgres")
    temporal("install", db=DB)
    version = psql("SHOW server_version", DB)
    for table in ["export_a", "export_b"]:
        log(f"loading {ROWS:,} rows into {table}")
        load(table)
    temporal("enable", "public.export_a", db=DB)
    psql("VACUUM ANALYZE", DB)
    instant = psql("SELECT pg_sleep(0.1); SELECT clock_timestamp()", DB).splitlines()[-1]
    log(f"{CHANGES} changes after T")
    statements = [f"UPDATE export_a SET balance = balance + 1 WHERE id = {1 + (n * 7919) % ROWS};" for n in range(CHANGES)]
    for start in range(0, CHANGES, 50):
        psql("BEGIN;" + "".join(statements[start:start + 50]) + "COMMIT;", DB)
    psql("VACUUM ANALYZE", DB)

    results = {}
    scratch = tempfile.mkdtemp(prefix="bench-export-")
    try:
        for run in range(REPEAT):
            log(f"run {run + 1}/{REPEAT}")
            psql("CHECKPOINT", DB)
            results.setdefault("psql one", []).append(psql_copy(["export_a"], scratch))
            results.setdefault("temporal one", []).append(export(scratch, "export_a", "--format", "jsonl")[0])
            results.setdefault("psql two", []).append(psql_copy(["export_a", "export_b"], scratch))
            results.setdefault("temporal two", []).append(export(scratch, "export_a", "export_b", "--jobs", "2")[0])
            seconds, past = export(scratch, "export_a", "--at", instant)
            results.setdefault("at", []).append(seconds)
            seconds, now = export(scratch, "export_a")
            results.setdefault("now", []).append(seconds)
            seconds, compared = timed_run([TEMPORAL, "export", "compare", past, now, "--format", "json"])
            results.setdefault("compare", []).append(seconds)
            for name in os.listdir(scratch):
                path = os.path.join(scratch, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    one_psql, one = median(results["psql one"]), median(results["temporal one"])
    two_psql, two = median(results["psql two"]), median(results["temporal two"])
    at, now, compare = median(results["at"]), median(results["now"]), median(results["compare"])
    rows = [
        [f"1 table of {ROWS:,} rows to JSON lines, --jobs 1 (rows/s)", f"{ROWS / one:,.0f}",
         f"{ROWS / one_psql:,.0f} (psql COPY row_to_json)", f"{one_psql / one:.2f}x", ">= 0.9x"],
        [f"2 tables of {ROWS:,} rows, --jobs 2 (rows/s)", f"{2 * ROWS / two:,.0f}",
         f"{2 * ROWS / two_psql:,.0f} (two psql COPYs in turn)", f"{two_psql / two:.2f}x", "faster than psql"],
        [f"export --at T ({CHANGES:,} changes after T) vs export now (s)", f"{at:.2f}", f"{now:.2f}", f"{at / now:.2f}x", "<= 1.5x"],
        [f"export compare of two {ROWS:,}-row exports (s)", f"{compare:.1f}", "", "", "seconds"],
    ]
    print_table(f"bench/export: PostgreSQL {version}; median of {REPEAT} runs", ["measure", "temporal", "peer", "ratio", "target"], rows,
                notes=["temporal export writes typed Extended JSON ($numberLong, $numberDecimal, $date) with the exact text of",
                       "rounded values in _exact, fsyncs each file and writes export-summary.json with each file's sha256."])


if __name__ == "__main__":
    main()
