#!/usr/bin/env bash
# Runs every test Sluice has, installing what the tests need on a fresh Debian machine first.
# This is the README's test command, and what CI (.ci/run) calls.
set -euo pipefail
cd "$(dirname "$0")/.."

memlock_kib=$(ulimit -l)
if [ "$memlock_kib" != unlimited ] && [ "$memlock_kib" -lt 4096 ]; then
  echo "memlock limit is ${memlock_kib} KiB; glommio needs at least 512 KiB per executor (ulimit -l)." >&2
  exit 1
fi
command -v cargo >/dev/null || { echo "cargo is required (rustup)" >&2; exit 1; }

echo "== [${SECONDS} s] test tools (kcat, fuse3, Python clients, kafkajs, the Java client and Kafka's tools, franz-go)"
./scripts/install-test-tools.sh

echo "== [${SECONDS} s] format, lints and module cycles"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
python3 scripts/check-module-cycles.py

# The Rust tests build and run on the declared minimum Rust version (rust-version in Cargo.toml), so that
# what Cargo.toml declares is what CI proves, at no extra build: clippy above is the stable toolchain's.
# --all-targets --no-run also builds the benches (on the tests' dependencies), which the test run skips.
echo "== [${SECONDS} s] tests (on the minimum Rust version)"
msrv=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)
rustup toolchain install "$msrv" --profile minimal >/dev/null
cargo +"$msrv" test --workspace --locked --all-targets --no-run
cargo +"$msrv" test --workspace --locked

echo "== [${SECONDS} s] end-to-end client tests (release broker; --shards 2, and 1 for the core modules: tests/clients/conftest.py)"
cargo build --release --locked --bin sluice
# Two tests at a time (pytest-xdist): each has its own broker, ports and data directory, and most of a test's
# time is spent waiting on the broker and the clients' timers, not on the CPU.
SLUICE_BIN="$PWD/target/release/sluice" tests/clients/.venv/bin/python -m pytest -q -p no:cacheprovider -n 2 tests/clients

echo "== [${SECONDS} s] cluster tests (separate sluice processes on 127.0.0.1-4, --shards 1; power loss on lossyfs mounts)"
cargo build --release --locked -p lossyfs
SLUICE_BIN="$PWD/target/release/sluice" LOSSYFS_BIN="$PWD/target/release/lossyfs" \
  tests/clients/.venv/bin/python -m pytest -q -p no:cacheprovider tests/cluster

# The benches are type-checked by clippy --all-targets above; building them in release would add minutes.
echo "== [${SECONDS} s] fuzz targets build (when cargo-fuzz is installed)"
if command -v cargo-fuzz >/dev/null; then
  (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build -O >/dev/null)
fi
echo "all tests passed in ${SECONDS} s"
