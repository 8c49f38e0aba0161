"""Shared helpers of the Deep GA experiments (not a script: the leading ``_`` keeps CI's smoke run off it)."""

from __future__ import annotations

import os

RESULTS = "results/deep_ga"
SMOKE_OUT = "/tmp/rlsuite-smoke/deep_ga"


def out_dir(smoke: bool) -> str:
    d = SMOKE_OUT if smoke else RESULTS
    os.makedirs(d, exist_ok=True)
    return d


def run_segment(ga, generations: int):
    """All generations of ``ga`` in one jitted scan: ``(final state, metrics [G, ...])``."""
    import jax
    import numpy as np

    state, m = jax.jit(lambda s: ga.segment(s, generations))(ga.init())
    return state, jax.tree.map(np.asarray, m)
