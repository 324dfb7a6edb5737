#!/usr/bin/env bash
# Installs what the client tests need on a fresh Debian machine: kcat (Debian's, linking librdkafka 2.0.2),
# Python clients in a venv (confluent-kafka with its bundled librdkafka, kafka-python, pytest), kafkajs
# from npm, fuse3 (fusermount3, for the power-loss tests' lossyfs mounts when not root), promtool (Debian's
# prometheus package), the Java client scenarios, Kafka Streams application and Connect file connectors
# (tests/java, Maven Central), Apache Kafka's command-line tools and Connect worker (tools/kafka.sh, Maven
# Central) and the franz-go program (tests/go, Go module proxy).
# Idempotent: a second run installs and builds nothing (about 1 s: it hashes the sources it would build).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v kcat >/dev/null || need_apt+=(kcat)
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
# The cluster's fault tests: network namespaces and veth pairs (ip), small ext4 data disks (mkfs.ext4, losetup).
command -v ip >/dev/null || need_apt+=(iproute2)
command -v mkfs.ext4 >/dev/null || need_apt+=(e2fsprogs)
command -v losetup >/dev/null || need_apt+=(mount)
command -v fusermount3 >/dev/null || need_apt+=(fuse3)
# The Java client tests and Kafka's tools: a JDK (17+) and Maven. Go is not taken from Debian: franz-go
# v1.22 needs Go 1.26, newer than Debian's golang-go; the machines have it in /usr/local/go.
command -v javac >/dev/null || need_apt+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need_apt+=(maven)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]} from Debian"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# promtool, which checks the admin listener's /metrics (tests/clients/test_admin_http.py), and the Prometheus
# server, which tests/clients/test_prometheus_server.py starts against a broker, ship in Debian's prometheus
# package (~96 MB installed). Without recommends: they would add node-exporter, smartmontools and
# more. The package's service is not started in a container without systemd, and nothing here starts it.
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  echo "== installing prometheus (promtool and the server) from Debian"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

venv=tests/clients/.venv
if [ ! -x "$venv/bin/python" ]; then
  echo "== creating the Python venv"
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import confluent_kafka, kafka, pytest, xdist' 2>/dev/null; then
  echo "== installing Python clients"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/clients/requirements.txt
fi

if [ ! -d tests/clients/node_modules/kafkajs ]; then
  echo "== installing kafkajs"
  (cd tests/clients && npm install --silent --no-audit --no-fund >/dev/null)
fi

# Builds only when the inputs changed since the last build: a stamp file holds the hash of the inputs.
stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# The Java client scenarios, the Streams application and the Connect connectors: one jar plus its
# dependencies in tests/java/target/libs. Offline from ~/.m2 when it has them (the usual case), online
# (Maven Central) the first time.
java_stamp=tests/java/target/.sources.sha256
java_want=$(stamp_of tests/java/pom.xml $(find tests/java/src -type f | sort))
if [ "$(cat "$java_stamp" 2>/dev/null)" != "$java_want" ]; then
  echo "== building the Java client scenarios (tests/java)"
  java_goals=(clean compile jar:jar dependency:copy-dependencies -DoutputDirectory=target/libs -DincludeScope=runtime)
  (cd tests/java && { mvn -B -q -o "${java_goals[@]}" >/tmp/sluice-mvn.log 2>&1 ||
    mvn -B -q "${java_goals[@]}" >/tmp/sluice-mvn.log 2>&1; }) || { cat /tmp/sluice-mvn.log; exit 1; }
  echo "$java_want" >"$java_stamp"
fi

# Apache Kafka's tools: tools/kafka.sh copies their jars into ~/.cache/sluice/kafka-VERSION/libs on its first run.
tools/kafka.sh fetch

# franz-go: one static program, tests/go/franzgo. GOTOOLCHAIN=local: never download a Go toolchain.
go_stamp=tests/go/.franzgo.sha256
go_want=$(stamp_of tests/go/go.mod tests/go/go.sum tests/go/*.go)
if [ ! -x tests/go/franzgo ] || [ "$(cat "$go_stamp" 2>/dev/null)" != "$go_want" ]; then
  command -v go >/dev/null || { echo "Go 1.26 or newer is required for tests/go (franz-go)" >&2; exit 1; }
  echo "== building the franz-go program (tests/go)"
  (cd tests/go && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go build -o franzgo .)
  echo "$go_want" >"$go_stamp"
fi
