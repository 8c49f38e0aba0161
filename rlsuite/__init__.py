"""rlsuite: a reinforcement-learning algorithm suite in JAX."""

import os as _os

# jaxlib 0.10.2's CPU runtime can deadlock (all threads parked on a futex, no progress) when its
# concurrency-optimised scheduler runs some vmapped training programs.  Minimal trigger found
# (issue 17): a `vmap`ped PPO `train` whose metrics are dropped, e.g.
# `jit(vmap(lambda k: train(k, hp)[0].params))` over 4 keys, with 2 CPU threads (hangs in 2 of 2
# runs); the same program keeping the metrics, unvmapped, or pinned to one core finishes.  Also
# seen with `lax.map(..., batch_size=...)` over trainings.  No newer jaxlib exists within our
# bounds (<0.11), the option has no effect per compile, so the flag is process-wide: XLA reads
# XLA_FLAGS when its backend starts, so this applies when rlsuite is imported before the first JAX
# computation.  It costs speed on some programs (benchmarks/ppo_profile.py and ppo_vs_rejax.py
# measure it); setting the flag yourself (`...=true` opts out) is respected.  Regression test:
# tests/test_xla_workaround.py.
_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
if _FLAG not in _os.environ.get("XLA_FLAGS", ""):
    _os.environ["XLA_FLAGS"] = (_os.environ.get("XLA_FLAGS", "") + f" {_FLAG}=false").strip()

__version__ = "0.1.0"
