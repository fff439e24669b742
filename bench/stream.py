"""bench/stream: how fast `temporal stream run` drains a backlog, against
pg_recvlogical (the floor: pgoutput bytes to a file) and against pymongo
writing the same documents straight into the same MongoDB-compatible server;
its peak memory through one transaction of a million rows; and the lag from
commit to written at a steady rate.

Runs with the project's venv Python (pymongo). Slots are created before the
backlog, so every consumer drains the very same changes.
"""
import json
import os
import subprocess
import tempfile
import threading
import time
from datetime import datetime

from benchlib import TEMPORAL, log, print_table, psql

import bson.json_util
from pymongo import MongoClient

CHANGES = int(os.environ.get("BENCH_CHANGES", "400000"))
BIG = int(os.environ.get("BENCH_BIG_TRANSACTION", "1000000"))
RATE = int(os.environ.get("BENCH_RATE", "2000"))
LAG_SECONDS = int(os.environ.get("BENCH_LAG_SECONDS", "30"))
DB = os.environ.get("BENCH_DB", "bench_stream")
MONGO = os.environ["TEMPORAL_TEST_MONGODB"]
CONNINFO = f"dbname={DB}"


def run(arguments, **kwargs):
    """Runs a command to completion; returns (seconds, peak RSS in MB).

    The peak is the program's own VmHWM, read from /proc while it runs: the
    ru_maxrss that wait4 reports also counts the memory of the forked Python
    process before it exec'd the program, which here is far larger.
    """
    started = time.monotonic()
    process = subprocess.Popen(arguments, stdout=kwargs.get("stdout", subprocess.DEVNULL), stderr=subprocess.PIPE, text=True)
    peak_kb = 0
    while True:
        try:
            with open(f"/proc/{process.pid}/status") as status_file:
                for line in status_file:
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
        pid, status = os.waitpid(process.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.02)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{arguments[0]} failed: {process.stderr.read()}")
    return seconds, peak_kb / 1024


def slot(name):
    psql(f"SELECT pg_create_logical_replication_slot('{name}', 'pgoutput')", DB)


def stream(slot_name, end, *sink):
    return run([TEMPORAL, "stream", "run", "--db", CONNINFO, "--publication", "pub", "--slot", slot_name,
                "--end-lsn", end, "--heartbeat", "0.2", *sink])


def drop_slots():
    psql(f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '{DB}' AND NOT active",
         "postgres")


def main():
    drop_slots()   # a database with replication slots cannot be dropped
    psql(f"DROP DATABASE IF EXISTS {DB}", "postgres")
    psql(f"CREATE DATABASE {DB}", "postgres")
    version = psql("SHOW server_version", DB)
    psql("""CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL,
                                    balance numeric(12,2) NOT NULL, updated_at timestamptz NOT NULL);
            ALTER TABLE customers REPLICA IDENTITY FULL;
            CREATE PUBLICATION pub FOR TABLE customers;""", DB)
    workdir = tempfile.mkdtemp(prefix="bench-stream-")
    for name in ["ours_file", "recvlogical", "ours_mongo"]:
        slot(name)

    log(f"backlog: {CHANGES:,} changes (half inserts, half updates, 1,000 per transaction)")
    half = CHANGES // 2
    for start in range(0, half, 1000):
        psql(f"""INSERT INTO customers SELECT g, 'Customer ' || g, 'c' || g || '@example.com', g / 7.0, now()
                 FROM generate_series({start + 1}, {start + 1000}) g""", DB)
    for start in range(0, half, 1000):
        psql(f"UPDATE customers SET balance = balance + 1, updated_at = now() WHERE id BETWEEN {start + 1} AND {start + 1000}", DB)
    end = psql("SELECT pg_current_wal_lsn()", DB)

    log("draining with temporal stream run --output")
    events_file = os.path.join(workdir, "events.jsonl")
    ours_file, _ = stream("ours_file", end, "--output", events_file)
    with open(events_file) as f:
        written = sum(1 for _ in f)
    assert written == CHANGES, f"{written} events for {CHANGES} changes"

    log("draining with pg_recvlogical")
    recv, _ = run(["pg_recvlogical", "-d", DB, "--slot", "recvlogical", "--start", "--no-loop", "-E", end,
                   "-o", "proto_version=1", "-o", "publication_names=pub", "-f", os.path.join(workdir, "recvlogical.out")])

    log("draining into MongoDB (SecantusDB)")
    database = f"bench_{int(time.time())}"
    ours_mongo, _ = stream("ours_mongo", end, "--mongodb", MONGO, "--database", database)
    client = MongoClient(MONGO)
    assert client[database]["changeEvents"].count_documents({}) == CHANGES

    log("pymongo insert_many of the same documents, 1,000 per call")
    with open(events_file) as f:
        documents = [bson.json_util.loads(line) for line in f]
    target = client[database]["direct"]
    started = time.monotonic()
    for start in range(0, len(documents), 1000):
        target.insert_many(documents[start:start + 1000], ordered=False)
    direct = time.monotonic() - started
    del documents

    log(f"one transaction of {BIG:,} rows: peak memory")
    psql("CREATE TABLE big (id bigint PRIMARY KEY, payload text); ALTER TABLE big REPLICA IDENTITY FULL; "
         "CREATE PUBLICATION big_pub FOR TABLE big;", DB)
    slot("big")
    psql(f"INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, {BIG}) g", DB)
    big_end = psql("SELECT pg_current_wal_lsn()", DB)
    big_seconds, peak_mb = run([TEMPORAL, "stream", "run", "--db", CONNINFO, "--publication", "big_pub", "--slot", "big",
                                "--end-lsn", big_end, "--heartbeat", "0.2", "--output", os.path.join(workdir, "big.jsonl")])

    log(f"lag at a steady {RATE:,} changes/s for {LAG_SECONDS} s")
    psql("CREATE TABLE steady (id bigserial PRIMARY KEY, v int); ALTER TABLE steady REPLICA IDENTITY FULL; "
         "CREATE PUBLICATION steady_pub FOR TABLE steady;", DB)
    slot("steady")
    lag_file = os.path.join(workdir, "lag.jsonl")
    open(lag_file, "w").close()
    streamer = subprocess.Popen([TEMPORAL, "stream", "run", "--db", CONNINFO, "--publication", "steady_pub", "--slot", "steady",
                                 "--output", lag_file], stderr=subprocess.DEVNULL)
    lags = []
    stop = threading.Event()

    def follow():
        with open(lag_file) as f:
            buffer = ""
            while not stop.is_set():
                chunk = f.read()
                now = time.time()
                if not chunk:
                    time.sleep(0.0005)
                    continue
                buffer += chunk
                *lines, buffer = buffer.split("\n")
                for line in lines:
                    committed = json.loads(line)["timestamp"]["$date"].replace("Z", "+00:00")
                    lags.append(now - datetime.fromisoformat(committed).timestamp())
    follower = threading.Thread(target=follow)
    follower.start()
    time.sleep(1)
    with tempfile.NamedTemporaryFile("w", suffix=".pgb", delete=False) as script:
        script.write("INSERT INTO steady (v) SELECT g FROM generate_series(1, 10) g;\n")
    subprocess.run(["pgbench", "-n", "-c", "2", "-j", "2", "-R", str(RATE // 10), "-T", str(LAG_SECONDS), "-f", script.name, DB],
                   check=True, capture_output=True)
    time.sleep(1)
    stop.set()
    follower.join()
    streamer.terminate()
    streamer.wait()
    lags.sort()
    p50 = lags[len(lags) // 2] * 1000
    p99 = lags[int(len(lags) * 0.99)] * 1000

    drop_slots()   # slots keep WAL for ever; leave none behind
    rate_file, rate_recv = CHANGES / ours_file, CHANGES / recv
    rate_mongo, rate_direct = CHANGES / ours_mongo, CHANGES / direct
    print_table(
        f"bench/stream: PostgreSQL {version}, backlog of {CHANGES:,} changes (inserts and updates, REPLICA IDENTITY FULL)",
        ["measure", "temporal stream", "peer", "ratio", "target"],
        [
            ["drain to a file (changes/s)", f"{rate_file:,.0f} (JSON lines, fsynced)", f"{rate_recv:,.0f} (pg_recvlogical, pgoutput bytes)",
             f"{rate_file / rate_recv:.2f}x", ">= 0.8x"],
            ["drain into MongoDB / SecantusDB (changes/s)", f"{rate_mongo:,.0f}", f"{rate_direct:,.0f} (pymongo insert_many, 1,000 per call)",
             f"{rate_mongo / rate_direct:.2f}x", ">= 0.9x"],
            [f"peak RSS, one transaction of {BIG:,} rows", f"{peak_mb:.0f} MB ({BIG / big_seconds:,.0f} changes/s)", "", "", "<= 200 MB"],
            [f"lag commit -> written, p50 at {RATE:,} changes/s", f"{p50:.1f} ms", "Debezium Server: ~210 ms average (published)", "", "<= 50 ms"],
            [f"lag commit -> written, p99 at {RATE:,} changes/s", f"{p99:.1f} ms ({len(lags):,} events)", "", "", "<= 250 ms"],
        ],
        notes=[
            "Drains start from a slot created before the backlog and stop at the same end LSN (--end-lsn, pg_recvlogical -E).",
            "pymongo writes the very documents temporal wrote (read back from its JSON lines) into another collection.",
            "Lag: commit timestamps (ms) of the events against the moment their line appears in the file (polled every 0.5 ms).",
        ])


if __name__ == "__main__":
    main()
