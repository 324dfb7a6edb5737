"""Network partitions, from network namespaces and veth pairs (netns.py): a leader cut off from its peers, but
not from its clients, keeps taking writes it can never commit. Once the partition heals and it learns it was
deposed, those writes must fail: its high watermark is now the new leader's, which passes the same offsets
with other records. (The nemesis found this: a deposed leader acknowledged an acks=all write at an offset
that held another producer's record.)"""

import os
import time

import pytest
from confluent_kafka import Producer

from harness import create_topic, wait_until
from workload import leader_of, read_all

pytestmark = [pytest.mark.sluice_only("network namespaces: the Kafka reference cluster runs on loopback"),
              pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")]


def test_a_deposed_leader_never_acknowledges_a_write_it_could_not_replicate(make_cluster):
    cluster = make_cluster(3, network=True)
    create_topic(cluster.bootstrap, "cut", partitions=1, replication_factor=3, config={"min.insync.replicas": "2"})
    old = leader_of(cluster, "cut", 0)
    others = [i for i in cluster.nodes if i != old]
    # This producer knows only the old leader, and keeps sending it the write it cannot commit.
    stranded = Producer({"bootstrap.servers": cluster.nodes[old].bootstrap, "acks": "all", "retries": 0,
                         "request.timeout.ms": 30000, "message.timeout.ms": 40000})
    stranded.produce("cut", value=b"warm-up")
    assert stranded.flush(20) == 0
    outcome = []
    cluster.network.partition([[old], others])
    stranded.produce("cut", value=b"stranded", on_delivery=lambda err, msg: outcome.append((err, msg.offset())))
    stranded.poll(0.5)
    # The majority elects a new leader, which takes writes at the same offsets.
    majority = ",".join(cluster.nodes[i].bootstrap for i in others)
    wait_until(lambda: cluster.leaders("cut", via=cluster.nodes[others[0]])[0][0] in others, timeout=30,
               what="a new leader on the majority side")
    winners = Producer({"bootstrap.servers": majority, "acks": "all"})
    for i in range(5):
        winners.produce("cut", value=f"winner-{i}".encode())
    assert winners.flush(30) == 0
    cluster.network.heal()
    deadline = time.time() + 45
    while not outcome and time.time() < deadline:
        stranded.poll(0.5)
    assert outcome, "the stranded write got no answer"
    err, offset = outcome[0]
    records = {o: v for _, o, v in read_all(cluster.bootstrap, "cut", [0])}
    if err is None:
        assert records.get(offset) == "stranded", (
            f"the deposed leader acknowledged 'stranded' at offset {offset}, which holds {records.get(offset)!r}")
    else:
        # Failed, so never committed: the old leader truncated it when it followed the new one.
        assert "stranded" not in records.values(), err
    assert [v for v in records.values() if v.startswith("winner")] == [f"winner-{i}" for i in range(5)]
