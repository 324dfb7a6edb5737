"""Power loss: nodes whose data directories are lossyfs mounts (tests/cluster/lossyfs.py) are killed with
kill -9 and then lose every byte they wrote but did not fsync, the way a power cut drops the page cache. A
kill -9 alone keeps the page cache, so it cannot catch a missing or misordered fsync; these tests can.

- Under flush.policy=always a single node keeps every acknowledged acks=all write.
- In an RF=3 cluster with min.insync.replicas=2, one node at a time (the leader in some rounds, a follower in
  others) loses power, and no acknowledged write is lost; the replicas agree.
- The tool bites: under flush.policy=interval with a long interval, acknowledged writes survive a kill -9
  but are lost after a power loss, and the checker says so."""

import time

import pytest

from harness import create_topic, wait_until
from lossyfs import unavailable
from workload import Load, assert_replicas_agree, check_history, leader_of, read_all

pytestmark = [pytest.mark.sluice_only("lossyfs mounts and Sluice's flush policy"),
              pytest.mark.skipif(unavailable() is not None, reason=unavailable() or "")]

ALWAYS = {"flush.policy": "always"}
# Small segments, so rolls (index files, producer snapshots, checkpoints) happen between the power losses too.
ROLLING = {**ALWAYS, "segment.bytes": "16384"}
# Acknowledged when appended, fsynced only once an hour: what a power loss takes away.
INTERVAL = {"flush.policy": "interval", "flush.ms": "3600000", "flush.messages": "1000000000"}


def kill_power_loss_restart(node):
    node.kill9()
    dropped = node.power_loss()
    node.start()
    return dropped


def test_single_node_under_flush_always_keeps_every_acked_write_through_power_losses(make_cluster):
    cluster = make_cluster(1, lossy=[1])
    node = cluster.nodes[1]
    create_topic(node.bootstrap, "power", partitions=2, replication_factor=1, config=ROLLING)
    dropped = []
    # A brisk load, so that a kill often lands between an append and its group-commit fsync.
    with Load(cluster.bootstrap, "power", rate_per_s=1000) as load:
        for _ in range(4):
            time.sleep(1.0)
            dropped.append(kill_power_loss_restart(node))
        time.sleep(1.5)
    assert load.acked, "nothing was acknowledged"
    records = read_all(cluster.bootstrap, "power", [0, 1])
    check_history(load, records)
    segments = len(list((node.data_dir / "power-0").glob("*.log")))
    print(f"acked {len(load.acked)}; {segments} segments in power-0; unsynced data dropped per power loss: {dropped}")


def test_a_clean_stop_leaves_nothing_unsynced_so_a_power_loss_after_it_takes_nothing(make_cluster):
    """A clean stop writes checkpoints and indexes without fsyncs and makes them durable at once before the
    clean-shutdown marker, which says they can be trusted. On lossyfs `syncfs` does not reach the filesystem,
    so this holds only through the engine's fallback (an fsync of every file): the power loss finds nothing
    unsynced, and the restart trusts what it finds."""
    cluster = make_cluster(1, lossy=[1])
    node = cluster.nodes[1]
    create_topic(node.bootstrap, "clean", partitions=2, replication_factor=1, config=ROLLING)
    with Load(cluster.bootstrap, "clean") as load:
        wait_until(lambda: len(load.acked) >= 500, timeout=30, what="500 acknowledged writes")
    assert node.stop() == 0, node.log()[-3000:]
    assert node.power_loss() == {"files": 0, "bytes": 0}, "the clean stop left unsynced data behind"
    node.start()
    records = wait_until(lambda: (read_all(cluster.bootstrap, "clean", [0, 1]),), timeout=30,
                         what="the topic readable after the restart")[0]
    check_history(load, records)
    # Trusted because durable: no checkpoint the marker vouched for came back empty (without the fallback,
    # a power loss here empties every one of them and the restart logs each as unreadable).
    assert "unreadable" not in node.log() and "partition offline" not in node.log(), node.log()[-3000:]


def test_rf3_cluster_loses_no_acked_write_when_one_node_at_a_time_loses_power(make_cluster):
    cluster = make_cluster(3, lossy=[1, 2, 3])
    create_topic(cluster.nodes[1].bootstrap, "power3", partitions=2, replication_factor=3,
                 config={**ROLLING, "min.insync.replicas": "2"})
    victims = []
    with Load(cluster.bootstrap, "power3") as load:
        for round_ in range(3):
            time.sleep(1.5)
            leader, replicas, _ = cluster.leaders("power3")[0]
            # Rounds 0 and 2 take the leader of partition 0, round 1 a follower of it.
            victim = leader if round_ != 1 else next(r for r in replicas if r != leader)
            victims.append(("leader" if victim == leader else "follower", victim))
            kill_power_loss_restart(cluster.nodes[victim])
            wait_until(lambda: all(len(isr) == 3 for _, _, isr in cluster.leaders("power3").values()),
                       timeout=60, what="the ISR whole again")
        time.sleep(1)
    assert load.acked, "nothing was acknowledged"
    records = read_all(cluster.bootstrap, "power3", [0, 1])
    check_history(load, records)
    assert_replicas_agree(cluster, "power3", [0, 1])
    print(f"acked {len(load.acked)}; power lost by {victims}")


def acked_history_after(cluster, topic, config, power_loss):
    """Writes under `config` until acknowledged, kill -9s the node, optionally cuts its power, restarts it,
    and returns the checker's verdict (None: nothing lost) and what the power loss dropped."""
    node = cluster.nodes[1]
    create_topic(node.bootstrap, topic, partitions=1, replication_factor=1, config=config)
    with Load(cluster.bootstrap, topic) as load:
        wait_until(lambda: len(load.acked) >= 300, timeout=30, what="300 acknowledged writes")
    assert not load.failed, f"writes failed before any fault: {load.failed[:3]}"
    node.kill9()
    dropped = node.power_loss() if power_loss else None
    node.start()
    # The restarted node serves the partition once it leads it again; until then reads are refused.
    records = wait_until(lambda: (read_all(cluster.bootstrap, topic, [0]),), timeout=30,
                         what=f"{topic} readable after the restart")[0]
    try:
        check_history(load, records)
        return None, dropped, len(load.acked)
    except AssertionError as anomaly:
        return str(anomaly), dropped, len(load.acked)


def test_the_tool_bites_acked_but_unsynced_writes_survive_kill9_and_vanish_at_power_loss(make_cluster):
    cluster = make_cluster(1, lossy=[1])
    # Control: the same unsafe policy passes a kill -9, which keeps the page cache.
    verdict, _, acked = acked_history_after(cluster, "interval-kill9", INTERVAL, power_loss=False)
    assert verdict is None, f"kill -9 alone lost acknowledged writes under interval: {verdict}"
    # A power loss takes the acknowledged but never fsynced writes, and the checker names the anomaly.
    lost, dropped, acked = acked_history_after(cluster, "interval-power", INTERVAL, power_loss=True)
    assert dropped["bytes"] > 0, f"the power loss dropped nothing: {dropped}"
    assert lost is not None and "acknowledged records lost" in lost, \
        f"{acked} acknowledged writes under flush.policy=interval survived a power loss: the tool does not bite"
    # And flush.policy=always on the same node and mount keeps them all.
    verdict, dropped, acked = acked_history_after(cluster, "always-power", ALWAYS, power_loss=True)
    assert verdict is None, f"flush.policy=always lost acknowledged writes at a power loss: {verdict}"
    print(f"interval: {lost!r}; always: {acked} acked, all kept (power loss dropped {dropped})")
