"""Cluster, part 1: a three-node cluster forms from Kafka KRaft server.properties files alone, every broker
answers the same metadata, admin requests work through any broker, and the controller quorum survives a
kill -9 of its leader without losing committed metadata."""

import subprocess
import time

import kafka
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions

from harness import create_topic, wait_until
from target import ON_KAFKA


def partition_view(cluster, node, topic):
    """(leader, replicas, isr, leader epoch) per partition as kafka-python sees it through `node`."""
    client = kafka.KafkaAdminClient(bootstrap_servers=node.bootstrap, client_id=f"kp-{node.node_id}")
    try:
        described = client.describe_topics([topic])
    finally:
        client.close()
    (info,) = described
    return {p["partition"]: (p["leader"], sorted(p["replicas"]), sorted(p["isr"])) for p in info["partitions"]}


def test_three_nodes_form_one_cluster_from_properties_files(cluster):
    ids = set()
    for node in cluster.nodes.values():
        md = cluster.metadata(node)
        assert sorted(md.brokers) == [1, 2, 3]
        for broker in md.brokers.values():
            assert broker.host == f"127.0.0.{broker.id}"
            assert broker.port == cluster.broker_port
        ids.add(md.cluster_id)
        meta = (node.data_dir / "meta.properties").read_text()
        assert f"node.id={node.node_id}" in meta
        assert f"cluster.id={md.cluster_id}" in meta
    assert len(ids) == 1 and len(next(iter(ids))) == 22
    described = cluster.describe()
    assert described["quorum"]["leader_id"] in (1, 2, 3)
    assert sorted(v["node_id"] for v in described["quorum"]["voters"]) == [1, 2, 3]
    assert all(not b["fenced"] for b in described["brokers"])


def test_every_bootstrap_answers_the_same_metadata(cluster):
    create_topic(cluster.nodes[1].bootstrap, "spread", partitions=6, replication_factor=3)
    views = []
    for node in cluster.nodes.values():
        views.append(wait_until(lambda n=node: partition_view(cluster, n, "spread"), what="topic visible"))
    assert views[0] == views[1] == views[2]
    leaders = [leader for leader, _, _ in views[0].values()]
    assert sorted(set(leaders)) == [1, 2, 3], f"leaders are not spread: {views[0]}"
    for _, replicas, isr in views[0].values():
        assert replicas == [1, 2, 3] and isr == [1, 2, 3]
    # librdkafka sees the same through every broker, leader epochs included.
    epochs = []
    for node in cluster.nodes.values():
        md = cluster.metadata(node)
        epochs.append({p.id: (p.leader, p.replicas, p.isrs) for p in md.topics["spread"].partitions.values()})
    assert epochs[0] == epochs[1] == epochs[2]


def test_kcat_lists_the_three_brokers(cluster):
    out = subprocess.run(["kcat", "-L", "-b", cluster.nodes[2].bootstrap], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert " 3 brokers:" in out.stdout
    for i in (1, 2, 3):
        assert f"broker {i} at 127.0.0.{i}:{cluster.broker_port}" in out.stdout


def applied(check):
    """Sluice answers an admin request once the change is applied on the broker that forwarded it, so `check`
    holds at once; Apache Kafka applies it to a broker's metadata a moment after answering (bounded wait)."""
    if ON_KAFKA:
        wait_until(check, timeout=10, what="the change in the broker's metadata")
    else:
        assert check()


def test_admin_requests_work_through_any_broker(cluster):
    controller = cluster.active_controller()
    others = [n for n in cluster.nodes.values() if n.node_id != controller]
    node = others[0]
    admin = AdminClient({"bootstrap.servers": node.bootstrap})
    create_topic(node.bootstrap, "fwd", partitions=2, replication_factor=2)
    # The answer comes once the change is applied on the broker that forwarded it.
    applied(lambda: len(admin.list_topics("fwd", timeout=10).topics["fwd"].partitions) == 2)
    admin.create_partitions([NewPartitions("fwd", 4)])["fwd"].result(30)
    applied(lambda: len(admin.list_topics("fwd", timeout=10).topics["fwd"].partitions) == 4)
    resource = ConfigResource("topic", "fwd", set_config={"retention.ms": "3600000"})
    admin.incremental_alter_configs([ConfigResource("topic", "fwd", incremental_configs=[ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)])])[ConfigResource("topic", "fwd")].result(30)
    other = AdminClient({"bootstrap.servers": others[1].bootstrap})
    retention = lambda: other.describe_configs([ConfigResource("topic", "fwd")])[  # noqa: E731
        ConfigResource("topic", "fwd")].result(10)["retention.ms"].value
    if ON_KAFKA:
        wait_until(lambda: retention() == "3600000", timeout=10, what="the new retention.ms on another broker")
    assert wait_until(retention) == "3600000"
    admin.delete_topics(["fwd"])["fwd"].result(30)
    applied(lambda: "fwd" not in admin.list_topics(timeout=10).topics)
    # A replication factor beyond the brokers is refused by name.
    try:
        create_topic(node.bootstrap, "too-many", replication_factor=4)
        raise AssertionError("RF 4 on three brokers was accepted")
    except Exception as error:  # noqa: BLE001
        assert "INVALID_REPLICATION_FACTOR" in str(error) or "replication factor" in str(error).lower()


def test_kill9_of_the_active_controller_elects_another_and_loses_nothing(cluster):
    create_topic(cluster.nodes[1].bootstrap, "before", partitions=3, replication_factor=3)
    old = cluster.active_controller()
    cluster.nodes[old].kill9()
    started = time.time()
    survivor = next(n for n in cluster.nodes.values() if n.node_id != old)
    new = wait_until(lambda: (lambda c: c if c not in (None, old, -1) else None)(cluster.describe(survivor)["quorum"]["leader_id"]),
                     timeout=30, what="a new active controller")
    assert new != old
    # Admin requests succeed again, and what was committed before is there.
    create_topic(survivor.bootstrap, "after", partitions=1, replication_factor=2)
    elapsed = time.time() - started
    topics = cluster.metadata(survivor).topics
    assert "before" in topics and "after" in topics
    assert elapsed < 30
    # The old controller rejoins from its disk and agrees.
    cluster.nodes[old].start()
    wait_until(lambda: "after" in cluster.metadata(cluster.nodes[old]).topics, what="the old controller caught up")
    cluster.wait_brokers(3)
