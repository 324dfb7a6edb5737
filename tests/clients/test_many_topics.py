"""Hundreds of topics created at once, as librdkafka's test 0042 saw it go wrong on two shards: auto-created by
Metadata and Produce from several connections (so the same topic is asked for by several shards at the same
moment), by CreateTopics from several admin clients, and deleted and created again while records are written
and DeleteRecords moves their log start. No partition may go offline because of the broker's own concurrency,
no checkpoint write may fail, and the broker must still stop cleanly."""

import threading

import pytest
from confluent_kafka import KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import assert_healthy_log

AUTO_TOPICS = [f"auto-{i:03d}" for i in range(240)]
ADMIN_TOPICS = [f"admin-{i:03d}" for i in range(160)]
CONNECTIONS = 4

# What the broker logs when a partition could not be opened or lost a checkpoint write.
OFFLINE_SIGNS = ("checkpoint failed", "partition offline", "partition is offline", "is offline")


def run_all(targets):
    errors = []

    def guarded(target):
        try:
            target()
        except Exception as exc:  # reported below, with the thread's error
            errors.append(repr(exc))

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors


def auto_create_by_producing(bootstrap, order):
    """One connection that produces a record to every topic in `order`: librdkafka asks Metadata with
    auto-create for each unknown topic, and the broker creates it."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "message.timeout.ms": 60000})
    failures = []

    def report(err, _msg):
        if err is not None:
            failures.append(err)

    for topic in order:
        producer.produce(topic, b"v", on_delivery=report)
        producer.poll(0)
    assert producer.flush(90) == 0, "records not delivered"
    assert not failures, failures[:5]


def create_by_admin(bootstrap, topics):
    """CreateTopics for every topic; another client may have created it first."""
    client = AdminClient({"bootstrap.servers": bootstrap})
    futures = client.create_topics([NewTopic(t, num_partitions=4, replication_factor=1) for t in topics],
                                   operation_timeout=60, request_timeout=90)
    for topic, future in futures.items():
        try:
            future.result(120)
        except Exception as exc:
            assert exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, (topic, exc)


def delete_and_recreate(bootstrap, topics):
    client = AdminClient({"bootstrap.servers": bootstrap})
    for topic, future in client.delete_topics(topics, operation_timeout=60, request_timeout=90).items():
        future.result(120)
    create_by_admin(bootstrap, topics)


def delete_records_until(bootstrap, topics, done):
    """DeleteRecords up to the high watermark, over and over, while the topics are deleted and created again.
    A partition that is gone or moving may refuse it; the broker's storage must never be the reason."""
    client = AdminClient({"bootstrap.servers": bootstrap})
    # _NOENT: the client found no leader for a topic that is deleted just then.
    allowed = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
               KafkaError.OFFSET_OUT_OF_RANGE, KafkaError._TIMED_OUT, KafkaError._NOENT}
    while not done.is_set():
        futures = client.delete_records([TopicPartition(t, p, -1) for t in topics for p in range(4)],
                                        request_timeout=30)
        for tp, future in futures.items():
            try:
                future.result(60)
            except Exception as exc:
                assert exc.args[0].code() in allowed, (tp, exc)


def offline_partitions(bootstrap, topics):
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=30)
    bad = []
    for topic in topics:
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            bad.append((topic, found.error if found else "missing"))
            continue
        bad.extend((topic, p.id, p.error) for p in found.partitions.values() if p.error is not None or p.leader < 0)
    return bad


@pytest.mark.sluice_only("on Apache Kafka 4.4, 40+ topics deleted and at once recreated under the same name are "
                         "missing at the end (its deletions are asynchronous); the test also reads Sluice's log "
                         "lines and clean-shutdown marker")
def test_hundreds_of_topics_created_at_once_stay_online(make_broker):
    broker = make_broker(shards=2)
    bootstrap = broker.bootstrap
    # Each connection walks the topics in its own order, so every topic is auto-created by two or more
    # connections, often on different shards, at the same moment.
    orders = [AUTO_TOPICS[i * 37 % len(AUTO_TOPICS):] + AUTO_TOPICS[:i * 37 % len(AUTO_TOPICS)]
              for i in range(CONNECTIONS)]
    orders[1].reverse()
    halves = [ADMIN_TOPICS[::2], ADMIN_TOPICS[1::2], ADMIN_TOPICS, ADMIN_TOPICS[::-1]]
    run_all([lambda o=o: auto_create_by_producing(bootstrap, o) for o in orders]
            + [lambda h=h: create_by_admin(bootstrap, h) for h in halves])
    # Delete and create again while more topics are auto-created: a recreated topic's new directory must not
    # meet the old one's deletion.
    recreated = ADMIN_TOPICS[:40]
    more = [f"late-{i:03d}" for i in range(80)]
    done = threading.Event()

    def recreate_then_stop():
        try:
            for _ in range(3):
                auto_create_by_producing(bootstrap, recreated)
                delete_and_recreate(bootstrap, recreated)
        finally:
            done.set()

    run_all([recreate_then_stop,
             lambda: delete_records_until(bootstrap, recreated, done),
             lambda: auto_create_by_producing(bootstrap, more),
             lambda: auto_create_by_producing(bootstrap, more[::-1])])

    every = AUTO_TOPICS + ADMIN_TOPICS + more
    assert offline_partitions(bootstrap, every) == []
    log = broker.log()
    for sign in OFFLINE_SIGNS:
        assert sign not in log, f"broker log contains '{sign}':\n" + "\n".join(
            line for line in log.splitlines() if sign in line)[:4000]
    assert broker.stop() == 0, broker.log()[-4000:]
    assert_healthy_log(broker)
    assert (broker.data_dir / ".clean-shutdown").exists(), "no clean-shutdown marker: a partition was offline"
