"""One fault run, shared by the CI test (test_nemesis.py) and the long runs (scripts/fault-run.py): a cluster,
the workload of history.py, the nemesis's seeded schedule, then healing, a final read of every partition, the
checker, and the failover windows. Everything lands in the run's directory: history.jsonl, the schedule and
result in run.json, and the nodes' logs, so a failing run can be read and replayed with its seed."""

import json
import statistics
import time
from pathlib import Path

import checker
from harness import assert_clean_log, create_topic, new_cluster
from history import History, committed_offsets, standard_workload
from nemesis import Nemesis, kinds_available, schedule
from target import ON_KAFKA
from workload import read_all, replica_disagreements

TOPIC = "nemesis"
PARTITIONS = [0, 1, 2]
# Failure detection a little faster than the defaults, so pauses of a few seconds outlast it.
FAST = {"replica.lag.time.max.ms": "3000", "broker.session.timeout.ms": "2000", "log.segment.bytes": "8388608"}
# Apache Kafka as the checker's baseline (SLUICE_TEST_TARGET=kafka) runs with its own defaults.
KAFKA = {"log.segment.bytes": "8388608"}


def run(root, seed, faults, network=True, disk_mb=256, unsafe=False, kinds=None, nodes=3, lossy=None, log=print):
    """One run; `nodes=1` is the single broker under kill -9, pauses, restarts, full disks and power loss.
    `lossy` (default: wherever lossyfs can mount) puts every node's data on lossyfs, for the power-loss fault.
    With SLUICE_TEST_TARGET=kafka the cluster is Apache Kafka's, on loopback: process faults only."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    network = network and nodes > 1 and not ON_KAFKA
    if ON_KAFKA:
        disk_mb, lossy = None, False
    if lossy is None:
        from lossyfs import unavailable
        lossy = unavailable() is None
    kinds = kinds or kinds_available(network, bool(disk_mb), nodes, lossy)
    plan = schedule(seed, faults, kinds, nodes)
    log(f"fault run: seed {seed}, {faults} faults, kinds {kinds}, directory {root}")
    log("schedule: " + json.dumps(plan))
    cluster = new_cluster(root / "cluster", size=nodes, extra=KAFKA if ON_KAFKA else FAST, network=network,
                          disk_mb=disk_mb, lossy=range(1, nodes + 1) if lossy else ())
    if unsafe:
        cluster.env["SLUICE_UNSAFE_ACK_ON_LEADER_APPEND"] = "1"
    history = History()
    records = []
    result = {"seed": seed, "faults": faults, "kinds": kinds, "schedule": plan, "unsafe": unsafe}
    try:
        cluster.start()
        create_topic(cluster.bootstrap, TOPIC, partitions=len(PARTITIONS), replication_factor=min(3, nodes),
                     config={"min.insync.replicas": str(min(2, nodes))})
        bootstrap = ",".join(n.bootstrap for n in cluster.nodes.values())
        clients = standard_workload(history, bootstrap, TOPIC, PARTITIONS)
        for client in clients:
            client.start()
        time.sleep(3)
        nemesis = Nemesis(cluster, TOPIC, PARTITIONS, log=log)
        for fault in plan:
            history.add("nemesis", "fault", kind=fault["kind"])
            records.append(nemesis.run_one(fault))
            time.sleep(0.5)
        time.sleep(2)
        producers = [c for c in clients if c.writes]
        for client in producers:
            client.stop()
        for client in producers:
            client.join(90)
        time.sleep(3)  # the readers catch up with the last writes
        for client in clients:
            client.stop()
        for client in clients:
            client.join(60)
        final = read_all(bootstrap, TOPIC, PARTITIONS, timeout=120)
        committed = {g: committed_offsets(bootstrap, TOPIC, g, PARTITIONS) for g in ("g-classic", "g-848")}
        verdict = checker.check(history.snapshot(), final, committed)
        verdict["anomalies"]["inconsistent"] += replica_disagreements(cluster, TOPIC, PARTITIONS, min_replicas=1)
        result.update(verdict)
        result["faults_applied"] = records
        result["not_recovered"] = [r for r in records if not r["recovered"]]
        result["windows"] = failover_windows(history.snapshot(), records)
        # A shard that stops with an error is expected here once a full disk poisoned a partition (its close
        # fails, and the next start recovers it); a panic never is.
        for node in cluster.nodes.values():
            assert_clean_log(node, bad_lines=("panicked", "response encoding failed"))
        return result
    finally:
        result.setdefault("faults_applied", records)
        history.dump(root / "history.jsonl")
        (root / "run.json").write_text(json.dumps(result, indent=1, default=str))
        cluster.close()


def failover_windows(events, records):
    """Per fault: the longest time without an acknowledgement on any one partition, from the fault's start to its
    recovery (each partition timed apart, so one that kept its leader does not hide another's gap)."""
    acks = {}
    for e in events:
        if e["f"] == "ok":
            acks.setdefault(e["p"], []).append(e["t"])
    windows = []
    for r in records:
        gaps = []
        for times in acks.values():
            inside = [t for t in times if r["start"] <= t <= r["end"]]
            points = [r["start"], *inside, r["end"]]
            gaps.append(max(b - a for a, b in zip(points, points[1:])))
        windows.append({"kind": r["kind"], "window": round(max(gaps, default=0), 3)})
    return windows


def window_summary(windows):
    by_kind = {}
    for w in windows:
        by_kind.setdefault(w["kind"], []).append(w["window"])
    return {k: {"n": len(v), "median": round(statistics.median(v), 2), "max": round(max(v), 2)}
            for k, v in sorted(by_kind.items())}
