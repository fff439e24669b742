"""Reads change events back from MongoDB with pymongo and compares each
event's after.doc with the jsonb text PostgreSQL holds, by meaning: numbers
by value (never wrapped, zeroed or turned into strings), documents by their
keys ("$date" stays a key), arrays item by item. Prints one line per
mismatch and exits 1 if there is any.

    python compare_json_values.py URI DATABASE ROWS.json
ROWS.json: {"<id>": "<jsonb text>", ...}
"""
import json
import sys
from decimal import Decimal

from bson.decimal128 import Decimal128
from bson.int64 import Int64
from pymongo import MongoClient


def same(expected, actual, path):
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        return [] if type(actual) is type(expected) and actual == expected else [f"{path}: {actual!r} != {expected!r}"]
    if isinstance(expected, (int, Decimal)):
        if isinstance(actual, bool):
            return [f"{path}: {actual!r} is not a number"]
        if isinstance(actual, Decimal128):
            ok = actual.to_decimal() == Decimal(expected)
        elif isinstance(actual, (int, Int64)):
            ok = Decimal(int(actual)) == Decimal(expected)
        elif isinstance(actual, float):
            ok = actual == float(expected)
        else:
            ok = False
        return [] if ok else [f"{path}: {actual!r} != {expected}"]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: {actual!r} != {expected!r}"]
        return [m for i, (e, a) in enumerate(zip(expected, actual)) for m in same(e, a, f"{path}[{i}]")]
    if isinstance(expected, dict):
        if not isinstance(actual, dict) or set(actual) != set(expected):
            return [f"{path}: {actual!r} != {expected!r}"]
        return [m for k in expected for m in same(expected[k], actual[k], f"{path}.{k}")]
    return [f"{path}: unexpected {expected!r}"]


def main():
    uri, database, rows_path = sys.argv[1:4]
    rows = json.load(open(rows_path))
    events = MongoClient(uri)[database]["changeEvents"].find({"operation": "insert"})
    seen = {}
    for event in events:
        seen[str(event["entityId"])] = event["after"]["doc"]
    mismatches = []
    for key, text in rows.items():
        expected = json.loads(text, parse_float=Decimal, parse_int=int)
        if key not in seen:
            mismatches.append(f"row {key}: no event")
            continue
        mismatches += same(expected, seen[key], f"row {key}")
    for line in mismatches:
        print(line)
    print(f"{len(rows)} values compared, {len(mismatches)} mismatches")
    sys.exit(1 if mismatches else 0)


main()
