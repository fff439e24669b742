"""bench/shapes: the MongoDB shapes of `temporal stream run --shape ...`
against pymongo applying the same changes, and `temporal verify` against
pymongo reading the same documents. One table, one run, into SecantusDB
(the MongoDB stand-in here; it is slow, so its own time is the floor).

Slots are made before the backlog, so every consumer drains the very same
changes. The pymongo side gets its input ready-made (parsed from the events
file before the clock starts) and is timed on its writes or reads alone.
"""
import os
import time

from benchlib import TEMPORAL, log, print_table, psql

import bson.json_util
from pymongo import DeleteOne, MongoClient, ReplaceOne

CHANGES = int(os.environ.get("BENCH_CHANGES", "100000"))
VERIFY_ROWS = int(os.environ.get("BENCH_VERIFY_ROWS", "1000000"))
DB = os.environ.get("BENCH_DB", "bench_shapes")
MONGO = os.environ["TEMPORAL_TEST_MONGODB"]
CONNINFO = f"dbname={DB}"


def timed(arguments):
    import subprocess
    started = time.monotonic()
    result = subprocess.run(arguments, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(arguments[:3])} failed ({result.returncode}): {result.stderr[-2000:]}")
    return seconds, result.stdout


def stream(slot, end, database, *shapes):
    arguments = [TEMPORAL, "stream", "run", "--db", CONNINFO, "--publication", "pub", "--slot", slot, "--end-lsn", end,
                 "--heartbeat", "0.2"]
    if database:
        arguments += ["--mongodb", MONGO, "--database", database]
    for shape in shapes:
        arguments += ["--shape", shape]
    return timed(arguments + ([] if database else ["--output", os.path.join("/tmp", f"{DB}-events.jsonl")]))[0]


def main():
    psql(f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '{DB}'", "postgres")
    psql(f"DROP DATABASE IF EXISTS {DB}", "postgres")
    psql(f"CREATE DATABASE {DB}", "postgres")
    version = psql("SHOW server_version", DB)
    timed([TEMPORAL, "install", "--db", CONNINFO])   # stream setup --snapshot keeps its progress in pg-temporal's catalog
    psql("""CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL,
                                    balance numeric(12,2) NOT NULL, updated_at timestamptz NOT NULL);
            ALTER TABLE customers REPLICA IDENTITY FULL;
            CREATE PUBLICATION pub FOR TABLE customers;""", DB)
    for name in ["file", "events", "current", "every"]:
        psql(f"SELECT pg_create_logical_replication_slot('{name}', 'pgoutput')", DB)

    # Half inserts, 40% updates, 10% deletes, 1,000 per transaction.
    inserts, updates = CHANGES // 2, CHANGES * 4 // 10
    deletes = CHANGES - inserts - updates
    log(f"backlog: {CHANGES:,} changes ({inserts:,} inserts, {updates:,} updates, {deletes:,} deletes)")
    for start in range(0, inserts, 1000):
        psql(f"""INSERT INTO customers SELECT g, 'Customer ' || g, 'c' || g || '@example.com', g / 7.0, now()
                 FROM generate_series({start + 1}, {min(start + 1000, inserts)}) g""", DB)
    for start in range(0, updates, 1000):
        psql(f"""UPDATE customers SET balance = balance + 1, updated_at = now()
                  WHERE id BETWEEN {start % inserts + 1} AND {start % inserts + min(1000, updates - start)}""", DB)
    for start in range(0, deletes, 1000):
        psql(f"DELETE FROM customers WHERE id BETWEEN {inserts - start - min(1000, deletes - start) + 1} AND {inserts - start}", DB)
    end = psql("SELECT pg_current_wal_lsn()", DB)

    log("the events as a file (the pymongo script's input)")
    if os.path.exists(f"/tmp/{DB}-events.jsonl"):
        os.unlink(f"/tmp/{DB}-events.jsonl")   # the sink appends
    stream("file", end, None)
    operations = []
    with open(f"/tmp/{DB}-events.jsonl") as f:
        for line in f:
            event = bson.json_util.loads(line)
            if event["operation"] == "delete":
                operations.append(DeleteOne({"_id": event["entityId"]}))
            else:
                operations.append(ReplaceOne({"_id": event["entityId"]}, {"_id": event["entityId"], **event["after"]}, upsert=True))
    assert len(operations) == CHANGES, f"{len(operations)} events for {CHANGES} changes"

    stamp = int(time.time())
    log("--shape events")
    events_only = stream("events", end, f"shapes_events_{stamp}", "events")
    log("--shape current")
    current_db = f"shapes_current_{stamp}"
    current = stream("current", end, current_db, "current")
    log("--shape events --shape current --shape history --shape embedded")
    every = stream("every", end, f"shapes_every_{stamp}", "events", "current", "history", "embedded")

    log("pymongo bulk_write of ReplaceOne(upsert)/DeleteOne, 1,000 per call")
    client = MongoClient(MONGO)
    target = client[f"shapes_pymongo_{stamp}"]["customers"]
    started = time.monotonic()
    for start in range(0, len(operations), 1000):
        target.bulk_write(operations[start:start + 1000], ordered=True)
    direct = time.monotonic() - started
    log(f"so far: current {CHANGES / current:,.0f}/s, pymongo {CHANGES / direct:,.0f}/s, "
        f"every shape {CHANGES / every:,.0f}/s, events {CHANGES / events_only:,.0f}/s")
    rows = int(psql("SELECT count(*) FROM customers", DB))
    assert client[current_db]["customers"].count_documents({}) == rows == target.count_documents({})
    del operations

    log(f"verify: {VERIFY_ROWS:,} rows")
    psql("""CREATE TABLE ledger (id bigint PRIMARY KEY, account text NOT NULL, amount numeric(14,2) NOT NULL,
                                 booked_at timestamptz NOT NULL, memo jsonb);
            ALTER TABLE ledger REPLICA IDENTITY FULL;""", DB)
    psql(f"""INSERT INTO ledger SELECT g, 'acct-' || (g % 997), g / 100.0, '2026-01-01'::timestamptz + g * interval '1 second',
                                    jsonb_build_object('n', g % 10) FROM generate_series(1, {VERIFY_ROWS}) g""", DB)
    timed([TEMPORAL, "stream", "setup", "--db", CONNINFO, "--publication", "ledger_pub", "--slot", "ledger",
           "--snapshot", "ledger"])
    ledger_db = f"shapes_ledger_{stamp}"
    ledger_end = psql("SELECT pg_current_wal_lsn()", DB)
    load, _ = timed([TEMPORAL, "stream", "run", "--db", CONNINFO, "--publication", "ledger_pub", "--slot", "ledger",
                     "--end-lsn", ledger_end, "--mongodb", MONGO, "--database", ledger_db, "--shape", "current"])
    log(f"loaded in {load:.1f} s")
    verify, output = timed([TEMPORAL, "verify", "--db", CONNINFO, "--slot", "ledger", "--mongodb", MONGO,
                            "--database", ledger_db, "--shape", "current"])
    assert "MongoDB matches PostgreSQL" in output, output
    started = time.monotonic()
    read = sum(1 for _ in client[ledger_db]["ledger"].find().sort("_id", 1).batch_size(5000))
    pymongo_read = time.monotonic() - started
    assert read == VERIFY_ROWS

    print_table(
        f"bench/shapes: PostgreSQL {version}, SecantusDB, {CHANGES:,} changes; verify of {VERIFY_ROWS:,} rows",
        ["measure", "temporal", "peer", "ratio", "target"],
        [
            ["--shape current, changes/s", f"{CHANGES / current:,.0f}", f"{CHANGES / direct:,.0f} (pymongo bulk_write)",
             f"{direct / current:.2f}x", ">= 0.9x"],
            ["all four shapes, changes/s", f"{CHANGES / every:,.0f}", f"{CHANGES / events_only:,.0f} (--shape events)",
             f"{events_only / every:.2f}x", ">= 0.5x"],
            [f"verify {VERIFY_ROWS:,} rows, s", f"{verify:.1f}", f"{pymongo_read:.1f} (pymongo find, sorted)",
             f"{verify / pymongo_read:.2f}x time", "<= 1.2x"],
        ],
        notes=[f"Loading the {VERIFY_ROWS:,}-row snapshot with --shape current took {load:.1f} s "
               f"({VERIFY_ROWS / load:,.0f} rows/s). One run each."])
    for name in ["file", "events", "current", "every", "ledger"]:
        psql(f"SELECT pg_drop_replication_slot('{name}')", DB)
    for database in client.list_database_names():
        if database.endswith(str(stamp)):
            client.drop_database(database)


if __name__ == "__main__":
    main()
