#!/usr/bin/env bash
# perf/topic-compression.sh: produce throughput into a topic with compression.type=producer against one with
# compression.type=zstd (every batch recompressed on the broker), the producer sending lz4; rounds interleaved
# so both topics see the same noise. Usage: perf/topic-compression.sh SLUICE_BIN OUTDIR
set -eu
BIN=$1; OUT=$2; PORT=29093; B=127.0.0.1:$PORT
mkdir -p "$OUT"; rm -rf /tmp/sluice-topic-compression-data
RUST_LOG=warn "$BIN" serve --listen $B --shards 2 --data-dir /tmp/sluice-topic-compression-data > "$OUT/broker.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
sleep 3
"$BIN" topic create --bootstrap $B --partitions 2 --config compression.type=producer t-producer
"$BIN" topic create --bootstrap $B --partitions 2 --config compression.type=zstd t-zstd
for round in 1 2 3; do
  for topic in t-producer t-zstd; do
    "$BIN" bench produce --bootstrap $B --topic $topic --record-size 1000 --batch-bytes 65536 \
      --compression lz4 --acks 1 --duration 15 --json "$OUT/$topic-$round.json" > "$OUT/$topic-$round.txt" 2>&1
    echo "$round $topic $(uptime | sed 's/.*load average/load/')"
    tail -3 "$OUT/$topic-$round.txt"
  done
done
du -s --apparent-size /tmp/sluice-topic-compression-data/t-producer-* /tmp/sluice-topic-compression-data/t-zstd-*
