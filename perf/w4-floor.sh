#!/usr/bin/env bash
# Where W4's latency goes: DESIGN's latency load (50 k records/s of 1 KiB, acks=all, fsync before the ack)
# against its floors, interleaved so that every round sees the same phase of this shared machine.
#
# Usage: perf/w4-floor.sh [ROUNDS]   (default 4; needs target/release/sluice and target/perf/rdkperf, which
#                                    perf/compare.sh builds)
#
# Each round runs, 6 s each:
#   disk           perf/gcfloor.c alone: the disk's group-commit rounds with Sluice's pre-written window
#   net            perf/gcfloor.c over loopback TCP, acknowledged without the disk: request/response alone
#   disk+net       perf/gcfloor.c over loopback TCP, acknowledged after the rounds: the smallest broker there can be
#   sluice-tmpfs   Sluice (2 shards) with its data dir on tmpfs, rdkperf (librdkafka, linger.ms=0): Sluice and the
#                  Kafka client with an fsync that costs nothing
#   sluice-2       Sluice, 2 shards, data dir on disk, rdkperf: W4 itself
#   sluice-1       the same with 1 shard
# and prints p50/p99/p99.9/max per run, the CPU the broker used (cores), and per row the median over rounds.
# gcfloor counts a record's latency from its send over TCP (from its due time on the disk alone), rdkperf from
# produce(): neither counts a late wake-up of the pacing thread.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-4}
sluice=target/release/sluice
rdkperf=target/perf/rdkperf
for tool in "$sluice" "$rdkperf"; do
  [ -x "$tool" ] || { echo "$tool is missing: run perf/compare.sh once (it builds it)" >&2; exit 1; }
done
mkdir -p target/perf perf/out
gcc -O2 -Wall -pthread -o target/perf/gcfloor perf/gcfloor.c
work=$(pwd)/target/w4-floor
shm=$(mktemp -d /dev/shm/sluice-w4-floor.XXXXXX)
port=19700
broker=
cleanup() {
  [ -z "$broker" ] || kill "$broker" 2>/dev/null || true
  rm -rf "$work" "$shm"
}
trap cleanup EXIT
results=perf/out/w4-floor.jsonl
: >"$results"

floor() { # row, gcfloor mode args...
  local row=$1
  shift
  mkdir -p "$work"
  target/perf/gcfloor "$work/floor" 50000 6 1024 "$@" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({"row": sys.argv[1], "p50": d["p50_ms"],
      "p99": d["p99_ms"], "p999": d["p999_ms"], "max": d["max_ms"]}))' "$row" >>"$results"
}

sluice_w4() { # row shards data_dir
  local row=$1 shards=$2 data=$3 log=perf/out/w4-floor-broker.log before after t0 t1 out
  rm -rf "$data" && mkdir -p "$data"
  "$sluice" serve --listen 127.0.0.1:$port --advertise 127.0.0.1:$port --data-dir "$data" --shards "$shards" \
    >"$log" 2>&1 &
  broker=$!
  until grep -q "ready to serve" "$log"; do
    kill -0 "$broker" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.05
  done
  "$sluice" topic create w4 --partitions 2 --bootstrap 127.0.0.1:$port >/dev/null
  before=$(awk '{print $14 + $15}' "/proc/$broker/stat")
  t0=$(date +%s.%N)
  out=$("$rdkperf" produce 127.0.0.1:$port w4 1024 300000 acks=all linger.ms=0 rate=50000 2>>"$log")
  t1=$(date +%s.%N)
  after=$(awk '{print $14 + $15}' "/proc/$broker/stat")
  kill "$broker" && wait "$broker" || true
  broker=
  rm -rf "$data"
  python3 -c 'import json,sys; d=json.loads(sys.argv[2]); l=d["latency_ms"]
ticks = float(sys.argv[3]) / 100 / (float(sys.argv[5]) - float(sys.argv[4]))
print(json.dumps({"row": sys.argv[1], "p50": l["p50"], "p99": l["p99"], "p999": l["p999"], "max": l["max"],
                  "broker_cores": round(ticks, 2)}))' "$row" "$out" "$((after - before))" "$t0" "$t1" >>"$results"
}

for r in $(seq 1 "$rounds"); do
  echo "round $r of $rounds" >&2
  floor disk window
  floor net none tcp
  floor disk+net window tcp
  sluice_w4 sluice-tmpfs 2 "$shm/data"
  sluice_w4 sluice-2 2 "$work/data"
  sluice_w4 sluice-1 1 "$work/data"
done

python3 - "$results" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
rows = list(dict.fromkeys(r["row"] for r in runs))
print("| run | p50 ms | p99 ms (each round) | p99.9 ms (each round) | max ms | broker cores | median p50 / p99 / p99.9 |")
print("|---|---|---|---|---|---|---|")
for row in rows:
    rs = [r for r in runs if r["row"] == row]
    med = lambda k: statistics.median(r[k] for r in rs)
    each = lambda k: ", ".join(f"{r[k]:.2f}" for r in rs)
    cores = ", ".join(f"{r['broker_cores']:.2f}" for r in rs) if "broker_cores" in rs[0] else "-"
    print(f"| {row} | {each('p50')} | {each('p99')} | {each('p999')} | {each('max')} | {cores} | "
          f"**{med('p50'):.2f} / {med('p99'):.2f} / {med('p999'):.2f}** |")
PY
