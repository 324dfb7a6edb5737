#!/usr/bin/env python3
"""Long fault runs (issue 21): `scripts/fault-run.py --faults 300 --seed 1000`. Splits the faults into runs of
`--per-run` faults each (seeds S, S+1, ...), each a fresh three-node cluster in network namespaces on small
disks under the full workload, judged by tests/cluster/checker.py. Appends a summary to perf/FAULTS.md: faults
by kind, acknowledged writes, every anomaly count, and the failover windows per kind. Failing runs keep their
directory (history.jsonl, run.json, the nodes' logs); passing ones are removed unless --keep.

Run it as root (namespaces, loop mounts), with the release broker built (cargo build --release --bin sluice)
and the test venv installed (scripts/install-test-tools.sh); it re-runs itself under that venv. With
SLUICE_TEST_TARGET=kafka the clusters are Apache Kafka 4.4's with its defaults, on loopback (kills, pauses and
restarts only): the checker's baseline."""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_PY = ROOT / "tests" / "clients" / ".venv" / "bin" / "python"
if Path(sys.prefix).resolve() != VENV_PY.parents[1].resolve() and VENV_PY.exists():
    os.execv(str(VENV_PY), [str(VENV_PY), *sys.argv])
sys.path[:0] = [str(ROOT / "tests" / "cluster"), str(ROOT / "tests" / "clients")]

import checker  # noqa: E402
import faultrun  # noqa: E402
from target import ON_KAFKA  # noqa: E402


def main():
    # SIGTERM ends the run like Ctrl-C: the cluster's finally blocks remove its namespaces, mounts and disks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faults", type=int, default=300)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--per-run", type=int, default=50, help="faults per cluster (one seed each)")
    parser.add_argument("--dir", default="/tmp/sluice-fault-runs")
    parser.add_argument("--nodes", type=int, default=3, help="1 runs the single broker")
    parser.add_argument("--unsafe", action="store_true", help="the test-only unsafe broker (should fail)")
    parser.add_argument("--keep", action="store_true", help="keep passing runs' directories too")
    parser.add_argument("--out", default=str(ROOT / "perf" / "FAULTS.md"))
    args = parser.parse_args()
    os.environ.setdefault("SLUICE_BIN", str(ROOT / "target" / "release" / "sluice"))

    started = time.time()
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    runs = []
    left, seed = args.faults, args.seed
    while left > 0:
        count = min(args.per_run, left)
        directory = Path(args.dir) / f"seed-{seed}"
        shutil.rmtree(directory, ignore_errors=True)
        try:
            result = faultrun.run(directory, seed, count, unsafe=args.unsafe, nodes=args.nodes)
        except Exception as error:  # noqa: BLE001 - a run that breaks is reported, and the others go on
            traceback.print_exc()
            result = {"seed": seed, "faults": count, "error": repr(error), "anomalies": {}, "windows": [],
                      "faults_applied": [], "not_recovered": [], "acknowledged": 0}
        bad = checker.failed(result) if result.get("anomalies") else {}
        ok = not bad and not result.get("error") and not result["not_recovered"]
        print(f"seed {seed}: {count} faults, {result['acknowledged']} acknowledged, "
              f"{'ok' if ok else 'FAILED'} {bad or result.get('error') or ''}", flush=True)
        if result.get("anomalies"):
            print(checker.summary(result), flush=True)
        if ok and not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
        runs.append((seed, result, ok, directory))
        left -= count
        seed += 1
    report(args, runs, time.time() - started, rev)
    return 0 if all(ok for _, _, ok, _ in runs) else 1


def report(args, runs, elapsed, rev):
    kinds = Counter()
    windows = []
    totals = Counter()
    for _, result, _, _ in runs:
        for record in result["faults_applied"]:
            kinds[record["kind"]] += 1
        windows += result["windows"]
        totals["acknowledged"] += result["acknowledged"]
        totals["not recovered"] += len(result["not_recovered"])
        for name, cases in result.get("anomalies", {}).items():
            totals[name] += len(cases)
    seeds = f"{runs[0][0]}..{runs[-1][0]}"
    lines = [f"\n## {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {sum(kinds.values())} faults, seeds {seeds}"
             f"{' (UNSAFE broker)' if args.unsafe else ''}{' on Apache Kafka 4.4' if ON_KAFKA else ''}, rev {rev}\n",
             f"Command: `{'SLUICE_TEST_TARGET=kafka ' if ON_KAFKA else ''}scripts/fault-run.py --faults {args.faults} "
             f"--seed {args.seed} --per-run {args.per_run}"
             f"{' --unsafe' if args.unsafe else ''} --nodes {args.nodes}`, {elapsed / 60:.0f} min, {args.nodes} node(s), "
             "`--shards 1`, 2 vCPUs.\n",
             "| runs | passed | acknowledged writes | " + " | ".join(checker.ANOMALIES) + " | not recovered |",
             "|" + "---|" * (len(checker.ANOMALIES) + 4),
             f"| {len(runs)} | {sum(ok for _, _, ok, _ in runs)} | {totals['acknowledged']} | "
             + " | ".join(str(totals[n]) for n in checker.ANOMALIES) + f" | {totals['not recovered']} |\n",
             "| fault | count | window without acks, median | max |", "|---|---|---|---|"]
    for kind, stats in faultrun.window_summary(windows).items():
        lines.append(f"| {kind} | {kinds[kind]} | {stats['median']} s | {stats['max']} s |")
    failed = [(seed, result) for seed, result, ok, _ in runs if not ok]
    if failed:
        lines.append("\nFailed seeds: " + ", ".join(f"{seed} ({checker.failed(r) if r.get('anomalies') else r.get('error')})"
                                                   for seed, r in failed))
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    if not out.exists():
        out.write_text("# Fault runs (issue 21)\n\nEach section is one `scripts/fault-run.py` run: a seeded nemesis "
                       "against a three-node cluster, judged by tests/cluster/checker.py.\n")
    with open(out, "a") as f:
        f.write(text)
    if windows:
        print("all windows: median", round(statistics.median(w["window"] for w in windows), 2))


if __name__ == "__main__":
    sys.exit(main())
