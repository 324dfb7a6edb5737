#!/usr/bin/env bash
# Runs librdkafka's own integration test suite against a fresh 2-shard Sluice, the way issue 20 was found and
# is checked. Not part of CI: a full run takes about 40 minutes on 2 cores.
#
#   scripts/librdkafka-suite.sh [TEST ...]        # default: every broker-dependent test
#
# The test runner is librdkafka 2.12.1's `tests/test-runner`, built from the source that the crates.io package
# rdkafka-sys 4.10.0+2.12.1 ships (fetched with cargo, built once, cached under $RDK_CACHE). The runner script
# and the exclusion list are the shared suite's (SUITE_DIR, default ../shared/librdkafka-suite), which says
# why each skipped test is skipped. The broker runs with `num.partitions=4`, which the suite assumes.
#
# TEST_SCENARIO=noautocreate runs the tests that need a broker without auto-create (0045's topic-removal cases,
# 0107, 0111) against one started with `auto.create.topics.enable=false`.
#
# Environment: TEST_SCENARIO [default], SUITE_DIR, RDK_CACHE [~/.cache/sluice/librdkafka-2.12.1], SLUICE_BIN [target/release/sluice],
# PORT [19592], and run.sh's own knobs (PER_TEST_TIMEOUT, JOBS, ...).
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
extra=()
if [[ "${TEST_SCENARIO:-default}" == noautocreate ]]; then
  extra=(--set auto.create.topics.enable=false)
fi
"$SLUICE" serve --listen "127.0.0.1:$PORT" --data-dir "$work/data" --shards 2 --set num.partitions=4 "${extra[@]}" \
  2>"$work/broker.log" &
broker=$!
trap 'kill $broker 2>/dev/null || true; wait $broker 2>/dev/null || true' EXIT
for _ in $(seq 300); do grep -q "ready to serve" "$work/broker.log" && break; sleep 0.1; done
echo "== sluice $(git rev-parse --short HEAD), --shards 2, num.partitions=4 ${extra[*]}; broker log $work/broker.log"
status=0
# 0113 (cooperative-sticky) takes about 570 s on any broker by its own design (six 47 s stress runs that wait out
# a 15 s playbook and 20 s of stabilisation, a 3 s initial rebalance delay per group): run.sh's 300 s default
# would kill it mid-run.
export PER_TEST_TIMEOUT="${PER_TEST_TIMEOUT:-900}"
RDK_DIR="$RDK_CACHE" RESULTS_DIR="${RESULTS_DIR:-$work/results}" "$SUITE_DIR/run.sh" "127.0.0.1:$PORT" "$@" || status=$?
if grep -E "panicked|offline" "$work/broker.log" >/dev/null; then
  echo "the broker logged a panic or an offline partition:" && grep -E "panicked|offline" "$work/broker.log" | head
  status=1
fi
exit $status
