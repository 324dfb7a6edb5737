"""Workloads and checkers the cluster tests, the fault runs and the perf scripts share: an idempotent acks=all
load that remembers what was acknowledged and when, a reader of whole partitions, and the checks that nothing
acknowledged was lost, duplicated or moved, and that replicas agree."""

import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from clients import high_watermarks
from harness import replica_batches, wait_until


class Load:
    """An idempotent acks=all producer writing unique values in a thread until stopped; remembers what was
    acknowledged (value -> (partition, offset)) and what failed for good."""

    def __init__(self, bootstrap, topic, rate_per_s=500):
        self.acked = {}
        self.failed = []
        self.ack_times = []
        self.acks_by_partition = {}
        self.stopping = threading.Event()
        self.producer = Producer({
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "message.timeout.ms": 60000,
            "topic.metadata.refresh.interval.ms": 1000,
        })
        self.topic = topic
        self.rate = rate_per_s
        self.thread = threading.Thread(target=self.run, daemon=True)

    def report(self, err, msg):
        value = msg.value().decode()
        if err is not None:
            self.failed.append((value, str(err)))
        else:
            now = time.time()
            self.acked[value] = (msg.partition(), msg.offset())
            self.ack_times.append(now)
            self.acks_by_partition.setdefault(msg.partition(), []).append(now)

    def run(self):
        i = 0
        while not self.stopping.is_set():
            try:
                self.producer.produce(self.topic, value=f"v{i}".encode(), key=str(i % 17).encode(), on_delivery=self.report)
                i += 1
            except BufferError:
                pass
            self.producer.poll(1.0 / self.rate)
        self.producer.flush(90)
        self.sent = i

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(120)

    def longest_gap(self, since, partitions=None, until=None):
        """The longest time without an acknowledgement after `since` (the failover window), over all partitions
        or, given `partitions`, the longest of theirs: each partition's acknowledgements are timed apart, so a
        partition that kept its leader does not hide another's gap."""
        if partitions is None:
            return _longest_gap(self.ack_times, since, until)
        gaps = [_longest_gap(self.acks_by_partition.get(p, []), since, until) for p in partitions]
        return None if any(g is None for g in gaps) else max(gaps, default=None)


def _longest_gap(times, since, until):
    times = sorted(t for t in times if t >= since and (until is None or t <= until))
    if len(times) < 2:
        return None
    return max([times[0] - since] + [b - a for a, b in zip(times, times[1:])])


def read_all(bootstrap, topic, partitions, timeout=60):
    """Every record of the partitions, from the start up to the end seen when the read began, as
    (partition, offset, value)."""
    ends = dict(zip(partitions, high_watermarks(bootstrap, topic, partitions)))
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "checker", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    out = []
    done = {p for p, end in ends.items() if end == 0}
    deadline = time.time() + timeout
    while len(done) < len(partitions) and time.time() < deadline:
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            if msg.error():
                raise KafkaException(msg.error())
            if msg.offset() < ends[msg.partition()]:
                out.append((msg.partition(), msg.offset(), msg.value().decode()))
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
    consumer.close()
    assert len(done) == len(partitions), f"read did not reach the end: {ends}, got {len(out)}"
    return out


def check_history(load, records):
    """0 lost, 0 duplicated, and every acknowledged value at the offset it was acknowledged at."""
    seen = {}
    for partition, offset, value in records:
        assert value not in seen, f"duplicate: {value} at {seen[value]} and {(partition, offset)}"
        seen[value] = (partition, offset)
    lost = [v for v in load.acked if v not in seen]
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {lost[:5]}"
    moved = [(v, load.acked[v], seen[v]) for v in load.acked if load.acked[v] != seen[v]]
    assert not moved, f"acknowledged at one offset, read at another: {moved[:5]}"
    failed_but_read = [v for v, _ in load.failed if v in seen]
    assert not failed_but_read, f"definitely failed writes were read: {failed_but_read[:5]}"


def replica_disagreements(cluster, topic, partitions, min_replicas=2, timeout=30):
    """Below each partition's high watermark every replica must hold the same batches (offsets, epochs, CRCs).
    Waits up to `timeout` for followers to catch up; returns one case per partition whose replicas still
    disagree (or that has fewer than `min_replicas` on disk)."""
    cases = []
    for p in partitions:
        (high,) = high_watermarks(cluster.bootstrap, topic, [p])

        def agree():
            views = replica_batches(cluster, topic, p, upto=high)
            return len(views) >= min_replicas and len({tuple(v) for v in views.values()}) == 1

        try:
            wait_until(agree, timeout=timeout, what=f"replicas of {topic}-{p} agreeing below {high}")
        except AssertionError:
            views = replica_batches(cluster, topic, p, upto=high)
            first = min((len(v) for v in views.values()), default=0)
            cases.append({"p": p, "high watermark": high,
                          "replicas disagree": {n: v[:first + 1][-3:] for n, v in views.items()}})
    return cases


def assert_replicas_agree(cluster, topic, partitions):
    """Below the high watermark, every replica holds the same batches at the same offsets."""
    cases = replica_disagreements(cluster, topic, partitions)
    assert not cases, f"replicas of {topic} disagree: {cases}"


def leader_of(cluster, topic, partition):
    return cluster.leaders(topic)[partition][0]
