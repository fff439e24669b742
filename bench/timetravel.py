"""bench/timetravel: what time travel costs, and that it follows the number of
changes, not the size of the table.

Two tables of SMALL and LARGE rows get the same CHANGES single-row changes
(updates, deletes, inserts) after an instant T. For both sizes it times diff
--from T --to now, revert --to T --dry-run and revert --to T (run inside a
transaction that is rolled back, so every run starts from the same state).
On the large table it times as-of T against a plain SELECT * of the table,
and against the periods extension's __as_of function on the same data.
Every figure is the median of REPEAT runs; as-of runs send every row to psql.
"""
import os

from benchlib import log, median, print_table, psql, temporal, timed

SMALL = int(os.environ.get("BENCH_SMALL_ROWS", "100000"))
LARGE = int(os.environ.get("BENCH_LARGE_ROWS", "1000000"))
CHANGES = int(os.environ.get("BENCH_CHANGES", "1000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "5"))
DB = os.environ.get("BENCH_DB", "bench_timetravel")

COLUMNS = """id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL, city text,
             balance numeric(12,2) NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL,
             updated_at timestamptz NOT NULL"""


def load(table, rows):
    psql(f"""DROP TABLE IF EXISTS {table} CASCADE;
             CREATE TABLE {table} ({COLUMNS});
             INSERT INTO {table}
             SELECT g, 'Customer ' || g, 'customer' || g || '@example.com',
                    (ARRAY['Berlin','Paris','Lisbon','Oslo'])[1 + g % 4], (g % 10000) / 3.0, 'active',
                    now() - g * interval '1 minute', now()
             FROM generate_series(1, {rows}) g;""", DB)


def change(table, rows):
    """The same CHANGES changes on any table: 60% updates, 20% deletes, 20% inserts, 20 per transaction."""
    statements = []
    for n in range(CHANGES):
        key = 1 + (n * 7919) % min(rows, SMALL)
        kind = n % 5
        if kind < 3:
            statements.append(f"UPDATE {table} SET balance = balance + 1, updated_at = now() WHERE id = {key};")
        elif kind == 3:
            statements.append(f"DELETE FROM {table} WHERE id = {key};")
        else:
            statements.append(f"INSERT INTO {table} VALUES ({rows + n + 1}, 'New {n}', 'new{n}@example.com', 'Oslo', 0, 'new', now(), now()) ON CONFLICT DO NOTHING;")
    for start in range(0, len(statements), 20):
        psql("BEGIN;" + "".join(statements[start:start + 20]) + "COMMIT;", DB)


def rolled_back(sql):
    """Seconds a statement takes inside a transaction that is then rolled back."""
    return timed(f"BEGIN; {sql}; ROLLBACK", DB, statement=1)


def main():
    psql(f"DROP DATABASE IF EXISTS {DB}", "postgres")
    psql(f"CREATE DATABASE {DB}", "postgres")
    psql("CREATE EXTENSION periods CASCADE", DB)
    temporal("install", db=DB)
    version = psql("SHOW server_version", DB)

    sizes = {"small": ("tt_small", SMALL), "large": ("tt_large", LARGE)}
    for table, rows in sizes.values():
        log(f"loading {rows:,} rows into {table}")
        load(table, rows)
        temporal("enable", f"public.{table}", db=DB)
    log(f"loading {LARGE:,} rows into a periods table")
    load("periods_large", LARGE)
    psql("""SELECT periods.add_system_time_period('periods_large');
            SELECT periods.add_system_versioning('periods_large');""", DB)
    psql("VACUUM ANALYZE", DB)

    instant = psql("SELECT pg_sleep(0.1); SELECT clock_timestamp()", DB).splitlines()[-1]
    psql("SELECT pg_sleep(0.1)", DB)
    for table, rows in [*sizes.values(), ("periods_large", LARGE)]:
        log(f"{CHANGES} changes to {table}")
        change(table, rows)
    psql("VACUUM ANALYZE", DB)

    results = {}
    for run in range(REPEAT):
        log(f"run {run + 1}/{REPEAT}")
        for size, (table, _) in sizes.items():
            results.setdefault(("diff", size), []).append(timed(
                f"SELECT count(*) FROM temporal_versioning.compare_temporal_data('public', '{table}', '{instant}', now())", DB))
            results.setdefault(("dry", size), []).append(timed(
                f"SELECT count(*) FROM temporal_versioning.revert_table_data('public', '{table}', '{instant}', true)", DB))
            results.setdefault(("revert", size), []).append(rolled_back(
                f"SELECT count(*) FROM temporal_versioning.revert_table_data('public', '{table}', '{instant}', false)"))
        as_of_sql = psql(f"SELECT temporal_versioning.prepare_as_of('public', 'tt_large', '{instant}')", DB)
        results.setdefault("select", []).append(timed("SELECT * FROM tt_large", DB))
        results.setdefault("as-of query", []).append(timed(
            f"PREPARE as_of(timestamptz) AS {as_of_sql}; EXECUTE as_of('{instant}')", DB))
        results.setdefault("as_of()", []).append(timed(
            f"SELECT * FROM temporal_versioning.as_of(NULL::tt_large, '{instant}')", DB))
        results.setdefault("periods", []).append(timed(f"SELECT * FROM periods_large__as_of('{instant}')", DB))

    counts = {
        size: psql(f"SELECT count(*) FROM temporal_versioning.compare_temporal_data('public', '{table}', '{instant}', now())", DB)
        for size, (table, _) in sizes.items()
    }
    rows = []
    for key, label in [("diff", "diff --from T --to now"), ("dry", "revert --to T --dry-run"), ("revert", "revert --to T")]:
        small, large = median(results[(key, "small")]), median(results[(key, "large")])
        rows.append([label, f"{small * 1000:.1f}", f"{large * 1000:.1f}", f"{large / small:.2f}x", "<= 1.5x"])
    plain = median(results["select"])
    rows.append([f"SELECT * FROM the {LARGE:,}-row table", "", f"{plain * 1000:.0f}", "1.00x", ""])
    for key, label in [("as-of query", "as-of T (temporal as-of: the streamed query)"),
                       ("as_of()", "as-of T (SQL function as_of(NULL::t, T))"),
                       ("periods", "as-of T (periods: periods_large__as_of(T))")]:
        value = median(results[key])
        rows.append([label, "", f"{value * 1000:.0f}", f"{value / plain:.2f}x", "<= 1.5x" if key == "as-of query" else ""])

    print_table(
        f"bench/timetravel: PostgreSQL {version}; {SMALL:,} and {LARGE:,} rows, the same {CHANGES:,} changes after T "
        f"({counts['small']} rows differ); median of {REPEAT} runs (ms)",
        ["measure", f"{SMALL:,} rows", f"{LARGE:,} rows", "large / small (or / SELECT *)", "target"], rows,
        notes=[
            "diff and revert read only the changes after T (BRIN on temporal_tx_id), so the table's size barely matters.",
            "revert --to T runs for real and is rolled back, so every run reverts the same changes.",
            "as-of rows are all sent to psql, as for SELECT *; periods' __as_of reads its history table and the live one.",
        ])


if __name__ == "__main__":
    main()
