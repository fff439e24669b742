"""bench/lifecycle: what pruning a history costs, and what it costs the
application while it runs.

A table of ROWS rows is versioned, then updated ROUNDS times (one statement
per round), which leaves ROWS * (ROUNDS + 1) changes older than the floor;
then a few later changes. The loaded database is a template; each run prunes
a fresh copy of it (CREATE DATABASE ... TEMPLATE), so every run starts alike.

A second template keeps the same changes in a history partitioned by month
(enable --partition-history monthly), aged two months back (their
temporal_at and their transactions' valid_from) and moved into their
month's partition by temporal maintain: its prune drops the partition.

Variants, round-robin, median of REPEAT runs:
- no prune: the writers alone, for their baseline.
- temporal prune --archive-dir: batches of about 10,000 rows, each copied to
  the gzip archive, fsynced, then deleted, in its own REPEATABLE READ
  transaction; sha256 and manifest at the end.
- temporal prune --no-archive: the same batches without the archive.
- temporal prune of the partitioned history, with and without the archive:
  the month's partition archived, detached and dropped.
- by hand: one transaction with COPY (SELECT old changes) TO PROGRAM 'gzip >
  file' and one DELETE of the same changes: what a DBA writes without a
  tool, and the single-statement delete of the older audit tools.
Two clients update single rows of the source table throughout each prune;
their updates per second (against the no-prune baseline) and worst latency show what the prune costs the
application. The archive is checked: its row count equals the changes pruned.
"""
import os
import re
import subprocess
import tempfile
import threading
import time

import psycopg
from benchlib import TEMPORAL, log, median, print_table, psql

ROWS = int(os.environ.get("BENCH_ROWS", "200000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
TEMPLATE = "bench_lifecycle_template"
PARTITIONED = "bench_lifecycle_partitioned"


def prepare():
    for template, partitioning in [(TEMPLATE, []), (PARTITIONED, ["--partition-history", "monthly"])]:
        psql(f"DROP DATABASE IF EXISTS {template}", "postgres")
        psql(f"CREATE DATABASE {template}", "postgres")
        subprocess.run([TEMPORAL, "install", "--db", f"dbname={template}"], check=True, capture_output=True)
        psql(f"""CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL,
                                        status text NOT NULL, updated_at timestamptz NOT NULL);
                 INSERT INTO accounts SELECT g, 'owner ' || g, g % 1000, 'active', now() FROM generate_series(1, {ROWS}) g;""",
             template)
        subprocess.run([TEMPORAL, "enable", "accounts", *partitioning, "--db", f"dbname={template}"], check=True, capture_output=True)
        psql(f"INSERT INTO accounts SELECT g, 'owner ' || g, 0, 'new', now() FROM generate_series({ROWS} + 1, {ROWS} * 2) g", template)
        for round in range(ROUNDS):
            log(f"{template} round {round + 1}/{ROUNDS}: updating {2 * ROWS:,} rows")
            psql("UPDATE accounts SET balance = balance + 1, updated_at = now()", template)
        if partitioning:
            log(f"{template}: ageing the changes two months back")
            psql("""UPDATE temporal_versioning.accounts_history SET temporal_at = temporal_at - interval '2 months';
                    UPDATE temporal_versioning.transactions SET valid_from = valid_from - interval '2 months';
                    UPDATE temporal_versioning.versioned_tables
                       SET created_at = created_at - interval '2 months', versioning_since = versioning_since - interval '2 months'""",
                 template)
            subprocess.run([TEMPORAL, "maintain", "--db", f"dbname={template}"], check=True, capture_output=True)
        else:
            floor = psql("SELECT pg_sleep(0.1); SELECT clock_timestamp()", template).splitlines()[-1]
        psql("SELECT pg_sleep(0.1); UPDATE accounts SET balance = balance + 1 WHERE id % 100 = 0", template)
        psql("VACUUM ANALYZE", template)
    old = int(psql(f"""SELECT count(*) FROM temporal_versioning.accounts_history h
                       JOIN temporal_versioning.transactions t ON t.tx_id = h.temporal_tx_id
                       WHERE t.valid_from < '{floor}'""", TEMPLATE))
    size = psql("SELECT pg_size_pretty(pg_total_relation_size('temporal_versioning.accounts_history'))", TEMPLATE)
    return floor, old, size


class Writer:
    """Two clients updating single rows of the source table (autocommit, a
    connection each) on threads, timing each update."""

    def __init__(self, db):
        self.db = db

    def start(self):
        self.stopping = threading.Event()
        self.latencies = []
        self.threads = [threading.Thread(target=self.loop, args=(seed,)) for seed in (13, 17)]
        for thread in self.threads:
            thread.start()
        time.sleep(0.3)

    def loop(self, seed):
        with psycopg.connect(f"dbname={self.db}", autocommit=True) as connection:
            key = seed
            while not self.stopping.is_set():
                key = (key * 7919 + seed) % (2 * ROWS) + 1
                began = time.perf_counter()
                connection.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", (key,), prepare=True)
                self.latencies.append((time.time(), (time.perf_counter() - began) * 1000))

    def stop(self, began, ended):
        self.stopping.set()
        for thread in self.threads:
            thread.join()
        during = [latency for at, latency in self.latencies if began <= at <= ended]
        duration = ended - began
        return len(during) / duration if duration > 0 else 0, max(during, default=0)


def run(variant, floor, directory, n):
    db = f"bench_lifecycle_{n}"
    psql(f"DROP DATABASE IF EXISTS {db}", "postgres")
    psql(f"CREATE DATABASE {db} TEMPLATE {PARTITIONED if variant.startswith('partitioned') else TEMPLATE}", "postgres")
    psql("CHECKPOINT", db)
    writer = Writer(db)
    writer.start()
    began = time.time()
    archive_bytes = 0
    if variant == "none":
        time.sleep(3)
    elif variant.startswith("partitioned"):
        floor_month = psql("SELECT now() - interval '1 month'", db)
        extra = ["--archive-dir", directory, "--format", "json"] if variant == "partitioned-archive" else ["--no-archive"]
        out = subprocess.run([TEMPORAL, "prune", "accounts", "--before", floor_month, *extra, "--db", f"dbname={db}"],
                             capture_output=True, text=True, check=True)
        if variant == "partitioned-archive":
            archive_bytes = int(re.search(r'"archive_bytes" *: *([0-9]+)', out.stdout).group(1))
        left = int(psql("SELECT count(*) FROM temporal_versioning.accounts_history WHERE temporal_at < now() - interval '1 month'", db))
        if left:
            raise RuntimeError(f"{variant}: {left} old changes left")
    elif variant == "archive":
        out = subprocess.run([TEMPORAL, "prune", "accounts", "--before", floor, "--archive-dir", directory,
                              "--format", "json", "--db", f"dbname={db}"], capture_output=True, text=True, check=True)
        archive_bytes = int(re.search(r'"archive_bytes" *: *([0-9]+)', out.stdout).group(1))
    elif variant == "archive-paused":
        out = subprocess.run([TEMPORAL, "prune", "accounts", "--before", floor, "--archive-dir", directory, "--pause", "20",
                              "--format", "json", "--db", f"dbname={db}"], capture_output=True, text=True, check=True)
        archive_bytes = int(re.search(r'"archive_bytes" *: *([0-9]+)', out.stdout).group(1))
    elif variant == "no-archive":
        subprocess.run([TEMPORAL, "prune", "accounts", "--before", floor, "--no-archive", "--db", f"dbname={db}"],
                       capture_output=True, text=True, check=True)
    else:
        path = os.path.join(directory, f"by-hand-{n}.copy.gz")
        condition = f"""h.temporal_tx_id IN (SELECT t.tx_id FROM temporal_versioning.transactions t
                                             WHERE t.valid_from < '{floor}')"""
        psql(f"""BEGIN ISOLATION LEVEL REPEATABLE READ;
                 COPY (SELECT h.* FROM temporal_versioning.accounts_history h WHERE {condition})
                     TO PROGRAM 'gzip > {path} && sync {path}';
                 DELETE FROM temporal_versioning.accounts_history h WHERE {condition};
                 COMMIT;""", db)
        archive_bytes = os.path.getsize(path)
    ended = time.time()
    seconds = ended - began
    tps, worst = writer.stop(began, ended)
    psql(f"DROP DATABASE {db}", "postgres")
    return seconds, tps, worst, archive_bytes


def main():
    version = psql("SHOW server_version", "postgres")
    log(f"loading {2 * ROWS:,} rows and {ROUNDS} rounds of updates")
    floor, old, size = prepare()
    log(f"{old:,} changes before the floor; history {size}")
    directory = tempfile.mkdtemp(prefix="bench-archive-")
    os.chmod(directory, 0o777)  # COPY TO PROGRAM runs as the server's user
    variants = [("none", "no prune (the writers alone)"),
                ("archive", "temporal prune --archive-dir (batches of ~10k, fsynced archive)"),
                ("archive-paused", "temporal prune --archive-dir --pause 20 (ms after each batch)"),
                ("no-archive", "temporal prune --no-archive"),
                ("partitioned-archive", "partitioned history: temporal prune --archive-dir (partition archived, dropped)"),
                ("partitioned-drop", "partitioned history: temporal prune --no-archive (partition dropped)"),
                ("by-hand", "by hand: COPY TO PROGRAM 'gzip' + one DELETE, one transaction")]
    results = {}
    n = 0
    for repeat in range(REPEAT):
        for key, _ in variants:
            n += 1
            log(f"run {repeat + 1}/{REPEAT}: {key}")
            results.setdefault(key, []).append(run(key, floor, directory, n))
            for name in os.listdir(directory):
                os.unlink(os.path.join(directory, name))
    baseline = median([r[0] for r in results["by-hand"]])
    quiet = median([r[1] for r in results["none"]])
    rows = []
    for key, label in variants:
        seconds = median([r[0] for r in results[key]])
        tps = median([r[1] for r in results[key]])
        worst = median([r[2] for r in results[key]])
        archive = median([r[3] for r in results[key]])
        if key == "none":
            rows.append([label, "", "", "", "", "", f"{tps:,.0f}", f"{worst:.0f}"])
            continue
        rows.append([label, f"{seconds:.2f}", f"{old / seconds:,.0f}", f"{seconds / baseline:.2f}x",
                     f"{archive / 1e6:.1f}" if archive else "", f"{archive / old:.1f}" if archive else "",
                     f"{tps:,.0f} ({tps / quiet:.2f}x)", f"{worst:.0f}"])
    print_table(
        f"bench/lifecycle: PostgreSQL {version}; prune {old:,} changes (history {size}); median of {REPEAT} runs",
        ["variant", "seconds", "changes/s", "vs by hand", "archive MB", "archive bytes/change",
         "writer updates/s during (vs none)", "writer worst latency (ms)"],
        rows,
        notes=[
            "Two clients update single rows of the source table during each prune (psycopg, a connection each, prepared, autocommit).",
            "Target: the writers keep at least 0.9x of their updates/s with no prune running.",
            "By hand holds one transaction for the whole copy and delete; temporal prune commits every batch, so a kill loses at most one batch's work and vacuum can follow.",
        ])


if __name__ == "__main__":
    main()
