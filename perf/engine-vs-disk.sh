#!/usr/bin/env bash
# The storage issue's throughput target in one run: sustained group-commit append of 1 KiB records in 1 MiB
# batches (criterion `append/always/1024B-records`) against fio's write + fdatasync every 1 MiB on the same
# disk, measured just before and just after. Prints the ratios; appends a line to perf/out/engine-vs-disk.log.
# Usage: perf/engine-vs-disk.sh [DIR]   (default ./target/perf-data)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-./target/perf-data}
mkdir -p "$dir" perf/out
command -v fio >/dev/null || { apt-get update -qq >/dev/null && apt-get install -y -qq fio >/dev/null; }
fio_mib() { # extra fio args
  rm -f "$dir/ed.fio"
  fio --name=ed --filename="$dir/ed.fio" --size=2G --ioengine=psync --rw=write --bs=1M --fdatasync=1 "$@" \
    --output-format=json | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["write"]["bw_bytes"]/2**20)'
  rm -f "$dir/ed.fio"
}
before_laid=$(fio_mib)
before_append=$(fio_mib --fallocate=none)
SLUICE_BENCH_DIR="$dir" cargo bench --bench engine -- 'append/always/1024B-records/1045995' >perf/out/engine-vs-disk-bench.txt 2>&1
after_laid=$(fio_mib)
after_append=$(fio_mib --fallocate=none)
python3 - "$before_laid" "$before_append" "$after_laid" "$after_append" <<'PY'
import json, subprocess, sys
laid = (float(sys.argv[1]) + float(sys.argv[3])) / 2
append = (float(sys.argv[2]) + float(sys.argv[4])) / 2
est = json.load(open("target/criterion/append/always_1024B-records/1045995/new/estimates.json"))
batch_bytes = 1045995
engine = batch_bytes / (est["mean"]["point_estimate"] / 1e9) / 2**20
rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
line = (f"rev {rev}: engine append (always, 1 KiB records, 1 MiB batches) {engine:.0f} MiB/s; "
        f"fio write+fdatasync/1MiB laid-out {laid:.0f} MiB/s -> {engine/laid:.0%}; "
        f"fio append+fdatasync/1MiB {append:.0f} MiB/s -> {engine/append:.0%}")
print(line)
open("perf/out/engine-vs-disk.log", "a").write(line + "\n")
PY
