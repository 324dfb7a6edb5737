"""A local Sluice cluster for tests: each node a `sluice serve` process on its own loopback address
(127.0.0.1, .2, .3, ...), with the same ports and its own data directory, started from a Kafka-style
server.properties file. Optionally each node runs in a network namespace of its own, so the test can cut
links (netns.py), and keeps its data on a small disk of its own, so the test can fill it (disks.py). Nodes
can be stopped (SIGTERM), killed (SIGKILL), paused (SIGSTOP) and resumed, and restarted with their data kept.
Everything started is stopped, and every namespace and disk removed, when the cluster closes."""

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SLUICE = os.environ.get("SLUICE_BIN", str(ROOT / "target" / "release" / "sluice"))


def free_port_on_all(hosts):
    """A port free on every host (loopback addresses), so every node uses the same ports."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind((hosts[0], 0))
            port = probe.getsockname()[1]
        ok = True
        for host in hosts:
            for candidate in (port, port + 1):
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    try:
                        s.bind((host, candidate))
                    except OSError:
                        ok = False
        if ok:
            return port
    raise RuntimeError("no port free on every loopback address")


def wait_until(predicate, timeout=30.0, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    last_error = value = None
    while time.time() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - the predicate polls a cluster that may be mid-change
            last_error = error
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what} (last value: {value!r}; last error: {last_error})")


class NodeProcess:
    """What the tests do to a node's process, the same for a Sluice node (Node) and a Kafka one
    (kafka_cluster.KafkaNode): its log, waiting for its ready line, SIGTERM, SIGKILL, SIGSTOP and SIGCONT.
    A subclass sets `name`, `ready_line`, `ready_timeout` and `stop_timeout`, and keeps `proc`, `log_path`,
    `paused` and `ready_before` up to date."""

    name = "node"
    ready_line = "ready to serve"
    ready_timeout = 60
    stop_timeout = 30

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def ready_count(self):
        return self.log().count(self.ready_line)

    def wait_ready(self, before=None, timeout=None):
        """Waits for the ready line of the start that counted `before` such lines (by default the last start)."""
        before = self.ready_before if before is None else before
        timeout = timeout or self.ready_timeout
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} {self.node_id} exited with {self.proc.returncode}:\n"
                                   f"{self.log()[-6000:]}")
            if self.ready_count() > before:
                return self
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} {self.node_id} not ready after {timeout} s:\n{self.log()[-6000:]}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def serving(self):
        """Running and not paused: it can answer."""
        return self.alive() and not self.paused

    def stop(self, timeout=None, force=False):
        """SIGTERM: a controlled shutdown. Returns the exit code. A node still running after `timeout` is killed,
        and that fails the caller unless `force`."""
        timeout = timeout or self.stop_timeout
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if not force:
                    raise AssertionError(f"{self.name} {self.node_id} did not stop within {timeout} s of SIGTERM")
        return self.proc.returncode if self.proc else None

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def wait_exit(self, timeout=30):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} {self.node_id} still running after {timeout} s:\n{self.log()[-4000:]}")


class Node(NodeProcess):
    def __init__(self, cluster, node_id, roles="broker,controller", extra=None, lossy=False):
        self.cluster = cluster
        self.node_id = node_id
        self.host = cluster.host_of(node_id)
        self.roles = roles
        self.extra = dict(extra or {})
        self.disk = None
        if cluster.disk_mb:
            from disks import Disk
            home = cluster.root / f"node-{node_id}"
            self.disk = Disk(home / "disk.img", home / "disk", cluster.disk_mb)
            self.data_dir = home / "disk" / "data"
        else:
            self.data_dir = cluster.root / f"node-{node_id}" / "data"
        self.properties = cluster.root / f"node-{node_id}" / "server.properties"
        self.log_path = cluster.root / f"node-{node_id}" / "sluice.log"
        self.proc = None
        self.extra_args = []
        self.paused = False
        self.ready_before = 0
        # lossy: the data directory is a lossyfs mount (tests/cluster/lossyfs.py), so power_loss() can drop
        # what the node wrote but did not fsync; with a disk of its own, lossyfs keeps its backing directory
        # there. Mounted at the first start, unmounted when the cluster closes.
        self.mount = None
        if lossy:
            from lossyfs import LossyMount
            home = cluster.root / f"node-{node_id}"
            if self.disk:
                self.data_dir = home / "data"
            backing = home / "disk" / "backing" if self.disk else home / "data.backing"
            self.mount = LossyMount(backing, self.data_dir, home / "lossyfs.log")

    @property
    def bootstrap(self):
        return f"{self.host}:{self.cluster.broker_port}"

    def write_properties(self):
        self.properties.parent.mkdir(parents=True, exist_ok=True)
        lines = {
            "process.roles": self.roles,
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.cluster.voters,
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
        }
        if "broker" in self.roles and "controller" in self.roles:
            lines["listeners"] = (f"PLAINTEXT://{self.host}:{self.cluster.broker_port},"
                                  f"CONTROLLER://{self.host}:{self.cluster.controller_port}")
            lines["advertised.listeners"] = f"PLAINTEXT://{self.host}:{self.cluster.broker_port}"
        elif "broker" in self.roles:
            lines["listeners"] = f"PLAINTEXT://{self.host}:{self.cluster.broker_port}"
            lines["advertised.listeners"] = f"PLAINTEXT://{self.host}:{self.cluster.broker_port}"
        else:
            lines["listeners"] = f"CONTROLLER://{self.host}:{self.cluster.controller_port}"
        lines.update(self.cluster.extra)
        lines.update(self.extra)
        text = "# written by tests/cluster/harness.py\n" + "".join(f"{k}={v}\n" for k, v in lines.items())
        self.properties.write_text(text)

    def start(self, wait=True, extra_args=()):
        assert self.proc is None or self.proc.poll() is not None, f"node {self.node_id} is already running"
        self.write_properties()
        if self.disk:
            self.disk.mount()
        if self.mount is not None and self.mount.proc is None:
            self.mount.start()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        before = self.ready_count()
        self.ready_before = before
        log = open(self.log_path, "ab")
        args = [SLUICE, "serve", "--config", str(self.properties), "--shards", str(self.cluster.shards),
                *self.extra_args, *extra_args]
        if self.cluster.network:
            args = self.cluster.network.wrap(self.node_id, args)
        self.proc = subprocess.Popen(args, stdout=log, stderr=log,
                                     env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info"),
                                          **self.cluster.env})
        if wait:
            self.wait_ready(before)
        return self

    def power_loss(self):
        """The node's unsynced writes vanish, as in a power cut. The node must be down (kill -9 it first)."""
        assert self.mount is not None, f"node {self.node_id} is not on lossyfs"
        assert not self.alive(), f"node {self.node_id} is running: kill it before its power fails"
        return self.mount.power_loss()

class Cluster:
    def __init__(self, root, size=3, shards=1, extra=None, voters=None, network=False, disk_mb=None, lossy=()):
        self.root = Path(root)
        self.shards = shards
        self.disk_mb = disk_mb
        self.env = {}  # extra environment for every node's process
        self.extra = {
            # Fast failure detection for tests, still Sluice's defaults otherwise.
            "num.partitions": "1",
            **(extra or {}),
        }
        ids = list(range(1, size + 1))
        voter_ids = voters or ids
        self.network = None
        if network:
            from netns import Network
            self.network = Network(range(1, max(ids) + 2)).create()
            self.broker_port = 9092  # each namespace is fresh: every port is free
        else:
            self.broker_port = free_port_on_all([self.host_of(i) for i in range(1, max(ids) + 2)])
        self.controller_port = self.broker_port + 1
        self.voters = ",".join(f"{i}@{self.host_of(i)}:{self.controller_port}" for i in voter_ids)
        self.nodes = {i: Node(self, i, lossy=i in lossy) for i in ids}

    def host_of(self, node_id):
        return self.network.address(node_id) if self.network else f"127.0.0.{node_id}"

    def add_node(self, node_id, roles="broker", extra=None):
        node = Node(self, node_id, roles=roles, extra=extra)
        self.nodes[node_id] = node
        return node

    @property
    def bootstrap(self):
        return ",".join(n.bootstrap for n in self.nodes.values() if n.serving() and "broker" in n.roles)

    def start(self):
        for node in self.nodes.values():
            node.start(wait=False)
        for node in self.nodes.values():
            node.wait_ready(before=0)
        self.wait_brokers(len([n for n in self.nodes.values() if "broker" in n.roles]))
        return self

    def close(self):
        for node in self.nodes.values():
            if node.proc and node.proc.poll() is None:
                try:
                    node.resume()
                except ProcessLookupError:
                    pass
                node.proc.kill()
                node.proc.wait()
        mounts = [node.mount for node in self.nodes.values() if node.mount is not None]
        for mount in mounts:
            mount.request_stop()
        for mount in mounts:
            mount.close()
        for node in self.nodes.values():
            if node.disk:
                node.disk.close()
        if self.network:
            self.network.close()

    def describe(self, via=None):
        """`sluice cluster describe --json` through one node."""
        node = via or next(n for n in self.nodes.values() if n.serving() and "broker" in n.roles)
        out = subprocess.run([SLUICE, "cluster", "describe", "--bootstrap", node.bootstrap, "--json"],
                             capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        return json.loads(out.stdout)

    def active_controller(self):
        return self.describe()["quorum"]["leader_id"]

    def metadata(self, node, topics=None):
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": node.bootstrap, "client.id": f"harness-{node.node_id}"})
        return admin.list_topics(timeout=10)

    def wait_brokers(self, count, timeout=60):
        def ready():
            for node in self.nodes.values():
                if node.serving() and "broker" in node.roles:
                    md = self.metadata(node)
                    if len(md.brokers) != count:
                        return False
            return True
        wait_until(ready, timeout, what=f"{count} brokers in every node's metadata")

    def leaders(self, topic, via=None):
        node = via or next(n for n in self.nodes.values() if n.serving() and "broker" in n.roles)
        md = self.metadata(node)
        t = md.topics[topic]
        return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in t.partitions.values()}

    def logs(self):
        return "\n".join(f"--- node {n.node_id}\n{n.log()[-4000:]}" for n in self.nodes.values())


def create_topic(bootstrap, name, partitions=1, replication_factor=3, config=None, timeout=30):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                                            config=config or {})], operation_timeout=timeout)
    futures[name].result(timeout)


def new_cluster(root, size=3, extra=None, **kwargs):
    """A cluster that is not started yet: Sluice's, or Apache Kafka's with SLUICE_TEST_TARGET=kafka."""
    from target import ON_KAFKA
    if ON_KAFKA:
        from kafka_cluster import SIZE, KafkaCluster
        wanted = {k: v for k, v in kwargs.items() if v}
        assert size == SIZE and not wanted, (f"the Kafka reference cluster is {SIZE} plain nodes on loopback: mark "
                                             f"the test sluice_only if it needs {wanted or f'{size} nodes'}")
        return KafkaCluster(root, extra=extra)
    return Cluster(root, size=size, extra=extra, **kwargs)


def assert_clean_log(node, bad_lines=("panicked", "response encoding failed", "shard stopped with an error")):
    log = node.log()
    for bad in bad_lines:
        assert bad not in log, f"node {node.node_id} log contains '{bad}':\n{log[-4000:]}"


def count(pattern, text):
    return len(re.findall(pattern, text))


def read_batches(partition_dir):
    """(base offset, last offset, partition leader epoch, crc) of every batch in a partition directory's
    segment files, in offset order: what two replicas must agree on."""
    import struct
    out = []
    for segment in sorted(Path(partition_dir).glob("*.log")):
        data = segment.read_bytes()
        pos = 0
        while pos + 61 <= len(data):
            base, length = struct.unpack_from(">qi", data, pos)
            if length <= 0:
                break
            epoch, magic, crc = struct.unpack_from(">ibI", data, pos + 12)
            last_delta = struct.unpack_from(">i", data, pos + 23)[0]
            if magic != 2 or pos + 12 + length > len(data):
                break
            out.append((base, base + last_delta, epoch, crc))
            pos += 12 + length
    return out


def replica_batches(cluster, topic, partition, upto=None):
    """Each live or stopped node's batches of one partition, cut at offset `upto` (exclusive) if given."""
    views = {}
    for node in cluster.nodes.values():
        directory = node.data_dir / f"{topic}-{partition}"
        if directory.exists():
            batches = read_batches(directory)
            if upto is not None:
                batches = [b for b in batches if b[0] < upto]
            views[node.node_id] = batches
    return views
