#!/usr/bin/env bash
# Runs librdkafka's own integration test suite against a fresh 2-shard Sluice, the way issue 20 was found and
# is checked. Not part of CI: a full run takes about 40 minutes on 2 cores.
#
#   scripts/librdkafka-suite.sh [TEST ...]        # default: every broker-dependent test
#
# The test runner is librdkafka 2.12.1's `tests/test-runner`, built from the source that the crates.io package
# rdkafka-sys 4.10.0+2.12.1 ships (fetched with cargo, built once, cached under $RDK_CACHE). The runner script
# and the exclusion list are the shared suite's (SUITE_DIR, default ../shared/librdkafka-suite), which says
# why each skipped test is skipped. The broker runs with `num.partitions=4`, which the suite assumes, and with
# the ACL authorizer on (super.users=User:ANONYMOUS), and the suite's timeouts scaled by 2.7, as librdkafka's own
# default run (five tests at a time) scales them.
#
# TEST_SCENARIO=noautocreate runs the tests that need a broker without auto-create (0045's topic-removal cases,
# 0107, 0111) against one started with `auto.create.topics.enable=false`. Tests that run Kafka's
# `kafka-topics.sh` (0045's topic removal; 0052 and 0077 with RUN_EXCLUDED=1) get it through KAFKA_PATH: a
# temporary directory whose bin/kafka-topics.sh is tools/kafka-topics.sh (Kafka 4.4's jars; Java 17+, and Maven
# the first time).
# NODES=3 starts a three-node Sluice cluster instead (127.0.0.1-3, every node a broker and a controller,
# `--shards 1` each, default.replication.factor=3, min.insync.replicas=2), for the tests that create topics
# with replication factor 3 (0107, 0111).
#
# Environment: TEST_SCENARIO [default], NODES [1], SUITE_DIR, RDK_CACHE [~/.cache/sluice/librdkafka-2.12.1],
# SLUICE_BIN [target/release/sluice], PORT [19592; the cluster's controllers listen on PORT+1], and run.sh's
# own knobs (PER_TEST_TIMEOUT, JOBS, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
SUITE_DIR="${SUITE_DIR:-$repo/../shared/librdkafka-suite}"
RDK_CACHE="${RDK_CACHE:-$HOME/.cache/sluice/librdkafka-2.12.1}"
SLUICE="${SLUICE_BIN:-$repo/target/release/sluice}"
PORT="${PORT:-19592}"
[[ -x "$SUITE_DIR/run.sh" ]] || { echo "librdkafka suite runner not found at $SUITE_DIR (set SUITE_DIR)" >&2; exit 2; }

if [[ ! -x "$RDK_CACHE/tests/test-runner" ]]; then
  echo "== building librdkafka 2.12.1's test runner (once, about 8 minutes)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential zlib1g-dev libssl-dev libsasl2-dev \
    libzstd-dev liblz4-dev rapidjson-dev >/dev/null
  fetch=$(mktemp -d)
  mkdir -p "$fetch/src" && echo 'fn main() {}' >"$fetch/src/main.rs"
  printf '[package]\nname = "rdk-fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nrdkafka-sys = "=4.10.0"\n' \
    >"$fetch/Cargo.toml"
  (cd "$fetch" && cargo fetch -q)
  src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/rdkafka-sys-4.10.0+2.12.1/librdkafka | head -1)
  rm -rf "$fetch" "$RDK_CACHE" && mkdir -p "$(dirname "$RDK_CACHE")" && cp -r "$src" "$RDK_CACHE"
  (cd "$RDK_CACHE" && ./configure --disable-curl >/dev/null && make -j2 libs >/dev/null && make -C tests -j2 test-runner >/dev/null)
fi

[[ -x "$SLUICE" ]] || cargo build --release --locked --bin sluice
work=$(mktemp -d /tmp/sluice-rdk-suite.XXXXXX)
NODES="${NODES:-1}"
# The ACL tests (0081) need an authorizer, as librdkafka's own test cluster has. Every client here is
# User:ANONYMOUS (PLAINTEXT), named a super user so the ACLs the tests create do not lock the tests out.
extra=(--set authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
  --set super.users=User:ANONYMOUS)
# librdkafka's own harness runs five tests at a time, which raises every test's internal timeouts by 5/3 (test.c:
# "test_timeout_multiplier += test_concurrent_max / 3"); the shared runner runs one at a time (-p1), where 0081's
# 180 s budget is too short for its dozens of consumer groups, each waiting out group.initial.rebalance.delay.ms
# (3 s, Kafka's default) on its first join. Run with the multiplier librdkafka's own default run has.
export TEST_TIMEOUT_MULTIPLIER="${TEST_TIMEOUT_MULTIPLIER:-2.7}"
if [[ "${TEST_SCENARIO:-default}" == noautocreate ]]; then
  extra+=(--set auto.create.topics.enable=false)
fi
# librdkafka runs "$KAFKA_PATH/bin/kafka-topics.sh --bootstrap-server $BROKERS ..." where a test needs Kafka's
# tool (0045's topic removal; 0052 and 0077, which the shared exclusion list skips unless RUN_EXCLUDED=1).
mkdir -p "$work/kafka/bin"
ln -s "$repo/tools/kafka-topics.sh" "$work/kafka/bin/kafka-topics.sh"
export KAFKA_PATH="$work/kafka"
brokers=()
logs=()
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
if [[ "$NODES" == 1 ]]; then
  "$SLUICE" serve --listen "127.0.0.1:$PORT" --data-dir "$work/data" --shards 2 --set num.partitions=4 "${extra[@]}" \
    2>"$work/broker.log" &
  pids+=($!)
  logs=("$work/broker.log")
  brokers=("127.0.0.1:$PORT")
  shards=2
elif [[ "$NODES" == 3 ]]; then
  voters="1@127.0.0.1:$((PORT + 1)),2@127.0.0.2:$((PORT + 1)),3@127.0.0.3:$((PORT + 1))"
  for n in 1 2 3; do
    cat >"$work/node-$n.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.$n:$PORT,CONTROLLER://127.0.0.$n:$((PORT + 1))
advertised.listeners=PLAINTEXT://127.0.0.$n:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$work/node-$n
default.replication.factor=3
min.insync.replicas=2
num.partitions=4
admin.listeners=
PROPS
    "$SLUICE" serve --config "$work/node-$n.properties" --shards 1 "${extra[@]}" 2>"$work/broker-$n.log" &
    pids+=($!)
    logs+=("$work/broker-$n.log")
    brokers+=("127.0.0.$n:$PORT")
  done
  shards=1
else
  echo "NODES must be 1 or 3" >&2
  exit 2
fi
for log in "${logs[@]}"; do
  for _ in $(seq 600); do grep -qs "ready to serve" "$log" && break; sleep 0.1; done
  grep -qs "ready to serve" "$log" || { echo "a broker did not start: $log" >&2; tail -20 "$log" >&2; exit 1; }
done
bootstrap=$(IFS=,; echo "${brokers[*]}")
export BROKERS="$bootstrap"
echo "== sluice $(git rev-parse --short HEAD), $NODES node(s), --shards $shards, num.partitions=4 ${extra[*]}; broker logs ${logs[*]}"
status=0
# 0113 (cooperative-sticky) takes about 570 s on any broker by its own design (six 47 s stress runs that wait out
# a 15 s playbook and 20 s of stabilisation, a 3 s initial rebalance delay per group): run.sh's 300 s default
# would kill it mid-run.
export PER_TEST_TIMEOUT="${PER_TEST_TIMEOUT:-900}"
RDK_DIR="$RDK_CACHE" RESULTS_DIR="${RESULTS_DIR:-$work/results}" "$SUITE_DIR/run.sh" "$bootstrap" "$@" || status=$?
if grep -E "panicked|offline" "${logs[@]}" >/dev/null; then
  echo "a broker logged a panic or an offline partition:" && grep -E "panicked|offline" "${logs[@]}" | head
  status=1
fi
exit $status
