#!/usr/bin/python3
"""confluent-kafka-python (librdkafka) driver for the e2e tests.

  produce --bootstrap B --topic T --compression C --input FILE
      Produces the records of FILE (JSON lines, see records.py) with acks=all
      and prints {"produced": N, "failed": M}; exits 1 if any failed.
  consume --bootstrap B --topic T --partitions P --count N --output FILE
      Reads partitions 0..P-1 from the beginning until N records arrived,
      writes them to FILE as JSON lines and prints {"consumed": N}.
  admin --bootstrap B --ops FILE
      Runs the admin operations of FILE (a JSON list, see admin_op) in order
      and prints one JSON result per operation.
"""

import argparse
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic

from records import emit, fail, read_records, record_line


def produce(args):
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "compression.type": args.compression,
        "acks": "all",
        "linger.ms": 20,
        "queue.buffering.max.messages": 1000000,
        "queue.buffering.max.kbytes": 1048576,
    })
    state = {"ok": 0, "failed": 0, "first_error": None}

    def delivered(err, msg):
        if err is None:
            state["ok"] += 1
            return
        state["failed"] += 1
        if state["first_error"] is None:
            state["first_error"] = str(err)

    sent = 0
    for r in read_records(args.input):
        kwargs = {
            "value": r["value"],
            "key": r["key"],
            "partition": r["partition"],
            "headers": r["headers"],
            "on_delivery": delivered,
        }
        if r["timestamp"]:
            kwargs["timestamp"] = r["timestamp"]
        while True:
            try:
                producer.produce(args.topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.1)
        sent += 1
        if sent % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(args.timeout)
    if remaining or state["failed"] or state["ok"] != sent:
        fail(state["first_error"] or "not all records were acknowledged",
             produced=state["ok"], failed=state["failed"], unflushed=remaining)
    emit({"produced": state["ok"], "failed": 0})


def consume(args):
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "fjord-e2e-confluent",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
    })
    consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in range(args.partitions)])
    got = 0
    deadline = time.monotonic() + args.timeout
    errors = []
    with open(args.output, "w", encoding="utf-8") as out:
        while got < args.count:
            if time.monotonic() > deadline:
                fail("timed out", consumed=got, errors=errors[:5])
            for m in consumer.consume(num_messages=10000, timeout=1.0):
                if m.error() is not None:
                    errors.append(str(m.error()))
                    if m.error().fatal():
                        fail(str(m.error()), consumed=got)
                    continue
                _, ts = m.timestamp()
                out.write(record_line(m.partition(), m.offset(), ts, m.key(), m.value(), m.headers()))
                out.write("\n")
                got += 1
    consumer.close()
    emit({"consumed": got})


def error_result(exc):
    """Turns an admin exception into {"error": code, "error_name": name}."""
    if isinstance(exc, KafkaException) and exc.args and hasattr(exc.args[0], "code"):
        err = exc.args[0]
        return {"error": err.code(), "error_name": err.name()}
    return {"error": -1, "error_name": type(exc).__name__ + ": " + str(exc)}


def admin_op(admin, op):
    kind = op["op"]
    topic = op.get("topic")
    if kind == "create":
        nt = NewTopic(topic, num_partitions=op.get("partitions", 1),
                      replication_factor=op.get("replication_factor", 1),
                      config=op.get("configs") or {})
        admin.create_topics([nt], operation_timeout=30)[topic].result()
        return {}
    if kind == "describe_configs":
        res = ConfigResource("topic", topic)
        entries = admin.describe_configs([res])[res].result()
        return {"configs": {name: e.value for name, e in entries.items()}}
    if kind == "alter_configs":
        res = ConfigResource("topic", topic, set_config=op["configs"])
        admin.alter_configs([res])[res].result()
        return {}
    if kind == "create_partitions":
        admin.create_partitions([NewPartitions(topic, op["total"])], operation_timeout=30)[topic].result()
        return {}
    if kind == "delete":
        admin.delete_topics([topic], operation_timeout=30)[topic].result()
        return {}
    if kind == "list":
        md = admin.list_topics(timeout=10)
        return {"topics": sorted(t for t in md.topics if not t.startswith("__"))}
    if kind == "describe_topic":
        md = admin.list_topics(topic=topic, timeout=10)
        tm = md.topics.get(topic)
        if tm is None:
            return {"error": 3, "error_name": "UNKNOWN_TOPIC_OR_PART"}
        if tm.error is not None:
            return {"error": tm.error.code(), "error_name": tm.error.name()}
        return {"partitions": len(tm.partitions)}
    if kind == "wait_topic":
        deadline = time.monotonic() + op.get("timeout_s", 30)
        while True:
            md = admin.list_topics(timeout=10)
            tm = md.topics.get(topic)
            present = tm is not None and tm.error is None
            if present == op["present"] and (not present or "partitions" not in op
                                              or len(tm.partitions) == op["partitions"]):
                return {"ok": True}
            if time.monotonic() > deadline:
                return {"ok": False}
            time.sleep(0.2)
    raise ValueError("unknown op " + kind)


def admin(args):
    with open(args.ops, "r", encoding="utf-8") as f:
        ops = json.load(f)
    client = AdminClient({"bootstrap.servers": args.bootstrap})
    for op in ops:
        result = {"op": op["op"], "error": 0}
        if "topic" in op:
            result["topic"] = op["topic"]
        try:
            result.update(admin_op(client, op))
        except Exception as exc:  # reported to the Go test, which asserts on it
            result.update(error_result(exc))
        emit(result)


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
    args = ap.parse_args()
    {"produce": produce, "consume": consume, "admin": admin}[args.cmd](args)


if __name__ == "__main__":
    main()
