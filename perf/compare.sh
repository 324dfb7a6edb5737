#!/usr/bin/env bash
# Sluice against this machine's limits and against its peers, Apache Kafka and Tansu, in one run (DESIGN.md §5,
# issues 5 and 17).
#
#   perf/compare.sh            # everything: about 45 minutes once Tansu is built
#   COMPARE_PARTS="sluice2 G" perf/compare.sh   # only some: limits sluice2 sluice1 kafka kafka-flush1 tansu-mem
#                                               # tansu-sqlite kpt G W5 soak
#   COMPARE_PARTS="sluice2 kafka kafka-flush1 kpt" perf/compare.sh   # Sluice against Kafka: about 12 minutes
#
# What it does:
#   1. Installs what it needs when missing: fio and iperf3 (perf/limits.sh), the librdkafka header from
#      Debian, the test venv (scripts/install-test-tools.sh, whose confluent-kafka wheel bundles librdkafka
#      2.16), and Tansu 0.6 with its memory and sqlite storage (`cargo install tansu --features
#      dynostore,libsql`, about 30 minutes, once, into $SLUICE_PERF_CACHE, default ~/.cache/sluice).
#   2. Builds Sluice (release) and perf/rdkperf.c, an independent librdkafka producer/consumer.
#   3. Measures the limits (perf/limits.sh on the same disk). Before them and before each workload it fills
#      the page cache with a sparse file's zero pages, so that everything runs as on a host that has been up
#      for a while (see "steady state" below; COMPARE_COLD=1 skips it).
#   4. Runs the workloads against Sluice with --shards 2 and --shards 1, Apache Kafka 4.4 (perf/kafka.sh, one
#      KRaft combined node: stock, and with log.flush.interval.messages=1, an fsync per append like Sluice's
#      flush policy `always`), Tansu with memory:// and Tansu with sqlite://, each with `sluice bench` and with
#      rdkperf, and measures each broker's CPU time (utime + stime from /proc/PID/stat) during each workload:
#        W1  100 B records, acks=1, 1 and 8 partitions
#        T1  100 B records, acks=all, flush policy `always`, 2 partitions (DESIGN's first target)
#        W2  1 KiB records, acks=all, flush policy `always` (Tansu: as its storage does it)
#        W3  consume 1 GiB of 1 KiB records from the page cache (Tansu sqlite: 64 MiB, it reads at ~3 MB/s)
#        W4  produce latency at a fixed load: 50% of W2's peak (the issue), and 50 k records/s of 1 KiB with
#            linger.ms=0 (DESIGN's target); acks=all
#        W6  1,000 idle connections held open, then W1 (8 partitions) again: RSS and throughput change
#        G   the generator's own ceiling: acks=0 into a tmpfs data dir, sluice bench against rdkperf; and
#            W4 (50 k/s, rdkperf) into that tmpfs data dir: the latency Sluice and librdkafka add without the disk
#      with `kpt`, the Java client's load as well: Kafka's own kafka-producer-perf-test (ProducerPerformance)
#      for W1 (8 partitions), W2 and W4 (50 k/s) against every broker the run started;
#      and, for Sluice only, W5: 10,000 partitions, 10 GiB of data, restart after a clean stop and after
#      kill -9, RSS; and the soak: RSS over 10 minutes of load (perf/soak.sh). (Tansu's memory storage loses
#      everything on restart and its sqlite storage would take hours to take 10 GiB, so W5 has no Tansu
#      column.)
#   5. Prints one table: each figure, Sluice over the limit and Sluice over each peer, and one of each
#      broker's CPU per MB and RSS. Every figure is also in
#      perf/out/compare/*.json, and the table in perf/out/compare/table.md.
#
# Broker, generator and the limits share the machine's cores; ratios from the same run are what to quote.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cache=${SLUICE_PERF_CACHE:-$HOME/.cache/sluice}
out=perf/out/compare
work=${COMPARE_WORK:-$root/target/compare}
port=19500
mkdir -p "$cache" "$out" "$work"
[ -n "${COMPARE_PARTS:-}" ] || rm -f "$out"/*.json "$out"/*.log

log() { printf '\n== %s\n' "$*" >&2; }
want() {
  [[ " ${COMPARE_PARTS:-limits sluice2 sluice1 kafka kafka-flush1 tansu-mem tansu-sqlite kpt G W5 soak} " == *" $1 "* ]]
}

# ---------------------------------------------------------------- tools
need_apt=()
command -v java >/dev/null || ! { want kafka || want kafka-flush1 || want kpt; } || need_apt+=(default-jdk-headless maven)
[ -f /usr/include/librdkafka/rdkafka.h ] || need_apt+=(librdkafka-dev)
command -v gcc >/dev/null || need_apt+=(gcc)
if ((${#need_apt[@]})); then
  log "installing ${need_apt[*]} from Debian"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
scripts/install-test-tools.sh
tansu=$cache/tansu/bin/tansu
if [ ! -x "$tansu" ] && { want tansu-mem || want tansu-sqlite; }; then
  log "building Tansu 0.6 (memory and sqlite storage) into $cache/tansu: about 30 minutes, once"
  cargo install tansu --version 0.6.0 --locked --features dynostore,libsql --root "$cache/tansu" \
    --target-dir "$cache/tansu-target"
fi
if want kafka || want kafka-flush1; then perf/kafka.sh fetch >/dev/null; fi
log "building sluice and rdkperf"
cargo build --release --locked --bin sluice >/dev/null 2>&1 || cargo build --release --locked --bin sluice
sluice=${CARGO_TARGET_DIR:-$root/target}/release/sluice
# rdkperf links the librdkafka that confluent-kafka's wheel bundles (2.16): Debian's 2.0.2 cannot talk to
# Tansu 0.6 (its ApiVersions exchange fails with "Read underflow"), and a newer client is fairer to both.
rdk_lib=$(ls "$root"/tests/clients/.venv/lib/python3*/site-packages/confluent_kafka.libs/librdkafka-*.so.* | head -1)
mkdir -p target/perf
gcc -O2 -Wall -o target/perf/rdkperf perf/rdkperf.c "$rdk_lib" -Wl,-rpath,"$(dirname "$rdk_lib")"
rdkperf=$root/target/perf/rdkperf

# ---------------------------------------------------------------- steady state
# A broker that has run for a while has its RAM full of page cache, and each new page comes from reclaiming
# an old one. This VM hands memory back to its host instead: DAMON pages out anything idle for 60 s (up to
# 128 MiB/s) and virtio_balloon reports free pages to the host, and the first touch of such a page is a host
# fault. Buffered writes that need those pages run at about half speed (perf/RESULTS.md, "What limits W2").
# So before the limits and before each workload, warm_page_cache reads a sparse file sized to take all but
# 512 MiB of free memory: clean zero pages, no disk I/O. Each workload then gets its pages by reclaim, as on
# a long-running host. Rereading keeps those pages from going idle. COMPARE_COLD=1 skips all of this.
fill=$work/page-cache-fill
printf '{"page_cache":"%s"}\n' "$([ -n "${COMPARE_COLD:-}" ] && echo cold || echo full)" >"$out/state.json"
warm_page_cache() {
  [ -z "${COMPARE_COLD:-}" ] || return 0
  local free_kb grow
  free_kb=$(awk '/^MemFree:/ {print $2}' /proc/meminfo)
  grow=$(((free_kb - 512 * 1024) * 1024))
  if ((grow > 0)); then
    log "page cache: reading $((grow >> 20)) MiB more of a sparse file (steady state; COMPARE_COLD=1 skips)"
    truncate -s "+$grow" "$fill"
  fi
  [ ! -f "$fill" ] || cat "$fill" >/dev/null
}

# ---------------------------------------------------------------- limits
if want limits; then
  log "machine limits (perf/limits.sh on $work)"
  warm_page_cache
  LIMITS_FILE_SIZE=${LIMITS_FILE_SIZE:-2G} perf/limits.sh "$work/limits" | tee "$out/limits.log" >&2
  cp perf/out/limits.json "$out/limits.json"
  rm -rf "$work/limits"
fi

# ---------------------------------------------------------------- brokers
broker_pid=""
broker_log=""
broker_kind=""
stop_broker() {
  if [ "$broker_kind" = kafka ]; then
    perf/kafka.sh stop --dir "$work/kafka"
  elif [ -n "$broker_pid" ]; then
    kill -TERM "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
  fi
  broker_pid=""
  broker_kind=""
}
trap 'stop_broker; [ -n "${idle_pid:-}" ] && kill "$idle_pid" 2>/dev/null; rm -rf "$work"' EXIT

wait_for_port() { # seconds
  local deadline=$((SECONDS + $1))
  until "$sluice" topic list --bootstrap 127.0.0.1:$port >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      echo "broker did not answer on 127.0.0.1:$port; its log:" >&2
      tail -20 "$broker_log" >&2
      exit 1
    fi
    sleep 0.05
  done
}

start_sluice() { # name shards data_dir: returns once the broker logged "ready to serve" and answers
  broker_log=$out/$1-broker.log
  local before
  before=$(grep -c "ready to serve" "$broker_log" 2>/dev/null || true)
  "$sluice" serve --listen 127.0.0.1:$port --advertise 127.0.0.1:$port --data-dir "$3" --shards "$2" \
    >>"$broker_log" 2>&1 &
  broker_pid=$!
  local deadline=$((SECONDS + 120))
  until (($(grep -c "ready to serve" "$broker_log" 2>/dev/null || true) > ${before:-0})); do
    if ((SECONDS > deadline)) || ! kill -0 "$broker_pid" 2>/dev/null; then
      echo "sluice did not become ready; its log:" >&2
      tail -20 "$broker_log" >&2
      exit 1
    fi
    sleep 0.02
  done
  wait_for_port 60
}

start_kafka() { # name perf/kafka.sh-flags...: a fresh single Kafka node on the same port
  broker_log=$work/kafka/node-1/server.log
  perf/kafka.sh start --fresh --dir "$work/kafka" --port $port --controller-port $((port + 1)) "${@:2}" \
    >"$out/$1-start.log" 2>&1 || { cat "$out/$1-start.log" >&2; exit 1; }
  broker_kind=kafka
  broker_pid=$(cat "$work/kafka/node-1/pid")
  wait_for_port 60
}

start_tansu() { # name storage-url (run in $work: Tansu reads sqlite://FILE relative to its directory)
  broker_log=$out/$1-broker.log
  (cd "$work" && exec "$tansu" broker --listener-url tcp://127.0.0.1:$port \
    --advertised-listener-url tcp://127.0.0.1:$port --storage-engine "$2") >>"$root/$broker_log" 2>&1 &
  broker_pid=$!
  wait_for_port 60
}

rss_kb() { ps -o rss= -p "$broker_pid" | tr -d ' '; }

# The broker's CPU time so far, in clock ticks: utime + stime of every thread (/proc/PID/stat fields 14 and 15,
# counted after the command name, which may hold spaces).
clk_tck=$(getconf CLK_TCK)
cpu_ticks() { sed 's/.*) //' "/proc/$broker_pid/stat" | awk '{print $12 + $13}'; }
cpu_start() { cpu_before=$(cpu_ticks); }
cpu_record() { # name: the broker's CPU seconds since cpu_start, beside the workload's own JSON
  local after
  after=$(cpu_ticks)
  record "$1-cpu" cpu_seconds "$(awk -v a="$cpu_before" -v b="$after" -v t="$clk_tck" 'BEGIN { printf "%.2f", (b - a) / t }')"
}

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

record() { # name key value: one figure outside the generators' JSON
  printf '{"%s":%s}\n' "$2" "$3" >"$out/$1.json"
}

# ---------------------------------------------------------------- workloads
bench_produce() { # name topic partitions record-size acks extra...
  local name=$1 topic=$2 partitions=$3 size=$4 acks=$5
  shift 5
  warm_page_cache
  cpu_start
  "$sluice" bench produce --bootstrap 127.0.0.1:$port --topic "$topic" --partitions "$partitions" \
    --record-size "$size" --acks "$acks" --json "$out/$name.json" "$@" >"$out/$name.log" 2>&1 ||
    { echo "$name failed:" >&2; tail -5 "$out/$name.log" >&2; }
  cpu_record "$name"
}

rdk_produce() { # name topic partitions record-size records props...
  local name=$1 topic=$2 partitions=$3 size=$4 records=$5
  shift 5
  warm_page_cache
  "$sluice" topic create "$topic" --partitions "$partitions" --bootstrap 127.0.0.1:$port >/dev/null 2>&1 || true
  cpu_start
  "$rdkperf" produce 127.0.0.1:$port "$topic" "$size" "$records" "$@" >"$out/$name.json" 2>"$out/$name.log" ||
    { echo "$name failed:" >&2; tail -5 "$out/$name.log" >&2; }
  cpu_record "$name"
}

# Kafka's own load generator, the Java producer (org.apache.kafka.tools.ProducerPerformance, which
# kafka-producer-perf-test runs), with its summary line turned into the same JSON as the others'.
kpt_produce() { # name topic partitions record-size records throughput(-1: unbounded) producer-props...
  local name=$1 topic=$2 partitions=$3 size=$4 records=$5 rate=$6
  shift 6
  warm_page_cache
  "$sluice" topic create "$topic" --partitions "$partitions" --bootstrap 127.0.0.1:$port >/dev/null 2>&1 || true
  cpu_start
  KAFKA_TOOL_HEAP=-Xmx1g perf/kafka.sh java org.apache.kafka.tools.ProducerPerformance --topic "$topic" \
    --num-records "$records" --record-size "$size" --throughput "$rate" \
    --producer-props bootstrap.servers=127.0.0.1:$port "$@" >"$out/$name.log" 2>&1 ||
    { echo "$name failed:" >&2; tail -5 "$out/$name.log" >&2; }
  cpu_record "$name"
  python3 - "$out/$name.log" "$size" >"$out/$name.json" <<'PY' || rm -f "$out/$name.json"
import json, re, sys
# "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, P50 ms 50th, P95 ms 95th,
#  P99 ms 99th, P999 ms 99.9th."
line = [l for l in open(sys.argv[1]) if " records sent, " in l][-1]
n = [float(v) for v in re.findall(r"([0-9.]+) (?:records sent|records/sec|ms max|ms 50th|ms 99th|ms 99.9th)", line)]
records, rate, lat_max, p50, p99, p999 = n
size = int(sys.argv[2])
print(json.dumps({"records": int(records), "bytes": int(records) * size, "seconds": round(records / rate, 3),
                  "records_per_second": rate, "mb_per_second": round(rate * size / 1e6, 3),
                  "latency_ms": {"p50": p50, "p99": p99, "p999": p999, "max": lat_max}}))
PY
}

peak() { # json -> records/s, as an integer
  python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["records_per_second"]))' "$1" 2>/dev/null || echo 0
}

# Tansu's memory storage keeps every record in RAM, and in the steady state it takes records fast enough to
# fill this machine's 24 GiB within one broker's workloads (the kernel killed it at 24 GB RSS). It loses
# everything on restart anyway, so it gets a fresh process before each workload; the others keep running.
next_workload() { # label
  if [ "$1" = tansu-mem ]; then
    stop_broker
    start_tansu tansu-mem memory://tansu/
  fi
}

run_common() { # label  w3-records  (the broker is running)
  local b=$1 w3=$2 d=${BENCH_SECONDS:-6}
  record "$b-rss-idle" rss_kb "$(rss_kb)"
  log "$b W1: 100 B, acks=1"
  bench_produce "$b-W1-p1-bench" w1p1 1 100 1 --duration "$d" --batch-bytes 65536
  bench_produce "$b-W1-p8-bench" w1p8 8 100 1 --duration "$d" --batch-bytes 65536
  rdk_produce "$b-W1-p1-rdk" w1p1r 1 100 "${W1_RDK_RECORDS:-6000000}" acks=1 linger.ms=5
  rdk_produce "$b-W1-p8-rdk" w1p8r 8 100 "${W1_RDK_RECORDS:-6000000}" acks=1 linger.ms=5
  next_workload "$b"
  log "$b T1: 100 B, acks=all, 2 partitions (DESIGN's first target)"
  bench_produce "$b-T1-bench" t1 2 100 all --duration "$d" --batch-bytes 65536
  rdk_produce "$b-T1-rdk" t1r 2 100 "${W1_RDK_RECORDS:-6000000}" acks=all linger.ms=5
  next_workload "$b"
  log "$b W2: 1 KiB, acks=all"
  bench_produce "$b-W2-bench" w2 2 1024 all --duration "$d" --batch-bytes 262144 --max-in-flight 4
  rdk_produce "$b-W2-rdk" w2r 2 1024 "${W2_RDK_RECORDS:-2000000}" acks=all linger.ms=5
  next_workload "$b"
  log "$b W4: latency at a fixed load"
  local half=$(($(peak "$out/$b-W2-bench.json") / 2))
  if ((half > 0)); then
    bench_produce "$b-W4-half-bench" w4h 2 1024 all --duration "$d" --rate "$half" --batch-bytes 16384 \
      --producers 2 --max-in-flight 64
    rdk_produce "$b-W4-half-rdk" w4hr 2 1024 $((half * d)) acks=all linger.ms=0 rate=$half
  fi
  bench_produce "$b-W4-50k-bench" w4 2 1024 all --duration "$d" --rate 50000 --batch-bytes 1024 \
    --producers 4 --max-in-flight 64
  rdk_produce "$b-W4-50k-rdk" w4r 2 1024 $((50000 * d)) acks=all linger.ms=0 rate=50000
  next_workload "$b"
  log "$b W3: consume $w3 records of 1 KiB"
  bench_produce "$b-W3-load" w3 2 1024 1 --records "$w3" --batch-bytes 524288
  "$sluice" bench consume --bootstrap 127.0.0.1:$port --topic w3 >"$out/$b-W3-warm.log" 2>&1 || true
  cpu_start
  "$sluice" bench consume --bootstrap 127.0.0.1:$port --topic w3 --json "$out/$b-W3-bench.json" \
    >"$out/$b-W3-bench.log" 2>&1 || { echo "$b-W3-bench failed:" >&2; tail -3 "$out/$b-W3-bench.log" >&2; }
  cpu_record "$b-W3-bench"
  cpu_start
  "$rdkperf" consume 127.0.0.1:$port w3 "$w3" >"$out/$b-W3-rdk.json" 2>"$out/$b-W3-rdk.log" ||
    { echo "$b-W3-rdk failed:" >&2; tail -3 "$out/$b-W3-rdk.log" >&2; }
  cpu_record "$b-W3-rdk"
  next_workload "$b"
  log "$b W6: 1,000 idle connections, then W1 again"
  "$sluice" bench idle --bootstrap 127.0.0.1:$port --connections 1000 >"$out/$b-W6-idle.log" 2>&1 &
  idle_pid=$!
  for _ in $(seq 600); do grep -q holding "$out/$b-W6-idle.log" 2>/dev/null && break; sleep 0.1; done
  sleep 1
  record "$b-W6-rss" rss_kb "$(rss_kb)"
  bench_produce "$b-W6-p8-bench" w1p8 8 100 1 --duration "$d" --batch-bytes 65536
  kill "$idle_pid" 2>/dev/null || true
  wait "$idle_pid" 2>/dev/null || true
  idle_pid=""
  if want kpt; then
    log "$b: the Java producer's load (kafka-producer-perf-test)"
    kpt_produce "$b-W1-p8-kpt" w1p8k 8 100 "${KPT_W1_RECORDS:-4000000}" -1 acks=1 linger.ms=5
    kpt_produce "$b-W2-kpt" w2k 2 1024 "${KPT_W2_RECORDS:-1000000}" -1 acks=all linger.ms=5
    kpt_produce "$b-W4-50k-kpt" w4k 2 1024 $((50000 * d)) 50000 acks=all linger.ms=0
  fi
  record "$b-rss-end" rss_kb "$(rss_kb)"
}

for shards in 2 1; do
  b=sluice$shards
  want "$b" || continue
  log "Sluice, --shards $shards"
  rm -rf "$work/$b"
  start_sluice "$b" "$shards" "$work/$b"
  run_common "$b" "${W3_RECORDS:-1048576}"
  stop_broker
  rm -rf "$work/$b"
done

# Apache Kafka, one KRaft combined node with the stock configuration and heap (1 GiB): it acknowledges acks=all
# once the record is in the page cache, and fsyncs later. Then the same with log.flush.interval.messages=1: an
# fsync after each append, before the answer, as Sluice's flush policy `always` does.
for b in kafka kafka-flush1; do
  want "$b" || continue
  log "Apache Kafka $b"
  if [ "$b" = kafka ]; then start_kafka "$b"; else start_kafka "$b" --flush1; fi
  run_common "$b" "${W3_RECORDS:-1048576}"
  cp "$work/kafka/node-1/server.log" "$out/$b-broker.log" 2>/dev/null || true
  stop_broker
done

if want tansu-mem; then
  log "Tansu, memory://"
  start_tansu tansu-mem memory://tansu/
  run_common tansu-mem 1048576
  stop_broker
fi

if want tansu-sqlite; then
  log "Tansu, sqlite://"
  rm -f "$work"/tansu.db*
  start_tansu tansu-sqlite sqlite://tansu.db
  BENCH_SECONDS=5 W1_RDK_RECORDS=300000 W2_RDK_RECORDS=100000 run_common tansu-sqlite 65536
  stop_broker
  rm -f "$work"/tansu.db*
fi

# G: what the generators can drive against a broker that stores nothing durable (tmpfs, acks=0). And W4 into
# that broker: what Sluice and librdkafka add to a request's latency when the fsync costs nothing.
if want G; then
  log "G: generator ceiling, acks=0 into tmpfs; W4 into tmpfs"
  shm=$(mktemp -d /dev/shm/sluice-compare.XXXXXX)
  start_sluice sluice-tmpfs 2 "$shm"
  bench_produce G-bench g 8 100 0 --duration 6 --batch-bytes 65536
  rdk_produce G-rdk gr 8 100 8000000 acks=0 linger.ms=5
  rdk_produce G-W4-tmpfs-rdk w4r 2 1024 $((50000 * 6)) acks=all linger.ms=0 rate=50000
  stop_broker
  rm -rf "$shm"
fi

# W5: 10,000 partitions and 10 GiB; restart times and RSS.
if want W5; then
  log "W5: 10,000 partitions, 10 GiB"
  data=$work/w5
  rm -rf "$data"
  start_sluice sluice-w5 2 "$data"
  t0=$(date +%s.%N)
  "$sluice" topic create w5 --partitions 10000 --bootstrap 127.0.0.1:$port >/dev/null
  t1=$(date +%s.%N)
  record W5-create seconds "$(elapsed "$t0" "$t1")"
  record W5-rss-empty rss_kb "$(rss_kb)"
  bench_produce W5-fill w5 10000 1024 1 --records $((10 * 1024 * 1024)) --batch-bytes 524288 --max-in-flight 16
  record W5-rss-full rss_kb "$(rss_kb)"
  du -sb "$data" | awk '{printf "{\"bytes\":%s}\n", $1}' >"$out/W5-size.json"
  restart() { # name
    local start
    start=$(date +%s.%N)
    start_sluice sluice-w5 2 "$data"
    record "$1" seconds "$(elapsed "$start" "$(date +%s.%N)")"
  }
  stop_broker
  restart W5-restart-clean
  record W5-rss-restarted rss_kb "$(rss_kb)"
  # kill -9 in the middle of a produce load, so the last segments end mid-write.
  "$sluice" bench produce --bootstrap 127.0.0.1:$port --topic w5 --record-size 1024 --duration 30 \
    --acks 1 --batch-bytes 524288 >"$out/W5-load.log" 2>&1 &
  load=$!
  sleep 3
  kill -KILL "$broker_pid"
  wait "$broker_pid" 2>/dev/null || true
  broker_pid=""
  wait "$load" 2>/dev/null || true
  restart W5-restart-kill9
  stop_broker
  rm -rf "$data"
fi

# Soak: RSS over 10 minutes of steady load with retention, consumers and connection churn (perf/soak.sh).
if want soak; then
  log "soak: RSS over ${SOAK_SECONDS:-600} s (perf/soak.sh)"
  warm_page_cache
  perf/soak.sh "${SOAK_SECONDS:-600}" >&2
  cp perf/out/soak.json "$out/soak.json"
fi

# ---------------------------------------------------------------- table
rev=$(git rev-parse --short HEAD)$(git diff --quiet || echo +)
python3 perf/compare_table.py "$out" "$rev" | tee "$out/table.md"
