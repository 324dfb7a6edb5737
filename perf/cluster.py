"""The cluster's figures, measured side by side in one run on a three-node local cluster (nodes on 127.0.0.1-3,
`--shards 1`, started by the cluster tests' harness). Run through perf/cluster.sh.

- controller: CreateTopics (RF 3) commit latency; time until an admin request succeeds again after a kill -9
  of the active controller; idle CPU and RSS per node.
- replication: RF=3 acks=all 1 KiB throughput against RF=1 on the same cluster, interleaved; produce latency at a
  fixed rate, RF=3 against RF=1; the window without acks for a killed (kill -9) or stopped (SIGTERM) leader's
  partitions under an idempotent acks=all load (then every acknowledged record read back); a new replica's
  catch-up rate against loopback's bandwidth.
- `--peer kafka` (and/or `--peer kafka-flush1`): the steps that make sense for Apache Kafka 4.4 run, after
  Sluice's, on a three-node Kafka cluster (tests/cluster/kafka_cluster.py, perf/kafka.sh) with the same load generators,
  and the table puts them side by side with Sluice ÷ Kafka ratios and each broker's CPU per MB and RSS. That
  run leaves out the Sluice-only steps (controller failover through `sluice cluster describe`, catch-up
  through `sluice topic reassign`).

Prints a Markdown table and writes perf/out/cluster/results.json. Every loop is bounded.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "cluster"), str(ROOT / "tests" / "clients")]

from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from harness import SLUICE, Cluster, create_topic, wait_until  # noqa: E402
from workload import Load, leader_of, read_all  # noqa: E402

from cluster_peer import load_average, peer_table, terminate  # noqa: E402
from kafka_cluster import KafkaCluster  # noqa: E402

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


def cluster_cpu(cluster):
    return sum(cpu_seconds(n.proc.pid) for n in cluster.nodes.values() if n.alive())


def delete_topic(cluster, name):
    """Frees the disk a throughput round filled (a round at RF1 writes several GB here)."""
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.delete_topics([name], operation_timeout=30)[name].result(30)


def throughput(cluster, seconds, rounds, cpu=None):
    """MB/s per round for RF1 and RF3, interleaved, each round into fresh topics that are deleted after it (so
    the runs fit on the disk); in `cpu` (if given) every node's CPU milliseconds per MB produced, over all rounds
    of each."""
    result = {1: [], 3: []}
    spent = {1: [0.0, 0], 3: [0.0, 0]}  # CPU seconds, bytes
    for r in range(rounds):
        for rf in (1, 3):
            topic = f"tput-rf{rf}-{r}"
            create_topic(cluster.nodes[1].bootstrap, topic, partitions=3, replication_factor=rf,
                         config={"min.insync.replicas": "2" if rf == 3 else "1"})
            time.sleep(2)
            before = cluster_cpu(cluster)
            summary = bench("produce", "--topic", topic, "--record-size", "1024", "--acks", "all",
                            "--duration", str(seconds), "--batch-bytes", "65536", "--max-in-flight", "8",
                            "--bootstrap", cluster.bootstrap)
            spent[rf][0] += cluster_cpu(cluster) - before
            spent[rf][1] += summary["bytes"]
            result[rf].append(summary["mb_per_second"])
            delete_topic(cluster, topic)
    if cpu is not None:
        cpu.update({rf: round(1000 * c / (b / 1e6), 2) if b else None for rf, (c, b) in spent.items()})
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
    windows, victims = [], []
    time.sleep(2)  # a new partition's first second is its own figure (see latency)
    with Load(cluster.bootstrap, topic, rate_per_s=1000) as load:
        for r in range(rounds):
            time.sleep(3)
            partition = r % 3
            # Metadata can name no leader (-1) for a moment; the victim is chosen from a view that names all.
            views = wait_until(lambda: (lambda ls: ls if all(x[0] != -1 for x in ls.values()) else None)(
                cluster.leaders(topic)), timeout=60, what="a leader for every partition")
            victim = views[partition][0]
            led = [p for p, (leader, _, _) in views.items() if leader == victim]
            survivor = next(n for i, n in cluster.nodes.items() if i != victim)
            victims.append(victim)
            started = time.time()
            if how == "kill9":
                cluster.nodes[victim].kill9()
            else:
                terminate(cluster.nodes[victim])
            wait_until(lambda: all(cluster.leaders(topic, via=survivor)[p][0] not in (victim, -1) for p in led),
                       timeout=60, what="new leaders")
            time.sleep(3)
            windows.append(load.longest_gap(started, partitions=led, until=time.time()))
            if how != "kill9":
                cluster.nodes[victim].wait_exit(60)
            cluster.nodes[victim].start()
            wait_until(lambda: all(len(isr) == 3 for _, _, isr in cluster.leaders(topic).values()), timeout=120,
                       what="the ISR whole again")
    if load.failed:
        print(f"  {how}: {len(load.failed)} records failed, e.g. {load.failed[:3]}", file=sys.stderr)
    return {"windows_s": [round(w, 3) if w is not None else None for w in windows], "failed": len(load.failed),
            "victims": victims, "history": history(load, read_all(cluster.bootstrap, topic, [0, 1, 2], timeout=120))}


def history(load, records):
    """What the read-back holds of the load: acknowledged records lost, duplicated, or read at another offset
    than acknowledged (each should be 0), as counts, so a run reports them instead of stopping."""
    seen, duplicated = {}, 0
    for partition, offset, value in records:
        duplicated += value in seen
        seen[value] = (partition, offset)
    return {"acked": len(load.acked), "read": len(records),
            "lost": sum(v not in seen for v in load.acked),
            "duplicated": duplicated,
            "moved": sum(v in seen and seen[v] != at for v, at in load.acked.items()),
            "failed_but_read": sum(v in seen for v, _ in load.failed)}


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


def measure(cluster, quick, out, sluice_only=True):
    """The steps into `out`, filled as they finish (a failure keeps what ran), with the load average at each.
    Without `sluice_only`, only those that make sense on Kafka as well."""
    out["load"] = {}

    def step(name):
        print(f"{name} (load average {load_average():.2f})", file=sys.stderr)
        out["load"][name] = round(load_average(), 2)

    time.sleep(3)
    step("idle use")
    out["idle"] = idle_usage(cluster, 5 if quick else 30)
    step("CreateTopics latency")
    out["create_topics_ms"] = quantiles(create_latencies(cluster.nodes[2].bootstrap, 10 if quick else 100,
                                                         "created"))
    if sluice_only:
        step("controller failover")
        out["controller_failover_s"] = quantiles(controller_failover(cluster, 1 if quick else 5))
    step("warm-up")
    # Unmeasured: a JVM broker's first seconds run in its interpreter until the JIT has compiled the produce
    # path; both brokers get the same warm-up so the figures are each one's steady state.
    create_topic(cluster.nodes[1].bootstrap, "warmup", partitions=3, replication_factor=3)
    time.sleep(2)
    bench("produce", "--topic", "warmup", "--record-size", "1024", "--acks", "all", "--duration",
          "5" if quick else "10", "--batch-bytes", "65536", "--max-in-flight", "8", "--bootstrap", cluster.bootstrap)
    bench("produce", "--topic", "warmup", "--record-size", "1024", "--acks", "all", "--duration", "5",
          "--rate", "2000", "--batch-bytes", "1024", "--max-in-flight", "64", "--bootstrap", cluster.bootstrap)
    delete_topic(cluster, "warmup")
    step("throughput RF1 / RF3")
    out["cpu_ms_per_mb"] = {}
    out["throughput_mb_s"] = throughput(cluster, 3 if quick else 10, 1 if quick else 3, out["cpu_ms_per_mb"])
    out["rss_after_mib"] = {i: round(rss_mib(n.proc.pid), 1) for i, n in cluster.nodes.items()}
    step("latency at a fixed rate")
    out["latency_ms"] = latency(cluster, 3 if quick else 20, 2000)
    step("failover windows, kill -9")
    out["failover_kill9"] = failover_windows(cluster, 1 if quick else 6, "kill9")
    step("failover windows, SIGTERM")
    out["failover_sigterm"] = failover_windows(cluster, 1 if quick else 6, "sigterm")
    if sluice_only:
        step("catch-up")
        out["loopback_gb_s"] = loopback_gbps()
        out["catch_up"] = catch_up(cluster, 64 if quick else 1024)
    step("done")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and shorter runs (a smoke test)")
    parser.add_argument("--peer", action="append", choices=["kafka", "kafka-flush1"], default=[],
                        help="also run the comparable steps on a 3-node Apache Kafka cluster (repeatable)")
    args = parser.parse_args()
    # A SIGTERM to this script still runs the finally blocks that stop every node it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=ROOT).stdout.strip()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.peer:
        results = {"revision": revision}
        run_sluice(results, args.quick, sluice_only=True)
        (OUT / "results.json").write_text(json.dumps(results, indent=2))
        print(table(results))
        return
    results = {"revision": revision, "quick": args.quick, "brokers": {"sluice": {}}}
    path = OUT / "peer-results.json"
    failed = False
    for name in ["sluice", *args.peer]:
        out = results["brokers"].setdefault(name, {})
        started = time.time()
        try:
            if name == "sluice":
                run_sluice(out, args.quick, sluice_only=False)
            else:
                cluster = KafkaCluster(OUT / "kafka-nodes", flush1=name == "kafka-flush1")
                try:
                    print(f"{name}: starting three nodes", file=sys.stderr)
                    cluster.start()
                    measure(cluster, args.quick, out, sluice_only=False)
                finally:
                    cluster.close()
        except Exception as error:  # noqa: BLE001 - the other brokers' figures are still worth printing
            failed = True
            out["error"] = f"{type(error).__name__}: {error}"[:3000]
            print(f"{name} failed: {out['error']}", file=sys.stderr)
        out["seconds"] = round(time.time() - started)
        path.write_text(json.dumps(results, indent=2))
    print(peer_table(results))
    sys.exit(1 if failed else 0)


def run_sluice(out, quick, sluice_only):
    root = OUT / "nodes"
    shutil.rmtree(root, ignore_errors=True)
    cluster = Cluster(root, size=3)
    try:
        cluster.start()
        print("sluice: cluster up", file=sys.stderr)
        measure(cluster, quick, out, sluice_only)
    finally:
        cluster.close()
        for node in cluster.nodes.values():  # the logs stay; the GBs of data go
            shutil.rmtree(node.data_dir, ignore_errors=True)


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
