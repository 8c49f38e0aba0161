"""The agent registry: every agent by name, imported lazily.

Each entry names the module implementing the protocol of :mod:`rlsuite.core.agent` (``Config``,
``HParams``, ``default_hparams(config)``, ``make(config, env, env_params, data=None)``), the
config class to use and the field values that select the variant (``npg-igt`` and ``harpg`` are
one module with different ``method``), plus a tiny ``smoke`` setting that CI and the
registry-wide tests train on.

    from rlsuite import agents
    entry = agents.get("ppo")
    config = entry.config(total_timesteps=100_000)
    agent = entry.make(config, env, env_params)          # rlsuite.core.agent.Agent
    train = rlsuite.core.agent.make_train(agent)         # jit / vmap over keys and hparams
"""

from __future__ import annotations

import dataclasses
import importlib
from types import MappingProxyType
from typing import Any, Mapping

KINDS = ("online", "episodic", "offline", "evaluation")


@dataclasses.dataclass(frozen=True)
class AgentEntry:
    name: str
    module: str
    """Module path (``rlsuite.agents.ppo``)."""
    summary: str
    """One line for ``rlsuite agents``."""
    kind: str
    """online (step-batched rollouts), episodic (fixed-horizon episodes), offline (a dataset),
    evaluation (policy evaluation of a fixed policy)."""
    default_env: str
    """The env ``rlsuite train NAME`` uses without ``--env``."""
    config_name: str = "Config"
    """Config class in the module."""
    variant: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Config field values that make this entry's variant."""
    smoke_env: str | None = None
    """Env of the tiny smoke run (default: ``default_env``)."""
    smoke: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Config overrides of the tiny smoke run (seconds on CPU)."""
    smoke_data: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Offline agents: ``rlsuite.data.BuildSpec`` fields of the smoke dataset."""

    # -- module access
    def load(self):
        return importlib.import_module(self.module)

    @property
    def config_cls(self) -> type:
        return getattr(self.load(), self.config_name)

    def config(self, **overrides):
        """The variant's default config with ``overrides`` applied."""
        return self.config_cls(**{**dict(self.variant), **overrides})

    def smoke_config(self, **overrides):
        return self.config(**{**dict(self.smoke), **overrides})

    def default_hparams(self, config):
        return self.load().default_hparams(config)

    def check_config(self, config):
        """The checks of ``config`` that need no env: it is this variant's config class, the
        module's ``validate(config)`` (every agent module that has env-free checks names them so)
        and the documented ranges of the hparams the config seeds.  The runner calls this before
        it builds the env, so a bad value answers before gymnax / brax are even imported.
        Returns the default hparams of ``config``."""
        from rlsuite.core import validate as V

        if type(config) is not self.config_cls:  # exact: LPOConfig subclasses PPOConfig
            raise ValueError(f"agent {self.name!r} needs a {self.config_cls.__name__}, got {type(config).__name__}")
        for k, v in self.variant.items():
            if getattr(config, k) != v:
                raise ValueError(f"agent {self.name!r} has {self.config_cls.__name__}.{k}={v!r}, got {getattr(config, k)!r}")
        mod = self.load()
        if callable(getattr(mod, "validate", None)):
            mod.validate(config)
        hp = self.default_hparams(config)
        # the config's numeric fields seed the default hparams: their documented ranges are checked here
        V.check_ranges(hp, self.hparam_ranges(),
                       lambda n: f"{type(config).__name__}.{n}" if hasattr(config, n) else f"hparam {n}")
        return hp

    def make(self, config, env, env_params, data=None):
        """The :class:`rlsuite.core.agent.Agent` of ``config`` (checks that ``config`` is this variant)."""
        import jax
        import jax.numpy as jnp

        from rlsuite.core.agent import check_agent

        hp = self.check_config(config)
        if self.kind == "offline" and data is None:
            raise ValueError(f"agent {self.name!r} is offline: pass data= (a dataset; `rlsuite train {self.name} --data PATH`)")
        if self.kind != "offline" and data is not None:
            raise ValueError(f"agent {self.name!r} is not offline and takes no data")
        mod, ranges = self.load(), self.hparam_ranges()
        agent = mod.make(config, env, env_params, data) if self.kind == "offline" else mod.make(config, env, env_params)
        template = jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), hp)
        return check_agent(agent._replace(hparams_template=template, hparam_ranges=ranges))

    def hparam_ranges(self) -> Mapping[str, Any]:
        """The module's documented valid ranges of its hparams (``HPARAM_RANGES``)."""
        return dict(getattr(self.load(), "HPARAM_RANGES", {}) or {})


def _e(name, module, summary, kind, default_env, **kw) -> AgentEntry:
    for k in ("variant", "smoke", "smoke_data"):
        if k in kw:
            kw[k] = MappingProxyType(dict(kw[k]))
    return AgentEntry(name, f"rlsuite.agents.{module}", summary, kind, default_env, **kw)


_PG_SMOKE = dict(horizon=50, batch_episodes=2, num_iterations=4, eval_every=2, eval_episodes=2, hidden=(8,))
_BAYES_SMOKE = dict(num_episodes=3, horizon=10, num_updates=4)
_OFFLINE_SMOKE = dict(gradient_steps=20, eval_every=10, eval_episodes=2, batch_size=16)
_OFFLINE_DATA = dict(kind="random", size=400)
_LPO_SMOKE = dict(total_timesteps=2048, num_envs=4, num_steps=32, eval_episodes=2, hidden=(16,))

_GBRL_SMOKE = dict(total_timesteps=512, num_envs=4, num_steps=32, num_minibatches=2, eval_episodes=2, n_bins=16,
                   max_depth=3)

REGISTRY: dict[str, AgentEntry] = {
    e.name: e
    for e in [
        _e("ppo", "ppo", "PPO, clipped surrogate + GAE (Schulman et al. 2017)", "online", "gymnax:CartPole-v1",
           smoke=dict(total_timesteps=2048, num_envs=4, num_steps=32, eval_episodes=2, hidden=(16,))),
        _e("lpo", "lpo", "LPO, PPO with a learned drift objective (Lu et al. 2022)", "online", "gymnax:CartPole-v1",
           variant=dict(method="lpo"), smoke=_LPO_SMOKE),
        _e("dpo", "lpo", "DPO, discovered closed-form drift (Lu et al. 2022)", "online", "gymnax:CartPole-v1",
           variant=dict(method="dpo"), smoke=_LPO_SMOKE),
        _e("ta-lpo", "lpo", "TA-LPO, temporally-aware learned drift (Jackson et al. 2024)", "online",
           "gymnax:CartPole-v1", variant=dict(method="ta-lpo"), smoke=_LPO_SMOKE),
        _e("a2c", "a2c", "A2C, synchronous advantage actor-critic (Mnih et al. 2016)", "online", "gymnax:CartPole-v1",
           smoke=dict(total_timesteps=800, num_envs=4, num_steps=5, eval_episodes=2, hidden=(16,))),
        _e("reinforce", "reinforce", "REINFORCE / GPOMDP vanilla policy gradient (Fatkhullin et al. 2023 baseline)",
           "episodic", "gymnax:CartPole-v1", smoke=_PG_SMOKE),
        _e("npg-igt", "npg", "N-PG-IGT: normalized PG with implicit gradient transport (Fatkhullin et al. 2023)",
           "episodic", "gymnax:CartPole-v1", variant=dict(method="igt"), smoke=_PG_SMOKE),
        _e("harpg", "npg", "HARPG: Hessian-aided recursive PG (Fatkhullin et al. 2023)",
           "episodic", "gymnax:CartPole-v1", variant=dict(method="harpg"), smoke=_PG_SMOKE),
        _e("nharpg", "npg", "N-HARPG: normalized Hessian-aided recursive PG (Fatkhullin et al. 2023)",
           "episodic", "gymnax:CartPole-v1", variant=dict(method="nharpg"), smoke=_PG_SMOKE),
        _e("bpg", "bayes_pg", "Bayesian policy gradient, GP over trajectories (Ghavamzadeh & Engel 2007)",
           "episodic", "lqr:lqr-1d", config_name="BPGConfig", smoke=_BAYES_SMOKE),
        _e("bac", "bayes_pg", "Bayesian actor-critic, GPTD critic (Ghavamzadeh & Engel 2007)",
           "episodic", "lqr:lqr-1d", config_name="BACConfig", smoke=_BAYES_SMOKE),
        _e("martingale", "martingale", "Martingale policy evaluation / TD in continuous time (Jia & Zhou 2022)",
           "evaluation", "diffusion:ou", smoke=dict(num_paths=16, num_iterations=4)),
        _e("odice", "odice", "O-DICE, orthogonal-gradient DICE offline RL / IL (Mao et al. 2024)",
           "offline", "brax:hopper", smoke_env="gymnax:Pendulum-v1",
           smoke=dict(_OFFLINE_SMOKE, value_hidden=(16, 16), policy_hidden=(16, 16)), smoke_data=_OFFLINE_DATA),
        _e("bc", "offline_baselines", "Behaviour cloning, Gaussian policy (O-DICE baseline)", "offline", "brax:hopper",
           config_name="BCConfig", smoke_env="gymnax:Pendulum-v1",
           smoke=dict(_OFFLINE_SMOKE, policy_hidden=(16, 16)), smoke_data=_OFFLINE_DATA),
        _e("iql", "offline_baselines", "Implicit Q-learning (Kostrikov et al. 2022; O-DICE baseline)", "offline",
           "brax:hopper", config_name="IQLConfig", smoke_env="gymnax:Pendulum-v1",
           smoke=dict(_OFFLINE_SMOKE, hidden=(16, 16), policy_hidden=(16, 16)), smoke_data=_OFFLINE_DATA),
        _e("gbrl-ppo", "gbrl", "GBRL: gradient-boosted-tree actor-critic, PPO loss (Fuhrer et al. 2024)", "online",
           "gymnax:CartPole-v1", config_name="GBRLConfig", variant=dict(method="ppo"), smoke=_GBRL_SMOKE),
        _e("gbrl-a2c", "gbrl", "GBRL: gradient-boosted-tree actor-critic, A2C loss (Fuhrer et al. 2024)", "online",
           "gymnax:CartPole-v1", config_name="GBRLConfig", variant=dict(method="a2c"), smoke=_GBRL_SMOKE),
        _e("gbrl-awr", "gbrl", "GBRL: gradient-boosted-tree actor-critic, AWR loss (Fuhrer et al. 2024)", "online",
           "gymnax:CartPole-v1", config_name="GBRLConfig", variant=dict(method="awr"), smoke=_GBRL_SMOKE),
        _e("lpg", "lpg", "LPG, learned policy gradient: an update rule meta-learned on grid worlds (Oh et al. 2020)",
           "online", "grid:dense", smoke_env="grid:sparse",
           smoke=dict(total_timesteps=128, num_envs=4, num_steps=8, meta_width=8, embed_width=4, eval_episodes=2)),
    ]
}


def names() -> list[str]:
    return list(REGISTRY)


def get(name: str) -> AgentEntry:
    if name not in REGISTRY:
        raise ValueError(f"unknown agent {name!r}; choose one of {names()} (`rlsuite agents` lists them)")
    return REGISTRY[name]


def describe() -> str:
    """One line per agent (``rlsuite agents``)."""
    return "\n".join(f"  {e.name:11s} {e.kind:10s} {e.summary}" for e in REGISTRY.values())
