#!/usr/bin/env bash
# Run one experiment / benchmark script with --smoke (called by `make smoke`, two at a time).
# Prints one line on success; on failure the last 50 lines of its log and a non-zero exit (255,
# so xargs stops launching further scripts).
set -uo pipefail
f="$1"
log="/tmp/rlsuite-smoke-logs/$(echo "$f" | tr '/' '_').log"
mkdir -p /tmp/rlsuite-smoke-logs
t0=$(date +%s)
if "$PYTHON_BIN" "$f" --smoke > "$log" 2>&1; then
  echo "   ok   $f ($(( $(date +%s) - t0 )) s)"
else
  tail -50 "$log"
  echo "smoke FAILED: $f"
  exit 255
fi
