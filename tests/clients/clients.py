"""Thin helpers over the client libraries, so each scenario reads as what it checks.

Consumers assign partitions explicitly (no group), because consumer groups are a separate capability."""

import time

import confluent_kafka
import kafka
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def ck_producer(bootstrap, **conf):
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **conf})


def produce_error(bootstrap, topic, **conf):
    """Produces one record; the delivery error's code, or None."""
    errors = []
    producer = ck_producer(bootstrap, **{"message.timeout.ms": 10000, **conf})
    producer.produce(topic, b"v", callback=lambda err, _msg: errors.append(err))
    producer.flush(20)
    assert errors, "no delivery report"
    return errors[0].code() if errors[0] else None


def ck_produce(bootstrap, topic, records, **conf):
    """records: iterable of dicts with key, value, headers, timestamp (ms), partition (optional).
    Returns the delivery reports as (partition, offset, key) in delivery order; raises on any error."""
    producer = ck_producer(bootstrap, **conf)
    delivered, errors = [], []

    def report(err, msg):
        if err is not None:
            errors.append(err)
        else:
            delivered.append((msg.partition(), msg.offset(), msg.key()))

    for r in records:
        kwargs = {k: r[k] for k in ("key", "value", "headers", "timestamp", "partition") if r.get(k) is not None}
        while True:
            try:
                producer.produce(topic, on_delivery=report, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0, f"{remaining} messages not delivered"
    assert not errors, errors[:5]
    return delivered


def ck_consume(bootstrap, topic, partitions, count, timeout=60, **conf):
    """Reads `count` records from the beginning of the given partitions. Returns confluent Message objects."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "unused-no-commits",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        **conf,
    })
    consumer.assign([TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in partitions])
    out = []
    deadline = time.time() + timeout
    while len(out) < count and time.time() < deadline:
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            if msg.error():
                raise RuntimeError(msg.error())
            out.append(msg)
    consumer.close()
    return out


def kp_produce(bootstrap, topic, records, **conf):
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **conf)
    futures = []
    for r in records:
        futures.append(producer.send(topic, key=r.get("key"), value=r.get("value"), headers=r.get("headers"),
                                     timestamp_ms=r.get("timestamp"), partition=r.get("partition")))
    producer.flush(60)
    results = [f.get(timeout=60) for f in futures]
    producer.close()
    return [(m.partition, m.offset, r.get("key")) for m, r in zip(results, records)]


def kp_consume(bootstrap, topic, partitions, count, timeout=60, **conf):
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None, **conf)
    tps = [kafka.TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    out = []
    deadline = time.time() + timeout
    while len(out) < count and time.time() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            out.extend(batch)
    consumer.close()
    return out


def create_topic(bootstrap, name, partitions=1, config=None):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})])
    futures[name].result(30)
    wait_for_leaders(admin, name, partitions)


def wait_for_leaders(admin, name, partitions, timeout=30):
    """CreateTopics answers once the topic is decided; a broker may learn of its partitions a moment later (Apache
    Kafka applies the controller's records to its metadata cache asynchronously). Waits until every partition
    has a leader, so the next request does not meet NOT_LEADER_OR_FOLLOWER or UNKNOWN_TOPIC_OR_PARTITION."""
    deadline = time.time() + timeout
    while True:
        topic = admin.list_topics(name, timeout=10).topics.get(name)
        if topic is not None and topic.error is None and len(topic.partitions) == partitions and all(
                p.leader >= 0 and p.error is None for p in topic.partitions.values()):
            return
        assert time.time() < deadline, f"topic {name} has no leader for every partition after {timeout} s"
        time.sleep(0.05)


def high_watermarks(bootstrap, topic, partitions, timeout=30):
    """Each partition's high watermark (`partitions`: a count, or the partition numbers), once a leader answers:
    right after a (re)start or a failover the broker may not lead the partition yet, and librdkafka's watermark
    query does not retry NOT_LEADER_OR_FOLLOWER by itself."""
    numbers = range(partitions) if isinstance(partitions, int) else list(partitions)
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused-no-commits"})
    deadline = time.time() + timeout
    try:
        while True:
            try:
                return [probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in numbers]
            except KafkaException:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        probe.close()
