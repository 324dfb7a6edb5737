"""Cluster, part 2: replicated partitions with real clients. RF=3 writes read back exactly once through
another broker; leaders killed (kill -9), paused (SIGSTOP) and stopped (SIGTERM) under idempotent acks=all
load lose nothing and duplicate nothing, and the replicas agree offset by offset; ISR shrink and expand,
min.insync.replicas, a diverged follower's truncation, a reassignment onto a fourth broker, and a consumer
group whose coordinator moves."""

import threading
import time

import kafka
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from harness import create_topic, replica_batches, wait_until


class Load:
    """An idempotent acks=all producer writing unique values in a thread until stopped; remembers what was
    acknowledged (value -> (partition, offset)) and what failed for good."""

    def __init__(self, bootstrap, topic, rate_per_s=500):
        self.acked = {}
        self.failed = []
        self.ack_times = []
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
            self.acked[value] = (msg.partition(), msg.offset())
            self.ack_times.append(time.time())

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

    def longest_gap(self, since):
        """The longest time without an acknowledgement after `since` (the failover window)."""
        times = sorted(t for t in self.ack_times if t >= since)
        if len(times) < 2:
            return None
        first_gap = times[0] - since
        return max([first_gap] + [b - a for a, b in zip(times, times[1:])])


def read_all(bootstrap, topic, partitions, timeout=60):
    """Every record of the partitions, from the start up to the end seen when the read began, as
    (partition, offset, value)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "checker", "enable.auto.commit": False})
    ends = {}
    for p in partitions:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        ends[p] = high
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


def assert_replicas_agree(cluster, topic, partitions):
    """Below the high watermark, every replica holds the same batches at the same offsets."""
    for p in partitions:
        consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "hw"})
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        consumer.close()

        def agree():
            views = replica_batches(cluster, topic, p, upto=high)
            distinct = {tuple(v) for v in views.values()}
            return len(views) >= 2 and len(distinct) == 1

        wait_until(agree, timeout=30, what=f"replicas of {topic}-{p} agreeing below {high}")


def leader_of(cluster, topic, partition):
    return cluster.leaders(topic)[partition][0]


def test_rf3_written_through_one_broker_reads_back_once_through_another(cluster):
    create_topic(cluster.nodes[1].bootstrap, "rf3", partitions=3, replication_factor=3)
    producer = kafka.KafkaProducer(bootstrap_servers=cluster.nodes[1].bootstrap, acks="all", linger_ms=5)
    futures = [producer.send("rf3", key=str(i).encode(), value=f"m{i}".encode()) for i in range(3000)]
    producer.flush(60)
    offsets = {f"m{i}": (f.get(30).partition, f.get(30).offset) for i, f in enumerate(futures)}
    producer.close()
    records = read_all(cluster.nodes[3].bootstrap, "rf3", [0, 1, 2])
    assert sorted(v for _, _, v in records) == sorted(offsets)
    for partition, offset, value in records:
        assert offsets[value] == (partition, offset)
    assert_replicas_agree(cluster, "rf3", [0, 1, 2])


def test_kill9_of_leaders_under_idempotent_load_loses_and_duplicates_nothing(cluster):
    create_topic(cluster.nodes[1].bootstrap, "failover", partitions=3, replication_factor=3,
                 config={"min.insync.replicas": "2"})
    windows = []
    with Load(cluster.bootstrap, "failover") as load:
        for round_ in range(3):
            time.sleep(2)
            victim = leader_of(cluster, "failover", round_ % 3)
            killed_at = time.time()
            cluster.nodes[victim].kill9()
            wait_until(lambda: leader_of(cluster, "failover", round_ % 3) not in (victim, -1), timeout=30,
                       what="a new leader")
            time.sleep(2)
            windows.append(load.longest_gap(killed_at))
            cluster.nodes[victim].start()
            wait_until(lambda: all(len(isr) == 3 for _, _, isr in cluster.leaders("failover").values()),
                       timeout=60, what="the ISR whole again")
        time.sleep(1)
    assert load.acked, "nothing was acknowledged"
    records = read_all(cluster.bootstrap, "failover", [0, 1, 2])
    check_history(load, records)
    assert_replicas_agree(cluster, "failover", [0, 1, 2])
    print(f"failover windows after kill -9 (s): {windows}")


def test_a_paused_leader_is_fenced_and_its_partition_stays_intact(make_cluster):
    cluster = make_cluster(3)
    create_topic(cluster.nodes[1].bootstrap, "zombie", partitions=1, replication_factor=3)
    with Load(cluster.bootstrap, "zombie") as load:
        time.sleep(2)
        victim = leader_of(cluster, "zombie", 0)
        cluster.nodes[victim].pause()
        wait_until(lambda: leader_of(cluster, "zombie", 0) not in (victim, -1), timeout=30, what="a new leader")
        time.sleep(3)
        cluster.nodes[victim].resume()
        # The zombie finds it was deposed, truncates what it alone had, and follows.
        wait_until(lambda: len(cluster.leaders("zombie")[0][2]) == 3, timeout=60, what="the zombie back in sync")
        time.sleep(1)
    records = read_all(cluster.bootstrap, "zombie", [0])
    check_history(load, records)
    assert_replicas_agree(cluster, "zombie", [0])


def test_isr_shrinks_and_expands_and_min_insync_replicas_is_enforced(make_cluster):
    cluster = make_cluster(3, extra={"replica.lag.time.max.ms": "1500"})
    create_topic(cluster.nodes[1].bootstrap, "isr", partitions=1, replication_factor=3,
                 config={"min.insync.replicas": "3"})
    leader = leader_of(cluster, "isr", 0)
    follower = next(i for i in (1, 2, 3) if i != leader)
    # No retries: the first answer is the one reported.
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "message.timeout.ms": 10000,
                         "retries": 0})
    producer.produce("isr", value=b"ok")
    assert producer.flush(20) == 0
    # A paused follower falls behind and leaves the ISR (it is not fenced: its heartbeats resume before its
    # session ends... or it is, and leaves the ISR that way; either way the ISR shrinks).
    cluster.nodes[follower].pause()
    wait_until(lambda: len(cluster.leaders("isr")[0][2]) == 2, timeout=30, what="the ISR shrinking")
    results = []
    producer.produce("isr", value=b"needs-3", on_delivery=lambda err, msg: results.append(err))
    producer.flush(20)
    assert results and results[0] is not None and results[0].name() == "NOT_ENOUGH_REPLICAS", results
    cluster.nodes[follower].resume()
    wait_until(lambda: len(cluster.leaders("isr")[0][2]) == 3, timeout=30, what="the ISR expanding")
    results.clear()
    producer.produce("isr", value=b"back", on_delivery=lambda err, msg: results.append(err))
    producer.flush(20)
    assert results == [None], results


def test_a_diverged_follower_truncates_to_the_leader(make_cluster):
    cluster = make_cluster(3)
    create_topic(cluster.nodes[1].bootstrap, "diverge", partitions=1, replication_factor=3)
    acks_all = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(100):
        acks_all.produce("diverge", value=f"committed-{i}".encode())
    assert acks_all.flush(20) == 0
    leader = leader_of(cluster, "diverge", 0)
    followers = [i for i in (1, 2, 3) if i != leader]
    # The followers stop fetching for a moment while the leader takes acks=1 writes only it will have...
    for f in followers:
        cluster.nodes[f].pause()
    acks_one = Producer({"bootstrap.servers": cluster.nodes[leader].bootstrap, "acks": "1"})
    for i in range(50):
        acks_one.produce("diverge", value=f"orphan-{i}".encode())
    acks_one.flush(10)
    # ...and dies with them.
    cluster.nodes[leader].kill9()
    for f in followers:
        cluster.nodes[f].resume()
    wait_until(lambda: leader_of(cluster, "diverge", 0) in followers, timeout=30, what="a new leader")
    for i in range(100):
        acks_all.produce("diverge", value=f"after-{i}".encode())
    assert acks_all.flush(30) == 0
    cluster.nodes[leader].start()
    wait_until(lambda: len(cluster.leaders("diverge")[0][2]) == 3, timeout=60, what="the old leader in sync")
    assert "log diverges from the leader's: truncating" in cluster.nodes[leader].log()
    assert_replicas_agree(cluster, "diverge", [0])
    values = [v for _, _, v in read_all(cluster.bootstrap, "diverge", [0])]
    assert [v for v in values if v.startswith("committed-")] == [f"committed-{i}" for i in range(100)]
    assert [v for v in values if v.startswith("after-")] == [f"after-{i}" for i in range(100)]


def test_a_partition_moves_to_a_fourth_broker(make_cluster):
    cluster = make_cluster(3)
    create_topic(cluster.nodes[1].bootstrap, "moving", partitions=1, replication_factor=3)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(2000):
        producer.produce("moving", value=f"r{i}".encode())
    assert producer.flush(30) == 0
    fourth = cluster.add_node(4, roles="broker")
    fourth.start()
    cluster.wait_brokers(4)
    replicas = cluster.leaders("moving")[0][1]
    target = [r for r in replicas if r != replicas[-1]] + [4]
    import subprocess
    from harness import SLUICE
    out = subprocess.run([SLUICE, "topic", "reassign", "moving", "--partition", "0", "--replicas",
                          ",".join(map(str, target)), "--wait", "60", "--bootstrap", cluster.nodes[1].bootstrap],
                         capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr + out.stdout
    assert "reassignment complete" in out.stdout
    wait_until(lambda: sorted(cluster.leaders("moving")[0][1]) == sorted(target), what="the new replica set")
    assert_replicas_agree(cluster, "moving", [0])
    assert 4 in replica_batches(cluster, "moving", 0)
    removed = replicas[-1]
    wait_until(lambda: not (cluster.nodes[removed].data_dir / "moving-0").exists(), what="the old replica deleted")


def test_a_consumer_group_survives_its_coordinator_moving(make_cluster):
    cluster = make_cluster(3)
    create_topic(cluster.nodes[1].bootstrap, "grouped", partitions=2, replication_factor=3)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(200):
        producer.produce("grouped", value=f"g{i}".encode(), partition=i % 2)
    assert producer.flush(20) == 0
    conf = {"bootstrap.servers": cluster.bootstrap, "group.id": "movers", "auto.offset.reset": "earliest",
            "enable.auto.commit": False}
    consumer = Consumer(conf)
    consumer.subscribe(["grouped"])
    got = 0
    deadline = time.time() + 60
    while got < 100 and time.time() < deadline:
        for msg in consumer.consume(100, 1.0):
            if not msg.error():
                got += 1
    consumer.commit(asynchronous=False)
    committed = {tp.partition: tp.offset for tp in consumer.committed([TopicPartition("grouped", 0),
                                                                        TopicPartition("grouped", 1)], timeout=10)}
    consumer.close()
    # Kill the leader of the group's __consumer_offsets partition: another broker becomes its coordinator.
    victim = _coordinator_of(cluster, "movers")
    cluster.nodes[victim].kill9()
    survivor = next(n for n in cluster.nodes.values() if n.node_id != victim)
    conf["bootstrap.servers"] = survivor.bootstrap
    again = Consumer(conf)
    after = wait_until(lambda: {tp.partition: tp.offset for tp in again.committed(
        [TopicPartition("grouped", 0), TopicPartition("grouped", 1)], timeout=10)}, timeout=60,
        what="committed offsets from the new coordinator")
    again.close()
    assert after == committed


def _coordinator_of(cluster, group):
    """The broker leading the group's __consumer_offsets partition (Kafka's abs(hashCode) % 50)."""
    h = 0
    for ch in group:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    if h >= 2**31:
        h -= 2**32
    partition = abs(h) % 50
    md = cluster.metadata(next(n for n in cluster.nodes.values() if n.alive()))
    return md.topics["__consumer_offsets"].partitions[partition].leader
