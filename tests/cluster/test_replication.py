"""Cluster, part 2: replicated partitions with real clients. RF=3 writes read back exactly once through
another broker; leaders killed (kill -9), paused (SIGSTOP) and stopped (SIGTERM, which moves their leaderships
first and fails no write) under idempotent acks=all load lose nothing and duplicate nothing, and the replicas agree offset by offset; ISR shrink and expand,
min.insync.replicas, a diverged follower's truncation, a reassignment onto a fourth broker, and a consumer
group whose coordinator moves."""

import time

import kafka
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from harness import create_topic, replica_batches, wait_until
from target import ON_KAFKA
from workload import Load, assert_replicas_agree, check_history, leader_of, read_all


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


def test_sigterm_of_a_leader_moves_its_leadership_first_and_fails_nothing(cluster):
    create_topic(cluster.nodes[1].bootstrap, "handover", partitions=3, replication_factor=3,
                 config={"min.insync.replicas": "2"})
    windows = []
    with Load(cluster.bootstrap, "handover") as load:
        for round_ in range(2):
            time.sleep(2)
            victim = leader_of(cluster, "handover", round_)
            led = [p for p, (leader, _, _) in cluster.leaders("handover").items() if leader == victim]
            stopped_at = time.time()
            cluster.nodes[victim].stop()
            if not ON_KAFKA:
                assert "controlled shutdown" in cluster.nodes[victim].log()
            wait_until(lambda: all(cluster.leaders("handover")[p][0] not in (victim, -1) for p in led), timeout=10,
                       what="the stopped broker's partitions led elsewhere")
            time.sleep(2)
            windows.append(load.longest_gap(stopped_at, partitions=led))
            cluster.nodes[victim].start()
            wait_until(lambda: all(len(isr) == 3 for _, _, isr in cluster.leaders("handover").values()),
                       timeout=60, what="the ISR whole again")
    assert not load.failed, load.failed[:5]
    check_history(load, read_all(cluster.bootstrap, "handover", [0, 1, 2]))
    assert_replicas_agree(cluster, "handover", [0, 1, 2])
    print(f"windows without acks after SIGTERM (s): {windows}")


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
    # Other brokers may show the new ISR a moment before the leader acts on it, so this write is sent the way
    # clients send it, with retries (NOT_ENOUGH_REPLICAS is retriable).
    results.clear()
    retrying = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "message.timeout.ms": 20000})
    retrying.produce("isr", value=b"back", on_delivery=lambda err, msg: results.append(err))
    retrying.flush(30)
    assert results == [None], results


def test_a_diverged_follower_truncates_to_the_leader(make_cluster):
    # Sessions long enough that the paused followers stay in the ISR while the leader writes alone.
    cluster = make_cluster(3, extra={"broker.session.timeout.ms": "8000"})
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
    # A follower's long-poll fetch already at the leader would still carry new records into its socket; wait
    # until those fetches have been answered (replica.fetch.wait.max.ms is 500 ms).
    time.sleep(1.5)
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
    truncated = "Truncating partition diverge-0" if ON_KAFKA else "log diverges from the leader's: truncating"
    assert truncated in cluster.nodes[leader].log()
    assert_replicas_agree(cluster, "diverge", [0])
    values = [v for _, _, v in read_all(cluster.bootstrap, "diverge", [0])]
    assert [v for v in values if v.startswith("committed-")] == [f"committed-{i}" for i in range(100)]
    assert [v for v in values if v.startswith("after-")] == [f"after-{i}" for i in range(100)]


@pytest.mark.sluice_only("adds a fourth node; the Kafka reference cluster has three")
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


def test_a_throttled_reassignment_keeps_to_its_rate(make_cluster):
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                       ResourceType)
    cluster = make_cluster(3)
    create_topic(cluster.nodes[1].bootstrap, "throttled", partitions=1, replication_factor=1)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 5})
    value = b"x" * 1000
    for i in range(6000):
        producer.produce("throttled", value=value)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    # Kafka's way (kafka-reassign-partitions --throttle): the rates as dynamic broker configs, the replicas to
    # hold back as topic configs.
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    rate = 1_000_000
    set_ = AlterConfigOpType.SET
    brokers = [ConfigResource(ResourceType.BROKER, str(node), incremental_configs=[
        ConfigEntry("leader.replication.throttled.rate", str(rate), incremental_operation=set_),
        ConfigEntry("follower.replication.throttled.rate", str(rate), incremental_operation=set_)])
        for node in (1, 2, 3)]
    topic = ConfigResource(ResourceType.TOPIC, "throttled", incremental_configs=[
        ConfigEntry("leader.replication.throttled.replicas", "*", incremental_operation=set_),
        ConfigEntry("follower.replication.throttled.replicas", "*", incremental_operation=set_)])
    for resource in [*brokers, topic]:  # librdkafka takes one broker resource per call
        for future in admin.incremental_alter_configs([resource]).values():
            future.result(30)
    leader = cluster.leaders("throttled")[0][0]
    target = next(i for i in (1, 2, 3) if i != leader)
    import subprocess
    from harness import SLUICE
    started = time.time()
    out = subprocess.run([SLUICE, "topic", "reassign", "throttled", "--partition", "0", "--replicas",
                          f"{leader},{target}", "--wait", "60", "--bootstrap", cluster.nodes[1].bootstrap],
                         capture_output=True, text=True, timeout=90)
    took = time.time() - started
    assert out.returncode == 0, out.stderr + out.stdout
    # About 6 MB at 1 MB/s: the copy cannot finish in much less than the rate allows (a burst of one second's
    # allowance at each end, at most), however fast loopback is.
    assert took >= 3.0, f"a 6 MB copy at 1 MB/s took {took:.1f} s"
    assert_replicas_agree(cluster, "throttled", [0])
    print(f"throttled catch-up of 6 MB at 1 MB/s took {took:.1f} s")
