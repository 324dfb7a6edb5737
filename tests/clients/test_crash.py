"""Kill -9 under acks=all load, then restart: every acknowledged record is there, in order, once."""

import threading
import time

from confluent_kafka import Producer

from clients import ck_consume, create_topic, high_watermarks
from conftest import ON_KAFKA


def test_kill9_under_acks_all_keeps_every_acknowledged_record(make_broker):
    broker = make_broker(shards=2)
    create_topic(broker.bootstrap, "durable", partitions=4)
    acked = {}
    stop = threading.Event()

    def produce():
        producer = Producer({
            "bootstrap.servers": broker.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 1,
            "message.timeout.ms": 5000,
            "reconnect.backoff.max.ms": 200,
        })

        def report(err, msg):
            if err is None:
                acked[msg.value()] = (msg.partition(), msg.offset())

        i = 0
        while not stop.is_set():
            try:
                producer.produce("durable", key=str(i % 16).encode(), value=f"rec-{i:08d}".encode(), on_delivery=report)
                i += 1
            except BufferError:
                pass
            producer.poll(0)
        producer.flush(10)

    thread = threading.Thread(target=produce)
    thread.start()
    time.sleep(2.0)
    count_at_kill = len(acked)
    broker.kill9()
    stop.set()
    thread.join(30)
    assert count_at_kill > 100, f"only {count_at_kill} records were acknowledged before the kill"
    broker.restart()
    if not ON_KAFKA:  # Sluice's log lines: the restart saw an unclean stop
        ready_lines = [line for line in broker.log().splitlines() if "ready to serve" in line]
        assert len(ready_lines) == 2 and "clean_start=false" in ready_lines[-1]
    # Read every record the partitions hold, not just as many as were acknowledged: records written but not yet
    # acknowledged when the broker died are there too, and stopping at len(acked) left acknowledged ones unread.
    stored = sum(high_watermarks(broker.bootstrap, "durable", 4))
    assert stored >= len(acked), f"the partitions hold {stored} records, fewer than the {len(acked)} acknowledged"
    got = ck_consume(broker.bootstrap, "durable", [0, 1, 2, 3], stored, timeout=60)
    seen = {}
    for m in got:
        assert m.value() not in seen, f"{m.value()} stored twice"
        seen[m.value()] = (m.partition(), m.offset())
    missing = [v for v in acked if v not in seen]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}"
    for value, position in acked.items():
        assert seen[value] == position, f"{value} moved from {position} to {seen[value]}"
    for p in range(4):
        offsets = [m.offset() for m in got if m.partition() == p]
        assert offsets == sorted(offsets) and len(offsets) == len(set(offsets))
    broker.stop()
