"""Environment registry: ``make(env_id, **kwargs) -> (env, env_params)``.

Ids carry a namespace prefix:

- ``gymnax:<name>``   every gymnax environment (classic control, MinAtar, bsuite, misc);
- ``brax:<name>``     Brax environments adapted to the gymnax API (:class:`BraxToGymnax`);
- ``gymnasium:<name>`` any gymnasium environment, run on the host (:class:`HostEnv`);
- anything else a module registered with :func:`register` (our own JAX envs:
  ``lqr:...``, ``diffusion:...``, ``grid:...``, and the ``probe:...`` probe envs with known
  values, :mod:`rlsuite.envs.probes`).

Every JAX environment follows gymnax's functional API (``reset_env``, ``step_env``,
``is_truncated``, ``observation_space``, ``action_space``); the rollout engine in
:mod:`rlsuite.core.rollout` relies on exactly that.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable

Factory = Callable[..., tuple[Any, Any]]

_REGISTRY: dict[str, Factory] = {}
_DESCRIPTIONS: dict[str, str] = {}

# Modules of our own JAX envs; imported lazily on first use of the registry so that
# `import rlsuite.envs` stays cheap.  A module registers its ids at import time.
_OWN_ENV_MODULES = (
    "rlsuite.envs.lqr",
    "rlsuite.envs.diffusion",
    "rlsuite.envs.gridworld",
    "rlsuite.envs.probes",
    "rlsuite.envs.maze",
    "rlsuite.envs.objgrid",
)
_own_loaded = False


def register(env_id: str, factory: Factory, description: str = "") -> None:
    """Register ``factory(**kwargs) -> (env, env_params)`` under ``env_id``.

    ``env_id`` must carry a namespace (``"lqr:lqr-1d"``); the ``gymnax``, ``brax`` and
    ``gymnasium`` namespaces are reserved.
    """
    if ":" not in env_id:
        raise ValueError(f"env id {env_id!r} needs a namespace prefix, e.g. 'mine:{env_id}'")
    ns = env_id.split(":", 1)[0]
    if ns in ("gymnax", "brax", "gymnasium"):
        raise ValueError(f"namespace {ns!r} of {env_id!r} is reserved for the built-in adapters")
    if env_id in _REGISTRY and _REGISTRY[env_id] is not factory:
        raise ValueError(f"env id {env_id!r} is already registered")
    _REGISTRY[env_id] = factory
    _DESCRIPTIONS[env_id] = description


def _load_own_envs() -> None:
    global _own_loaded
    if _own_loaded:
        return
    _own_loaded = True
    for mod in _OWN_ENV_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:  # module not written yet: skip quietly
            if e.name != mod:
                raise


# gymnax envs that cannot run offline: MNISTBandit downloads MNIST on construction.
_GYMNAX_EXCLUDED = {"MNISTBandit-bsuite": "downloads the MNIST data set from the internet when built"}


def _gymnax_names() -> list[str]:
    import gymnax

    return [n for n in gymnax.registered_envs if n not in _GYMNAX_EXCLUDED]


def _check_env_param(env_id: str, params: Any, name: str, value: Any) -> None:
    """An env-parameter override must have the default's kind (int / float / bool) and sign."""
    import numbers

    default = getattr(params, name)
    import numpy as np

    d = np.asarray(default)
    if d.ndim:
        return  # array-valued parameters: left to the env
    kind = d.dtype.kind
    if kind == "b":
        if not isinstance(value, bool):
            raise ValueError(f"{env_id} parameter {name} must be true/false, got {value!r}")
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{env_id} parameter {name} must be a number, got {value!r}")
    if kind in "iu" and not isinstance(value, numbers.Integral):
        raise ValueError(f"{env_id} parameter {name} must be an integer (default {default}), got {value!r}")
    if not np.isfinite(float(value)):
        raise ValueError(f"{env_id} parameter {name} must be finite, got {value!r}")
    if (name.startswith("max_steps") or name.endswith("_steps")) and value <= 0:
        raise ValueError(f"{env_id} parameter {name} must be positive, got {value!r}")
    if float(default) > 0 and value < 0:
        raise ValueError(f"{env_id} parameter {name} must be non-negative (default {default}), got {value!r}")


def _brax_names() -> list[str]:
    from rlsuite.envs.wrappers import brax_env_names

    return brax_env_names()


def list_envs(include_gymnasium: bool = False) -> list[str]:
    """All ids ``make`` accepts (gymnasium ids only if ``include_gymnasium``)."""
    _load_own_envs()
    ids = [f"gymnax:{n}" for n in _gymnax_names()]
    ids += [f"brax:{n}" for n in _brax_names()]
    ids += sorted(_REGISTRY)
    if include_gymnasium:
        import gymnasium

        ids += [f"gymnasium:{n}" for n in sorted(gymnasium.registry)]
    return ids


def describe(env_id: str) -> str:
    _load_own_envs()
    if env_id in _DESCRIPTIONS:
        return _DESCRIPTIONS[env_id]
    return env_id.split(":", 1)[0]


def _unknown(env_id: str, candidates: list[str]) -> ValueError:
    close = difflib.get_close_matches(env_id, candidates, n=5, cutoff=0.5)
    if not close:  # also try matching the bare name against the bare names
        bare = env_id.split(":", 1)[-1].lower()
        close = [c for c in candidates if bare and bare in c.lower()][:5]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return ValueError(f"unknown env id {env_id!r}.{hint} (`rlsuite envs` lists every id)")


def make(env_id: str, **kwargs: Any) -> tuple[Any, Any]:
    """Build an environment and its default parameters from an id.

    Args:
        env_id: ``"<namespace>:<name>"``, e.g. ``"gymnax:CartPole-v1"``, ``"brax:hopper"``.
        **kwargs: passed to the namespace's constructor (e.g. ``backend="spring"`` and
            ``episode_length=1000`` for Brax; ``num_envs`` for gymnasium host envs;
            environment-parameter overrides such as ``max_steps_in_episode=200`` for gymnax).

    Returns:
        ``(env, env_params)``; ``env`` follows gymnax's functional API.
    """
    if not isinstance(env_id, str) or ":" not in env_id:
        _load_own_envs()
        raise ValueError(
            f"env id {env_id!r} must look like 'namespace:name', e.g. 'gymnax:CartPole-v1'. "
            f"Namespaces: {', '.join(['gymnax', 'brax', 'gymnasium'] + sorted({k.split(':')[0] for k in _REGISTRY}))}"
        )
    ns, name = env_id.split(":", 1)
    if ns == "gymnax":
        names = _gymnax_names()
        if name in _GYMNAX_EXCLUDED:
            raise ValueError(f"{env_id} is not supported: it {_GYMNAX_EXCLUDED[name]} (rlsuite envs run offline)")
        if name not in names:
            raise _unknown(env_id, [f"gymnax:{n}" for n in names])
        import gymnax

        params_over = {k: v for k, v in kwargs.items()}
        env, params = gymnax.make(name)
        if params_over:
            bad = [k for k in params_over if not hasattr(params, k)]
            if bad:
                raise ValueError(
                    f"gymnax:{name} has no parameter {bad[0]!r}; its parameters are "
                    f"{sorted(params.__dataclass_fields__)}"
                )
            for k, v in params_over.items():
                _check_env_param(env_id, params, k, v)
            params = params.replace(**params_over)
        return env, params
    if ns == "brax":
        from rlsuite.envs.wrappers import BraxToGymnax

        names = _brax_names()
        if name not in names:
            raise _unknown(env_id, [f"brax:{n}" for n in names])
        env = BraxToGymnax(name, **kwargs)
        return env, env.default_params
    if ns == "gymnasium":
        import gymnasium

        from rlsuite.envs.host import HostEnv

        if name not in gymnasium.registry:
            raise _unknown(env_id, [f"gymnasium:{n}" for n in gymnasium.registry])
        env = HostEnv(name, **kwargs)
        return env, None
    _load_own_envs()
    if env_id not in _REGISTRY:
        raise _unknown(env_id, list_envs())
    return _REGISTRY[env_id](**kwargs)
