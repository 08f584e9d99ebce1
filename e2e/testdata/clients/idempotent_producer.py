#!/usr/bin/python3
"""Idempotent confluent-kafka-python (librdkafka) producer for the e2e tests.

  idempotent_producer.py --bootstrap B --topic T --count N --partitions P

Produces records 0..N-1 with enable.idempotence=true and acks=all: record i
has the value str(i) and goes to partition i % P. Every 1000 acknowledged
records it prints {"acked": n}, so that a test can restart the broker while
the stream runs; at the end {"produced": n, "failed": 0}, or an error result
and exit status 1 if any record failed or librdkafka reported a fatal error
(which is how librdkafka reports an idempotence violation it detects).
"""

import argparse

from confluent_kafka import Producer

from records import emit, fail


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--partitions", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()

    state = {"acked": 0, "failed": 0, "first_error": None, "fatal": None}

    def on_error(err):
        # Connection losses while the broker restarts are expected and
        # retried; a fatal error ends idempotent production.
        if err.fatal():
            state["fatal"] = str(err)

    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.num.messages": 500,
        "message.timeout.ms": int(args.timeout * 1000),
        "queue.buffering.max.messages": args.count,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "error_cb": on_error,
    })

    def delivered(err, msg):
        if err is not None:
            state["failed"] += 1
            if state["first_error"] is None:
                state["first_error"] = str(err)
            return
        state["acked"] += 1
        if state["acked"] % 1000 == 0:
            emit({"acked": state["acked"]})

    for i in range(args.count):
        if state["fatal"]:
            break
        while True:
            try:
                producer.produce(args.topic, value=str(i).encode(), partition=i % args.partitions,
                                 on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(args.timeout)
    if state["fatal"]:
        fail("fatal error: " + state["fatal"], acked=state["acked"])
    if remaining or state["failed"] or state["acked"] != args.count:
        fail(state["first_error"] or "not all records were acknowledged",
             acked=state["acked"], failed=state["failed"], unflushed=remaining)
    emit({"produced": state["acked"], "failed": 0})


if __name__ == "__main__":
    main()
