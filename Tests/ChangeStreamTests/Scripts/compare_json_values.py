"""Reads change events back with tools nobody here wrote, and compares each
event's after.doc with the jsonb text PostgreSQL holds, by meaning: numbers
by value (never wrapped, zeroed or turned into strings), documents by their
keys ("$date" stays a key), arrays item by item. Prints one line per
mismatch and exits 1 if there is any.

    python compare_json_values.py mongodb URI DATABASE ROWS.json   # pymongo
    python compare_json_values.py file EVENTS.jsonl ROWS.json      # bson.json_util
ROWS.json: {"<id>": "<jsonb text>", ...}

In a JSON-lines file, a value with a key that begins with "$" is written as
a JSON string of its text (Extended JSON cannot write such a key): there the
string must be exactly the row's text, and nothing else may be a string.
"""
import json
import sys
from decimal import Decimal

from bson.decimal128 import Decimal128
from bson import json_util
from bson.int64 import Int64


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


def has_dollar_key(value):
    if isinstance(value, dict):
        return any(k.startswith("$") or has_dollar_key(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_dollar_key(v) for v in value)
    return False


def main():
    if sys.argv[1] == "mongodb":
        from pymongo import MongoClient
        uri, database, rows_path = sys.argv[2:5]
        events = list(MongoClient(uri)[database]["changeEvents"].find({"operation": "insert"}))
        as_text = False
    else:
        events_path, rows_path = sys.argv[2:4]
        events = [json_util.loads(line) for line in open(events_path) if line.strip()]
        as_text = True
    rows = json.load(open(rows_path))
    seen = {}
    for event in events:
        if event["operation"] == "insert":
            seen[str(event["entityId"])] = event["after"]["doc"]
    mismatches = []
    for key, text in rows.items():
        expected = json.loads(text, parse_float=Decimal, parse_int=int)
        if key not in seen:
            mismatches.append(f"row {key}: no event")
        elif as_text and has_dollar_key(expected):
            if seen[key] != text:
                mismatches.append(f"row {key}: {seen[key]!r} is not the row's text {text!r}")
        else:
            mismatches += same(expected, seen[key], f"row {key}")
    for line in mismatches:
        print(line)
    print(f"{len(rows)} values compared, {len(mismatches)} mismatches")
    sys.exit(1 if mismatches else 0)


main()
