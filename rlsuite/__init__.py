"""rlsuite: a reinforcement-learning algorithm suite in JAX."""

import os as _os

# jaxlib 0.10.2's CPU runtime can deadlock (all threads parked on a futex, no progress) when its
# concurrency-optimised scheduler runs some vmapped training programs.  What triggers it
# (benchmarks/xla_scheduler_hang.py -> results/benchmarks/xla_scheduler_hang.md): a vmapped
# (>= 4 keys) training loop whose update is a lax.scan of gradient steps over the batch the same
# iteration's rollout produced, e.g. `jit(vmap(lambda k: train(k, hp)[0].params))` of PPO; with
# 2 keys, no vmap, a constant batch or one gradient step it finishes.  Which exact programs hang
# depends on details XLA decides: flattening Adam's state (issue 17) moved the hang from the
# regression program to a sibling, and region-analysis copy insertion fixes one program and hangs
# another, so no restructuring of ours keeps it away for good.  Reliable: the memory-optimised
# scheduler (this flag), or one runtime thread (`--cpu-threads 1` / PJRT_NPROC=1, also faster for
# small networks).  No newer jaxlib exists within our bounds (<0.11) and the option has no effect
# per compile, so the flag is process-wide: XLA reads XLA_FLAGS when its backend starts, so this
# applies when rlsuite is imported before the first JAX computation.  It costs speed on some
# programs (benchmarks/ppo_vs_rejax.py measures it); setting the flag yourself (`...=true` opts
# out) is respected.  Regression test: tests/test_xla_workaround.py.
_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
if _FLAG not in _os.environ.get("XLA_FLAGS", ""):
    _os.environ["XLA_FLAGS"] = (_os.environ.get("XLA_FLAGS", "") + f" {_FLAG}=false").strip()

__version__ = "0.1.0"
