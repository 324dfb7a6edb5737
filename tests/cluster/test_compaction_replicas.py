"""Log compaction in a cluster: every replica of a compacted RF=3 partition cleans its own copy (as in Kafka),
followers copy the leader's batches with their gaps, and after a kill -9 of the leader the new leader serves
the latest value of every key at the offset it was written; the killed node comes back, catches up across the
gaps and rejoins the ISR."""

import time

import kafka
import pytest

from harness import create_topic, wait_until
from workload import leader_of, read_all

pytestmark = pytest.mark.sluice_only("reads Sluice's cleaner checkpoints and log lines, with segments under Kafka's 1 MiB minimum")

KEYS, ROUNDS = 30, 40


def produce_versions(bootstrap, topic, rounds, tag):
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, compression_type="lz4")
    sent = []
    for r in range(rounds):
        for k in range(KEYS):
            key, value = f"key-{k}".encode(), f"{tag} round {r} of key {k} ".encode() * 8
            sent.append((key, value, producer.send(topic, key=key, value=value)))
    producer.flush(60)
    written = {}
    for key, value, future in sent:
        written[future.get(30).offset] = (key, value)
    producer.close()
    return written


def check_latest(records, written):
    offsets = [offset for _, offset, _ in records]
    assert offsets == sorted(set(offsets)), "offsets only increase"
    by_offset = {offset: value if isinstance(value, bytes) else value.encode() for _, offset, value in records}
    for offset, value in by_offset.items():
        assert written[offset][1] == value, f"record at {offset} is not what was written there"
    latest = {}
    for offset in sorted(written):
        latest[written[offset][0]] = offset
    for key, offset in latest.items():
        assert offset in by_offset, f"the latest value of {key!r} (offset {offset}) is gone"


def test_every_replica_cleans_and_a_new_leader_serves_the_latest(make_cluster):
    cluster = make_cluster(3, extra={"log.cleaner.backoff.ms": "200"})
    create_topic(cluster.nodes[1].bootstrap, "table", partitions=1, replication_factor=3,
                 config={"cleanup.policy": "compact", "segment.bytes": "16384", "min.cleanable.dirty.ratio": "0.01",
                         "min.insync.replicas": "2"})
    written = produce_versions(cluster.bootstrap, "table", ROUNDS, "before")

    def cleaned(node):
        checkpoint = node.data_dir / "table-0" / "cleaner-checkpoint"
        return checkpoint.exists() and "cleaned log" in node.log()

    wait_until(lambda: all(cleaned(node) for node in cluster.nodes.values()), timeout=60,
               what="every replica cleaned its copy")
    sizes = {n.node_id: sum(f.stat().st_size for f in (n.data_dir / "table-0").glob("*.log"))
             for n in cluster.nodes.values()}
    assert all(size < len(written) * 100 for size in sizes.values()), f"segment bytes after cleaning: {sizes}"

    victim = leader_of(cluster, "table", 0)
    cluster.nodes[victim].kill9()
    wait_until(lambda: leader_of(cluster, "table", 0) not in (victim, -1), timeout=30, what="a new leader")
    survivor = cluster.nodes[leader_of(cluster, "table", 0)]
    records = read_all(survivor.bootstrap, "table", [0])
    assert len(records) < len(written) // 2, f"{len(records)} of {len(written)} records: nothing was cleaned"
    check_latest(records, written)

    # More versions through the new leader; the killed node comes back and catches up across the gaps.
    written.update(produce_versions(cluster.bootstrap, "table", 10, "after"))
    cluster.nodes[victim].start()
    wait_until(lambda: len(cluster.leaders("table")[0][2]) == 3, timeout=60, what="the ISR whole again")
    time.sleep(1)
    check_latest(read_all(cluster.nodes[victim].bootstrap, "table", [0]), written)
