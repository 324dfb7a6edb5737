"""Replication and controller metrics in a three-node cluster: one active controller among the nodes, and, when
a follower dies, the leader counts an ISR shrink and shows the partition under-replicated and under its
min.insync.replicas, the cluster sees a fenced broker and the active controller the dead voter's lag; when the
follower is back, an ISR expand and health."""

import socket

import pytest

from harness import create_topic, free_port_on_all, wait_until

pytestmark = pytest.mark.sluice_only("Sluice's Prometheus metrics")

# Not the default 9644: another broker on this machine (a benchmark, a local cluster) may hold 127.0.0.1:9644.
ADMIN_PORT = free_port_on_all([f"127.0.0.{i}" for i in (1, 2, 3)])


def metrics(node):
    """{series: value} of the node's /metrics on its default admin listener, or {} if nothing answers."""
    try:
        with socket.create_connection((node.host, ADMIN_PORT), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
    except OSError:
        return {}
    body = answer.partition(b"\r\n\r\n")[2].decode()
    series = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            series[name] = float(value)
    return series


def test_isr_changes_fencing_and_the_active_controller_show_on_metrics(make_cluster):
    cluster = make_cluster(3, extra={"admin.listeners": f":{ADMIN_PORT}"})
    nodes = {i: cluster.nodes[i] for i in (1, 2, 3)}
    create_topic(nodes[1].bootstrap, "watched", partitions=1, replication_factor=3,
                 config={"min.insync.replicas": "3"})
    wait_until(lambda: len(cluster.leaders("watched")[0][2]) == 3, timeout=30, what="a full ISR")
    wait_until(lambda: sum(metrics(n).get("sluice_controller_active", 0) for n in nodes.values()) == 1,
               timeout=30, what="one active controller")
    for node in nodes.values():
        seen = metrics(node)
        assert seen["sluice_brokers"] == 3 and seen["sluice_fenced_brokers"] == 0, seen
        assert seen["sluice_offline_partitions"] == 0 and seen["sluice_controller_known"] == 1
        assert seen['sluice_shard_busy_seconds_total{shard="0"}'] > 0
        assert seen["sluice_metadata_applied_offset"] > 0, seen
    # The active controller alone shows each voter's lag behind its metadata log; all catch up.
    active = next(n for n in nodes.values() if metrics(n).get("sluice_controller_active") == 1)
    voter_lags = lambda node: {i: metrics(node).get(f'sluice_controller_voter_lag_records{{voter="{i}"}}')
                               for i in (1, 2, 3)}
    wait_until(lambda: voter_lags(active) == {1: 0, 2: 0, 3: 0}, timeout=30, what="every voter caught up")
    for node in nodes.values():
        if node is not active:
            assert voter_lags(node) == {1: None, 2: None, 3: None}

    leader_id = cluster.leaders("watched")[0][0]
    leader = nodes[leader_id]
    follower = next(n for i, n in nodes.items() if i != leader_id)
    shrinks_before = metrics(leader)["sluice_isr_shrinks_total"]
    follower.kill9()
    wait_until(lambda: metrics(leader).get("sluice_isr_shrinks_total", 0) > shrinks_before, timeout=60,
               what="an ISR shrink on the leader")
    seen = metrics(leader)
    assert seen["sluice_under_replicated_partitions"] >= 1, seen
    assert seen["sluice_under_min_isr_partitions"] >= 1, seen
    wait_until(lambda: metrics(leader).get("sluice_fenced_brokers") == 1, timeout=60, what="the dead broker fenced")
    # The dead node is a voter: the active controller (it may be a new one) sees it fall behind.
    alive = [n for n in nodes.values() if n is not follower]
    wait_until(lambda: any(metrics(n).get("sluice_controller_active") == 1 and voter_lags(n)[follower.node_id]
                           for n in alive), timeout=60, what="the dead voter lagging on the active controller")

    expands_before = metrics(leader)["sluice_isr_expands_total"]
    follower.start()
    wait_until(lambda: metrics(leader).get("sluice_isr_expands_total", 0) > expands_before, timeout=60,
               what="an ISR expand on the leader")
    wait_until(lambda: metrics(leader).get("sluice_under_replicated_partitions") == 0, timeout=60,
               what="no partition under-replicated")
    assert metrics(leader)["sluice_under_min_isr_partitions"] == 0
    wait_until(lambda: metrics(leader).get("sluice_fenced_brokers") == 0, timeout=60, what="no broker fenced")
