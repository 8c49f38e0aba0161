#!/usr/bin/env bash
# Create the separate virtual environment the rejax benchmark runs in.
#
# rejax 0.1.3 unpacks gymnax's old 5-tuple `step`, so it needs gymnax<1.0, which must never
# enter rlsuite's own install.  The venv lives in runs/bench-venv (git-ignored) unless
# REJAX_VENV says otherwise.  Idempotent: re-running only checks the import.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${REJAX_VENV:-$here/runs/bench-venv}"
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null || py=python3
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  # Pins: rejax 0.1.3 and a pre-1.0 gymnax; jax/flax/optax/distrax as pip resolves them.
  "$venv/bin/pip" install -q "rejax==0.1.3" "gymnax<1.0" ${REJAX_EXTRA_PINS:-}
fi
"$venv/bin/python" -c "import rejax, gymnax, jax; print('rejax env ok:', 'jax', jax.__version__, 'gymnax', getattr(gymnax, '__version__', '?'))"
echo "$venv"
