"""``rlsuite meta ...``: evolution strategies over whole training runs (:mod:`rlsuite.meta.es`).

    rlsuite meta es --agent ppo --env gymnax:CartPole-v1 --evolve lr,ent_coef,clip_eps \\
        --bounds lr=1e-5:1e-2:log ent_coef=0:0.05 clip_eps=0.1:0.4 --population 16 --generations 20
    rlsuite meta lpo --env gymnax:CartPole-v1 --generations 10 --population 8 --seeds 2
    rlsuite meta ta-lpo --env gymnax:CartPole-v1 --generations 10 --population 8
    rlsuite meta lpo --resume RUN_DIR            (any meta run: also `rlsuite meta resume RUN_DIR`)

Flags come from the run options below, :class:`rlsuite.meta.es.ESConfig` (``--population``,
``--lr``, ``--sigma``, ...) and the inner agent's config under ``--train.`` (``--train.num-envs``);
``--smoke`` starts from the registry's tiny smoke config and a 4-member, 2-generation ES.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Annotated, Literal, Optional

USAGE = """usage: rlsuite meta <command> [...]

commands:
  es        evolve any agent's scalar hyper-parameters (--agent, --evolve, --bounds)
  lpo       evolve the drift network of LPO (hparams.drift); saves RUN_DIR/objective.msgpack
  ta-lpo    the same for temporally-aware LPO
  resume    continue a meta run from its last checkpoint: rlsuite meta resume RUN_DIR
  ga        Deep GA (seed chains) on a JAX env: rlsuite meta ga --env gymnax:CartPole-v1
  ga-ns     GA with novelty search: rlsuite meta ga-ns --env maze:hard
  ga-eval   evaluate the exported elite of a GA run: rlsuite meta ga-eval RUN_DIR [--episodes 200]
  lpg       meta-train an LPG update rule (truncated meta-gradients, random grid worlds); RUN_DIR/rule.msgpack
  groove    LPG meta-training on a GROOVE curriculum (levels scored by algorithmic regret vs A2C)
  ta-lpg    evolve a temporally-aware LPG rule with an ES over whole lifetimes

`rlsuite meta COMMAND --help` lists the flags (ES settings, the inner agent's config under --train.).
es, lpo, ta-lpo and resume also take --devices N|all and --coordinator HOST:PORT --num-processes K
--process-id I (the population's runs sharded over devices and hosts; `rlsuite train --help`);
ga and ga-ns take --devices (a new run's population evaluation over this process's devices).
"""

SMOKE_ES = dict(population=4, generations=2, segments=2)
FIELD_AGENTS = {"lpo": ("lpo", "drift"), "ta-lpo": ("ta-lpo", "drift")}


@dataclasses.dataclass
class TuneArgs:
    """Run options of `rlsuite meta es` (ES settings and --train. agent config follow)."""

    agent: str = "ppo"
    """Registered agent whose hyper-parameters evolve (`rlsuite agents`)."""
    env: Optional[str] = None
    """Environment id (default: the agent's default env)."""
    evolve: tuple[str, ...] = ("lr",)
    """Hyper-parameters to evolve, comma- or space-separated (lr,ent_coef,clip_eps)."""
    bounds: tuple[str, ...] = ()
    """Search interval of every evolved hparam: NAME=LOW:HIGH or NAME=LOW:HIGH:log."""
    mapping: Literal["sigmoid", "clip"] = "sigmoid"
    """Unconstrained search space -> bounds: sigmoid (sigma relative to the logit scale) or clip
    (sigma in units of the interval)."""
    hparam: tuple[str, ...] = ()
    """Fixed hyper-parameter overrides NAME=VALUE (also the starting point of evolved ones)."""
    total_steps: Optional[int] = None
    """Environment steps of each inner training run (sets --train.total-timesteps)."""
    smoke: bool = False
    """Start from the agent's tiny smoke config and a 4-member, 2-generation ES."""
    run_dir: Optional[str] = None
    """Run directory (default runs/meta-<agent>-hparams-<env>-<time>)."""
    resume: Optional[str] = None
    """Continue the meta run in this directory from its last checkpoint (other flags ignored)."""
    max_segments: Optional[int] = None
    """Stop after this many segments (continue later with --resume)."""
    no_progress: bool = False
    """No progress lines."""


@dataclasses.dataclass
class FieldArgs:
    """Run options of `rlsuite meta lpo|ta-lpo` (ES settings and --train. agent config follow)."""

    env: Optional[str] = None
    """Environment id (default: the agent's default env)."""
    init: Optional[str] = None
    """Start from this saved objective (default: lpo.es_start_drift, which equals the default drift)."""
    hparam: tuple[str, ...] = ()
    """Fixed hyper-parameter overrides NAME=VALUE of the inner agent."""
    total_steps: Optional[int] = None
    """Environment steps of each inner training run (sets --train.total-timesteps)."""
    smoke: bool = False
    """Start from the agent's tiny smoke config and a 4-member, 2-generation ES."""
    run_dir: Optional[str] = None
    """Run directory (default runs/meta-<agent>-drift-<env>-<time>)."""
    resume: Optional[str] = None
    """Continue the meta run in this directory from its last checkpoint (other flags ignored)."""
    max_segments: Optional[int] = None
    """Stop after this many segments (continue later with --resume)."""
    no_progress: bool = False
    """No progress lines."""


def _flag(argv: list[str], name: str) -> str | None:
    for i, a in enumerate(argv):
        if a == name:
            if i + 1 >= len(argv):
                raise ValueError(f"{name} needs a value")
            return argv[i + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return None


def _parse(run_cls, agent: str, argv: list[str], prog: str, description: str):
    """tyro over (run options, ESConfig, the agent's config under --train.)."""
    import tyro

    from rlsuite import agents
    from rlsuite.meta.es import ESConfig

    entry = agents.get(agent)
    smoke = "--smoke" in argv
    base = entry.smoke_config() if smoke else entry.config()
    es_base = ESConfig(**SMOKE_ES) if smoke else ESConfig()
    cli_cls = dataclasses.make_dataclass(
        f"Meta{agent.title().replace('-', '')}",
        [
            ("run", Annotated[run_cls, tyro.conf.OmitArgPrefixes]),
            ("es", Annotated[ESConfig, tyro.conf.OmitArgPrefixes]),
            ("train", entry.config_cls),
        ],
    )
    args = tyro.cli(cli_cls, args=argv, prog=prog, description=description,
                    default=cli_cls(run_cls(), es_base, base))
    train_cfg = args.train
    if args.run.total_steps is not None:
        if not hasattr(train_cfg, "total_timesteps"):
            raise ValueError(f"--total-steps applies to online agents; {agent} counts its run otherwise")
        train_cfg = dataclasses.replace(train_cfg, total_timesteps=args.run.total_steps)
    return args.run, args.es, train_cfg


def _finish(summary) -> int:
    if summary is None:
        print("stopped after --max-segments; continue with --resume")
        return 0
    print(open(f"{summary['run_dir']}/results.md").read())
    print(f"run directory: {summary['run_dir']} (fitness_curve.png, metrics.jsonl, checkpoints/)")
    return 0


def _resume(run_dir: str, max_segments, progress: bool, devices=None) -> int:
    from rlsuite.meta import lpg_meta
    from rlsuite.meta.es import resume_run

    if lpg_meta.is_run(run_dir):  # an LPG / GROOVE / TA-LPG run (rlsuite meta lpg|groove|ta-lpg)
        return lpg_meta.cli_resume(run_dir, max_segments, progress)

    return _finish(resume_run(run_dir, max_segments=max_segments, progress=progress, devices=devices))


def _es(argv: list[str]) -> int:
    from rlsuite.cli import _parse_hparams
    from rlsuite.core import sharding
    from rlsuite.meta.es import tune_hparams
    from rlsuite.train import enable_compilation_cache

    scale, argv = sharding.from_argv(argv)
    agent = _flag(argv, "--agent") or "ppo"
    run, es, cfg = _parse(TuneArgs, agent, argv, "rlsuite meta es",
                          "Evolve an agent's scalar hyper-parameters with an ES; fitness = final evaluation "
                          "of a full training run, averaged over --seeds seeds.")
    enable_compilation_cache()
    if run.resume:
        return _resume(run.resume, run.max_segments, not run.no_progress, scale.devices)
    evolve = [n.strip() for item in run.evolve for n in item.split(",") if n.strip()]
    return _finish(tune_hparams(
        agent, run.env, evolve, list(run.bounds), es, cfg, _parse_hparams(run.hparam), run.mapping,
        run.run_dir, max_segments=run.max_segments, progress=not run.no_progress, devices=scale.devices,
    ))


def _field(name: str):
    agent, field = FIELD_AGENTS[name]

    def cmd(argv: list[str]) -> int:
        from rlsuite.cli import _parse_hparams
        from rlsuite.core import sharding
        from rlsuite.meta.es import evolve_hparam_field
        from rlsuite.train import enable_compilation_cache

        scale, argv = sharding.from_argv(argv)
        try:
            import rlsuite.agents.lpo  # noqa: F401  (lazily: the learned-objective agents)
        except ImportError as e:
            raise ValueError(f"`rlsuite meta {name}` needs rlsuite.agents.lpo, which cannot be imported: {e}") from None
        run, es, cfg = _parse(FieldArgs, agent, argv, f"rlsuite meta {name}",
                              f"Evolve hparams.{field} of {agent} with an ES; fitness = final evaluation of a full "
                              "training run; the mean is saved to RUN_DIR/objective.msgpack at every checkpoint.")
        enable_compilation_cache()
        if run.resume:
            return _resume(run.resume, run.max_segments, not run.no_progress, scale.devices)
        return _finish(evolve_hparam_field(
            agent, run.env, field, es, cfg, _parse_hparams(run.hparam), run.init, run.run_dir,
            max_segments=run.max_segments, progress=not run.no_progress, devices=scale.devices,
        ))

    return cmd


def _resume_cmd(argv: list[str]) -> int:
    import argparse

    from rlsuite.core import sharding
    from rlsuite.train import enable_compilation_cache

    scale, argv = sharding.from_argv(argv)
    p = argparse.ArgumentParser(prog="rlsuite meta resume", description="Continue a meta run from its last checkpoint.")
    p.add_argument("run_dir")
    p.add_argument("--max-segments", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    enable_compilation_cache()
    return _resume(a.run_dir, a.max_segments, not a.no_progress, scale.devices)


@dataclasses.dataclass
class GAArgs:
    """Run options of `rlsuite meta ga|ga-ns` (GA settings follow)."""

    env: str = "gymnax:CartPole-v1"
    """JAX environment id (`rlsuite envs`); maze:hard for GA-NS."""
    env_kwarg: tuple[str, ...] = ()
    """Env parameter overrides NAME=VALUE (e.g. max_steps_in_episode=200)."""
    smoke: bool = False
    """Tiny run: N 8, T 3, 3 generations, horizon 50, elite 2 x 2 episodes."""
    run_dir: Optional[str] = None
    """Run directory (default runs/ga-<env>-<time>)."""
    resume: Optional[str] = None
    """Continue the GA run in this directory from its last checkpoint (other flags ignored)."""
    max_segments: Optional[int] = None
    """Stop after this many segments (continue later with --resume)."""
    no_progress: bool = False
    """No progress lines."""


SMOKE_GA = dict(population=8, truncation=3, generations=3, segments=3, horizon=50, elite_candidates=2,
                elite_episodes=2, test_episodes=4, hidden=(16,))


def _env_kwargs(items) -> dict:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--env-kwarg wants NAME=VALUE, got {item!r}")
        try:
            out[name.strip()] = int(value)
        except ValueError:
            try:
                out[name.strip()] = float(value)
            except ValueError:
                raise ValueError(f"--env-kwarg {item!r}: the value must be a number") from None
    return out


def _ga_cmd(novelty: bool):
    def cmd(argv: list[str]) -> int:
        import datetime as dt
        import os

        import tyro

        from rlsuite.meta import deep_ga
        from rlsuite.train import enable_compilation_cache

        name = "ga-ns" if novelty else "ga"
        from rlsuite.core import sharding

        scale, argv = sharding.parse_flags(argv)
        if scale.distributed:
            raise ValueError(f"`rlsuite meta {name}` shards its population over this process's devices only "
                             "(--devices); --coordinator / several processes are not supported for the GA")
        base = deep_ga.GAConfig(novelty=novelty, **(SMOKE_GA if "--smoke" in argv else {}))
        if novelty and "--smoke" not in argv:
            base = dataclasses.replace(base, population=200, truncation=20, sigma=0.1, generations=100,
                                       elite_candidates=5, elite_episodes=1)
        cli_cls = dataclasses.make_dataclass(
            "MetaGA", [("run", Annotated[GAArgs, tyro.conf.OmitArgPrefixes]),
                       ("ga", Annotated[deep_ga.GAConfig, tyro.conf.OmitArgPrefixes])])
        desc = ("Deep GA (Such et al. 2017) with compact seed chains" + (", selecting on novelty (GA-NS)" if novelty
                else "") + "; the elite is exported to RUN_DIR/elite.msgpack.")
        args = tyro.cli(cli_cls, args=argv, prog=f"rlsuite meta {name}", description=desc,
                        default=cli_cls(GAArgs(env="maze:hard" if novelty else "gymnax:CartPole-v1"), base))
        enable_compilation_cache()
        run, cfg = args.run, dataclasses.replace(args.ga, novelty=novelty)
        kw = dict(max_segments=run.max_segments, progress=not run.no_progress)
        if run.resume:
            summary = deep_ga.resume(run.resume, **kw)
        else:
            run_dir = run.run_dir or os.path.join("runs", f"{name}-{run.env.replace(':', '_').replace('/', '_')}-"
                                                             f"{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}")
            summary = deep_ga.run(run.env, cfg, run_dir, env_kwargs=_env_kwargs(run.env_kwarg), devices=scale.devices,
                                  **kw)
        return _finish(summary)

    return cmd


def _ga_eval(argv: list[str]) -> int:
    import argparse

    from rlsuite.meta import deep_ga

    p = argparse.ArgumentParser(prog="rlsuite meta ga-eval", description="Evaluate the exported elite of a GA run.")
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=200)
    p.add_argument("--seed", type=int, default=12345)
    a = p.parse_args(argv)
    r = deep_ga.evaluate_elite(a.run_dir, a.episodes, a.seed)
    print(f"elite of {a.run_dir}: mean return {r['mean_return']:.4g} over {a.episodes} episodes")
    return 0


def _lpg_cmd(name: str):
    def cmd(argv: list[str]) -> int:
        from rlsuite.meta import lpg_meta

        return lpg_meta.cli_main(name, argv)

    return cmd


def main(argv: list[str]) -> int:
    commands = {"es": _es, "resume": _resume_cmd, **{n: _field(n) for n in FIELD_AGENTS},
                "ga": _ga_cmd(False), "ga-ns": _ga_cmd(True), "ga-eval": _ga_eval,
                **{n: _lpg_cmd(n) for n in ("lpg", "groove", "ta-lpg")}}
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] not in commands:
        print(f"rlsuite meta: unknown command {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])
