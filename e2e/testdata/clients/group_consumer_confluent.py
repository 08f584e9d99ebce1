#!/usr/bin/python3
"""confluent-kafka-python (librdkafka) group consumer for the e2e group tests.

  group_consumer_confluent.py --bootstrap B --topic T --group G --client-id C
      [--instance-id I] [--session-timeout-ms N] [--heartbeat-interval-ms N]
      [--limit N]

Subscribes to T as a member of G (eager rebalancing, librdkafka's default
range,roundrobin assignors), reading from the earliest offset where G has no
commit. Every record is processed (printed) and then its offset is committed
synchronously before the next poll: rebalance callbacks run only inside
poll(), so a record is never processed by one member while another owns its
partition, and no record should ever be read twice. With --instance-id the
member is static (KIP-345): close() then does not leave the group.
--limit N closes the consumer after N records. Events and commands: see
group_events.py.
"""

import argparse
import time

from confluent_kafka import Consumer, KafkaException

from group_events import Control, emit, log


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--instance-id")
    ap.add_argument("--session-timeout-ms", type=int)
    ap.add_argument("--heartbeat-interval-ms", type=int, default=500)
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()

    def on_error(err):
        # Connection losses while a broker restarts are retried by librdkafka.
        log("error_cb: %s" % err)

    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "client.id": args.client_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "heartbeat.interval.ms": args.heartbeat_interval_ms,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "error_cb": on_error,
    }
    if args.instance_id:
        conf["group.instance.id"] = args.instance_id
    if args.session_timeout_ms:
        conf["session.timeout.ms"] = args.session_timeout_ms
    consumer = Consumer(conf)

    def on_assign(_, partitions):
        emit("assigned", partitions=sorted(p.partition for p in partitions))

    def on_revoke(_, partitions):
        emit("revoked", partitions=sorted(p.partition for p in partitions))

    def on_lost(_, partitions):
        emit("lost", partitions=sorted(p.partition for p in partitions))

    ctl = Control()
    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    emit("subscribed")
    processed = 0
    while ctl.step():
        if ctl.paused:
            time.sleep(0.05)
            continue
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error() is not None:
            log("consumer error: %s" % msg.error())
            if msg.error().fatal():
                emit("fatal", error=str(msg.error()))
                break
            continue
        emit("record", partition=msg.partition(), offset=msg.offset(), value=msg.value().decode())
        try:
            consumer.commit(message=msg, asynchronous=False)
        except KafkaException as exc:
            emit("commit_error", partition=msg.partition(), offset=msg.offset(), error=str(exc))
        processed += 1
        if args.limit and processed >= args.limit:
            break
    consumer.close()
    emit("closed")


if __name__ == "__main__":
    main()
