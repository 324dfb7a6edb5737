"""Apache Kafka 4.4 as the reference cluster: three KRaft combined nodes on 127.0.0.1-3, prepared by perf/kafka.sh
(its stock configuration and heap, or `log.flush.interval.messages=1`), whose java processes this module starts,
kill -9s, pauses, stops and restarts itself, with the interface of harness.py's Cluster and Node. The cluster tests
run on it with SLUICE_TEST_TARGET=kafka (conftest.py), and so do the fault runs (faultrun.py, process faults only);
perf/cluster.py measures it beside Sluice."""

import shutil
import subprocess
from pathlib import Path

from harness import Cluster, NodeProcess, free_port_on_all

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = ROOT / "perf" / "kafka.sh"
SIZE = 3


class KafkaNode(NodeProcess):
    """One Kafka node (broker and controller); its java process is ours (kafka.sh execs java, so SIGTERM is
    Kafka's controlled shutdown, and its JVM exits 143)."""

    name = "kafka node"
    ready_line = "Kafka Server started"
    ready_timeout = 120
    stop_timeout = 60
    roles = "broker,controller"
    disk = None
    mount = None

    def __init__(self, cluster, node_id):
        self.cluster = cluster
        self.node_id = node_id
        self.host = f"127.0.0.{node_id}"
        self.home = cluster.root / f"node-{node_id}"
        self.data_dir = self.home / "data"
        self.log_path = self.home / "server.log"
        self.proc = None
        self.paused = False
        self.ready_before = 0

    @property
    def bootstrap(self):
        return f"{self.host}:{self.cluster.broker_port}"

    def start(self, wait=True, extra_args=()):
        assert not extra_args, "a Kafka node takes its settings from the cluster's properties"
        assert not self.alive(), f"kafka node {self.node_id} is already running"
        self.ready_before = self.ready_count()
        self.paused = False
        out = open(self.home / "stdout.log", "ab")
        self.proc = subprocess.Popen([str(KAFKA_SH), "node", "--nodes", str(SIZE), "--index", str(self.node_id),
                                      "--dir", str(self.cluster.root)], stdout=out, stderr=out,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        if wait:
            self.wait_ready()
        return self


class KafkaCluster(Cluster):
    """Three Kafka nodes with the harness Cluster's methods (bootstrap, describe, metadata, leaders, wait_brokers).
    `extra` adds broker settings to every node's properties, as the harness's `extra` does for Sluice's."""

    env = {}

    def __init__(self, root, flush1=False, extra=None):  # noqa: the harness's __init__ builds Sluice nodes
        self.root = Path(root)
        self.network = None
        self.disk_mb = None
        self.shards = 1
        self.broker_port = free_port_on_all([f"127.0.0.{i}" for i in range(1, SIZE + 1)])
        self.controller_port = self.broker_port + 1
        self.flush1 = flush1
        self.extra = dict(extra or {})
        self.nodes = {i: KafkaNode(self, i) for i in range(1, SIZE + 1)}

    def add_node(self, node_id, roles="broker", extra=None):
        raise NotImplementedError("the Kafka reference cluster has three nodes")

    def start(self):
        args = [str(KAFKA_SH), "prepare", "--nodes", str(SIZE), "--fresh", "--dir", str(self.root),
                "--port", str(self.broker_port), "--controller-port", str(self.controller_port)]
        if self.flush1:
            args.append("--flush1")
        for key, value in self.extra.items():
            args += ["--set", f"{key}={value}"]
        out = subprocess.run(args, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise RuntimeError(f"kafka.sh prepare failed:\n{out.stderr[-3000:]}")
        for node in self.nodes.values():
            node.start(wait=False)
        for node in self.nodes.values():
            node.wait_ready(before=0)
        self.wait_brokers(SIZE, timeout=120)
        return self

    def close(self):
        """Kills every node; their logs stay, their data goes."""
        for node in self.nodes.values():
            if node.alive():
                try:
                    node.resume()
                except ProcessLookupError:
                    pass
            node.kill9()
            shutil.rmtree(node.data_dir, ignore_errors=True)
