#!/usr/bin/python3
"""kafka-python group consumer (KafkaConsumer with a group_id) for the e2e
group tests.

  group_consumer_kafka_python.py --bootstrap B --topic T --group G --client-id C
      [--session-timeout-ms N] [--heartbeat-interval-ms N] [--limit N]

The same behaviour, events and commands as group_consumer_confluent.py (see
group_events.py): eager rebalancing with kafka-python's default range and
roundrobin assignors, one record per poll, each committed synchronously before
the next poll. kafka-python rejoins the group only inside poll(), so no
record is ever processed while another member owns its partition.
"""

import argparse
import time

from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka import errors as kerrors
from kafka.structs import OffsetAndMetadata

from group_events import Control, emit, log

# kafka-python probes the broker's version at start-up; its 2 s default is
# short on a loaded CI machine.
VERSION_PROBE_MS = 15000


class Listener(ConsumerRebalanceListener):
    def on_partitions_revoked(self, revoked):
        emit("revoked", partitions=sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned):
        emit("assigned", partitions=sorted(tp.partition for tp in assigned))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--session-timeout-ms", type=int, default=10000)
    ap.add_argument("--heartbeat-interval-ms", type=int, default=500)
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()

    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        api_version_auto_timeout_ms=VERSION_PROBE_MS,
        group_id=args.group,
        client_id=args.client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.heartbeat_interval_ms,
        reconnect_backoff_ms=50,
        reconnect_backoff_max_ms=500,
    )
    ctl = Control()
    consumer.subscribe([args.topic], listener=Listener())
    emit("subscribed")
    processed = 0
    while ctl.step() and not (args.limit and processed >= args.limit):
        if ctl.paused:
            time.sleep(0.05)
            continue
        batches = consumer.poll(timeout_ms=200, max_records=1)
        for tp, msgs in batches.items():
            for m in msgs:
                emit("record", partition=tp.partition, offset=m.offset, value=m.value.decode())
                try:
                    consumer.commit({tp: OffsetAndMetadata(m.offset + 1, None)})
                except kerrors.KafkaError as exc:
                    emit("commit_error", partition=tp.partition, offset=m.offset, error=repr(exc))
                processed += 1
    consumer.close(autocommit=False)
    emit("closed")


if __name__ == "__main__":
    main()
