"""Reads and alters the MongoDB shapes with pymongo, for the shape tests.

  shapes_tool.py check URI DB EMBED_LAST    every keyed collection's invariants, as JSON
  shapes_tool.py dump URI DB COLLECTION     the documents, as Extended JSON lines, in _id order
  shapes_tool.py tamper URI DB COLLECTION change|remove|add
"""
import json
import sys

import pymongo
from bson import json_util


def check(db, embed_last):
    """Versions dense per key in every <c>History; each current document's
    currentVersion is its last history version; _history holds the last
    versions since the document was last removed, consecutive, at most
    embed_last (hard deletes: the tests with embedded do not soft-delete)."""
    report = {"collections": {}, "problems": []}
    names = set(db.list_collection_names())
    for name in sorted(names):
        if not name.endswith("History"):
            continue
        current = name[: -len("History")]
        versions = {}
        removed = {}  # the last version that removed the document (its embedded versions went with it)
        for doc in db[name].find({}, {"entityId": 1, "version": 1, "operation": 1}):
            key = json_util.dumps(doc["entityId"])
            versions.setdefault(key, []).append(doc["version"])
            if doc["operation"] in ("delete", "truncate"):
                removed[key] = max(removed.get(key, 0), doc["version"])
        for key, found in versions.items():
            if sorted(found) != list(range(1, len(found) + 1)):
                report["problems"].append(f"{name}: {key} has versions {sorted(found)}")
        documents = 0
        for doc in db[current].find():
            documents += 1
            key = json_util.dumps(doc["_id"])
            last = max(versions.get(key, [0]))
            if doc.get("currentVersion") != last:
                report["problems"].append(f"{current}: {key} currentVersion {doc.get('currentVersion')}, history ends at {last}")
            if "_history" in doc:
                embedded = [entry["version"] for entry in doc["_history"]]
                expected = list(range(max(removed.get(key, 0) + 1, last - embed_last + 1), last + 1))
                if embedded != expected:
                    report["problems"].append(f"{current}: {key} _history {embedded}, expected {expected}")
        report["collections"][current] = {"documents": documents, "keys": len(versions),
                                          "versions": sum(len(v) for v in versions.values())}
    return report


def main():
    command, uri, database = sys.argv[1:4]
    db = pymongo.MongoClient(uri)[database]
    if command == "check":
        print(json.dumps(check(db, int(sys.argv[4])), sort_keys=True))
    elif command == "dump":
        for doc in db[sys.argv[4]].find().sort("_id", 1):
            print(json_util.dumps(doc, json_options=json_util.RELAXED_JSON_OPTIONS))
    elif command == "tamper":
        collection, how = db[sys.argv[4]], sys.argv[5]
        first = collection.find_one(sort=[("_id", 1)])
        if how == "change":
            field = next(k for k in first if k not in ("_id", "currentVersion", "updatedAt", "lastEventId", "lastPosition", "_history", "deletedAt"))
            collection.update_one({"_id": first["_id"]}, {"$set": {field: "tampered"}})
        elif how == "remove":
            collection.delete_one({"_id": first["_id"]})
        elif how == "add":
            collection.insert_one({"_id": 987654321, "name": "added behind the stream's back"})
        print(json_util.dumps(first["_id"]))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
