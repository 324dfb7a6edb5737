#!/usr/bin/env bash
# perf/compaction-latency.sh: produce latency on one topic while the log cleaner compacts another on the same
# shard. A 1-shard broker holds `table` (keyed records, about 1,000 versions of each of ~510 keys, about 500 MB in
# 16 MiB segments, written with cleanup.policy=delete so nothing cleans it yet) and `hot`. Each round measures
# `bench produce --rate` into `hot` (acks=all, fsync per group commit) for 20 s twice: once quiet, once right
# after `table` is switched to cleanup.policy=compact, so the cleaner rewrites ~480 MB on the same shard during
# the window. Reports p50/p99/max of both and how much the cleaner did in the window (from the broker log).
# Usage: perf/compaction-latency.sh SLUICE_BIN OUTDIR [ROUNDS]
set -eu
BIN=$1; OUT=$2; ROUNDS=${3:-2}; PORT=29094; B=127.0.0.1:$PORT; DATA=/tmp/sluice-compaction-latency-data
mkdir -p "$OUT"
run_round() { # round
  rm -rf "$DATA"
  RUST_LOG=info "$BIN" serve --listen $B --shards 1 --data-dir "$DATA" --set admin.listeners= \
    --set log.cleaner.backoff.ms=200 > "$OUT/broker-$1.log" 2>&1 &
  PID=$!
  sleep 3
  "$BIN" topic create --bootstrap $B --partitions 1 --config segment.bytes=16777216 --config retention.ms=-1 table
  "$BIN" topic create --bootstrap $B --partitions 1 hot
  # --keyed: each 512 KiB batch writes keys key-0..key-~510 again (about 1,000 versions of each key over the fill).
  "$BIN" bench produce --bootstrap $B --topic table --record-size 1000 --batch-bytes 524288 --acks 1 --keyed \
    --records 500000 > "$OUT/fill-$1.txt" 2>&1
  "$BIN" bench produce --bootstrap $B --topic hot --record-size 200 --batch-bytes 16384 --acks all --rate 20000 \
    --duration 20 --json "$OUT/quiet-$1.json" > "$OUT/quiet-$1.txt" 2>&1
  before=$(grep -c "cleaned log" "$OUT/broker-$1.log" || true)
  "$BIN" topic alter-config --bootstrap $B table --set cleanup.policy=compact --set min.cleanable.dirty.ratio=0.1
  "$BIN" bench produce --bootstrap $B --topic hot --record-size 200 --batch-bytes 16384 --acks all --rate 20000 \
    --duration 20 --json "$OUT/cleaning-$1.json" > "$OUT/cleaning-$1.txt" 2>&1
  after=$(grep -c "cleaned log" "$OUT/broker-$1.log" || true)
  echo "round $1 ($(uptime | sed 's/.*load average/load/')): passes during the cleaning window: $((after - before))"
  echo "  quiet:    $(tail -1 "$OUT/quiet-$1.txt")"
  echo "  cleaning: $(tail -1 "$OUT/cleaning-$1.txt")"
  grep "cleaned log" "$OUT/broker-$1.log" | tail -3 | sed 's/^/  /'
  du -s --apparent-size "$DATA"/table-0 | sed 's/^/  table-0 after: /'
  kill $PID; wait $PID || true
}
for round in $(seq 1 "$ROUNDS"); do run_round "$round"; done
rm -rf "$DATA"
