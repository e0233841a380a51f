#!/usr/bin/env bash
# Checks the deploy files as CI does: `systemd-analyze verify` on the units (with ExecStart
# pointed at the binaries just built, since /usr/local/bin is empty on a build machine) and
# `promtool check rules` on the alert rules. Usage: deploy/verify.sh [BIN_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bin_dir="$(realpath "${1:-target/debug}")"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for unit in deploy/systemd/*.service deploy/systemd/*.socket; do
    sed "s#/usr/local/bin/#$bin_dir/#g" "$unit" > "$tmp/$(basename "$unit")"
done
echo "== systemd-analyze verify"
# verify prints problems and exits non-zero on errors; warnings are failures here too.
out="$(cd "$tmp" && systemd-analyze verify --man=no ./*.socket ./*.service 2>&1 || echo "exit status $?")"
if [ -n "$out" ]; then
    echo "$out"
    exit 1
fi
echo "units ok"

echo "== promtool check rules"
promtool check rules deploy/prometheus/firehose-alerts.yml
promtool test rules deploy/prometheus/firehose-alerts.test.yml
promtool check config deploy/prometheus/prometheus.yml

echo "== grafana dashboard is JSON"
python3 -m json.tool deploy/grafana/firehose.json > /dev/null
echo "dashboard ok"
