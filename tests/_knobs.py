""""Every knob changes something": the silent-knob check shared by the agent test files.

For one registered agent and a tiny config, train once with the defaults and once per perturbed
config field / hparam; each perturbation must change the final learner state or the metrics,
unless the agent module lists the field in ``INERT`` (``{field: why}``, e.g. evaluation-only
fields).  Perturbations: bools flip, ints +1, floats x1.5 (+0.1 at zero; a config float that
would leave its documented range, ``HPARAM_RANGES``, moves halfway to the bound instead, since
``make`` refuses it), hparam leaves x1.5;
strings, tuples and ``None`` need an explicit alternative in ``alternatives`` (``"hp.<name>"``
keys give an hparam's alternative value).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from rlsuite import agents
from rlsuite.core.agent import make_train


def _fingerprint(out) -> list[np.ndarray]:
    leaves = []
    for x in jax.tree.leaves(out):
        x = jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
        leaves.append(np.asarray(x, np.float64).ravel())
    return leaves


def _differs(a, b) -> bool:
    if len(a) != len(b):
        return True
    return any(x.shape != y.shape or not np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b))


def _perturb(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 1.5 if value != 0 and math.isfinite(value) else 0.1
    raise KeyError


def _into_range(old: Any, new: Any, rng) -> Any:
    """``new`` if it is in the documented range ``rng`` (``rlsuite.core.validate.Range``), else a
    valid value between ``old`` and the nearest finite bound."""
    if rng is None or not isinstance(new, float) or rng.contains(new):
        return new
    lo, hi = rng[0], rng[1]
    cand = (old + hi) / 2 if math.isfinite(hi) and old != hi else (old + lo) / 2 if math.isfinite(lo) else old * 0.5
    return cand if rng.contains(cand) and cand != old else old * 0.5


def check_every_knob(
    name: str,
    config,
    env,
    env_params,
    data=None,
    alternatives: Mapping[str, Any] | None = None,
    skip: Mapping[str, str] | None = None,
    hparams: bool = True,
    key: int = 0,
) -> dict[str, str]:
    """Returns ``{knob: "changes" | "inert: why" | "skipped: why"}``; raises ``AssertionError``
    listing the knobs that changed nothing and are not documented as inert.

    ``skip`` lists fields the test cannot perturb validly at this size (with the reason);
    a perturbed config that the agent refuses (``ValueError``) is an error of the test table.
    """
    entry = agents.get(name)
    mod = entry.load()
    inert = dict(getattr(mod, "INERT", {}))
    alternatives = dict(alternatives or {})
    skip = dict(skip or {})
    k = jax.random.PRNGKey(key)

    def run(cfg, hp=None):
        agent = entry.make(cfg, env, env_params, data)
        hp = entry.default_hparams(cfg) if hp is None else hp
        return _fingerprint(jax.jit(make_train(agent))(k, hp))

    base = run(config)
    report, silent = {}, []
    for f in dataclasses.fields(config):
        if f.name in entry.variant:
            continue
        if f.name in skip:
            report[f.name] = f"skipped: {skip[f.name]}"
            continue
        old = getattr(config, f.name)
        if f.name in alternatives:
            new = alternatives[f.name]
        else:
            try:
                new = _into_range(old, _perturb(old), entry.hparam_ranges().get(f.name))
            except KeyError:
                raise AssertionError(f"{name}: give an alternative value for field {f.name}={old!r}") from None
        changed = _differs(base, run(dataclasses.replace(config, **{f.name: new})))
        if f.name in inert:
            report[f.name] = f"inert: {inert[f.name]}"
        elif changed:
            report[f.name] = "changes"
        else:
            silent.append(f.name)
    if hparams:
        hp0 = entry.default_hparams(config)
        for f in dataclasses.fields(hp0):
            if f"hp.{f.name}" in skip:
                report[f"hp.{f.name}"] = f"skipped: {skip['hp.' + f.name]}"
                continue
            v = jnp.asarray(getattr(hp0, f.name))
            if f"hp.{f.name}" in alternatives:
                new = jnp.asarray(alternatives[f"hp.{f.name}"], v.dtype)
            else:
                new = jnp.where(v == 0, 0.1, jnp.where(jnp.isinf(v), 10.0, v * 1.5)).astype(v.dtype)
            changed = _differs(base, run(config, hp0.replace(**{f.name: new})))
            key_ = f"hp.{f.name}"
            if key_ in inert:
                report[key_] = f"inert: {inert[key_]}"
            elif changed:
                report[key_] = "changes"
            else:
                silent.append(key_)
    assert not silent, f"{name}: these knobs change nothing and are not in {mod.__name__}.INERT: {silent}"
    return report
