#!/usr/bin/python3
"""Streaming idempotent confluent-kafka-python (librdkafka) producer for the
replication e2e tests.

  stream_producer.py --bootstrap B --topic T [--rate R] [--keys K] [--timeout S]

Produces records at about R a second (default 1000) until it reads the line
"stop" on stdin, or stdin closes; then it flushes and exits. Record n has the
key "k<n % K>" (default K 64) and the value "s-<n>", and goes where
librdkafka's default partitioner puts its key. The producer is idempotent
(enable.idempotence=true, acks=all) and retries for up to S seconds
(message.timeout.ms; default 120).

It prints one JSON line per delivery report, as the report arrives, with
Unix milliseconds for when produce() was called ("sent") and when the report
arrived ("at"):

  {"s": n, "p": partition, "o": offset, "sent": ms, "at": ms}        acknowledged
  {"s": n, "p": partition, "err": "NAME", "sent": ms, "at": ms}      failed

then {"done": true, "acked": a, "failed": f, "unflushed": u}; or, when
librdkafka reports a fatal error (how it reports an idempotence violation it
detects), {"fatal": "..."} and exit status 1.
"""

import argparse
import json
import sys
import threading
import time

from confluent_kafka import Producer


def now_ms():
    return int(time.time() * 1000)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--keys", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()

    stop = threading.Event()

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=read_stdin, daemon=True).start()

    out = []
    state = {"acked": 0, "failed": 0, "fatal": None}

    def on_error(err):
        # Connection losses while brokers die and restart are expected and
        # retried; a fatal error ends idempotent production.
        if err.fatal():
            state["fatal"] = str(err)

    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": int(args.timeout * 1000),
        "queue.buffering.max.messages": 1000000,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "error_cb": on_error,
    })

    def report(seq, sent):
        def delivered(err, msg):
            if err is None:
                state["acked"] += 1
                out.append({"s": seq, "p": msg.partition(), "o": msg.offset(), "sent": sent, "at": now_ms()})
            else:
                state["failed"] += 1
                out.append({"s": seq, "p": msg.partition(), "err": err.name(), "sent": sent, "at": now_ms()})
        return delivered

    def drain():
        if out:
            sys.stdout.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in out))
            sys.stdout.flush()
            out.clear()

    seq = 0
    start = time.monotonic()
    while not stop.is_set() and not state["fatal"]:
        due = int((time.monotonic() - start) * args.rate)
        while seq < due:
            try:
                producer.produce(args.topic, key="k%d" % (seq % args.keys), value="s-%d" % seq,
                                 on_delivery=report(seq, now_ms()))
            except BufferError:
                break
            seq += 1
        producer.poll(0.005)
        drain()
    deadline = time.monotonic() + args.timeout + 10
    remaining = len(producer)
    while remaining and time.monotonic() < deadline and not state["fatal"]:
        remaining = producer.flush(0.1)
        drain()
    drain()
    if state["fatal"]:
        print(json.dumps({"fatal": state["fatal"], "acked": state["acked"]}), flush=True)
        sys.exit(1)
    print(json.dumps({"done": True, "acked": state["acked"], "failed": state["failed"],
                      "unflushed": remaining}), flush=True)


if __name__ == "__main__":
    main()
