"""rlsuite: a reinforcement-learning algorithm suite in JAX."""

import os as _os

# jaxlib 0.10.2's CPU runtime can deadlock (all threads parked on a futex, no progress) when its
# concurrency-optimised scheduler runs some vmapped training programs, e.g. a vmapped PPO
# `train` whose metrics are dropped, or `lax.map(..., batch_size=...)` over trainings.  The
# default scheduler has no such hang (tests/test_xla_workaround.py).  XLA reads XLA_FLAGS when its
# backend starts, so this applies when rlsuite is imported before the first JAX computation.
_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
if _FLAG not in _os.environ.get("XLA_FLAGS", ""):
    _os.environ["XLA_FLAGS"] = (_os.environ.get("XLA_FLAGS", "") + f" {_FLAG}=false").strip()

__version__ = "0.1.0"
