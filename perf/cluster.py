"""The cluster's figures, measured side by side in one run on a three-node local cluster (nodes on 127.0.0.1-3,
`--shards 1`, started by the cluster tests' harness). Run through perf/cluster.sh.

- controller: CreateTopics (RF 3) commit latency; time until an admin request succeeds again after a kill -9
  of the active controller; idle CPU and RSS per node.
- replication: RF=3 acks=all 1 KiB throughput against RF=1 on the same cluster, interleaved; produce latency at a
  fixed rate, RF=3 against RF=1; the window without acks for a killed (kill -9) or stopped (SIGTERM) leader's
  partitions under an idempotent acks=all load; a new replica's catch-up rate against loopback's bandwidth.

Prints a Markdown table and writes perf/out/cluster/results.json. Every loop is bounded.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "cluster"))

from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from harness import SLUICE, Cluster, create_topic, wait_until  # noqa: E402
from workload import Load, leader_of  # noqa: E402

OUT = ROOT / "perf" / "out" / "cluster"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def quantiles(values):
    values = sorted(values)
    if not values:
        return {}
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
    return {"n": len(values), "p50": pick(0.5), "p99": pick(0.99), "max": values[-1],
            "median": statistics.median(values)}


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def idle_usage(cluster, seconds):
    pids = {i: n.proc.pid for i, n in cluster.nodes.items()}
    before = {i: cpu_seconds(p) for i, p in pids.items()}
    time.sleep(seconds)
    return {i: {"cpu_percent": round(100 * (cpu_seconds(p) - before[i]) / seconds, 2),
                "rss_mib": round(rss_mib(p), 1)} for i, p in pids.items()}


def create_latencies(bootstrap, count, prefix):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    out = []
    for i in range(count):
        name = f"{prefix}-{i}"
        started = time.perf_counter()
        admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=3)])[name].result(30)
        out.append((time.perf_counter() - started) * 1000)
    return out


def controller_failover(cluster, rounds):
    times = []
    for r in range(rounds):
        victim = cluster.active_controller()
        survivors = [n for i, n in cluster.nodes.items() if i != victim]
        cluster.nodes[victim].kill9()
        killed = time.perf_counter()
        deadline = killed + 60
        while time.perf_counter() < deadline:
            name = f"after-failover-{r}-{int(time.perf_counter() * 1000)}"
            # A fresh client each attempt, as an operator's retry would be: a long-lived one keeps sending to
            # the controller its cached metadata names.
            admin = AdminClient({"bootstrap.servers": ",".join(n.bootstrap for n in survivors)})
            try:
                admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=2)],
                                    operation_timeout=0.3, request_timeout=0.3)[name].result(0.5)
                break
            except Exception:  # noqa: BLE001 - any failure means "not yet"
                time.sleep(0.02)
        times.append(time.perf_counter() - killed)
        cluster.nodes[victim].start()
        cluster.wait_brokers(3)
    return times


def bench(*args, timeout=300):
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "bench.json"
    out = subprocess.run([SLUICE, "bench", *args, "--json", str(path)], capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"sluice bench {' '.join(args)}:\n{out.stderr[-3000:]}")
    return json.loads(path.read_text())


def throughput(cluster, seconds, rounds):
    for rf in (1, 3):
        create_topic(cluster.nodes[1].bootstrap, f"tput-rf{rf}", partitions=3, replication_factor=rf,
                     config={"min.insync.replicas": "2" if rf == 3 else "1"})
    time.sleep(2)
    result = {1: [], 3: []}
    for _ in range(rounds):
        for rf in (1, 3):
            summary = bench("produce", "--topic", f"tput-rf{rf}", "--record-size", "1024", "--acks", "all",
                            "--duration", str(seconds), "--batch-bytes", "65536", "--max-in-flight", "8",
                            "--bootstrap", cluster.bootstrap)
            result[rf].append(summary["mb_per_second"])
    return result


def latency(cluster, seconds, rate):
    result = {}
    for rf in (1, 3):
        topic = f"lat-rf{rf}"
        create_topic(cluster.nodes[1].bootstrap, topic, partitions=3, replication_factor=rf,
                     config={"min.insync.replicas": "2" if rf == 3 else "1"})
        # Measure the steady state: the first second of a new partition's replication is its own figure.
        time.sleep(2)
        result[rf] = bench("produce", "--topic", topic, "--record-size", "1024", "--acks", "all",
                           "--duration", str(seconds), "--rate", str(rate), "--batch-bytes", "1024",
                           "--max-in-flight", "64", "--bootstrap", cluster.bootstrap)["latency_ms"]
    return result


def failover_windows(cluster, rounds, how):
    topic = f"failover-{how}"
    create_topic(cluster.nodes[1].bootstrap, topic, partitions=3, replication_factor=3,
                 config={"min.insync.replicas": "2"})
    windows = []
    with Load(cluster.bootstrap, topic, rate_per_s=1000) as load:
        for r in range(rounds):
            time.sleep(3)
            partition = r % 3
            victim = leader_of(cluster, topic, partition)
            led = [p for p, (leader, _, _) in cluster.leaders(topic).items() if leader == victim]
            started = time.time()
            if how == "kill9":
                cluster.nodes[victim].kill9()
            else:
                cluster.nodes[victim].proc.terminate()
            wait_until(lambda: all(cluster.leaders(topic)[p][0] not in (victim, -1) for p in led), timeout=60,
                       what="new leaders")
            time.sleep(3)
            windows.append(load.longest_gap(started, partitions=led, until=time.time()))
            if how != "kill9":
                cluster.nodes[victim].wait_exit(60)
            cluster.nodes[victim].start()
            wait_until(lambda: all(len(isr) == 3 for _, _, isr in cluster.leaders(topic).values()), timeout=120,
                       what="the ISR whole again")
    if load.failed:
        print(f"  {how}: {len(load.failed)} records failed, e.g. {load.failed[:3]}", file=sys.stderr)
    return {"windows_s": [round(w, 3) if w is not None else None for w in windows], "failed": len(load.failed)}


def loopback_gbps():
    if not shutil.which("iperf3"):
        return None
    server = subprocess.Popen(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", "5298"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        out = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", "5298", "-t", "4", "-J"], capture_output=True,
                             text=True, timeout=30)
        return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 8 / 1e9
    finally:
        server.kill()
        server.wait()


def catch_up(cluster, megabytes):
    topic = "catchup"
    create_topic(cluster.nodes[1].bootstrap, topic, partitions=1, replication_factor=1)
    records = megabytes * 1024
    bench("produce", "--topic", topic, "--record-size", "1024", "--acks", "1", "--records", str(records),
          "--batch-bytes", "524288", "--bootstrap", cluster.bootstrap, timeout=600)
    leader = leader_of(cluster, topic, 0)
    target = next(i for i in cluster.nodes if i != leader)
    log_dir = cluster.nodes[leader].data_dir / f"{topic}-0"
    size = sum(f.stat().st_size for f in log_dir.glob("*.log"))
    started = time.perf_counter()
    out = subprocess.run([SLUICE, "topic", "reassign", topic, "--partition", "0", "--replicas",
                          f"{leader},{target}", "--bootstrap", cluster.nodes[leader].bootstrap],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr + out.stdout)
    wait_until(lambda: sorted(cluster.leaders(topic)[0][2]) == sorted([leader, target]), timeout=600,
               interval=0.05, what="the new replica in the ISR")
    seconds = time.perf_counter() - started
    return {"bytes": size, "seconds": round(seconds, 3), "gb_per_s": round(size / seconds / 1e9, 3)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and shorter runs (a smoke test)")
    args = parser.parse_args()
    quick = args.quick
    root = OUT / "nodes"
    shutil.rmtree(root, ignore_errors=True)
    cluster = Cluster(root, size=3)
    results = {"revision": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                          text=True, cwd=ROOT).stdout.strip()}
    try:
        cluster.start()
        print("cluster up; measuring idle use", file=sys.stderr)
        time.sleep(3)
        results["idle"] = idle_usage(cluster, 5 if quick else 30)
        print("CreateTopics latency", file=sys.stderr)
        results["create_topics_ms"] = quantiles(create_latencies(cluster.nodes[2].bootstrap, 10 if quick else 100,
                                                                 "created"))
        print("controller failover", file=sys.stderr)
        results["controller_failover_s"] = quantiles(controller_failover(cluster, 1 if quick else 5))
        print("throughput RF1 / RF3", file=sys.stderr)
        results["throughput_mb_s"] = throughput(cluster, 3 if quick else 15, 1 if quick else 3)
        print("latency at a fixed rate", file=sys.stderr)
        results["latency_ms"] = latency(cluster, 3 if quick else 20, 2000)
        print("failover windows", file=sys.stderr)
        results["failover_kill9"] = failover_windows(cluster, 1 if quick else 6, "kill9")
        results["failover_sigterm"] = failover_windows(cluster, 1 if quick else 6, "sigterm")
        print("catch-up", file=sys.stderr)
        results["loopback_gb_s"] = loopback_gbps()
        results["catch_up"] = catch_up(cluster, 64 if quick else 1024)
    finally:
        cluster.close()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    print(table(results))


def table(r):
    rf1, rf3 = r["throughput_mb_s"][1], r["throughput_mb_s"][3]
    ratio = statistics.median(rf3) / statistics.median(rf1)
    lat = r["latency_ms"]
    k, t = r["failover_kill9"]["windows_s"], r["failover_sigterm"]["windows_s"]
    med = lambda xs: statistics.median([x for x in xs if x is not None]) if any(x is not None for x in xs) else None  # noqa: E731
    c = r["catch_up"]
    lines = [
        f"rev {r['revision']}",
        "",
        "| figure | result |",
        "|---|---|",
        "| idle CPU / RSS per node | " + ", ".join(f"node {i}: {v['cpu_percent']}% / {v['rss_mib']} MiB"
                                             for i, v in r["idle"].items()) + " |",
        f"| CreateTopics RF3 commit latency (n={r['create_topics_ms']['n']}) | p50 "
        f"{r['create_topics_ms']['p50']:.1f} ms, p99 {r['create_topics_ms']['p99']:.1f} ms |",
        f"| controller kill -9 → admin request succeeds (n={r['controller_failover_s']['n']}) | median "
        f"{r['controller_failover_s']['median']:.2f} s, max {r['controller_failover_s']['max']:.2f} s |",
        f"| RF3/RF1 acks=all 1 KiB throughput | RF1 {rf1} MB/s, RF3 {rf3} MB/s: **{ratio:.2f}x** |",
        f"| produce latency at 2000 rec/s, RF1 | p50 {lat[1]['p50']} ms, p99 {lat[1]['p99']} ms, "
        f"p99.9 {lat[1]['p999']} ms |",
        f"| produce latency at 2000 rec/s, RF3 | p50 {lat[3]['p50']} ms, p99 {lat[3]['p99']} ms, "
        f"p99.9 {lat[3]['p999']} ms |",
        f"| window without acks, kill -9 of a leader | {k} s, median **{med(k)}** s, "
        f"failed {r['failover_kill9']['failed']} |",
        f"| window without acks, SIGTERM of a leader | {t} s, median **{med(t)}** s, "
        f"failed {r['failover_sigterm']['failed']} |",
        f"| new replica catch-up | {c['bytes'] / 1e6:.0f} MB in {c['seconds']} s = {c['gb_per_s']} GB/s"
        + (f" against loopback {r['loopback_gb_s']:.2f} GB/s ({c['gb_per_s'] / r['loopback_gb_s']:.0%})"
           if r.get("loopback_gb_s") else "") + " |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
