#!/usr/bin/python3
"""kafka-python driver for the e2e tests.

Same commands, arguments and output as confluent_kafka_client.py:

  produce --bootstrap B --topic T --compression C --input FILE
  consume --bootstrap B --topic T --partitions P --count N --output FILE
  admin --bootstrap B --ops FILE
  codecs                      prints {"codecs": [...]} this install can use
"""

import argparse
import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka import codec as kcodec
from kafka import errors as kerrors
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic

from records import emit, fail, read_records, record_line

# kafka-python probes the broker's version at start-up; its 2 s default is
# short on a loaded CI machine.
VERSION_PROBE_MS = 15000


def produce(args):
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap,
        api_version_auto_timeout_ms=VERSION_PROBE_MS,
        acks="all",
        compression_type=None if args.compression == "none" else args.compression,
        linger_ms=20,
        batch_size=256 * 1024,
        buffer_memory=512 * 1024 * 1024,
        max_request_size=8 * 1024 * 1024,
    )
    state = {"ok": 0, "failed": 0, "first_error": None}

    def ok(_):
        state["ok"] += 1

    def failed(exc):
        state["failed"] += 1
        if state["first_error"] is None:
            state["first_error"] = repr(exc)

    sent = 0
    for r in read_records(args.input):
        f = producer.send(args.topic, value=r["value"], key=r["key"], headers=r["headers"],
                          partition=r["partition"], timestamp_ms=r["timestamp"])
        f.add_callback(ok)
        f.add_errback(failed)
        sent += 1
    producer.flush(timeout=args.timeout)
    producer.close(timeout=args.timeout)
    if state["failed"] or state["ok"] != sent:
        fail(state["first_error"] or "not all records were acknowledged",
             produced=state["ok"], failed=state["failed"])
    emit({"produced": state["ok"], "failed": 0})


def consume(args):
    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        api_version_auto_timeout_ms=VERSION_PROBE_MS,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    got = 0
    deadline = time.monotonic() + args.timeout
    with open(args.output, "w", encoding="utf-8") as out:
        while got < args.count:
            if time.monotonic() > deadline:
                fail("timed out", consumed=got)
            for _, recs in consumer.poll(timeout_ms=1000, max_records=10000).items():
                for m in recs:
                    out.write(record_line(m.partition, m.offset, m.timestamp, m.key, m.value, m.headers))
                    out.write("\n")
                    got += 1
    consumer.close()
    emit({"consumed": got})


def error_result(exc):
    """Turns an admin exception into {"error": code, "error_name": name}."""
    code = getattr(exc, "errno", None)
    if isinstance(code, int):
        return {"error": code, "error_name": getattr(exc, "message", type(exc).__name__)}
    return {"error": -1, "error_name": type(exc).__name__ + ": " + str(exc)}


def raise_for(code, message=None):
    if code:
        err = kerrors.for_code(code)
        raise err(message or "")


def admin_op(admin, op):
    kind = op["op"]
    topic = op.get("topic")
    if kind == "create":
        nt = NewTopic(topic, num_partitions=op.get("partitions", 1),
                      replication_factor=op.get("replication_factor", 1),
                      topic_configs=op.get("configs") or {})
        admin.create_topics([nt], timeout_ms=30000)
        return {}
    if kind == "describe_configs":
        responses = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        configs = {}
        for resp in responses:
            for res in resp.resources:
                raise_for(res[0], res[1])
                for entry in res[4]:
                    configs[entry[0]] = entry[1]
        return {"configs": configs}
    if kind == "alter_configs":
        resp = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=op["configs"])])
        for res in resp.resources:
            raise_for(res[0], res[1])
        return {}
    if kind == "create_partitions":
        admin.create_partitions({topic: NewPartitions(total_count=op["total"])}, timeout_ms=30000)
        return {}
    if kind == "delete":
        admin.delete_topics([topic], timeout_ms=30000)
        return {}
    if kind == "list":
        return {"topics": sorted(t for t in admin.list_topics() if not t.startswith("__"))}
    if kind == "describe_topic":
        for t in admin.describe_topics([topic]):
            if t["topic"] == topic:
                if t["error_code"]:
                    return {"error": t["error_code"], "error_name": kerrors.for_code(t["error_code"]).message}
                return {"partitions": len(t["partitions"])}
        return {"error": 3, "error_name": "UNKNOWN_TOPIC_OR_PARTITION"}
    if kind == "wait_topic":
        deadline = time.monotonic() + op.get("timeout_s", 30)
        while True:
            present, parts = False, 0
            for t in admin.describe_topics([topic]):
                if t["topic"] == topic and not t["error_code"]:
                    present, parts = True, len(t["partitions"])
            if present == op["present"] and (not present or "partitions" not in op
                                              or parts == op["partitions"]):
                return {"ok": True}
            if time.monotonic() > deadline:
                return {"ok": False}
            time.sleep(0.2)
    raise ValueError("unknown op " + kind)


def admin(args):
    with open(args.ops, "r", encoding="utf-8") as f:
        ops = json.load(f)
    client = KafkaAdminClient(bootstrap_servers=args.bootstrap, api_version_auto_timeout_ms=VERSION_PROBE_MS)
    for op in ops:
        result = {"op": op["op"], "error": 0}
        if "topic" in op:
            result["topic"] = op["topic"]
        try:
            result.update(admin_op(client, op))
        except Exception as exc:  # reported to the Go test, which asserts on it
            result.update(error_result(exc))
        emit(result)
    client.close()


def codecs(_):
    have = ["none", "gzip"]
    for name, check in (("snappy", kcodec.has_snappy), ("lz4", kcodec.has_lz4), ("zstd", kcodec.has_zstd)):
        if check():
            have.append(name)
    emit({"codecs": have})


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--compression", default="none")
    p.add_argument("--input", required=True)
    p.add_argument("--timeout", type=float, default=300)
    c = sub.add_parser("consume")
    c.add_argument("--bootstrap", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--partitions", type=int, required=True)
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--output", required=True)
    c.add_argument("--timeout", type=float, default=300)
    a = sub.add_parser("admin")
    a.add_argument("--bootstrap", required=True)
    a.add_argument("--ops", required=True)
    sub.add_parser("codecs")
    args = ap.parse_args()
    {"produce": produce, "consume": consume, "admin": admin, "codecs": codecs}[args.cmd](args)


if __name__ == "__main__":
    main()
