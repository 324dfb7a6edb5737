"""Cluster misconfigurations and faults that must give a clear error or log line, never a split brain:
another cluster's data directory, two processes with one node id, voter lists that disagree, a quorum
that cannot be reached, and a voter whose log.dirs was wiped."""

import shutil
import socket

import pytest

from harness import create_topic, wait_until

pytestmark = pytest.mark.sluice_only("Sluice's own refusals, read from its log lines (Kafka refuses these too, in its own words)")


def test_a_node_whose_stored_cluster_id_differs_is_refused(make_cluster):
    cluster = make_cluster(3)
    node = cluster.nodes[3]
    node.stop()
    meta = node.data_dir / "meta.properties"
    text = meta.read_text()
    real = next(line.split("=", 1)[1] for line in text.splitlines() if line.startswith("cluster.id="))
    meta.write_text(text.replace(f"cluster.id={real}", "cluster.id=AAAAAAAAAAAAAAAAAAAAAA"))
    node.start(wait=False)
    code = node.wait_exit(60)
    assert code != 0
    log = node.log()
    assert "AAAAAAAAAAAAAAAAAAAAAA" in log and real in log, log[-3000:]
    # The others keep serving, and did not take the stranger in.
    assert sorted(cluster.metadata(cluster.nodes[1]).brokers) in ([1, 2], [1, 2, 3])


def test_two_processes_with_one_node_id_are_refused(make_cluster):
    cluster = make_cluster(3)
    fourth = cluster.add_node(4, roles="broker")
    fourth.start()
    cluster.wait_brokers(4)
    # A second process on another address calls itself node 4 too: the controller refuses its registration
    # while node 4's session lives, and it stops with a clear error.
    impostor = cluster.add_node(5, roles="broker", extra={"node.id": "4"})
    impostor.start(wait=False)
    code = impostor.wait_exit(60)
    assert code != 0
    assert "already registered by a live process" in impostor.log(), impostor.log()[-3000:]
    cluster.wait_brokers(4)
    # Nor may a broker take a controller's id.
    thief = cluster.add_node(6, roles="broker", extra={"node.id": "2"})
    thief.start(wait=False)
    assert thief.wait_exit(30) != 0
    assert "names one node" in thief.log(), thief.log()[-2000:]


def test_voter_lists_that_disagree_are_refused_with_a_log_line(make_cluster):
    cluster = make_cluster(3, start=False)
    cluster.nodes[3].extra["controller.quorum.voters"] = (
        f"1@127.0.0.1:{cluster.controller_port},3@127.0.0.3:{cluster.controller_port}")
    for node in cluster.nodes.values():
        node.start(wait=False)
    cluster.nodes[1].wait_ready(before=0)
    cluster.nodes[2].wait_ready(before=0)
    wait_until(lambda: any("must list the same voters" in cluster.nodes[i].log() for i in (1, 2, 3)),
               what="a log line about the voter lists")
    # The two agreeing voters are a majority of their list and serve; node 3 never joins them.
    create_topic(cluster.nodes[1].bootstrap, "ok", replication_factor=2)
    assert sorted(cluster.metadata(cluster.nodes[1]).brokers) == [1, 2]


def test_a_quorum_that_cannot_be_reached_is_reported_not_faked(make_cluster):
    cluster = make_cluster(3, start=False)
    lonely = cluster.nodes[1]
    lonely.start(wait=False)
    wait_until(lambda: "waiting for a majority" in lonely.log(), timeout=30, what="the waiting log line")
    assert lonely.ready_count() == 0
    # It does not serve metadata as if it were current: nothing accepts on its client port.
    with socket.socket() as s:
        s.settimeout(1)
        try:
            s.connect((lonely.host, cluster.broker_port))
            s.sendall(b"\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00")
            s.settimeout(2)
            answered = s.recv(4)
        except OSError:
            answered = b""
    assert answered == b"", "a node without its quorum answered a client"
    # Once the others come, the cluster forms.
    cluster.nodes[2].start(wait=False)
    cluster.nodes[3].start(wait=False)
    for node in cluster.nodes.values():
        node.wait_ready(before=0)


def test_a_voter_whose_log_was_wiped_must_not_vote_as_if_it_held_it(make_cluster):
    cluster = make_cluster(3)
    create_topic(cluster.nodes[1].bootstrap, "kept", partitions=2, replication_factor=3)
    victim = cluster.nodes[2] if cluster.active_controller() != 2 else cluster.nodes[3]
    wait_until(lambda: "data directory is registered" in victim.log(), what="the voter's directory registered")
    victim.stop()
    shutil.rmtree(victim.data_dir)
    victim.start(wait=False)
    code = victim.wait_exit(60)
    assert code != 0
    log = victim.log()
    assert "--rejoin-with-empty-log" in log and "wiped" in log, log[-3000:]
    # The operator's way back: it rejoins, copies the committed log, and only then votes.
    victim.extra_args = ["--rejoin-with-empty-log"]
    victim.start()
    wait_until(lambda: "kept" in cluster.metadata(victim).topics, what="the wiped voter caught up")
    assert "takes part in elections again" in victim.log()
