"""bench/backfill: how fast `temporal stream setup --snapshot` and the
`stream run` that writes the snapshot go, against psql's COPY of the same
rows as JSON (to a file) and against a Python script reading the rows with
psycopg and writing them with pymongo insert_many (into the same
MongoDB-compatible server); and how fast the history backfill writes a
million changes. Every temporal run ends at the slot's consistent point
(--end-lsn), so it times the backfill and the stream's start only.
"""
import os
import subprocess
import tempfile
import time

from benchlib import TEMPORAL, log, print_table, psql
from stream import run

import psycopg
from bson.decimal128 import Decimal128
from pymongo import MongoClient

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
MONGO_ROWS = int(os.environ.get("BENCH_MONGO_ROWS", "100000"))
HISTORY_ROWS = int(os.environ.get("BENCH_HISTORY_ROWS", "1000000"))
DB = os.environ.get("BENCH_DB", "bench_backfill")
MONGO = os.environ["TEMPORAL_TEST_MONGODB"]
CONNINFO = f"dbname={DB}"


def table(name, rows):
    psql(f"""CREATE TABLE {name} (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL,
                                  balance numeric(12,2) NOT NULL, updated_at timestamptz NOT NULL);
             INSERT INTO {name} SELECT g, 'Customer ' || g, 'c' || g || '@example.com', g / 7.0, now()
             FROM generate_series(1, {rows}) g;""", DB)
    psql(f"VACUUM ANALYZE {name}", DB)


def setup(slot, *tables, history=False):
    started = time.monotonic()
    arguments = [TEMPORAL, "stream", "setup", "--db", CONNINFO, "--publication", f"pub_{slot}", "--slot", slot, *tables,
                 "--snapshot", "--replica-identity-full"]
    if history:
        arguments += ["--history-since", "all"]
    subprocess.run(arguments, check=True, capture_output=True)
    return time.monotonic() - started


def drain(slot, *sink):
    end = psql(f"SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{slot}'", DB)
    return run([TEMPORAL, "stream", "run", "--db", CONNINFO, "--publication", f"pub_{slot}", "--slot", slot,
                "--end-lsn", end, "--heartbeat", "0.2", *sink])


def main():
    psql(f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '{DB}'", "postgres")
    psql(f"DROP DATABASE IF EXISTS {DB}", "postgres")
    psql(f"CREATE DATABASE {DB}", "postgres")
    subprocess.run([TEMPORAL, "install", "--db", CONNINFO], check=True, capture_output=True)
    version = psql("SHOW server_version", DB)
    workdir = tempfile.mkdtemp(prefix="bench-backfill-")

    log(f"snapshot of {ROWS:,} rows to a file")
    table("customers", ROWS)
    started = time.monotonic()
    with open(os.path.join(workdir, "copy.json"), "w") as out:
        subprocess.run(["psql", "-X", "-d", DB, "-c", "COPY (SELECT row_to_json(t) FROM customers t) TO STDOUT"],
                       stdout=out, check=True)
    copy_seconds = time.monotonic() - started
    setup_seconds = setup("snap_file", "customers")
    events_file = os.path.join(workdir, "snapshot.jsonl")
    file_seconds, file_mb = drain("snap_file", "--output", events_file)
    with open(events_file) as f:
        assert sum(1 for _ in f) == ROWS

    log(f"snapshot of {MONGO_ROWS:,} rows into MongoDB (SecantusDB)")
    table("small", MONGO_ROWS)
    database = f"bench_backfill_{int(time.time())}"
    mongo_setup = setup("snap_mongo", "small")
    mongo_seconds, mongo_mb = drain("snap_mongo", "--mongodb", MONGO, "--database", database)
    client = MongoClient(MONGO)
    assert client[database]["changeEvents"].count_documents({}) == MONGO_ROWS
    log("psycopg + pymongo insert_many of the same rows, 1,000 per call")
    started = time.monotonic()
    target = client[database]["direct"]
    with psycopg.connect(CONNINFO) as connection, connection.cursor(name="rows") as cursor:
        cursor.itersize = 1000
        cursor.execute("SELECT id, name, email, balance, updated_at FROM small ORDER BY id")
        batch = []
        for row in cursor:
            batch.append({"_id": row[0], "name": row[1], "email": row[2], "balance": Decimal128(row[3]), "updated_at": row[4]})
            if len(batch) == 1000:
                target.insert_many(batch, ordered=False)
                batch = []
        if batch:
            target.insert_many(batch, ordered=False)
    direct_seconds = time.monotonic() - started

    per_update = 100_000
    updates = max(1, HISTORY_ROWS // per_update)
    log(f"history backfill of {updates * per_update:,} changes ({per_update:,} rows, {updates} updates of each)")
    table("versioned", per_update)
    subprocess.run([TEMPORAL, "enable", "public.versioned", "--db", CONNINFO], check=True, capture_output=True)
    for _ in range(updates):
        psql("UPDATE versioned SET balance = balance + 1, updated_at = now()", DB)
    history_setup = setup("history_file", "versioned", history=True)
    history_file = os.path.join(workdir, "history.jsonl")
    history_seconds, history_mb = drain("history_file", "--output", history_file)
    with open(history_file) as f:
        history_events = sum(1 for _ in f)
    assert history_events == updates * per_update + per_update

    for slot in ["snap_file", "snap_mongo", "history_file"]:
        subprocess.run([TEMPORAL, "stream", "drop", "--db", CONNINFO, "--slot", slot, "--publication", f"pub_{slot}"],
                       check=True, capture_output=True)

    rate = lambda n, s: f"{n / s:,.0f}"
    rows = [
        [f"snapshot of {ROWS:,} rows to a JSON-lines file (rows/s)",
         f"{rate(ROWS, file_seconds)} run; {rate(ROWS, setup_seconds + file_seconds)} with setup",
         f"{rate(ROWS, copy_seconds)} (psql COPY row_to_json)",
         f"{copy_seconds / file_seconds:.2f}x; {copy_seconds / (setup_seconds + file_seconds):.2f}x", ">= 0.8x"],
        [f"snapshot of {MONGO_ROWS:,} rows into SecantusDB (rows/s)",
         f"{rate(MONGO_ROWS, mongo_seconds)} run; {rate(MONGO_ROWS, mongo_setup + mongo_seconds)} with setup",
         f"{rate(MONGO_ROWS, direct_seconds)} (psycopg + pymongo insert_many)",
         f"{direct_seconds / mongo_seconds:.2f}x; {direct_seconds / (mongo_setup + mongo_seconds):.2f}x", ">= 0.9x"],
        [f"history backfill of {updates * per_update:,} changes + {per_update:,} snapshot rows to a file (events/s)",
         f"{rate(history_events, history_seconds)} run; {rate(history_events, history_setup + history_seconds)} with setup",
         "", "", ">= 50,000"],
        ["peak RSS of stream run: file / MongoDB / history (MB)", f"{file_mb:.0f} / {mongo_mb:.0f} / {history_mb:.0f}", "", "",
         "<= 200"],
    ]
    print_table(f"bench/backfill: PostgreSQL {version}", ["measure", "temporal", "peer", "ratio (run; with setup)", "target"], rows,
                notes=["'run' is `temporal stream run` writing the backfill; 'with setup' adds `stream setup --snapshot`,",
                       "which copies the rows inside the slot's exported snapshot."])


if __name__ == "__main__":
    main()
