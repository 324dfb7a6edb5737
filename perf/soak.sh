#!/usr/bin/env bash
# DESIGN §5's memory target: idle RSS ≤ 50 MB, and flat over a 10-minute run.
#
#   perf/soak.sh [SECONDS]      # default 600
#
# Starts a 2-shard broker (data in a temporary directory under target/) and, for SECONDS, keeps it busy the
# way a long-lived broker is:
#   - a producer at a fixed 20,000 records/s of 1 KiB, acks=all, into 8 partitions whose retention keeps
#     about 64 MiB each, so segments roll and are deleted all along;
#   - every 60 s, a consumer that reads the whole topic, and 200 connections opened and then closed.
# It samples the broker's RSS every 5 s, and measures the idle RSS before the load and 30 s after it stops
# (the broker returns freed heap every 10 s). Writes perf/out/soak.json (and the producer's progress lines to
# perf/out/soak-produce.log) and prints a summary:
#   - growth: the mean RSS over the last minute against the mean over the second minute, the first one
#     after the allocator and the partitions' buffers have warmed up;
#   - slope: the least-squares trend over everything after the first minute, in MB per minute.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
port=19580
cargo build --release --locked --bin sluice >/dev/null 2>&1 || cargo build --release --locked --bin sluice
sluice=target/release/sluice
mkdir -p perf/out target
work=$(mktemp -d target/soak.XXXXXX)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

"$sluice" serve --listen 127.0.0.1:$port --advertise 127.0.0.1:$port --data-dir "$work/data" --shards 2 \
  2>"$work/broker.log" &
broker=$!
pids+=("$broker")
for _ in $(seq 600); do grep -q "ready to serve" "$work/broker.log" && break; sleep 0.1; done
grep -q "ready to serve" "$work/broker.log" || { tail "$work/broker.log" >&2; exit 1; }
rss_kb() { ps -o rss= -p "$broker" | tr -d ' '; }
sleep 2
idle_before=$(rss_kb)

"$sluice" topic create soak --partitions 8 --bootstrap 127.0.0.1:$port \
  --config retention.bytes=67108864 --config segment.bytes=16777216 >/dev/null
"$sluice" bench produce --bootstrap 127.0.0.1:$port --topic soak --record-size 1024 --acks all \
  --rate 20000 --batch-bytes 16384 --max-in-flight 16 --duration "$seconds" >"$work/produce.log" 2>&1 &
producer=$!
pids+=("$producer")

start=$SECONDS
samples=()
next_churn=60
while kill -0 "$producer" 2>/dev/null && ((SECONDS - start < seconds)); do
  samples+=("$((SECONDS - start)):$(rss_kb)")
  if ((SECONDS - start >= next_churn)); then
    next_churn=$((next_churn + 60))
    "$sluice" bench consume --bootstrap 127.0.0.1:$port --topic soak >>"$work/consume.log" 2>&1 &
    pids+=("$!")
    "$sluice" bench idle --bootstrap 127.0.0.1:$port --connections 200 --duration 10 >>"$work/idle.log" 2>&1 &
    pids+=("$!")
  fi
  sleep 5
done
wait "$producer" || { echo "the producer failed:" >&2; tail -3 "$work/produce.log" >&2; exit 1; }
sleep 30
idle_after=$(rss_kb)
tr '\r' '\n' <"$work/produce.log" | grep -v '^$' >perf/out/soak-produce.log
produced=$(grep '^produce:' perf/out/soak-produce.log | tail -1)

python3 - "$idle_before" "$idle_after" "$seconds" "$produced" "${samples[@]}" <<'PY'
import json, sys
idle_before, idle_after, seconds, produced = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
samples = [tuple(map(int, s.split(":"))) for s in sys.argv[5:]]
mb = lambda kb: kb / 1024
def mean(lo, hi):
    xs = [r for t, r in samples if lo <= t < hi]
    return mb(sum(xs) / len(xs)) if xs else float("nan")
second_minute, last_minute = mean(60, 120), mean(seconds - 60, seconds + 1)
late = [(t / 60, mb(r)) for t, r in samples if t >= 60]
n = len(late)
mx, my = sum(t for t, _ in late) / n, sum(r for _, r in late) / n
slope = sum((t - mx) * (r - my) for t, r in late) / sum((t - mx) ** 2 for t, _ in late)
summary = {
    "seconds": seconds, "producer": produced,
    "idle_before_mb": round(mb(idle_before), 1), "idle_after_mb": round(mb(idle_after), 1),
    "second_minute_mb": round(second_minute, 1), "last_minute_mb": round(last_minute, 1),
    "growth_mb": round(last_minute - second_minute, 1), "max_mb": round(max(mb(r) for _, r in samples), 1),
    "slope_mb_per_minute": round(slope, 2),
}
with open("perf/out/soak.json", "w") as f:
    json.dump(dict(summary, samples=[[t, r] for t, r in samples]), f)
print(f"RSS over {seconds} s: idle before {summary['idle_before_mb']} MB; second minute {second_minute:.1f} MB; "
      f"last minute {last_minute:.1f} MB (growth {summary['growth_mb']} MB, trend {slope:+.2f} MB/min); "
      f"max {summary['max_mb']} MB; idle 30 s after {summary['idle_after_mb']} MB")
print(produced)
PY
