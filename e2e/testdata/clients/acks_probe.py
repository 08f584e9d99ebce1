#!/usr/bin/python3
"""Single-record acks=all probe (confluent-kafka-python, librdkafka) for the
replication e2e tests.

  acks_probe.py --bootstrap B --topic T --partitions P [--timeout S]

Produces one record at a time to partitions 0..P-1 in turn, waiting for each
outcome before the next, until it reads the line "stop" on stdin or stdin
closes. The producer is plain (not idempotent) with acks=all and no retries,
so the first error the broker answers is the record's outcome; a record
with no answer fails after S seconds (message.timeout.ms; default 5). Record
n has the value "probe-<n>". Each outcome is one JSON line, with Unix
milliseconds for when the record was produced ("sent") and its outcome
arrived ("at"):

  {"s": n, "p": partition, "o": offset, "sent": ms, "at": ms}        acknowledged
  {"s": n, "p": partition, "err": "NAME", "sent": ms, "at": ms}      failed

where NAME is librdkafka's name for the error, such as NOT_ENOUGH_REPLICAS,
REQUEST_TIMED_OUT or _MSG_TIMED_OUT. At the end it prints {"done": true}.
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
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=5)
    args = ap.parse_args()

    stop = threading.Event()

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=read_stdin, daemon=True).start()

    timeout_ms = int(args.timeout * 1000)
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "enable.idempotence": False,
        "acks": "all",
        "retries": 0,
        "linger.ms": 0,
        "request.timeout.ms": max(timeout_ms - 500, 1000),
        "message.timeout.ms": timeout_ms,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
    })

    seq = 0
    while not stop.is_set():
        partition = seq % args.partitions
        outcome = {}

        def delivered(err, msg, outcome=outcome):
            if err is None:
                outcome["o"] = msg.offset()
            else:
                outcome["err"] = err.name()
            outcome["at"] = now_ms()

        sent = now_ms()
        producer.produce(args.topic, value="probe-%d" % seq, partition=partition, on_delivery=delivered)
        if producer.flush(args.timeout + 5) > 0 and not outcome:
            outcome.update({"err": "FLUSH_TIMEOUT", "at": now_ms()})
        outcome.update({"s": seq, "p": partition, "sent": sent})
        print(json.dumps(outcome, separators=(",", ":"), sort_keys=True), flush=True)
        seq += 1
        time.sleep(0.02)
    print(json.dumps({"done": True}), flush=True)


if __name__ == "__main__":
    main()
