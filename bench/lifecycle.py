"""bench/lifecycle: what pruning a history costs, and what it costs the
application while it runs.

A table of ROWS rows is versioned, then updated ROUNDS times (one statement
per round), which leaves ROWS * (ROUNDS + 1) changes older than the floor;
then a few later changes. The loaded database is a template; each run prunes
a fresh copy of it (CREATE DATABASE ... TEMPLATE), so every run starts alike.

Variants, round-robin, median of REPEAT runs:
- temporal prune --archive-dir: batches of about 10,000 rows, each copied to
  the gzip archive, fsynced, then deleted, in its own REPEATABLE READ
  transaction; sha256 and manifest at the end.
- temporal prune --no-archive: the same batches without the archive.
- by hand: one transaction with COPY (SELECT old changes) TO PROGRAM 'gzip >
  file' and one DELETE of the same changes: what a DBA writes without a
  tool, and the single-statement delete of the older audit tools.
A client updates single rows of the source table throughout each prune;
its updates per second and its worst latency show what the prune costs the
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


def prepare():
    psql(f"DROP DATABASE IF EXISTS {TEMPLATE}", "postgres")
    psql(f"CREATE DATABASE {TEMPLATE}", "postgres")
    subprocess.run([TEMPORAL, "install", "--db", f"dbname={TEMPLATE}"], check=True, capture_output=True)
    psql(f"""CREATE TABLE accounts (id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL,
                                    status text NOT NULL, updated_at timestamptz NOT NULL);
             INSERT INTO accounts SELECT g, 'owner ' || g, g % 1000, 'active', now() FROM generate_series(1, {ROWS}) g;""",
         TEMPLATE)
    subprocess.run([TEMPORAL, "enable", "accounts", "--db", f"dbname={TEMPLATE}"], check=True, capture_output=True)
    psql(f"INSERT INTO accounts SELECT g, 'owner ' || g, 0, 'new', now() FROM generate_series({ROWS} + 1, {ROWS} * 2) g", TEMPLATE)
    for round in range(ROUNDS):
        log(f"round {round + 1}/{ROUNDS}: updating {2 * ROWS:,} rows")
        psql("UPDATE accounts SET balance = balance + 1, updated_at = now()", TEMPLATE)
    floor = psql("SELECT pg_sleep(0.1); SELECT clock_timestamp()", TEMPLATE).splitlines()[-1]
    psql("SELECT pg_sleep(0.1); UPDATE accounts SET balance = balance + 1 WHERE id % 100 = 0", TEMPLATE)
    psql("VACUUM ANALYZE", TEMPLATE)
    old = int(psql(f"""SELECT count(*) FROM temporal_versioning.accounts_history h
                       JOIN temporal_versioning.transactions t ON t.tx_id = h.temporal_tx_id
                       WHERE t.valid_from < '{floor}'""", TEMPLATE))
    size = psql("SELECT pg_size_pretty(pg_total_relation_size('temporal_versioning.accounts_history'))", TEMPLATE)
    return floor, old, size


class Writer:
    """A client updating single rows of the source table (autocommit, one
    connection) on a thread, timing each update."""

    def __init__(self, db):
        self.db = db

    def start(self):
        self.stopping = threading.Event()
        self.latencies = []
        self.thread = threading.Thread(target=self.loop)
        self.thread.start()
        time.sleep(0.3)

    def loop(self):
        with psycopg.connect(f"dbname={self.db}", autocommit=True) as connection:
            key = 0
            while not self.stopping.is_set():
                key = (key * 7919 + 13) % (2 * ROWS) + 1
                began = time.perf_counter()
                connection.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", (key,), prepare=True)
                self.latencies.append((time.time(), (time.perf_counter() - began) * 1000))

    def stop(self, began, ended):
        self.stopping.set()
        self.thread.join()
        during = [latency for at, latency in self.latencies if began <= at <= ended]
        duration = ended - began
        return len(during) / duration if duration > 0 else 0, max(during, default=0)


def run(variant, floor, directory, n):
    db = f"bench_lifecycle_{n}"
    psql(f"DROP DATABASE IF EXISTS {db}", "postgres")
    psql(f"CREATE DATABASE {db} TEMPLATE {TEMPLATE}", "postgres")
    psql("CHECKPOINT", db)
    writer = Writer(db)
    writer.start()
    began = time.time()
    archive_bytes = 0
    if variant == "archive":
        out = subprocess.run([TEMPORAL, "prune", "accounts", "--before", floor, "--archive-dir", directory,
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
    variants = [("archive", "temporal prune --archive-dir (batches of ~10k, fsynced archive)"),
                ("no-archive", "temporal prune --no-archive"),
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
    rows = []
    for key, label in variants:
        seconds = median([r[0] for r in results[key]])
        tps = median([r[1] for r in results[key]])
        worst = median([r[2] for r in results[key]])
        archive = median([r[3] for r in results[key]])
        rows.append([label, f"{seconds:.1f}", f"{old / seconds:,.0f}", f"{seconds / baseline:.2f}x",
                     f"{archive / 1e6:.1f}" if archive else "", f"{tps:,.0f}", f"{worst:.0f}"])
    print_table(
        f"bench/lifecycle: PostgreSQL {version}; prune {old:,} changes (history {size}); median of {REPEAT} runs",
        ["variant", "seconds", "changes/s", "vs by hand", "archive MB", "writer tps during", "writer worst latency (ms)"],
        rows,
        notes=[
            "A client updates single rows of the source table during each prune (psycopg, one connection, prepared, autocommit).",
            "By hand holds one transaction for the whole copy and delete; temporal prune commits every batch, so a kill loses at most one batch's work and vacuum can follow.",
        ])


if __name__ == "__main__":
    main()
