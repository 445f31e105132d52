"""Events per second from the Kafka topic to accepted (offset committed) and to succeeded.

Not a test: run it against a running stack (`make run` in another shell), which is the whole
setup:  uv run python bench/kafka_events.py [--events 1000]  (or make bench)
It writes bench/results/kafka.json and prints one line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--topic", default="dns.requests")
    parser.add_argument("--results", default="dns.requests.results")
    parser.add_argument("--group", default="hostmaster", help="the consumer's group, to read its committed offset")
    parser.add_argument("--zone", default="example.test")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    producer = KafkaProducer(bootstrap_servers=args.bootstrap, acks="all", linger_ms=5)
    ids = {f"bench-{run}-{index}" for index in range(args.events)}
    started = time.monotonic()
    last_offset = 0
    for index, event_id in enumerate(sorted(ids)):
        event = {
            "schema_version": 1,
            "event_id": event_id,
            "operation": "record.create",
            "body": {"name": f"e{index}.{run}.bench.{args.zone}", "type": "TXT", "values": [event_id]},
        }
        future = producer.send(args.topic, json.dumps(event).encode())
        if index == len(ids) - 1:
            last_offset = future.get(timeout=30).offset
    producer.flush()
    published = time.monotonic() - started

    results = KafkaConsumer(
        args.results,
        bootstrap_servers=args.bootstrap,
        group_id=f"bench-{run}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
    )
    accepted_at = succeeded_at = None
    done: set[str] = set()
    deadline = started + args.timeout
    while time.monotonic() < deadline and (succeeded_at is None or accepted_at is None):
        if accepted_at is None and committed(args) > last_offset:
            accepted_at = time.monotonic() - started
        for records in results.poll(timeout_ms=500).values():
            for record in records:
                value = json.loads(record.value)
                if value["event_id"] in ids and value["status"] == "succeeded":
                    done.add(value["event_id"])
        if succeeded_at is None and len(done) == len(ids):
            succeeded_at = time.monotonic() - started
    if accepted_at is None or succeeded_at is None:
        print(f"timed out: {len(done)} of {len(ids)} succeeded", file=sys.stderr)
        return 1
    figures = {
        "events": args.events,
        "publish_s": round(published, 2),
        "kafka_accepted_events_per_s": round(args.events / accepted_at, 1),
        "kafka_events_per_s": round(args.events / succeeded_at, 1),
    }
    Path(__file__).parent.joinpath("results", "kafka.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))
    return 0


def committed(args: argparse.Namespace) -> int:
    """The consumer group's committed offset, asked afresh (a consumer caches what it read)."""
    probe = KafkaConsumer(bootstrap_servers=args.bootstrap, group_id=args.group, enable_auto_commit=False)
    try:
        return int(probe.committed(TopicPartition(args.topic, 0)) or 0)
    finally:
        probe.close()


if __name__ == "__main__":
    sys.exit(main())
