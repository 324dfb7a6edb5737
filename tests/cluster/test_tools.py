"""The command-line tools and `sluice bench` against a cluster: whatever broker they bootstrap from, they send
each partition's requests to its leader and each group's to its coordinator."""

import subprocess

from confluent_kafka import Consumer

from harness import SLUICE, create_topic, wait_until


def sluice(*args, stdin=None, timeout=60):
    out = subprocess.run([SLUICE, *args], input=stdin, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"sluice {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out


def test_produce_and_consume_route_to_every_leader_from_any_bootstrap(cluster):
    # RF=1 with three partitions: each broker leads one, and holds only its own.
    create_topic(cluster.nodes[1].bootstrap, "routed", partitions=3, replication_factor=1)
    assert len({leader for leader, _, _ in cluster.leaders("routed").values()}) == 3, cluster.leaders("routed")
    lines = "".join(f"k{i}:v{i}\n" for i in range(300))
    sluice("produce", "routed", "--key-separator", ":", "--batch-records", "7",
           "--bootstrap", cluster.nodes[1].bootstrap, stdin=lines)
    out = sluice("consume", "routed", "--from-beginning", "-e", "--format", "%p %k %v\\n",
                 "--bootstrap", cluster.nodes[2].bootstrap)
    rows = [line.split() for line in out.stdout.splitlines()]
    assert sorted(v for _, _, v in rows) == sorted(f"v{i}" for i in range(300))
    assert {p for p, _, _ in rows} == {"0", "1", "2"}
    described = sluice("topic", "describe", "routed", "--bootstrap", cluster.nodes[3].bootstrap).stdout
    ends = [int(line.split("\t")[6]) for line in described.splitlines() if line[:1].isdigit()]
    assert sum(ends) == 300, described


def test_group_tools_find_the_coordinator(cluster):
    create_topic(cluster.nodes[1].bootstrap, "grouptools", partitions=3, replication_factor=3)
    sluice("produce", "grouptools", "--bootstrap", cluster.bootstrap, stdin="".join(f"r{i}\n" for i in range(60)))
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "toolgroup",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["grouptools"])
    got = []
    wait_until(lambda: got.extend(m for m in consumer.consume(100, 0.5) if not m.error()) or len(got) >= 60,
               timeout=60, what="the group consuming everything")
    consumer.commit(asynchronous=False)
    consumer.close()
    for node in cluster.nodes.values():
        listed = sluice("group", "list", "--bootstrap", node.bootstrap).stdout
        assert "toolgroup" in listed, (node.node_id, listed)
        described = sluice("group", "describe", "toolgroup", "--bootstrap", node.bootstrap).stdout
        lags = [line.split("\t")[4] for line in described.splitlines() if line.startswith("grouptools\t")]
        assert lags == ["0", "0", "0"], described


def test_bench_produces_and_consumes_across_leaders(cluster):
    bootstrap = cluster.nodes[2].bootstrap
    sluice("bench", "produce", "--topic", "benched", "--partitions", "6", "--records", "30000",
           "--record-size", "100", "--batch-bytes", "16384", "--bootstrap", bootstrap, timeout=120)
    rows = cluster.leaders("benched")
    assert len({leader for leader, _, _ in rows.values()}) == 3, rows
    out = sluice("bench", "consume", "--topic", "benched", "--bootstrap", cluster.nodes[3].bootstrap, timeout=120)
    consumed = int(out.stdout.split("consume: ")[1].split()[0])
    assert consumed >= 30000, out.stdout
    sluice("bench", "e2e", "--topic", "benched-e2e", "--partitions", "3", "--duration", "2", "--rate", "500",
           "--bootstrap", cluster.nodes[1].bootstrap, timeout=60)
