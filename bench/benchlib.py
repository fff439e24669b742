"""Helpers shared by the benchmarks: psql and pgbench against the throwaway
cluster of scripts/pg-start (its PGHOST/PGPORT come from the environment),
medians, and the comparison table every benchmark prints."""
import os
import re
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPORAL = os.environ.get("TEMPORAL_BIN", os.path.join(REPO, ".build/release/temporal"))


def log(message):
    print(message, file=sys.stderr, flush=True)


def psql(sql, db, *, quiet=True):
    """Runs SQL with psql and returns its unaligned, tuples-only output."""
    result = subprocess.run(
        ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
        capture_output=True, text=True, env={**os.environ, "PGOPTIONS": "-c client_min_messages=warning"})
    if result.returncode != 0:
        raise RuntimeError(f"psql failed: {result.stderr.strip()}\nSQL: {sql[:400]}")
    return result.stdout.strip()


def psql_script(script, db):
    """Runs a script of statements through psql's standard input; returns its
    unaligned, tuples-only output."""
    result = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db],
                            input=script, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"psql failed: {result.stderr.strip()}")
    return result.stdout


def timed(sql, db, statement=-1):
    """Seconds a statement takes, measured by psql's \\timing (client side);
    of several statements, the one at index `statement` (the last by default)."""
    result = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db],
        input=f"\\timing on\n{sql};\n", capture_output=True, text=True,
        env={**os.environ, "PGOPTIONS": "-c client_min_messages=warning"})
    if result.returncode != 0:
        raise RuntimeError(f"psql failed: {result.stderr.strip()}\nSQL: {sql[:400]}")
    times = re.findall(r"Time: ([0-9.]+) ms", result.stdout)
    return float(times[statement]) / 1000.0


def pgbench(script, db, *, seconds, clients=2):
    """Transactions per second of a pgbench script (prepared statements)."""
    with tempfile.NamedTemporaryFile("w", suffix=".pgb", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        result = subprocess.run(
            ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients),
             "-T", str(seconds), "-f", path, db], capture_output=True, text=True)
    finally:
        os.unlink(path)
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed: {result.stderr.strip()}")
    return float(re.search(r"tps = ([0-9.]+) \(without initial connection time\)", result.stdout).group(1))


def temporal(*arguments, db, env=None):
    """Runs the real temporal binary (the product, not a shortcut)."""
    result = subprocess.run([TEMPORAL, *arguments, "--db", f"dbname={db}"], capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise RuntimeError(f"temporal {' '.join(arguments)} failed: {result.stderr.strip()}")
    return result.stdout


def median(values):
    return statistics.median(values)


def print_table(title, header, rows, notes=()):
    """A Markdown table on stdout: the one thing a benchmark prints there."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    print(title)
    print()
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    if notes:
        print()
        for note in notes:
            print(note)
