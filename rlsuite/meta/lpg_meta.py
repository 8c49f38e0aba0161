"""Meta-training of LPG update rules: truncated meta-gradients (LPG, GROOVE) and ES (TA-LPG).

Spec: meta_discovery.md §1 (LPG), §2 (GROOVE), §4 (TA-LPG), §7 (scale), §8 (reference bugs).

**LPG** (:func:`make_meta`, ``curriculum="uniform"``): ``num_agents`` parallel lifetimes, each an
LPG agent (:class:`rlsuite.agents.lpg.Learner`) on its own grid-world level (the level is the env
params, so the batch is one ``vmap``).  One meta-step: every agent makes ``K = inner_updates``
updates with the current rule ``eta`` (each on a ``num_steps x num_envs`` rollout), rolls out the
updated agent once more, and the meta-loss (:meth:`Learner.meta_objective`: policy gradient of
the updated agent with GAE from its own *trained* critic, entropy and y regularisers, L2 on the
rule's outputs) is back-propagated through the K updates; the mean over agents drives Adam.
Agents whose lifetime (``lifetime`` updates) is over start again, fresh, on a new level.

**GROOVE** (``curriculum="groove"``): the same, but new levels come from a PLR-style level buffer
(:mod:`rlsuite.meta.groove`) scored by **algorithmic regret**: each lifetime has an A2C antagonist
(the same tabular agent trained by the hand-designed rule ``pi_hat = -A``,
:func:`rlsuite.agents.lpg.a2c_rule`, with entropy bonus 0.01) on the same level, updated in
lock-step with the LPG agent; when the lifetime ends both are evaluated and the level's score is
``return(A2C) - return(LPG)``.  Alternative scores: positive value loss (``pvl``), ``random``.

**TA-LPG** (:func:`ta_lpg_problem`): the rule (with lifetime inputs n/N and log N) is evolved by
ES over *whole* lifetimes through :mod:`rlsuite.meta.es` (antithetic pairs share level and agent
initialisation; pairwise winner/loser shaping); fitness = final evaluation return of an agent
trained for a full lifetime on a sampled level; lifetimes log-uniform in
``[min_lifetime, lifetime]`` (``all_vrandlife``) with shorter ones frozen past their end.

Host loop (:func:`run`): jitted segments of meta-steps (``lax.scan``), after each a progress line,
``metrics.jsonl`` (one line per meta-step), an orbax checkpoint of the whole :class:`MetaState`
and the rule ``RUN_DIR/rule.msgpack`` (``rlsuite train lpg --rule RUN_DIR/rule.msgpack``).  A
resumed run (:func:`resume`) restores the latest checkpoint and runs the same compiled segments:
it ends bit-identical to an uninterrupted run (tested).

Choices and deviations, with reasons:

- All lifetimes start together and have the same length, so they end on the same meta-step; the
  end-of-lifetime work (evaluation, buffer update, re-initialisation) then sits under one
  ``lax.cond`` and costs nothing on the other meta-steps.
- The meta-objective's rollout continues the agent's environments (its steps are counted) but is
  not used for an agent update.
- The antagonist is our tabular LPG agent driven by the A2C rule (same network, optimiser and lr
  as the LPG agent), not a separate A2C implementation: the comparison isolates the update rule.
  It is evaluated with sampled actions, like the LPG agent, over ``eval_envs`` episodes capped at
  the level distribution's longest episode.
- No gradient clipping of the meta-gradient (the reference's clip silently did nothing for Adam,
  sheet §8.2; ``meta_max_grad_norm`` enables one).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import json
import os
import sys
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from rlsuite.agents import lpg
from rlsuite.core import checkpoint
from rlsuite.core import validate as V

CURRICULA = ("uniform", "groove")
SCORES = ("ar", "pvl", "random")


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    """Meta-training settings (defaults: the paper scale of the sheet, §1, §2, §7)."""

    levels: str = "all"
    """Level distribution (rlsuite.envs.gridworld.DISTRIBUTIONS: all, small, medium, large, debug)."""
    num_agents: int = 512
    """Parallel lifetimes (agents), each on its own level."""
    lifetime: int = 250
    """Agent updates per lifetime (all_shortlife: 250); a multiple of inner_updates."""
    inner_updates: int = 5
    """K: agent updates per meta-update (the truncation of the meta-gradient)."""
    meta_steps: int = 5000
    """Meta-updates (Adam steps on the rule)."""
    meta_lr: float = 1e-4
    """Adam learning rate of the rule."""
    meta_max_grad_norm: float | None = None
    """Global-norm clip of the meta-gradient (None: none, as the reference in effect)."""
    entropy: float = 0.05
    """b0: policy-entropy bonus of the meta-objective."""
    y_entropy: float = 0.001
    """b1: y-entropy bonus."""
    pi_hat_l2: float = 0.005
    """b2: L2 penalty on pi_hat."""
    y_hat_l2: float = 0.001
    """b3: L2 penalty on y_hat."""
    curriculum: str = "uniform"
    """uniform (LPG: fresh random levels) or groove (level buffer scored by score)."""
    score: str = "ar"
    """GROOVE level score: ar (algorithmic regret vs an A2C antagonist), pvl (positive value loss), random."""
    buffer_size: int = 4000
    """GROOVE level-buffer capacity."""
    replay_prob: float = 0.5
    """GROOVE: probability that a finished lifetime's next level is replayed from the buffer."""
    temperature: float = 1.0
    """GROOVE: rank-prioritisation temperature."""
    topk: bool = False
    """GROOVE: replay the top-k levels deterministically (the reference) instead of rank sampling."""
    antagonist_ent_coef: float = 0.01
    """Entropy bonus of the A2C antagonist."""
    eval_envs: int = 16
    """Episodes per agent when a lifetime ends (GROOVE's scores)."""
    segments: int = 10
    """Jitted segments: a progress line, metrics, a checkpoint and rule.msgpack after each."""
    seed: int = 0
    """Seed of levels, agents and the meta-loop (the initial rule: --train.rule / --train.rule-seed)."""


def validate(meta_cfg: MetaConfig, agent_cfg: lpg.LPGConfig) -> None:
    from rlsuite.envs import gridworld

    V.choice(meta_cfg, "levels", sorted(gridworld.DISTRIBUTIONS))
    V.positive_ints(meta_cfg, "num_agents", "lifetime", "inner_updates", "meta_steps", "buffer_size", "eval_envs",
                    "segments")
    V.positive(meta_cfg, "meta_lr", "temperature")
    for name in ("entropy", "y_entropy", "pi_hat_l2", "y_hat_l2", "antagonist_ent_coef"):
        V.in_range(meta_cfg, name, 0.0, float("inf"))
    V.in_range(meta_cfg, "replay_prob", 0.0, 1.0)
    V.choice(meta_cfg, "curriculum", CURRICULA)
    V.choice(meta_cfg, "score", SCORES)
    if meta_cfg.meta_max_grad_norm is not None:
        V.positive(meta_cfg, "meta_max_grad_norm")
    if meta_cfg.lifetime % meta_cfg.inner_updates:
        raise ValueError(f"MetaConfig.lifetime={meta_cfg.lifetime} must be a multiple of "
                         f"MetaConfig.inner_updates={meta_cfg.inner_updates}")
    if not isinstance(meta_cfg.seed, int) or isinstance(meta_cfg.seed, bool):
        raise ValueError(f"MetaConfig.seed must be an integer, got {meta_cfg.seed!r}")
    lpg.validate(agent_cfg)


# ----------------------------------------------------------------------------- the meta-loop


@struct.dataclass
class MetaState:
    """Everything a meta-step needs (the whole state is checkpointed)."""

    meta: Any
    """The rule (meta-network params)."""
    opt_state: Any
    agents: lpg.LPGState
    """[B] LPG agents."""
    levels: Any
    """[B] their levels (GridLevel)."""
    antagonists: Any
    """[B] A2C antagonists (GROOVE) or ()."""
    buffer: Any
    """The GROOVE level buffer or ()."""
    slots: jax.Array
    """[B] buffer slot of each agent's level (GROOVE; -1 otherwise)."""
    key: jax.Array
    step: jax.Array
    lifetimes: jax.Array
    """Lifetimes completed so far."""


@dataclasses.dataclass(frozen=True, eq=False)
class Meta:
    """A configured meta-loop: ``init(key) -> MetaState``, ``step``, ``segment(state, n)``."""

    agent_cfg: lpg.LPGConfig
    cfg: MetaConfig
    learner: lpg.Learner
    hp: Any
    curriculum: Any

    @property
    def steps_per_meta_step(self) -> int:
        """LPG-agent env steps per meta-step (K updates + the meta-objective's rollout, all agents)."""
        c, a = self.cfg, self.agent_cfg
        return c.num_agents * (c.inner_updates + 1) * a.num_envs * a.num_steps

    def _optimizer(self):
        opt = optax.adam(self.cfg.meta_lr)
        if self.cfg.meta_max_grad_norm is not None:
            opt = optax.chain(optax.clip_by_global_norm(self.cfg.meta_max_grad_norm), opt)
        return opt

    def fresh_agents(self, key, levels):
        return jax.vmap(self.learner.init, in_axes=(0, None, 0))(
            jax.random.split(key, self.cfg.num_agents), self.hp, levels)

    def init(self, key) -> MetaState:
        k_meta, k_lv, k_ag, k_cur, key = jax.random.split(key, 5)
        meta = lpg.default_meta(self.agent_cfg)
        levels, slots, buffer = self.curriculum.init(k_cur, k_lv)
        agents = self.fresh_agents(k_ag, levels)
        return MetaState(meta, self._optimizer().init(meta), agents, levels,
                         self.curriculum.init_antagonists(k_ag, levels), buffer, slots, key,
                         jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

    def inner(self, meta, agent, level, hp=None, rule_fn=None, ent_coef=0.0):
        """K updates of one agent: ``(agent, (metrics, pi_hat [K, T, N], log_y_hat))``."""
        hp = self.hp if hp is None else hp
        temporal = self.agent_cfg.temporal

        def body(st, _):
            life = lpg.lifetime_inputs(st.update, self.cfg.lifetime) if temporal else None
            st, m, (pi_hat, log_y_hat) = self.learner.update(st, hp, meta, level, life, rule_fn, ent_coef)
            return st, (m, pi_hat, log_y_hat)

        return jax.lax.scan(body, agent, None, length=self.cfg.inner_updates)

    def lifetime_loss(self, meta, agent, level):
        """The meta-loss of one agent after K updates with rule ``meta`` (differentiable in ``meta``)."""
        c = self.cfg
        agent, (m, pi_hat, log_y_hat) = self.inner(meta, agent, level)
        coefs = lpg.MetaCoefs(c.entropy, c.y_entropy, c.pi_hat_l2, c.y_hat_l2)
        loss, (carry, mm) = self.learner.meta_objective(agent, self.hp, level, pi_hat, log_y_hat, coefs)
        mm = {**mm, "pi_hat_std": m["pi_hat_std"].mean(), "loss/y_kl": m["loss/y_kl"].mean()}
        return loss, (agent.replace(rollout=carry), mm)

    def step(self, ms: MetaState):
        key, k_end = jax.random.split(ms.key)

        def total(meta):
            losses, (agents, m) = jax.vmap(self.lifetime_loss, in_axes=(None, 0, 0))(meta, ms.agents, ms.levels)
            return losses.mean(), (agents, m)

        (loss, (agents, m)), grads = jax.value_and_grad(total, has_aux=True)(ms.meta)
        upd, opt_state = self._optimizer().update(grads, ms.opt_state, ms.meta)
        meta = optax.apply_updates(ms.meta, upd)
        ants = self.curriculum.step_antagonists(self, ms.antagonists, ms.levels)
        ms = ms.replace(meta=meta, opt_state=opt_state, agents=agents, antagonists=ants, key=key, step=ms.step + 1)
        finished = agents.update >= self.cfg.lifetime
        ms, end_m = jax.lax.cond(finished.any(), lambda s: self.curriculum.end_lifetimes(self, s, finished, k_end),
                                 lambda s: (s, self.curriculum.no_end_metrics()), ms)
        metrics = {"meta_loss": loss, "grad_norm": optax.global_norm(grads),
                   **{k: v.mean() for k, v in m.items() if k != "meta_loss"}, **end_m,
                   "lifetimes": ms.lifetimes}
        return ms, metrics

    def segment(self, ms: MetaState, n: int):
        ms, m = jax.lax.scan(lambda s, _: self.step(s), ms, None, length=V.require_positive_int("meta-steps", n))
        return jax.tree.map(lambda x: jnp.asarray(x, x.dtype), ms), m


@dataclasses.dataclass(frozen=True)
class Uniform:
    """LPG's level sampling: every lifetime starts on a fresh level from the distribution."""

    dist: str
    num_agents: int

    def sample(self, key, n=None):
        from rlsuite.envs import gridworld

        return gridworld.sample_levels(key, n or self.num_agents, self.dist)

    def init(self, k_cur, k_lv):
        return self.sample(k_lv), -jnp.ones((self.num_agents,), jnp.int32), ()

    def init_antagonists(self, key, levels):
        return ()

    def step_antagonists(self, meta: Meta, ants, levels):
        return ants

    def no_end_metrics(self):
        return {}

    def end_lifetimes(self, meta: Meta, ms: MetaState, finished, key):
        k_lv, k_ag = jax.random.split(key)
        levels = _select(finished, self.sample(k_lv), ms.levels)
        agents = _select(finished, meta.fresh_agents(k_ag, levels), ms.agents)
        return ms.replace(levels=levels, agents=agents, lifetimes=ms.lifetimes + finished.sum()), {}


@dataclasses.dataclass(frozen=True)
class Groove:
    """GROOVE's curriculum: levels from a :mod:`rlsuite.meta.groove` buffer scored at the end of
    each lifetime; an A2C antagonist per lifetime (for the algorithmic-regret score)."""

    cfg: MetaConfig
    learner: lpg.Learner
    hp: Any

    def buffer_config(self):
        from rlsuite.meta import groove

        c = self.cfg
        return groove.BufferConfig(capacity=c.buffer_size, p_replay=c.replay_prob,
                                   score_transform="topk" if c.topk else "rank", temperature=c.temperature)

    def init(self, k_cur, k_lv):
        from rlsuite.envs import gridworld
        from rlsuite.meta import groove

        if self.cfg.buffer_size < 2 * self.cfg.num_agents:
            raise ValueError(f"MetaConfig.buffer_size={self.cfg.buffer_size} must be at least twice "
                             f"num_agents={self.cfg.num_agents} (active levels plus as many new ones)")
        buffer = groove.init_buffer(gridworld.sample_levels(k_cur, self.cfg.buffer_size, self.cfg.levels))
        buffer, ids, _ = groove.sample(buffer, k_lv, self.buffer_config(), batch_size=self.cfg.num_agents)
        return groove.get_levels(buffer, ids), ids, buffer

    def antagonist_hp(self):
        return self.hp.replace(alpha_y=jnp.zeros_like(self.hp.alpha_y))

    def init_antagonists(self, key, levels):
        key = jax.random.fold_in(key, 1)
        return jax.vmap(self.learner.init, in_axes=(0, None, 0))(
            jax.random.split(key, self.cfg.num_agents), self.antagonist_hp(), levels)

    def step_antagonists(self, meta: Meta, ants, levels):
        hp = self.antagonist_hp()
        rule = lpg.a2c_rule(self.learner, hp)
        one = lambda a, lv: meta.inner(None, a, lv, hp, rule, self.cfg.antagonist_ent_coef)[0]
        return jax.vmap(one)(ants, levels)

    def no_end_metrics(self):
        nan = jnp.float32(jnp.nan)
        return {"score": nan, "replay_fraction": nan, "lpg_return": nan, "a2c_return": nan}

    def end_lifetimes(self, meta: Meta, ms: MetaState, finished, key):
        from rlsuite.envs import gridworld
        from rlsuite.meta import groove

        c, learner = self.cfg, self.learner
        k_eval, k_score, k_fresh, k_cur, k_ag, k_ant = jax.random.split(key, 6)
        horizon = gridworld.DISTRIBUTIONS[c.levels].max_episode_steps
        ev = lambda st, lv, k: learner.evaluate(st, lv, k, c.eval_envs, horizon)
        keys = jax.random.split(k_eval, c.num_agents)
        ret = jax.vmap(ev)(ms.agents, ms.levels, keys)
        a2c_ret = jax.vmap(ev)(ms.antagonists, ms.levels, keys)
        if c.score == "ar":
            scores = groove.algorithmic_regret(a2c_ret, ret)
        elif c.score == "pvl":
            def pvl(st, lv):
                _, tr = learner.collect(st, lv)
                adv, _ = learner.critic_targets(st.critic, tr, self.hp)
                return groove.positive_value_loss(adv)

            scores = jax.vmap(pvl)(ms.agents, ms.levels)
        else:
            scores = groove.random_scores(k_score, c.num_agents)
        fresh = gridworld.sample_levels(k_fresh, c.num_agents, c.levels)
        buffer, ids, replayed = groove.curate(ms.buffer, k_cur, self.buffer_config(), fresh, ms.slots, scores,
                                              finished)
        levels = _select(finished, groove.get_levels(buffer, ids), ms.levels)
        agents = _select(finished, meta.fresh_agents(k_ag, levels), ms.agents)
        ants = _select(finished, self.init_antagonists(k_ant, levels), ms.antagonists)
        n = jnp.maximum(finished.sum(), 1)
        fmean = lambda x: jnp.where(finished, x, 0.0).sum() / n
        metrics = {"score": fmean(scores), "replay_fraction": fmean(replayed.astype(jnp.float32)),
                   "lpg_return": fmean(ret), "a2c_return": fmean(a2c_ret)}
        return ms.replace(levels=levels, agents=agents, antagonists=ants, buffer=buffer, slots=ids,
                          lifetimes=ms.lifetimes + finished.sum()), metrics


def _select(mask, a, b):
    return jax.tree.map(lambda x, y: jnp.where(mask.reshape(mask.shape + (1,) * (x.ndim - 1)), x, y), a, b)


def make_env():
    from rlsuite.envs import gridworld

    return gridworld.GridWorld(obs_mode="tabular")


def make_meta(agent_cfg: lpg.LPGConfig, cfg: MetaConfig) -> Meta:
    """The meta-loop of ``cfg`` for agents configured by ``agent_cfg`` (its ``total_timesteps`` is
    unused: a lifetime is ``cfg.lifetime`` updates).  Memoised on the fields a meta-step depends
    on, so runs of one process that differ only in seed / length (a resumed run, seeds of an
    experiment) share their compiled segments (:func:`compiled`)."""
    validate(cfg, agent_cfg)
    if agent_cfg.rule is not None:  # the file is read at init: a changed file must not hit the memo
        return _make_meta(agent_cfg, cfg)
    return _make_meta_memo(agent_cfg, dataclasses.replace(cfg, meta_steps=1, segments=1, seed=0))


@functools.lru_cache(maxsize=8)
def _make_meta_memo(agent_cfg: lpg.LPGConfig, cfg: MetaConfig) -> Meta:
    return _make_meta(agent_cfg, cfg)


@functools.lru_cache(maxsize=32)
def compiled(meta: Meta, what: str, n: int = 0):
    """Jitted ``meta.init`` (``what="init"``) or ``meta.segment(., n)``, one per Meta object."""
    return jax.jit(meta.init) if what == "init" else jax.jit(lambda s: meta.segment(s, n))


def _make_meta(agent_cfg: lpg.LPGConfig, cfg: MetaConfig) -> Meta:
    from rlsuite.envs import gridworld

    env = make_env()
    example = gridworld.sample_level(jax.random.PRNGKey(0), cfg.levels)
    learner = lpg.make_learner(agent_cfg, env, example)
    hp = lpg.default_hparams(dataclasses.replace(agent_cfg, rule=None))
    cur = Uniform(cfg.levels, cfg.num_agents) if cfg.curriculum == "uniform" else Groove(cfg, learner, hp)
    return Meta(agent_cfg, cfg, learner, hp, cur)


# ----------------------------------------------------------------------------- host driver


def _config_record(kind: str, agent_cfg, cfg) -> dict:
    from rlsuite.train import config_to_json

    return {"kind": kind, "agent": config_to_json(agent_cfg), "meta": config_to_json(cfg)}


def run(agent_cfg: lpg.LPGConfig, cfg: MetaConfig, run_dir: str, *, resume: bool = False,
        max_segments: int | None = None, progress: bool = True, title: str | None = None) -> dict | None:
    """Meta-train (or with ``resume=True`` continue) in ``run_dir``; returns the summary, or
    ``None`` when stopped by ``max_segments`` (continue with :func:`resume`)."""
    from rlsuite.core.logging import MetricsWriter
    from rlsuite.core.results import device_description
    from rlsuite.train import NonFiniteError, schedule

    title = title or ("groove" if cfg.curriculum == "groove" else "lpg")
    meta = make_meta(agent_cfg, cfg)
    if max_segments is not None:
        V.require_positive_int("max_segments", max_segments)
    bounds = schedule(cfg.meta_steps, cfg.segments)
    writer = MetricsWriter(os.path.join(run_dir, "metrics.jsonl"))
    key0 = jax.random.PRNGKey(cfg.seed)
    init_fn = compiled(meta, "init")
    if resume:
        state, done_steps = checkpoint.restore(run_dir, jax.eval_shape(init_fn, key0), fallback=True)
        state = jax.tree.map(lambda x: jnp.asarray(np.asarray(x)), state)
        if done_steps not in bounds:
            raise ValueError(f"checkpoint {done_steps} of {run_dir!r} is not a segment boundary of {bounds}")
        writer.truncate_after("meta_step", done_steps)
        first = bounds.index(done_steps) + 1
    else:
        checkpoint.start_run(run_dir, _config_record(title, agent_cfg, cfg), writer.path)
        state, done_steps, first = init_fn(key0), 0, 0
    rule_path = os.path.join(run_dir, "rule.msgpack")
    last = len(bounds) if max_segments is None else min(len(bounds), first + max_segments)
    t0 = time.perf_counter()
    for i in range(first, last):
        n = bounds[i] - done_steps
        t_seg = time.perf_counter()
        new_state, m = compiled(meta, "segment", n)(state)
        m = jax.tree.map(np.asarray, m)
        seg_s = time.perf_counter() - t_seg
        if not all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(new_state.meta)):
            raise NonFiniteError(f"the rule became non-finite in meta-steps {done_steps + 1}-{bounds[i]}; stopped "
                                 f"(last good checkpoint in {run_dir!r}: {checkpoint.latest_step(run_dir)})")
        state = new_state
        for j in range(n):
            writer.write({"meta_step": done_steps + j + 1, **{k: v[j] for k, v in m.items()},
                          "env_steps": (done_steps + j + 1) * meta.steps_per_meta_step,
                          "wall_s": time.perf_counter() - t0})
        done_steps = bounds[i]
        checkpoint.save(run_dir, done_steps, state)
        lpg.save_rule(rule_path, state.meta, agent_cfg)
        if progress:
            sps = n * meta.steps_per_meta_step / max(seg_s, 1e-9)
            extra = "".join(f"  {k} {np.nanmean(m[k]):.3g}" for k in ("score", "replay_fraction")
                            if k in m and np.isfinite(m[k]).any())
            print(f"[{title}] meta-step {done_steps}/{cfg.meta_steps}  meta-loss {m['meta_loss'][-1]:.4g}  "
                  f"return {m['episode_return'][-1]:.3g}  lifetimes {int(m['lifetimes'][-1])}{extra}  "
                  f"{sps:,.0f} env steps/s", file=sys.stderr, flush=True)
    if last < len(bounds):
        return None
    records = writer.read()
    summary = {"title": title, "meta_steps": cfg.meta_steps, "run_dir": os.path.abspath(run_dir),
               "rule": os.path.abspath(rule_path), "steps_per_meta_step": meta.steps_per_meta_step,
               "first_meta_loss": records[0]["meta_loss"], "final_meta_loss": records[-1]["meta_loss"],
               "final_return": records[-1]["episode_return"], "device": device_description(),
               "wall_s_this_invocation": time.perf_counter() - t0}
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def load_run_config(run_dir: str) -> tuple[str, lpg.LPGConfig, MetaConfig]:
    from rlsuite.train import config_from_json

    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{run_dir!r} is not a meta run directory (no config.json)")
    with open(path) as f:
        rec = json.load(f)
    kind = rec.get("kind")
    if kind not in ("lpg", "groove", "ta-lpg"):
        raise ValueError(f"{path!r} is not an LPG / GROOVE / TA-LPG meta run (kind {kind!r})")
    if kind == "ta-lpg":
        from rlsuite.meta.es import config_from_json as es_from_json

        return kind, config_from_json(lpg.LPGConfig, rec["agent"]), (config_from_json(TAConfig, rec["ta"]),
                                                                      es_from_json(rec["es"]))
    return kind, config_from_json(lpg.LPGConfig, rec["agent"]), config_from_json(MetaConfig, rec["meta"])


def resume(run_dir: str, max_segments: int | None = None, progress: bool = True) -> dict | None:
    """Continue an LPG / GROOVE / TA-LPG meta run from its latest checkpoint (same result as uninterrupted)."""
    kind, agent_cfg, cfg = load_run_config(run_dir)
    if kind == "ta-lpg":
        return run_ta_lpg(agent_cfg, *cfg, run_dir, resume=True, max_segments=max_segments, progress=progress)
    return run(agent_cfg, cfg, run_dir, resume=True, max_segments=max_segments, progress=progress, title=kind)


def is_run(run_dir: str) -> bool:
    try:
        load_run_config(run_dir)
    except (OSError, ValueError, KeyError):
        return False
    return True


# ----------------------------------------------------------------------------- TA-LPG (ES)


@dataclasses.dataclass(frozen=True)
class TAConfig:
    """TA-LPG's inner problem: one whole lifetime per fitness evaluation (sheet §4)."""

    levels: str = "all"
    """Level distribution (rlsuite.envs.gridworld.DISTRIBUTIONS)."""
    lifetime: int = 250
    """Longest lifetime N (agent updates)."""
    min_lifetime: int = 10
    """Shortest lifetime: N is log-uniform in [min_lifetime, lifetime] per run (all_vrandlife: 10-250);
    equal to lifetime for a fixed horizon."""
    eval_envs: int = 16
    """Evaluation episodes of the trained agent (the fitness is their mean return)."""


TA_ES = dict(population=1024, generations=2500, lr=1e-2, lr_decay=0.999, lr_floor=1e-5, sigma=0.1,
             fitness_shaping="pairwise", segments=25)


def ta_lpg_problem(agent_cfg: lpg.LPGConfig, ta: TAConfig):
    """``(fitness(meta, key), learner, example_level)`` of TA-LPG: train an agent with rule ``meta``
    for a lifetime N ~ log-U[min_lifetime, lifetime] on a sampled level (updates past N are frozen
    out), return its mean evaluation return.  The key fixes level, N and initialisation, so an
    antithetic pair (same key) sees the same task."""
    from rlsuite.envs import gridworld

    V.choice(ta, "levels", sorted(gridworld.DISTRIBUTIONS))
    V.positive_ints(ta, "lifetime", "min_lifetime", "eval_envs")
    if ta.min_lifetime > ta.lifetime:
        raise ValueError(f"TAConfig.min_lifetime={ta.min_lifetime} exceeds lifetime={ta.lifetime}")
    lpg.validate(agent_cfg)
    env = make_env()
    example = gridworld.sample_level(jax.random.PRNGKey(0), ta.levels)
    learner = lpg.make_learner(agent_cfg, env, example)
    hp = lpg.default_hparams(dataclasses.replace(agent_cfg, rule=None))
    horizon = gridworld.DISTRIBUTIONS[ta.levels].max_episode_steps
    lo, hi = np.log(ta.min_lifetime), np.log(ta.lifetime)

    def fitness(meta, key):
        k_lv, k_n, k_ag, k_ev = jax.random.split(key, 4)
        level = gridworld.sample_level(k_lv, ta.levels)
        n_life = jnp.clip(jnp.round(jnp.exp(jax.random.uniform(k_n, (), minval=lo, maxval=hi))),
                          ta.min_lifetime, ta.lifetime)
        trained = train_lifetime(learner, hp, meta, level, learner.init(k_ag, hp, level), n_life, ta.lifetime)
        return learner.evaluate(trained, level, k_ev, ta.eval_envs, horizon)

    return fitness, learner, example


def train_lifetime(learner: lpg.Learner, hp, meta, level, state, n_life, max_updates: int, rule_fn=None,
                   ent_coef: float = 0.0):
    """``state`` after ``n_life`` (traced, <= ``max_updates``) updates with rule ``meta`` (TA-LPG
    inputs n/N, log N when the config is temporal); a scan of ``max_updates`` with the updates
    past ``n_life`` frozen out (``rule_fn`` / ``ent_coef``: see :meth:`Learner.update`)."""
    temporal = learner.config.temporal

    def body(st, i):
        life = lpg.lifetime_inputs(st.update, n_life) if temporal else None
        new, _, _ = learner.update(st, hp, meta, level, life, rule_fn, ent_coef)
        return jax.tree.map(lambda a, b: jnp.where(i < n_life, a, b), new, st), None

    return jax.lax.scan(body, state, jnp.arange(max_updates))[0]


def run_ta_lpg(agent_cfg: lpg.LPGConfig, ta: TAConfig, es_cfg, run_dir: str, *, resume: bool = False,
               max_segments: int | None = None, progress: bool = True) -> dict | None:
    """Evolve a TA-LPG rule with :func:`rlsuite.meta.es.run_es`; the ES mean is saved to
    ``RUN_DIR/rule.msgpack`` at every checkpoint."""
    from rlsuite.meta import es as es_mod
    from rlsuite.train import config_to_json

    if not agent_cfg.temporal:
        agent_cfg = dataclasses.replace(agent_cfg, temporal=True)
    fitness, learner, _ = ta_lpg_problem(agent_cfg, ta)
    init = lpg.default_meta(agent_cfg)
    es = es_mod.make_es(es_cfg, fitness, init)
    rule_path = os.path.join(run_dir, "rule.msgpack")
    mean_lifetime = int(round(np.exp((np.log(ta.min_lifetime) + np.log(ta.lifetime)) / 2)))
    summary = es_mod.run_es(
        es, init, run_dir, resume=resume, max_segments=max_segments, progress=progress,
        env_steps_per_run=mean_lifetime * agent_cfg.num_envs * agent_cfg.num_steps,
        on_checkpoint=lambda mean, gen: lpg.save_rule(rule_path, mean, agent_cfg),
        run_info={"kind": "ta-lpg", "agent": config_to_json(agent_cfg), "ta": config_to_json(ta)}, title="ta-lpg")
    if summary is not None:
        summary["rule"] = os.path.abspath(rule_path)
    return summary


# ----------------------------------------------------------------------------- command line


@dataclasses.dataclass
class RunArgs:
    """Run options of `rlsuite meta lpg|groove|ta-lpg` (meta or ES settings and the agent config under --train. follow)."""

    smoke: bool = False
    """Tiny debug-level run (8 agents x 8 envs, GRU 32, lifetime 4, 6 meta-steps; GROOVE buffer 64)."""
    run_dir: Optional[str] = None
    """Run directory (default runs/<command>-<time>)."""
    resume: Optional[str] = None
    """Continue the meta run in this directory from its last checkpoint (other flags ignored)."""
    max_segments: Optional[int] = None
    """Stop after this many segments (continue later with --resume)."""
    no_progress: bool = False
    """No progress lines."""


SMOKE_META = dict(levels="debug", num_agents=8, lifetime=4, inner_updates=2, meta_steps=6, segments=2,
                  buffer_size=64, eval_envs=4, meta_lr=1e-3)
SMOKE_AGENT = dict(num_envs=8, num_steps=8, meta_width=32)


def _default_run_dir(name: str) -> str:
    return os.path.join("runs", f"meta-{name}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}")


SMOKE_TA = dict(levels="debug", lifetime=4, min_lifetime=2, eval_envs=4)
SMOKE_TA_ES = dict(population=4, generations=2, segments=2)


def _print_summary(summary) -> int:
    if summary is None:
        print("stopped after --max-segments; continue with --resume")
        return 0
    if "first_meta_loss" in summary:
        print(f"meta-loss {summary['first_meta_loss']:.4g} -> {summary['final_meta_loss']:.4g} over "
              f"{summary['meta_steps']} meta-steps")
    else:
        print(f"ES fitness (mean return): final mean {summary['final_mean_fitness']:.4g}, best so far "
              f"{summary['best_fitness_so_far']:.4g} over {summary['generations']} generations")
    print(f"rule: {summary['rule']}  (rlsuite train lpg --rule FILE --env grid:...)\n"
          f"run directory: {summary['run_dir']}")
    return 0


def cli_resume(run_dir: str, max_segments: int | None, progress: bool) -> int:
    from rlsuite.train import enable_compilation_cache

    enable_compilation_cache()
    return _print_summary(resume(run_dir, max_segments=max_segments, progress=progress))


def cli_main(name: str, argv: list[str]) -> int:
    """`rlsuite meta lpg|groove|ta-lpg ARGS`: parse (tyro), meta-train or resume, print the summary."""
    from typing import Annotated

    import tyro

    from rlsuite.meta.es import ESConfig
    from rlsuite.train import enable_compilation_cache

    smoke = "--smoke" in argv
    agent0 = lpg.LPGConfig(**(SMOKE_AGENT if smoke else {}), temporal=name == "ta-lpg")
    if name == "ta-lpg":
        inner = [("ta", Annotated[TAConfig, tyro.conf.OmitArgPrefixes]),
                 ("es", Annotated[ESConfig, tyro.conf.OmitArgPrefixes])]
        defaults = [TAConfig(**(SMOKE_TA if smoke else {})), ESConfig(**{**TA_ES, **(SMOKE_TA_ES if smoke else {})})]
    else:
        inner = [("meta", Annotated[MetaConfig, tyro.conf.OmitArgPrefixes])]
        defaults = [MetaConfig(curriculum="groove" if name == "groove" else "uniform", **(SMOKE_META if smoke else {}))]
    cli_cls = dataclasses.make_dataclass(
        f"Meta{name.title().replace('-', '')}",
        [("run", Annotated[RunArgs, tyro.conf.OmitArgPrefixes]), *inner, ("train", lpg.LPGConfig)])
    desc = {"lpg": "Meta-train an LPG update rule by K-step truncated meta-gradients on random grid-world levels.",
            "groove": "GROOVE: LPG meta-training with a level buffer curated by algorithmic regret (A2C antagonist).",
            "ta-lpg": "TA-LPG: evolve an LPG rule with lifetime inputs (n/N, log N) by ES over whole lifetimes."}
    args = tyro.cli(cli_cls, args=argv, prog=f"rlsuite meta {name}", description=desc[name] +
                    " The rule is saved to RUN_DIR/rule.msgpack (rlsuite train lpg --rule FILE --env ...).",
                    default=cli_cls(RunArgs(), *defaults, agent0))
    enable_compilation_cache()
    run_args = args.run
    kw = dict(max_segments=run_args.max_segments, progress=not run_args.no_progress)
    if run_args.resume:
        return _print_summary(resume(run_args.resume, **kw))
    run_dir = run_args.run_dir or _default_run_dir(name)
    if name == "ta-lpg":
        return _print_summary(run_ta_lpg(args.train, args.ta, args.es, run_dir, **kw))
    return _print_summary(run(args.train, args.meta, run_dir, **kw))
