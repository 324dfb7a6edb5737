"""Apache Kafka 4.4 as perf/cluster.py's peer: a three-node KRaft cluster (combined nodes on 127.0.0.1-3, stock
configuration and heap, or `log.flush.interval.messages=1`) that perf/kafka.sh prepares and whose java processes
this module starts, kill -9s, stops and restarts itself, with the same interface as the cluster tests' harness
(tests/cluster/harness.py), so cluster.py's steps run unchanged against it. And the table that puts Sluice
beside each peer, with the ratios Sluice ÷ peer."""

import json
import os
import shutil
import signal
import statistics
import subprocess
import time
from pathlib import Path

from harness import Cluster, free_port_on_all

ROOT = Path(__file__).resolve().parents[1]
KAFKA_SH = ROOT / "perf" / "kafka.sh"


class KafkaNode:
    """One Kafka node (broker and controller) of a cluster perf/kafka.sh prepared; its java process is ours."""

    roles = "broker,controller"

    def __init__(self, cluster, node_id):
        self.cluster = cluster
        self.node_id = node_id
        self.host = f"127.0.0.{node_id}"
        self.home = cluster.root / f"node-{node_id}"
        self.data_dir = self.home / "data"
        self.log_path = self.home / "server.log"
        self.proc = None
        self.ready_before = 0

    @property
    def bootstrap(self):
        return f"{self.host}:{self.cluster.broker_port}"

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def ready_count(self):
        return self.log().count("Kafka Server started")

    def start(self, wait=True):
        assert not self.alive(), f"kafka node {self.node_id} is already running"
        self.ready_before = self.ready_count()
        out = open(self.home / "stdout.log", "ab")
        # kafka.sh execs java, so this pid is the broker's (what the CPU and RSS figures read).
        self.proc = subprocess.Popen([str(KAFKA_SH), "node", "--nodes", "3", "--index", str(self.node_id),
                                      "--dir", str(self.cluster.root)], stdout=out, stderr=out,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, before=None, timeout=120):
        before = self.ready_before if before is None else before
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kafka node {self.node_id} exited with {self.proc.returncode}:\n"
                                   f"{self.log()[-4000:]}")
            if self.ready_count() > before:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"kafka node {self.node_id} not ready after {timeout} s:\n{self.log()[-4000:]}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def serving(self):
        return self.alive()

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def wait_exit(self, timeout=60):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"kafka node {self.node_id} still running after {timeout} s")


class KafkaCluster(Cluster):
    """Three Kafka nodes with the harness Cluster's methods (bootstrap, metadata, leaders, wait_brokers)."""

    def __init__(self, root, flush1=False):  # noqa: the harness's __init__ builds Sluice nodes
        self.root = Path(root)
        self.network = None
        self.broker_port = free_port_on_all([f"127.0.0.{i}" for i in range(1, 4)])
        self.controller_port = self.broker_port + 1
        self.flush1 = flush1
        self.nodes = {i: KafkaNode(self, i) for i in (1, 2, 3)}

    def start(self):
        args = [str(KAFKA_SH), "prepare", "--nodes", "3", "--fresh", "--dir", str(self.root),
                "--port", str(self.broker_port), "--controller-port", str(self.controller_port)]
        if self.flush1:
            args.append("--flush1")
        out = subprocess.run(args, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"kafka.sh prepare failed:\n{out.stderr[-3000:]}")
        for node in self.nodes.values():
            node.start(wait=False)
        for node in self.nodes.values():
            node.wait_ready(before=0)
        self.wait_brokers(3, timeout=120)
        return self

    def close(self):
        for node in self.nodes.values():
            node.kill9()
        shutil.rmtree(self.root, ignore_errors=True)


def terminate(node):
    """SIGTERM: a controlled shutdown, for a Sluice node or a Kafka one."""
    node.proc.send_signal(signal.SIGTERM)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _fmt(x, digits=1):
    return "-" if x is None else f"{x:.{digits}f}"


def _ratio(a, b):
    return "-" if a is None or b is None or b == 0 else f"**{a / b:.2f}x**"


def peer_table(results):
    """One row per figure: Sluice, each peer, and Sluice ÷ peer."""
    # Keys as they read back from JSON ("1", "3"), whether the results come from this run or from the file.
    brokers = json.loads(json.dumps(results["brokers"]))
    names = list(brokers)
    peers = [n for n in names if n != "sluice"]
    rows = []

    def row(label, pick, digits=1):
        values = {}
        for n in names:
            try:
                values[n] = pick(brokers[n])
            except (KeyError, TypeError, statistics.StatisticsError):
                values[n] = None
        cells = [_fmt(values[n], digits) for n in names] + [_ratio(values["sluice"], values[p]) for p in peers]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")

    tput = lambda rf: lambda b: median(b["throughput_mb_s"][str(rf)])  # noqa: E731
    row("RF=1 acks=all 1 KiB throughput, MB/s (median of rounds; higher is better)", tput(1))
    row("RF=3 acks=all 1 KiB throughput, MB/s (median of rounds; higher is better)", tput(3))
    row("RF=3 ÷ RF=1 throughput", lambda b: median(b["throughput_mb_s"]["3"]) / median(b["throughput_mb_s"]["1"]), 2)
    for rf in (1, 3):
        for q in ("p50", "p99", "p999"):
            row(f"RF={rf} produce latency at 2,000 rec/s, {q} ms", lambda b, rf=rf, q=q: b["latency_ms"][str(rf)][q], 2)
    for how, label in (("kill9", "kill -9"), ("sigterm", "SIGTERM")):
        row(f"window without acks after {label} of a leader, median s", lambda b, h=how: median(
            b[f"failover_{h}"]["windows_s"]), 2)
        row(f"the same, max s", lambda b, h=how: max(w for w in b[f"failover_{h}"]["windows_s"] if w is not None), 2)
    for rf in (1, 3):
        row(f"broker CPU per MB produced, RF={rf}, ms (all nodes)", lambda b, rf=rf: b["cpu_ms_per_mb"][str(rf)])
    row("RSS after the throughput runs, MiB (sum of 3 nodes)", lambda b: sum(b["rss_after_mib"].values()), 0)
    row("idle CPU % (sum of 3 nodes, 3-node cluster)", lambda b: sum(v["cpu_percent"] for v in b["idle"].values()), 2)
    row("idle RSS, MiB (sum of 3 nodes)", lambda b: sum(v["rss_mib"] for v in b["idle"].values()), 0)
    row("CreateTopics RF=3, p50 ms", lambda b: b["create_topics_ms"]["p50"])
    head = "| figure | " + " | ".join(names) + " | " + " | ".join(f"sluice ÷ {p}" for p in peers) + " |"
    lines = [f"rev {results['revision']}", "", head, "|---" * (1 + len(names) + len(peers)) + "|", *rows, ""]
    for n in names:
        b = brokers[n]
        for how in ("kill9", "sigterm"):
            f = b.get(f"failover_{how}", {})
            lines.append(f"- {n} {how}: windows {f.get('windows_s')} s, victims {f.get('victims')}, "
                         f"failed {f.get('failed')}, history {f.get('history')}")
        lines.append(f"- {n} load average per step: {b.get('load')}")
    return "\n".join(lines)


def load_average():
    return os.getloadavg()[0]
