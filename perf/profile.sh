#!/usr/bin/env bash
# Records a CPU profile of the broker under a workload and writes a flamegraph SVG.
# Usage: perf/profile.sh WORKLOAD [SECONDS]
#   WORKLOAD: produce-100b | produce-1k | produce-w4 | consume-1k      SECONDS: profiling time (default 10)
#   (produce-w4: DESIGN's latency load, 50 k records/s of 1 KiB at acks=all, about four records per request as
#   librdkafka sends them with linger.ms=0: where a request's time goes when the broker is not saturated)
# Installs linux-perf (Debian) and inferno (cargo, into target/tools) if missing. Output: perf/out/WORKLOAD.svg
# and perf/out/WORKLOAD.folded (collapsed stacks, greppable). See perf/README.md for how to read them.
set -euo pipefail
cd "$(dirname "$0")/.."
workload=${1:?usage: perf/profile.sh produce-100b|produce-1k|produce-w4|consume-1k [SECONDS]}
seconds=${2:-10}
command -v perf >/dev/null || { apt-get update -qq >/dev/null && apt-get install -y -qq linux-perf >/dev/null; }
tools=target/tools/bin
[ -x "$tools/inferno-flamegraph" ] || cargo install inferno --root target/tools --locked >/dev/null
cargo build --release --locked --bin sluice >/dev/null 2>&1
mkdir -p perf/out
work=$(mktemp -d ./target/profile.XXXXXX)
port=19592
target/release/sluice serve --listen 127.0.0.1:$port --data-dir "$work/data" --shards 2 2>"$work/broker.log" &
broker=$!
trap 'kill $broker 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q "ready to serve" "$work/broker.log" && break; sleep 0.1; done
bench=(target/release/sluice bench)
case "$workload" in
  produce-100b) load=("${bench[@]}" produce --bootstrap 127.0.0.1:$port --topic p --partitions 2 --record-size 100 --acks all --batch-bytes 65536 --duration $((seconds + 2))) ;;
  produce-1k) load=("${bench[@]}" produce --bootstrap 127.0.0.1:$port --topic p --partitions 2 --record-size 1024 --acks all --batch-bytes 262144 --duration $((seconds + 2))) ;;
  produce-w4) load=("${bench[@]}" produce --bootstrap 127.0.0.1:$port --topic p --partitions 2 --record-size 1024 --acks all --batch-bytes 4096 --rate 50000 --producers 2 --max-in-flight 64 --duration $((seconds + 2))) ;;
  consume-1k)
    "${bench[@]}" produce --bootstrap 127.0.0.1:$port --topic c --partitions 2 --record-size 1024 --acks 1 --batch-bytes 524288 --records 2097152 >/dev/null 2>&1
    load=(bash -c "end=\$((SECONDS + $seconds + 2)); while [ \$SECONDS -lt \$end ]; do ${bench[*]} consume --bootstrap 127.0.0.1:$port --topic c >/dev/null 2>&1; done") ;;
  *) echo "unknown workload $workload" >&2; exit 2 ;;
esac
"${load[@]}" >"$work/load.txt" 2>&1 &
load_pid=$!
sleep 1
perf record -F 499 -g -p "$broker" -o "$work/perf.data" -- sleep "$seconds" >/dev/null 2>&1
wait $load_pid || true
perf script -i "$work/perf.data" 2>/dev/null | "$tools/inferno-collapse-perf" >"perf/out/$workload.folded"
"$tools/inferno-flamegraph" --title "sluice $workload ($(git rev-parse --short HEAD))" <"perf/out/$workload.folded" >"perf/out/$workload.svg"
tail -1 "$work/load.txt"
echo "flamegraph: perf/out/$workload.svg"
# The ten hottest frames by self time, for a quick look without a browser.
awk '{n=$NF; $NF=""; k=split($0, f, ";"); self[f[k]]+=n; total+=n} END {for (s in self) printf "%5.1f%% %s\n", 100*self[s]/total, s}' \
  "perf/out/$workload.folded" | sort -rn | head -10
