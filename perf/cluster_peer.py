"""Apache Kafka 4.4 as perf/cluster.py's peer: the three-node KRaft cluster of tests/cluster/kafka_cluster.py
(stock configuration and heap, or `log.flush.interval.messages=1`), with the interface of the cluster tests'
harness, so cluster.py's steps run unchanged against it. And the table that puts Sluice beside each peer, with
the ratios Sluice ÷ peer."""

import json
import os
import signal
import statistics


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
