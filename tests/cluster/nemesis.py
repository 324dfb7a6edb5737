"""The nemesis: a schedule of faults drawn from a seed, applied to a running cluster while history.py's
workload runs, each healed before the next. Kinds:

- kill-leader, kill-follower, kill-controller, kill-random: kill -9, a pause, then a restart with data kept;
- pause-leader, pause-random: SIGSTOP for longer than the broker session and the replica lag timeouts;
- restart: a clean SIGTERM and a start;
- isolate-leader, isolate-controller: a network partition around one node (its clients still reach it);
- split: a majority/minority split of the nodes, the clients on the majority side;
- bridge: two nodes that cannot see each other, both seeing the third;
- disk-full: one node's data disk filled, then emptied and the node restarted;
- power-loss: kill -9 of one node, its unsynced writes dropped (its data directory is on lossyfs), a restart;
- stall-kill-leader: the followers paused for a moment, the leader killed, the followers resumed;
- double: two faults of the kinds above at once, on different nodes.

Each applied fault is a dict (kind, nodes, start, end, recovered) kept in the run's record. A schedule is a
list of (kind, hold seconds, random choices) fixed by the seed, so `--seed S` replays it."""

import random
import time

from harness import wait_until

NEEDS_NETWORK = {"isolate-leader", "isolate-controller", "split", "bridge"}
NEEDS_DISK = {"disk-full"}
SINGLE_KINDS = ("kill-leader", "kill-follower", "kill-controller", "kill-random", "pause-leader", "pause-random",
                "restart", "isolate-leader", "isolate-controller", "split", "bridge", "disk-full",
                "stall-kill-leader", "power-loss")
NEEDS_LOSSY = {"power-loss"}
HOLD = {"kill": (0.5, 3.0), "pause": (3.5, 5.0), "restart": (0.0, 1.0), "isolate": (3.0, 6.0), "split": (3.0, 6.0),
        "bridge": (3.0, 6.0), "disk": (2.0, 4.0), "stall": (0.5, 1.0), "double": (3.0, 5.0),
        "power": (0.5, 2.0)}


NEEDS_PEERS = NEEDS_NETWORK | {"kill-follower", "stall-kill-leader"}


def kinds_available(network, disk, nodes=3, lossy=False):
    """The kinds a cluster of `nodes` supports: a single node has no peers to cut off, follow or stall."""
    return [k for k in SINGLE_KINDS if (network or k not in NEEDS_NETWORK) and (disk or k not in NEEDS_DISK)
            and (lossy or k not in NEEDS_LOSSY) and (nodes > 1 or k not in NEEDS_PEERS)]


def schedule(seed, count, kinds, nodes=3):
    """`count` faults, every kind in turn in a seeded order first so a short run covers them all, then drawn at
    random; about one in six is a double fault (on two different nodes, so never on a single node)."""
    rng = random.Random(seed)
    plan = []
    seconds = [k for k in kinds if k not in ("restart", "stall-kill-leader")]
    doubles = nodes > 1 and len(kinds) > 1 and seconds
    order = list(kinds) + (["double"] if doubles else [])
    rng.shuffle(order)
    while len(plan) < count:
        if len(plan) < len(order):
            kind = order[len(plan)]
        else:
            kind = "double" if doubles and rng.random() < 1 / 6 else rng.choice(kinds)
        lo, hi = HOLD[kind.split("-")[0]]
        plan.append({"kind": kind, "hold": round(rng.uniform(lo, hi), 2), "pick": rng.random(),
                     "second": rng.choice(seconds) if kind == "double" else None})
    return plan


class Nemesis:
    def __init__(self, cluster, topic, partitions, log=print):
        self.cluster = cluster
        self.topic = topic
        self.partitions = partitions
        self.log = log

    # --- what the faults aim at
    def node_ids(self):
        return sorted(self.cluster.nodes)

    def leaders(self):
        return wait_until(lambda: self.cluster.leaders(self.topic), timeout=20, what="metadata")

    def leader(self, pick, avoid=()):
        leaders = sorted({leader for leader, _, _ in self.leaders().values() if leader > 0 and leader not in avoid})
        return leaders[int(pick * len(leaders))] if leaders else self.random_node(pick, avoid)

    def follower(self, pick, avoid=()):
        views = self.leaders()
        partition = sorted(views)[int(pick * len(views))]
        leader, replicas, _ = views[partition]
        followers = [r for r in replicas if r != leader and r not in avoid]
        return followers[int(pick * len(followers))] if followers else self.random_node(pick, avoid)

    def controller(self, pick, avoid=()):
        try:
            leader = wait_until(lambda: self.cluster.active_controller(), timeout=20, what="the active controller")
        except AssertionError:
            leader = None
        return leader if leader and leader not in avoid else self.random_node(pick, avoid)

    def random_node(self, pick, avoid=()):
        ids = [i for i in self.node_ids() if i not in avoid]
        return ids[int(pick * len(ids))]

    # --- applying and healing
    def apply(self, kind, pick, avoid=()):
        """Starts a fault; returns (description, heal function)."""
        c = self.cluster
        if kind.startswith("kill-"):
            target = {"leader": self.leader, "follower": self.follower, "controller": self.controller,
                      "random": self.random_node}[kind[5:]](pick, avoid)
            c.nodes[target].kill9()
            return [target], lambda: c.nodes[target].start(wait=False)
        if kind.startswith("pause-"):
            target = (self.leader if kind == "pause-leader" else self.random_node)(pick, avoid)
            c.nodes[target].pause()
            return [target], c.nodes[target].resume
        if kind == "restart":
            target = self.random_node(pick, avoid)
            c.nodes[target].stop()
            c.nodes[target].start(wait=False)
            return [target], lambda: None
        if kind in ("isolate-leader", "isolate-controller"):
            target = (self.leader if kind == "isolate-leader" else self.controller)(pick, avoid)
            c.network.partition([[target], [i for i in self.node_ids() if i != target]])
            return [target], c.network.heal
        if kind == "split":
            ids = self.node_ids()
            minority = random.Random(pick).sample(ids, (len(ids) - 1) // 2)
            c.network.partition([minority, [i for i in ids if i not in minority] + [0]])
            return minority, c.network.heal
        if kind == "bridge":
            ids = self.node_ids()
            middle = self.random_node(pick, avoid)
            a, b = [i for i in ids if i != middle][:2]
            c.network.partition([[a, middle], [b, middle]])
            return [a, b], c.network.heal
        if kind == "disk-full":
            target = self.leader(pick, avoid) if pick < 0.5 else self.random_node(pick, avoid)
            node = c.nodes[target]
            node.disk.fill()

            def heal():
                # What an operator does after a full-disk alarm: free space, restart. A partition whose write
                # failed refuses writes (KAFKA_STORAGE_ERROR) until its broker restarts and recovers it.
                node.disk.empty()
                node.stop(timeout=30, force=True)
                node.start(wait=False)
            return [target], heal
        if kind == "power-loss":
            target = self.leader(pick, avoid) if pick < 0.5 else self.random_node(pick, avoid)
            node = c.nodes[target]
            node.kill9()
            node.power_loss()
            return [target], lambda: node.start(wait=False)
        if kind == "stall-kill-leader":
            leader = self.leader(pick, avoid)
            followers = [i for i in self.node_ids() if i != leader and c.nodes[i].serving()]
            for f in followers:
                c.nodes[f].pause()
            time.sleep(0.3)
            c.nodes[leader].kill9()
            for f in followers:
                c.nodes[f].resume()
            return [leader], lambda: c.nodes[leader].start(wait=False)
        raise ValueError(f"unknown fault kind {kind}")

    def run_one(self, fault):
        kind = fault["kind"]
        record = {"kind": kind, "start": time.time()}
        if kind == "double":
            first_kind = fault["second"] if fault["second"].startswith("kill") else "kill-random"
            nodes, heal_a = self.apply(first_kind, fault["pick"])
            more, heal_b = self.apply(fault["second"] if first_kind != fault["second"] else "pause-random",
                                      1 - fault["pick"], avoid=nodes)
            record["nodes"] = nodes + more
            heals = [heal_b, heal_a]
        else:
            record["nodes"], heal = self.apply(kind, fault["pick"])
            heals = [heal]
        time.sleep(fault["hold"])
        for heal in heals:
            heal()
        record["healed"] = time.time()
        record["recovered"] = self.wait_recovered()
        record["end"] = time.time()
        self.log(f"fault {kind} on {record['nodes']}: held {fault['hold']} s, "
                 f"recovered in {record['end'] - record['healed']:.1f} s" + ("" if record["recovered"] else " (NOT)"))
        return record

    def wait_recovered(self, timeout=60):
        """Every node back and ready, and every partition led with its whole ISR."""
        c = self.cluster
        try:
            for node in c.nodes.values():
                if node.alive() and not node.paused:
                    node.wait_ready(timeout=timeout)
            size = len(c.nodes)

            def whole():
                # Through every node: each must have caught up with the metadata, not only the first one asked
                # (an isolated node's view is the one from before its partition).
                views = [c.leaders(self.topic, via=node) for node in c.nodes.values()]
                return all(v == views[0] for v in views) and all(
                    leader > 0 and len(isr) == size for leader, _, isr in views[0].values())
            wait_until(whole, timeout=timeout, interval=0.25, what="every partition led with its whole ISR")
            return True
        except (AssertionError, RuntimeError) as error:
            self.log(f"not recovered: {error}")
            return False
