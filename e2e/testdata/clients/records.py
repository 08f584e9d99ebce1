"""Shared helpers for the e2e client scripts.

Records travel between the Go tests and these scripts as JSON lines, one
record per line, with every byte field base64-encoded so the round trip is
byte-exact:

    {"partition": 0, "offset": 5, "timestamp": 1700000000000,
     "key": "a2V5", "value": "dmFsdWU=", "headers": [{"key": "h", "value": "dg=="}]}

A null key, value or header value is JSON null.
"""

import base64
import json
import sys


def b64(data):
    """Encodes bytes (or None) for JSON."""
    if data is None:
        return None
    return base64.b64encode(bytes(data)).decode("ascii")


def unb64(text):
    """Decodes a JSON field written by b64 or by Go's encoding/json."""
    if text is None:
        return None
    return base64.b64decode(text)


def read_records(path):
    """Yields the records of a JSON-lines file as dicts with decoded bytes."""
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            yield {
                "partition": r["partition"],
                "timestamp": r.get("timestamp") or None,
                "key": unb64(r.get("key")),
                "value": unb64(r.get("value")),
                "headers": [(h["key"], unb64(h.get("value"))) for h in (r.get("headers") or [])],
            }


def record_line(partition, offset, timestamp, key, value, headers):
    """Returns one record as a JSON line (without the newline)."""
    return json.dumps({
        "partition": partition,
        "offset": offset,
        "timestamp": timestamp,
        "key": b64(key),
        "value": b64(value),
        "headers": [{"key": k, "value": b64(v)} for k, v in (headers or [])],
    }, separators=(",", ":"))


def emit(result):
    """Prints a machine-readable result line for the Go test."""
    print(json.dumps(result, sort_keys=True), flush=True)


def fail(message, **fields):
    """Prints an error result and exits non-zero."""
    fields["error"] = message
    emit(fields)
    sys.exit(1)
