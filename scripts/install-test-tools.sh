#!/usr/bin/env bash
# Installs what the client tests need on a fresh Debian machine: kcat (Debian's, linking librdkafka 2.0.2),
# Python clients in a venv (confluent-kafka with its bundled librdkafka, kafka-python, pytest), kafkajs
# from npm, fuse3 (fusermount3, for the power-loss tests' lossyfs mounts when not root) and promtool (Debian's
# prometheus package). Idempotent: a second run installs nothing.
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
if ! "$venv/bin/python" -c 'import confluent_kafka, kafka, pytest' 2>/dev/null; then
  echo "== installing Python clients"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/clients/requirements.txt
fi

if [ ! -d tests/clients/node_modules/kafkajs ]; then
  echo "== installing kafkajs"
  (cd tests/clients && npm install --silent --no-audit --no-fund >/dev/null)
fi
