#!/usr/bin/env python3
"""Prints perf/compare.sh's results as Markdown tables: each workload's figure per broker, Sluice (2 shards)
over the machine's limit and over each peer (Apache Kafka, Tansu) that ran, and each broker's CPU per MB and
RSS. Usage: compare_table.py OUT_DIR REVISION"""
import json
import os
import platform
import sys

out, rev = sys.argv[1], sys.argv[2]
ALL_BROKERS = [("sluice2", "Sluice 2 shards"), ("sluice1", "Sluice 1 shard"),
               ("kafka", "Kafka"), ("kafka-flush1", "Kafka flush=1"),
               ("tansu-mem", "Tansu memory"), ("tansu-sqlite", "Tansu sqlite")]
# Only the brokers this run measured get a column (each leaves its idle RSS), and each peer a ratio column.
BROKERS = [(b, label) for b, label in ALL_BROKERS if os.path.exists(os.path.join(out, f"{b}-rss-idle.json"))]
PEERS = [(b, label) for b, label in BROKERS if not b.startswith("sluice")]


def load(name):
    try:
        with open(os.path.join(out, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


limits = load("limits") or {}


def rate(j):
    if not j or not j.get("records"):
        return "failed" if j is None else "no data"
    return f"{j['records_per_second'] / 1e6:.2f} M/s, {j['mb_per_second']:.0f} MB/s"


def latency(j):
    if not j or "latency_ms" not in j or not j.get("records"):
        return "failed" if j is None else "no data"
    l = j["latency_ms"]
    return f"p50 {l['p50']:.2f} p99 {l['p99']:.2f} p99.9 {l['p999']:.2f} max {l['max']:.1f} ms ({j['records_per_second'] / 1e3:.0f} k/s)"


def ratio(a, b, field="mb_per_second"):
    try:
        return f"{a[field] / b[field]:.2f}x" if b[field] else "-"
    except (TypeError, KeyError):
        return "-"


def vs_limit(j, limit_key, scale):
    """j's MB/s over a limit (MiB/s for fio, GB/s for iperf3)."""
    if not j or not j.get("records") or limit_key not in limits:
        return "-"
    limit_mb = limits[limit_key] * scale
    return f"{j['mb_per_second'] / limit_mb:.0%} of {limit_key} ({limit_mb:.0f} MB/s)"


rows = []
head = "| workload | generator | " + " | ".join(label for _, label in BROKERS) + " | Sluice 2 / limit | " + \
    " | ".join(f"Sluice 2 / {label}" for _, label in PEERS) + " |"
rows.append(head)
rows.append("|" + "---|" * (head.count("|") - 1))


def throughput_row(workload, suffix, generator, limit_key=None, scale=1.048576):
    js = {b: load(f"{b}-{suffix}") for b, _ in BROKERS}
    lim = vs_limit(js.get("sluice2"), limit_key, scale) if limit_key else "-"
    rows.append(f"| {workload} | {generator} | " + " | ".join(rate(js[b]) for b, _ in BROKERS) +
                f" | {lim} | " + " | ".join(ratio(js.get("sluice2"), js[b]) for b, _ in PEERS) + " |")


def latency_row(workload, suffix, generator):
    js = {b: load(f"{b}-{suffix}") for b, _ in BROKERS}
    s = js.get("sluice2")

    def p99_ratio(other):
        try:
            return f"p99 {other['latency_ms']['p99'] / s['latency_ms']['p99']:.1f}x lower"
        except (TypeError, KeyError, ZeroDivisionError):
            return "-"
    lim = "-"
    if s and "latency_ms" in s and "rr_floor_disk_p99_ms" in limits:
        # The smallest possible broker at W4's load (perf/gcfloor.c over loopback TCP): request/response plus
        # the disk's group-commit rounds in the mode Sluice uses, and each of the two alone.
        floor = limits["rr_floor_disk_p99_ms"]
        lim = (f"p99 = {s['latency_ms']['p99'] / floor:.2f}x the whole path's floor ({floor} ms: loopback "
               f"request/response and the disk's group commit; {limits['gc_floor_window_p99_ms']} ms the disk "
               f"alone, {limits['rr_floor_net_p99_ms']} ms request/response alone)")
    elif s and "latency_ms" in s and "fdatasync_4k_p99_ms" in limits:
        lim = f"p99 = {s['latency_ms']['p99'] / limits['fdatasync_4k_p99_ms']:.1f}x fdatasync p99 ({limits['fdatasync_4k_p99_ms']} ms)"
    rows.append(f"| {workload} | {generator} | " + " | ".join(latency(js[b]) for b, _ in BROKERS) +
                f" | {lim} | " + " | ".join(p99_ratio(js[b]) for b, _ in PEERS) + " |")


throughput_row("W1 100 B, acks=1, 1 partition", "W1-p1-bench", "sluice bench", "write_buffered_mib_s")
throughput_row("W1 100 B, acks=1, 1 partition", "W1-p1-rdk", "librdkafka", "write_buffered_mib_s")
throughput_row("W1 100 B, acks=1, 8 partitions", "W1-p8-bench", "sluice bench", "write_buffered_mib_s")
throughput_row("W1 100 B, acks=1, 8 partitions", "W1-p8-rdk", "librdkafka", "write_buffered_mib_s")
throughput_row("T1 100 B, acks=all, fsync, 2 partitions", "T1-bench", "sluice bench", "append_fdatasync_1m_mib_s")
throughput_row("T1 100 B, acks=all, fsync, 2 partitions", "T1-rdk", "librdkafka, linger.ms=5", "append_fdatasync_1m_mib_s")
throughput_row("W2 1 KiB, acks=all, fsync", "W2-bench", "sluice bench", "append_fdatasync_1m_mib_s")
throughput_row("W2 1 KiB, acks=all, fsync", "W2-rdk", "librdkafka", "append_fdatasync_1m_mib_s")
throughput_row("W3 consume 1 KiB from page cache", "W3-bench", "sluice bench", "loopback_tcp_gb_s", 1000)
throughput_row("W3 consume 1 KiB from page cache", "W3-rdk", "librdkafka", "loopback_tcp_gb_s", 1000)
latency_row("W4 at 50% of W2's peak", "W4-half-bench", "sluice bench")
latency_row("W4 at 50% of W2's peak", "W4-half-rdk", "librdkafka, linger.ms=0")
latency_row("W4 50 k/s of 1 KiB, 1 record per request", "W4-50k-bench", "sluice bench")
latency_row("W4 50 k/s of 1 KiB", "W4-50k-rdk", "librdkafka, linger.ms=0")
throughput_row("W1 100 B, acks=1, 8 partitions", "W1-p8-kpt", "kafka-producer-perf-test", "write_buffered_mib_s")
throughput_row("W2 1 KiB, acks=all, fsync", "W2-kpt", "kafka-producer-perf-test", "append_fdatasync_1m_mib_s")
latency_row("W4 50 k/s of 1 KiB", "W4-50k-kpt", "kafka-producer-perf-test, linger.ms=0")
rows = [r for r in rows if not r.startswith("| W") or any(
    c not in ("failed", "no data") for c in r.split(" | ")[2:2 + len(BROKERS)])]  # no rows for parts not run
dash = " | -" * len(PEERS)

# W6: idle connections.
cells = []
for b, _ in BROKERS:
    base, idle, rss0, rss1 = load(f"{b}-W1-p8-bench"), load(f"{b}-W6-p8-bench"), load(f"{b}-rss-idle"), load(f"{b}-W6-rss")
    if base and idle and rss1 and base.get("records_per_second"):
        change = idle["records_per_second"] / base["records_per_second"] - 1
        cells.append(f"RSS {rss1['rss_kb'] / 1024:.0f} MB with 1,000 idle (idle start {rss0['rss_kb'] / 1024:.0f} MB); W1 {change:+.0%}")
    else:
        cells.append("failed")
rows.append("| W6 1,000 idle connections + W1 (8 partitions) | sluice bench | " + " | ".join(cells) + " | -" + dash + " |")

# RSS at the end of each broker's run.
cells = []
for b, _ in BROKERS:
    end = load(f"{b}-rss-end")
    cells.append(f"{end['rss_kb'] / 1024:.0f} MB" if end else "-")
rows.append("| RSS after W1-W6 | - | " + " | ".join(cells) + " | -" + dash + " |")

state = (load("state") or {}).get("page_cache", "unknown")
print(f"Revision {rev}; {platform.node()}, {os.cpu_count()} CPUs, {platform.release()}. Broker and generators "
      f"share the cores. Page cache at the start: {state} (full: the steady state of a long-running host; "
      "cold: most RAM free, see perf/compare.sh).\n")
if limits:
    print("Limits (same run): " + ", ".join(f"{k} {v}" for k, v in limits.items()) + "\n")
print("\n".join(rows))

# The broker's CPU time (utime + stime, all threads) during each workload, per MB the workload moved, and the
# broker's RSS: Kafka runs a JVM, and what it costs to run is part of the comparison.
CPU_ROWS = [("W1 100 B, acks=1, 8 partitions", "W1-p8-bench", "sluice bench"),
            ("W1 100 B, acks=1, 8 partitions", "W1-p8-rdk", "librdkafka"),
            ("T1 100 B, acks=all, 2 partitions", "T1-rdk", "librdkafka"),
            ("W2 1 KiB, acks=all", "W2-bench", "sluice bench"),
            ("W2 1 KiB, acks=all", "W2-rdk", "librdkafka"),
            ("W3 consume 1 KiB", "W3-bench", "sluice bench"),
            ("W3 consume 1 KiB", "W3-rdk", "librdkafka"),
            ("W4 50 k/s of 1 KiB", "W4-50k-rdk", "librdkafka"),
            ("W1 100 B, acks=1, 8 partitions", "W1-p8-kpt", "kafka-producer-perf-test"),
            ("W2 1 KiB, acks=all", "W2-kpt", "kafka-producer-perf-test"),
            ("W4 50 k/s of 1 KiB", "W4-50k-kpt", "kafka-producer-perf-test")]


def cpu_ms_per_mb(b, suffix):
    j, cpu = load(f"{b}-{suffix}"), load(f"{b}-{suffix}-cpu")
    if not j or not cpu or not j.get("bytes"):
        return None
    return cpu["cpu_seconds"] * 1e3 / (j["bytes"] / 1e6)


cpu_rows = ["| workload | generator | " + " | ".join(label for _, label in BROKERS) + " | " +
            " | ".join(f"Sluice 2 / {label}" for _, label in PEERS) + " |"]
cpu_rows.append("|" + "---|" * (cpu_rows[0].count("|") - 1))
for workload, suffix, generator in CPU_ROWS:
    values = {b: cpu_ms_per_mb(b, suffix) for b, _ in BROKERS}
    if all(v is None for v in values.values()):
        continue
    cells = [f"{v:.2f}" if v is not None else "-" for v in values.values()]
    ratios = [f"{values['sluice2'] / values[b]:.2f}x" if values.get("sluice2") and values[b] else "-" for b, _ in PEERS]
    cpu_rows.append(f"| {workload} | {generator} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
rss = []
for key, what in [("rss-idle", "idle at start"), ("W6-rss", "1,000 idle connections"), ("rss-end", "after the run")]:
    vals = {b: load(f"{b}-{key}") for b, _ in BROKERS}
    cells = [f"{v['rss_kb'] / 1024:.0f} MB" if v else "-" for v in vals.values()]
    ratios = [f"{vals['sluice2']['rss_kb'] / vals[b]['rss_kb']:.2f}x" if vals.get("sluice2") and vals[b] else "-"
              for b, _ in PEERS]
    cpu_rows.append(f"| RSS, {what} | - | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
print("\nBroker CPU in ms per MB moved (utime + stime of the broker process over the workload; lower is better) and "
      "RSS:\n")
print("\n".join(cpu_rows))

g_bench, g_rdk = load("G-bench"), load("G-rdk")
if g_bench or g_rdk:
    print("\nGenerator ceiling (acks=0, 8 partitions, Sluice on tmpfs): "
          f"sluice bench {rate(g_bench)}; librdkafka {rate(g_rdk)}; "
          f"sluice bench / librdkafka = {ratio(g_bench, g_rdk, 'records_per_second')} (target >= 2x)")
w4_tmpfs = load("G-W4-tmpfs-rdk")
if w4_tmpfs:
    net = (f"; the request/response path alone (perf/gcfloor.c over loopback): p50 {limits['rr_floor_net_p50_ms']} "
           f"p99 {limits['rr_floor_net_p99_ms']} p99.9 {limits['rr_floor_net_p999_ms']} ms"
           if "rr_floor_net_p99_ms" in limits else "")
    print("\nW4 without the disk (50 k/s of 1 KiB, acks=all, librdkafka linger.ms=0, Sluice 2 shards on tmpfs): "
          f"{latency(w4_tmpfs)}{net}")

w5 = {k: load(f"W5-{k}") for k in ["create", "rss-empty", "fill", "rss-full", "size", "restart-clean",
                                   "rss-restarted", "restart-kill9"]}
if w5["create"]:
    def get(k, f, fmt):
        return fmt(w5[k][f]) if w5[k] and f in w5[k] else "failed"
    print("\nW5, Sluice 2 shards, 10,000 partitions: "
          f"create {get('create', 'seconds', lambda v: f'{v:.1f} s')}; "
          f"RSS empty {get('rss-empty', 'rss_kb', lambda v: f'{v / 1024:.0f} MB')}; "
          f"fill {rate(w5['fill'])}; data {get('size', 'bytes', lambda v: f'{v / 2**30:.1f} GiB')}; "
          f"RSS full {get('rss-full', 'rss_kb', lambda v: f'{v / 1024:.0f} MB')}; "
          f"restart after clean stop {get('restart-clean', 'seconds', lambda v: f'{v:.2f} s')} (target <= 5 s); "
          f"RSS after restart {get('rss-restarted', 'rss_kb', lambda v: f'{v / 1024:.0f} MB')}; "
          f"restart after kill -9 under load {get('restart-kill9', 'seconds', lambda v: f'{v:.2f} s')} (target <= 10 s)")

soak = load("soak")
if soak:
    print(f"\nSoak, Sluice 2 shards, {soak['seconds']} s at 20,000 records/s of 1 KiB (acks=all) with retention, a "
          f"full consume and 200 connections opened and closed every minute: idle RSS before {soak['idle_before_mb']} MB; "
          f"second minute {soak['second_minute_mb']} MB, last minute {soak['last_minute_mb']} MB (growth "
          f"{soak['growth_mb']} MB, trend {soak['slope_mb_per_minute']:+.2f} MB/min); max {soak['max_mb']} MB; idle 30 s "
          f"after {soak['idle_after_mb']} MB (target: idle <= 50 MB and flat)")
