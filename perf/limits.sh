#!/usr/bin/env bash
# Measures this machine's limits, for quoting Sluice's figures as ratios (DESIGN.md §5):
#   fio sequential write (buffered, with a final fsync), write with fdatasync every 1 MiB (into a laid-out
#   file, fio's default, and appending to a fresh file as a log does), O_DIRECT write,
#   sequential buffered read, fdatasync latency p50/p99 of 4 KiB writes, iperf3 loopback bandwidth, and the
#   disk's group-commit latency floor at W4's load (perf/gcfloor.c: 50 k records/s of 1 KiB, fdatasync rounds;
#   appending, with Sluice's pre-written window, and into a file written in full beforehand), and the same load
#   sent over loopback TCP to the smallest possible broker: acknowledged with no disk (the request/response
#   path alone) and after the window's fdatasync rounds (the whole path); each the median of three runs.
# Usage: perf/limits.sh [DIR]   (DIR: where to test the disk; default ./sluice-data, the broker's data dir)
# Prints a table and writes perf/out/limits.json. Installs fio, iperf3 and gcc from Debian if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-./sluice-data}
size=${LIMITS_FILE_SIZE:-2G}
mkdir -p "$dir" perf/out
need=()
command -v fio >/dev/null || need+=(fio)
command -v iperf3 >/dev/null || need+=(iperf3)
command -v gcc >/dev/null || need+=(gcc)
if ((${#need[@]})); then
  echo "installing ${need[*]}" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
file="$dir/limits.fio"
trap 'rm -f "$file" "$dir/limits.gcfloor"' EXIT
run_fio() { # name, extra args...
  local name=$1; shift
  fio --name="$name" --filename="$file" --size="$size" --ioengine=psync --output-format=json "$@" >"perf/out/fio-$name.json"
}
run_fio write-buffered --rw=write --bs=1M --end_fsync=1
run_fio write-fdatasync-1m --rw=write --bs=1M --fdatasync=1
rm -f "$file"
run_fio append-fdatasync-1m --rw=write --bs=1M --fdatasync=1 --fallocate=none
run_fio write-direct --rw=write --bs=1M --direct=1
sync # fio drops the file's own cached pages before reading (invalidate=1); the rest of the cache stays
run_fio read-buffered --rw=read --bs=1M
run_fio fdatasync-4k --rw=write --bs=4k --size=64M --fdatasync=1
mkdir -p target/perf
gcc -O2 -Wall -pthread -o target/perf/gcfloor perf/gcfloor.c
: >perf/out/gcfloor.jsonl
for _ in 1 2 3; do
  for mode in append window prewritten "none tcp" "window tcp"; do
    # shellcheck disable=SC2086 # "window tcp" is two arguments
    target/perf/gcfloor "$dir/limits.gcfloor" 50000 5 1024 $mode >>perf/out/gcfloor.jsonl
  done
done
iperf3 -s -1 -D -B 127.0.0.1 -p 5299 >/dev/null
sleep 0.5
iperf3 -c 127.0.0.1 -p 5299 -t 5 -P 1 -J >perf/out/iperf3.json
python3 - <<'PY'
import json
def job(name):
    return json.load(open(f"perf/out/fio-{name}.json"))["jobs"][0]
def bw(name, kind="write"):
    return job(name)[kind]["bw_bytes"] / 2**20
sync = job("fdatasync-4k")["sync"]["lat_ns"]["percentile"]
ip = json.load(open("perf/out/iperf3.json"))["end"]["sum_received"]["bits_per_second"] / 8 / 1e9
floor_runs = [json.loads(line) for line in open("perf/out/gcfloor.jsonl")]
def floor(mode, transport, key):
    values = sorted(run[key] for run in floor_runs if run["mode"] == mode and run.get("transport", "none") == transport)
    return values[len(values) // 2]
limits = {
    "write_buffered_mib_s": round(bw("write-buffered"), 1),
    "write_fdatasync_1m_mib_s": round(bw("write-fdatasync-1m"), 1),
    "append_fdatasync_1m_mib_s": round(bw("append-fdatasync-1m"), 1),
    "write_direct_mib_s": round(bw("write-direct"), 1),
    "read_buffered_mib_s": round(bw("read-buffered", "read"), 1),
    "fdatasync_4k_p50_ms": round(sync["50.000000"] / 1e6, 3),
    "fdatasync_4k_p99_ms": round(sync["99.000000"] / 1e6, 3),
    "loopback_tcp_gb_s": round(ip, 2),
}
for mode in ("append", "window", "prewritten"):
    for key in ("p50_ms", "p99_ms", "p999_ms"):
        limits[f"gc_floor_{mode}_{key}"] = floor(mode, "none", key)
# Over loopback TCP: the request/response path alone, and the whole path (path plus the window's rounds).
for name, mode in (("rr_floor_net", "none"), ("rr_floor_disk", "window")):
    for key in ("p50_ms", "p99_ms", "p999_ms"):
        limits[f"{name}_{key}"] = floor(mode, "tcp", key)
json.dump(limits, open("perf/out/limits.json", "w"), indent=1)
for k, v in limits.items():
    print(f"{k:28} {v}")
PY
