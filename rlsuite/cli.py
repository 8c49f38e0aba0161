"""The ``rlsuite`` command line.

    rlsuite agents                                    list the registered agents
    rlsuite train ppo --env gymnax:CartPole-v1 --seeds 8 --total-steps 500000
    rlsuite train nharpg --seeds 4
    rlsuite train odice --env brax:hopper --data DATASET_DIR
    rlsuite train ppo --resume runs/ppo-gymnax_CartPole-v1-...
    rlsuite eval RUN_DIR [--episodes 32]
    rlsuite envs
    rlsuite data build|info ...
    rlsuite meta es|lpo|ta-lpo|resume ...             evolution strategies over whole training runs

``train`` flags are generated (tyro) from the run options below and the agent's config
dataclass, so ``rlsuite train ppo --help`` lists every field with its docstring.
JAX's persistent compilation cache is on: a repeated run skips XLA compilation.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Annotated, Optional

USAGE = """usage: rlsuite <command> [...]

commands:
  agents       list the agents (`rlsuite train AGENT --help` for an agent's flags)
  train AGENT  train an agent through the one runner (progress, checkpoints, resume, report)
  eval RUN_DIR evaluate the latest checkpoint of a run
  envs         list environment ids
  data         build / inspect offline datasets (`rlsuite data --help`)
  meta         evolution strategies over training runs: hparams, learned objectives (`rlsuite meta --help`)
"""


@dataclasses.dataclass
class RunArgs:
    """Run options (the agent's config fields follow)."""

    env: Optional[str] = None
    """Environment id (`rlsuite envs` lists them; default: the agent's default env)."""
    seeds: int = 1
    """Number of seeds trained at once (vmapped): seed0, seed0+1, ..."""
    seed0: int = 0
    """First seed."""
    total_steps: Optional[int] = None
    """Environment steps per seed (sets total_timesteps; online agents only)."""
    segments: int = 10
    """Jitted segments: an evaluation, a checkpoint, a metrics line and a progress update after each."""
    run_dir: Optional[str] = None
    """Run directory (default runs/<agent>-<env>-<time>)."""
    resume: Optional[str] = None
    """Continue the run in this directory from its last checkpoint (other flags are ignored)."""
    preset: Optional[str] = None
    """Config preset applied before the flags (ppo: cartpole, minatar, brax)."""
    backend: Optional[str] = None
    """Brax physics backend (brax: envs only; default spring, the fastest on CPU)."""
    data: Optional[str] = None
    """Offline agents: dataset directory / file / Minari id (`rlsuite data build` makes one)."""
    expert_data: Optional[str] = None
    """Offline imitation (odice --mode il): the expert trajectories' dataset."""
    hparam: tuple[str, ...] = ()
    """Hyper-parameter overrides NAME=VALUE (e.g. --hparam lr=1e-3 gamma=0.995)."""
    no_progress: bool = False
    """Disable the progress bar."""


def _parse_hparams(items) -> dict[str, float]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ValueError(f"--hparam wants NAME=NUMBER, got {item!r}")
    return out


def _train(argv: list[str]) -> int:
    import tyro

    from rlsuite import agents
    from rlsuite.core.validate import require_positive_int
    from rlsuite.train import enable_compilation_cache, run_training

    if not argv or argv[0] in ("-h", "--help"):
        print("usage: rlsuite train AGENT [flags]   (`rlsuite train AGENT --help` lists the flags)\n\nagents:")
        print(agents.describe())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    entry = agents.get(name)
    cfg_cls, mod = entry.config_cls, entry.load()
    preset = None
    if "--preset" in rest:
        i = rest.index("--preset")
        if i + 1 >= len(rest):
            raise ValueError("--preset needs a value")
        preset = rest[i + 1]
    if preset and not hasattr(cfg_cls, "preset"):
        raise ValueError(f"{name} has no presets (got --preset {preset!r})")
    base = cfg_cls.preset(preset, **dict(entry.variant)) if preset else entry.config()
    cli_cls = dataclasses.make_dataclass(
        f"Train{name.title().replace('-', '')}",
        [
            ("run", Annotated[RunArgs, tyro.conf.OmitArgPrefixes]),
            ("config", Annotated[cfg_cls, tyro.conf.OmitArgPrefixes]),
        ],
    )
    args = tyro.cli(cli_cls, args=rest, prog=f"rlsuite train {name}", default=cli_cls(RunArgs(), base),
                    description=entry.summary + "\n\n" + (mod.__doc__ or "").strip().splitlines()[0])
    run, config = args.run, args.config
    if run.total_steps is not None:
        if not hasattr(config, "total_timesteps"):
            raise ValueError(f"--total-steps applies to online agents; {name} counts its run otherwise (see --help)")
        config = dataclasses.replace(config, total_timesteps=run.total_steps)
    require_positive_int("--seeds", run.seeds)
    env_kwargs = {"backend": run.backend} if run.backend else {}
    env = run.env or entry.default_env
    if run.backend and not env.startswith("brax:"):
        raise ValueError(f"--backend applies to brax: envs only, got --env {env!r}")
    data = run.data
    if run.expert_data is not None:
        if run.data is None:
            raise ValueError("--expert-data needs --data (the mixed dataset) too")
        data = {"dataset": run.data, "expert": run.expert_data}
    if entry.kind == "offline" and data is None and run.resume is None:
        raise ValueError(f"{name} is an offline agent: give --data PATH (build one with `rlsuite data build`)")
    enable_compilation_cache()
    summary = run_training(
        name, env, config, seeds=range(run.seed0, run.seed0 + run.seeds),
        run_dir=run.resume or run.run_dir, segments=run.segments, env_kwargs=env_kwargs, data=data,
        progress=not run.no_progress, resume=run.resume is not None, hparams=_parse_hparams(run.hparam),
    )
    print(open(f"{summary['run_dir']}/results.md").read())
    print(f"run directory: {summary['run_dir']} (learning_curve.png, metrics.jsonl, checkpoints/)")
    return 0


def _agents(argv: list[str]) -> int:
    from rlsuite import agents

    print(agents.describe())
    return 0


def _eval(argv: list[str]) -> int:
    import argparse

    from rlsuite.core.validate import require_positive_int
    from rlsuite.train import enable_compilation_cache, evaluate_run

    p = argparse.ArgumentParser(prog="rlsuite eval", description="Evaluate the latest checkpoint of a run.")
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=None, help="evaluation episodes (default: the run's eval_episodes)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.episodes is not None:
        require_positive_int("--episodes", a.episodes)
    enable_compilation_cache()
    print(json.dumps(evaluate_run(a.run_dir, a.episodes, a.seed), indent=2))
    return 0


def _envs(argv: list[str]) -> int:
    from rlsuite.envs import describe, list_envs

    show_gym = "--gymnasium" in argv
    for env_id in list_envs(include_gymnasium=show_gym):
        print(f"{env_id:40s} {describe(env_id)}")
    if not show_gym:
        print("gymnasium:<any registered gymnasium id>  (host loop; `rlsuite envs --gymnasium` lists them)")
    return 0


def _data(argv: list[str]) -> int:
    try:
        from rlsuite.data.cli import main as data_main
    except ImportError as e:
        raise ValueError(f"the offline-data CLI is not available: {e}") from None
    return int(data_main(argv) or 0)


def _meta(argv: list[str]) -> int:
    from rlsuite.meta.cli import main as meta_main

    return int(meta_main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"agents": _agents, "train": _train, "eval": _eval, "envs": _envs, "data": _data, "meta": _meta}
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] not in commands:
        print(f"rlsuite: unknown command {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    try:
        return commands[argv[0]](argv[1:])
    except (ValueError, FileNotFoundError) as e:
        print(f"rlsuite: error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # NonFiniteError and friends
        print(f"rlsuite: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
