#!/usr/bin/env bash
# Run one experiment / benchmark script with --smoke, the way `make smoke` runs each of them
# (`rlsuite reproduce all --scale smoke --jobs 2`): log in /tmp/rlsuite-smoke-logs/, one line on
# success; on failure the last 50 lines of its log and a non-zero exit.
#   .ci/smoke_one.sh experiments/odice/run_il.py
set -uo pipefail
f="$1"
py="${PYTHON_BIN:-.venv/bin/python}"
log="/tmp/rlsuite-smoke-logs/$(echo "$f" | tr '/' '_').log"
mkdir -p /tmp/rlsuite-smoke-logs
t0=$(date +%s)
if timeout 600 "$py" "$f" --smoke > "$log" 2>&1; then
  echo "   ok   $f ($(( $(date +%s) - t0 )) s)"
else
  tail -50 "$log"
  echo "FAILED: $f (log $log)"
  exit 255
fi
