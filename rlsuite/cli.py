"""The ``rlsuite`` command line.

    rlsuite train ppo --env gymnax:CartPole-v1 --seeds 8 --total-steps 500000
    rlsuite train ppo --resume runs/ppo-gymnax_CartPole-v1-...
    rlsuite eval RUN_DIR [--episodes 32]
    rlsuite envs
    rlsuite data build|info ...

``train`` flags are generated (tyro) from the run options below and the algorithm's config
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
  train ALGO   train an agent (ALGO: ppo, a2c); `rlsuite train ppo --help` for flags
  eval RUN_DIR evaluate the latest checkpoint of a run
  envs         list environment ids
  data         build / inspect offline datasets (`rlsuite data --help`)
"""


@dataclasses.dataclass
class RunArgs:
    """Run options (the algorithm's config fields follow)."""

    env: str = "gymnax:CartPole-v1"
    """Environment id (`rlsuite envs` lists them)."""
    seeds: int = 1
    """Number of seeds trained at once (vmapped): seed0, seed0+1, ..."""
    seed0: int = 0
    """First seed."""
    total_steps: Optional[int] = None
    """Environment steps per seed (overrides --total-timesteps)."""
    segments: int = 10
    """Jitted segments: a checkpoint, a metrics line and a progress update after each."""
    run_dir: Optional[str] = None
    """Run directory (default runs/<algo>-<env>-<time>)."""
    resume: Optional[str] = None
    """Continue the run in this directory from its last checkpoint (other flags are ignored)."""
    preset: Optional[str] = None
    """Config preset applied before the flags (ppo: cartpole, minatar, brax)."""
    backend: Optional[str] = None
    """Brax physics backend (brax: envs only; default spring, the fastest on CPU)."""
    eval_episodes: int = 16
    """Deterministic evaluation episodes per seed at the end."""
    no_progress: bool = False
    """Disable the progress bar."""


def _train(argv: list[str]) -> int:
    import tyro

    from rlsuite.train import ALGORITHMS, algorithm, enable_compilation_cache, run_training

    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: rlsuite train {{{','.join(ALGORITHMS)}}} [flags]  (see `rlsuite train ppo --help`)")
        return 0 if argv else 2
    algo, rest = argv[0], argv[1:]
    mod, cfg_cls = algorithm(algo)
    preset = None
    if "--preset" in rest:
        i = rest.index("--preset")
        if i + 1 >= len(rest):
            raise ValueError("--preset needs a value")
        preset = rest[i + 1]
    base = cfg_cls.preset(preset) if (preset and hasattr(cfg_cls, "preset")) else cfg_cls()
    if preset and not hasattr(cfg_cls, "preset"):
        raise ValueError(f"{algo} has no presets (got --preset {preset!r})")
    cli_cls = dataclasses.make_dataclass(
        f"Train{algo.upper()}",
        [
            ("run", Annotated[RunArgs, tyro.conf.OmitArgPrefixes]),
            ("config", Annotated[cfg_cls, tyro.conf.OmitArgPrefixes]),
        ],
    )
    args = tyro.cli(cli_cls, args=rest, prog=f"rlsuite train {algo}", default=cli_cls(RunArgs(), base),
                    description=(mod.__doc__ or "").strip().splitlines()[0])
    run, config = args.run, args.config
    if run.total_steps is not None:
        config = dataclasses.replace(config, total_timesteps=run.total_steps)
    if run.seeds <= 0:
        raise ValueError(f"--seeds must be positive, got {run.seeds}")
    enable_compilation_cache()
    env_kwargs = {"backend": run.backend} if run.backend else {}
    if run.backend and not run.env.startswith("brax:"):
        raise ValueError(f"--backend applies to brax: envs only, got --env {run.env!r}")
    summary = run_training(
        algo, run.env, config, seeds=range(run.seed0, run.seed0 + run.seeds),
        run_dir=run.resume or run.run_dir, segments=run.segments, env_kwargs=env_kwargs,
        eval_episodes=run.eval_episodes, progress=not run.no_progress, resume=run.resume is not None,
    )
    print(open(f"{summary['run_dir']}/results.md").read())
    print(f"run directory: {summary['run_dir']} (learning_curve.png, metrics.jsonl, checkpoints/)")
    return 0


def _eval(argv: list[str]) -> int:
    import argparse

    from rlsuite.train import enable_compilation_cache, evaluate_run

    p = argparse.ArgumentParser(prog="rlsuite eval", description="Evaluate the latest checkpoint of a run.")
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.episodes <= 0:
        raise ValueError(f"--episodes must be positive, got {a.episodes}")
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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"train": _train, "eval": _eval, "envs": _envs, "data": _data}
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
