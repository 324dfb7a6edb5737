"""Network partitions for a local cluster, from network namespaces and veth pairs the test creates and always
removes. Each node runs in a namespace of its own, with one veth pair to a bridge in the root namespace, where
the test's clients live. A partition is a set of blackhole routes inside the namespaces: a node drops what it
would send to the peers (or the clients) on the other side, so connections hang as on a real network rather
than failing at once. Nothing leaves the machine: the addresses are a private /24 that only the bridge holds."""

import atexit
import os
import random
import subprocess

CLIENTS = 254  # the bridge's own address: where the test's clients connect from


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _subnet_free(prefix):
    routes = _ip("-4", "route", "show").stdout + _ip("-4", "addr", "show").stdout
    return f"{prefix}." not in routes


class Network:
    """A bridge and one namespace per node id. `address(i)` is node i's address; `clients` is the address the
    clients use. `partition(groups)` cuts every link between groups (the clients count as node 0 and sit with
    the first group that lists 0, or with every group if none does); `heal()` removes every cut."""

    def __init__(self, node_ids):
        self.tag = f"sl{os.getpid() % 100000}"
        rng = random.Random()
        for _ in range(50):
            self.prefix = f"10.{rng.randrange(200, 250)}.{rng.randrange(1, 250)}"
            if _subnet_free(self.prefix):
                break
        else:
            raise RuntimeError("no free private /24 for the test network")
        self.node_ids = list(node_ids)
        self.bridge = f"{self.tag}br"
        self.cuts = set()  # (from node, to node), 0 being the clients
        self.created = False
        atexit.register(self.close)

    def namespace(self, node_id):
        return f"{self.tag}n{node_id}"

    def address(self, node_id):
        return f"{self.prefix}.{node_id}"

    @property
    def clients(self):
        return f"{self.prefix}.{CLIENTS}"

    def create(self):
        self.created = True
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.clients}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for node_id in self.node_ids:
            self.add_node(node_id)
        return self

    def add_node(self, node_id):
        if node_id not in self.node_ids:
            self.node_ids.append(node_id)
        ns, host_end = self.namespace(node_id), f"{self.tag}v{node_id}"
        _ip("netns", "add", ns)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", host_end, "master", self.bridge, "up")
        _ip("-n", ns, "addr", "add", f"{self.address(node_id)}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")

    def wrap(self, node_id, argv):
        """The command line that runs `argv` inside node_id's namespace (`ip netns exec` execs in place, so the
        process keeps the pid the test signals)."""
        return ["ip", "netns", "exec", self.namespace(node_id), *argv]

    def _cut(self, src, dst):
        if src == 0 or (src, dst) in self.cuts:
            return  # the clients' namespace is the root one: cuts are made on the node side only
        _ip("-n", self.namespace(src), "route", "add", "blackhole", f"{self._addr(dst)}/32")
        self.cuts.add((src, dst))

    def _addr(self, node_id):
        return self.clients if node_id == 0 else self.address(node_id)

    def partition(self, groups):
        """Cuts every link between different groups, in both directions. Groups are lists of node ids; 0 is
        the clients. Nodes in no group keep all their links (a bridge node)."""
        self.heal()
        if not any(0 in g for g in groups):
            groups = [list(g) + [0] for g in groups]  # the clients reach everyone
        where = {}
        for index, group in enumerate(groups):
            for member in group:
                where.setdefault(member, set()).add(index)
        members = list(where)
        for a in members:
            for b in members:
                if a != b and not where[a] & where[b]:
                    self._cut(a, b)
                    self._cut(b, a)

    def heal(self):
        for src, dst in sorted(self.cuts):
            _ip("-n", self.namespace(src), "route", "del", "blackhole", f"{self._addr(dst)}/32", check=False)
        self.cuts.clear()

    def close(self):
        if not self.created:
            return
        self.created = False
        for node_id in self.node_ids:
            _ip("netns", "del", self.namespace(node_id), check=False)
            _ip("link", "del", f"{self.tag}v{node_id}", check=False)
        _ip("link", "del", self.bridge, check=False)
