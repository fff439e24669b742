"""bench/history-partitions: enable --partition-history monthly against the
plain history.

Capture: the bulk UPDATE, INSERT and DELETE of ROWS rows and single-row
UPDATE tps (pgbench, 2 clients) of bench/capture, on the same table
versioned both ways; each run starts from a freshly loaded, vacuumed and
checkpointed table, variants round-robin, medians of REPEAT runs.

The same capture is measured on the table hash-partitioned 8 ways (the
table versioned as one, its history plain), against the unpartitioned one.

Drop: N changes are made, then aged two months back (their temporal_at and
their transactions' valid_from, as in HistoryPartitionTests), maintain moves
them into their month's partition, and `temporal prune --no-archive` drops
that month; it is timed for each N in DROP_ROWS, against a prune of the same
changes from a plain history (batched deletes).
"""
import os
import subprocess
import time

from benchlib import TEMPORAL, log, median, pgbench, print_table, psql, temporal, timed

ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
DROP_ROWS = [int(n) for n in os.environ.get("BENCH_DROP_ROWS", "100000 1000000").split()]
DB = "bench_history_partitions"

COLUMNS = """id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, city text,
             balance numeric(12,2) NOT NULL, status text NOT NULL, updated_at timestamptz NOT NULL"""


def rows_sql(first, last):
    return f"""SELECT g, 'Customer ' || g, 'customer' || g || '@example.com',
                      (ARRAY['Berlin','Paris','Lisbon','Oslo'])[1 + g % 4], (g % 10000) / 3.0, 'active', now()
               FROM generate_series({first}, {last}) g"""


VARIANTS = {"plain history": None, "history partitioned monthly": "monthly", "source table in 8 partitions": "source"}
OPERATIONS = {
    "UPDATE": "UPDATE {t} SET balance = balance + 1, updated_at = now()",
    "INSERT": "INSERT INTO {t} " + rows_sql(ROWS + 1, 2 * ROWS),
    "DELETE": f"DELETE FROM {{t}} WHERE id > {ROWS}",
}


def table_of(partitioning):
    return {None: "bench_plain", "monthly": "bench_partitioned", "source": "bench_source_parts"}[partitioning]


def setup(partitioning, rows=ROWS):
    table = table_of(partitioning)
    if partitioning == "source":
        # The same table, hash-partitioned 8 ways on its key, its history plain.
        create = (f"CREATE TABLE {table} ({COLUMNS}) PARTITION BY HASH (id);"
                  + "".join(f"CREATE TABLE {table}_{i} PARTITION OF {table} FOR VALUES WITH (MODULUS 8, REMAINDER {i})"
                            f" WITH (autovacuum_enabled = off);" for i in range(8)))
    else:
        create = f"CREATE TABLE {table} ({COLUMNS}) WITH (autovacuum_enabled = off);"
    psql(f"""SELECT temporal_versioning.disable_temporal_versioning('public', '{table}', true)
             FROM temporal_versioning.versioned_tables WHERE table_name = '{table}';
             DROP TABLE IF EXISTS {table};
             {create}
             INSERT INTO {table} {rows_sql(1, rows)};""", DB)
    extra = ["--partition-history", partitioning] if partitioning in ("daily", "weekly", "monthly") else []
    temporal("enable", f"public.{table}", *extra, db=DB)
    psql(f"VACUUM ANALYZE {table}", DB)
    psql("CHECKPOINT", DB)
    return table


def capture(results):
    script = "\\set id random(1, {rows})\nUPDATE {t} SET balance = balance + 1, updated_at = now() WHERE id = :id;\n"
    for run in range(REPEAT):
        for name, partitioning in VARIANTS.items():
            log(f"capture run {run + 1}/{REPEAT}: {name}")
            table = setup(partitioning)
            for operation, sql in OPERATIONS.items():
                psql("CHECKPOINT", DB)
                results.setdefault((name, operation), []).append(timed(sql.format(t=table), DB))
            table = setup(partitioning)
            results.setdefault((name, "tps"), []).append(pgbench(script.format(t=table, rows=ROWS), DB, seconds=SECONDS))


def drop(results):
    for n in DROP_ROWS:
        for name, partitioning in list(VARIANTS.items())[:2]:
            log(f"drop: {n:,} changes, {name}")
            table = setup(partitioning, rows=1)
            psql(f"INSERT INTO {table} {rows_sql(2, n + 1)}", DB)
            history = f"temporal_versioning.{table}_history"
            psql(f"""UPDATE {history} SET temporal_at = temporal_at - interval '2 months'"""
                 if partitioning else "SELECT 1", DB)
            psql(f"""UPDATE temporal_versioning.transactions SET valid_from = valid_from - interval '2 months';
                     UPDATE temporal_versioning.versioned_tables
                        SET created_at = created_at - interval '2 months', versioning_since = versioning_since - interval '2 months'
                      WHERE table_name = '{table}'""", DB)
            temporal("maintain", db=DB)
            psql(f"VACUUM ANALYZE {history}", DB)
            psql("CHECKPOINT", DB)
            floor = psql("SELECT now() - interval '1 month'", DB)
            began = time.time()
            subprocess.run([TEMPORAL, "prune", table, "--before", floor, "--no-archive", "--db", f"dbname={DB}"],
                           check=True, capture_output=True)
            results[(name, "drop", n)] = time.time() - began
            left = int(psql(f"SELECT count(*) FROM {history}", DB))
            if left != 0:
                raise RuntimeError(f"{name}: {left} changes left after the prune")


def main():
    psql(f"DROP DATABASE IF EXISTS {DB}", "postgres")
    psql(f"CREATE DATABASE {DB}", "postgres")
    temporal("install", db=DB)
    version = psql("SHOW server_version", DB)
    results = {}
    capture(results)
    drop(results)
    names = list(VARIANTS)
    rows = []
    for operation in OPERATIONS:
        base = median(results[(names[0], operation)])
        cells = [f"{median(results[(name, operation)]):.2f} ({median(results[(name, operation)]) / base:.2f}x)" for name in names[1:]]
        rows.append([f"{operation} of {ROWS:,} rows in one statement (s)", f"{base:.2f}", *cells, "<= 1.05x / <= 1.1x"])
    base = median(results[(names[0], "tps")])
    cells = [f"{median(results[(name, 'tps')]):,.0f} ({median(results[(name, 'tps')]) / base:.2f}x)" for name in names[1:]]
    rows.append(["single-row UPDATE, pgbench 2 clients (tps)", f"{base:,.0f}", *cells, ">= 0.95x / >= 0.9x"])
    for n in DROP_ROWS:
        base, value = results[(names[0], "drop", n)], results[(names[1], "drop", n)]
        rows.append([f"prune a month of {n:,} changes, --no-archive (s)", f"{base:.2f}", f"{value:.2f}", "", "< 1 s, flat in N"])
    print_table(
        f"bench/history-partitions: PostgreSQL {version}; capture medians of {REPEAT} runs, pgbench {SECONDS} s; drops one run each",
        ["measure", *names, "target (partitioned history / source)"], rows,
        notes=["The plain history's prune deletes in batches of ~10,000 rows; the partitioned one detaches and drops the month's partition."])


if __name__ == "__main__":
    main()
