#!/bin/sh
# Validate the deployment files. Run from the repository root: deploy/check.sh
# Needs promtool (Debian: apt-get install prometheus) and python3.
set -eu

command -v promtool >/dev/null 2>&1 || { echo "check.sh: promtool not found (apt-get install prometheus)" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "check.sh: python3 not found" >&2; exit 1; }

promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
python3 -m json.tool deploy/grafana/gatewatch-dashboard.json >/dev/null
echo "deploy/grafana/gatewatch-dashboard.json: valid JSON"
echo "check.sh: all deployment files OK"
