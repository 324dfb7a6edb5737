#!/usr/bin/env bash
# A first end-to-end figure for the broker with an independent client: kcat (librdkafka 2.0.2) produces
# RECORDS lines of 100 bytes to a 2-partition topic (acks=all, linger.ms=5, flush policy `always`), then
# consumes them back from the page cache. The same run measures loopback TCP with iperf3, so the consume rate
# can be read as a ratio. `sluice bench` (issue 5) replaces this; it is kept as the independent cross-check.
# Usage: perf/librdkafka-smoke.sh [RECORDS] [SHARDS]   (defaults 2000000, 2). Needs kcat and iperf3.
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-2000000}
shards=${2:-2}
command -v kcat >/dev/null || scripts/install-test-tools.sh
command -v iperf3 >/dev/null || { apt-get update -qq >/dev/null && apt-get install -y -qq iperf3 >/dev/null; }
cargo build --release --locked --bin sluice >/dev/null 2>&1
work=$(mktemp -d ./target/smoke.XXXXXX)
trap 'kill $broker 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
port=19492
target/release/sluice serve --listen 127.0.0.1:$port --data-dir "$work/data" --shards "$shards" 2>"$work/broker.log" &
broker=$!
for _ in $(seq 100); do grep -q "ready to serve" "$work/broker.log" && break; sleep 0.1; done
target/release/sluice topic create smoke --partitions 2 --bootstrap 127.0.0.1:$port >/dev/null
python3 -c "
import sys
line = ('x' * 99 + '\n').encode()
sys.stdout.buffer.write(line * $records)" >"$work/input"
start=$(date +%s.%N)
kcat -P -b 127.0.0.1:$port -t smoke -X linger.ms=5 -X acks=all -X queue.buffering.max.messages=1000000 -l "$work/input"
mid=$(date +%s.%N)
kcat -C -b 127.0.0.1:$port -t smoke -o beginning -e -q -X fetch.max.bytes=52428800 >/dev/null
end=$(date +%s.%N)
consumed_bytes=$(du -sb "$work/data"/smoke-* | awk '{s+=$1} END {print s}')
iperf3 -s -p 15201 -1 >/dev/null 2>&1 &
sleep 0.5
loopback=$(iperf3 -c 127.0.0.1 -p 15201 -t 3 -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/8)')
python3 - "$records" "$start" "$mid" "$end" "$consumed_bytes" "$loopback" "$shards" <<'PY'
import subprocess, sys
records, start, mid, end, stored, loopback, shards = sys.argv[1:]
records, start, mid, end, stored, loopback = int(records), float(start), float(mid), float(end), int(stored), float(loopback)
produce_s, consume_s = mid - start, end - mid
rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print(f"rev {rev}, --shards {shards}, kcat (librdkafka 2.0.2), {records} records of 100 B, 2 partitions:")
print(f"  produce acks=all, flush always: {records / produce_s:,.0f} records/s ({records * 100 / produce_s / 1e6:.1f} MB/s payload)")
print(f"  consume from page cache: {records / consume_s:,.0f} records/s ({stored / consume_s / 1e6:.1f} MB/s of stored batches)")
print(f"  loopback TCP (iperf3, same run): {loopback / 1e9:.2f} GB/s; consume is {stored / consume_s / loopback:.1%} of it")
PY
