"""The ``rlsuite`` command line.

    rlsuite agents                                    list the registered agents
    rlsuite train ppo --env gymnax:CartPole-v1 --seeds 8 --total-timesteps 500000
    rlsuite train nharpg --seeds 4
    rlsuite train odice --env brax:hopper --data DATASET_DIR
    rlsuite train ppo --resume runs/ppo-gymnax_CartPole-v1-...
    rlsuite train ppo --seeds 64 --devices all       seeds sharded over the local devices
    rlsuite train ppo --seeds 64 --coordinator HOST:PORT --num-processes 2 --process-id 0   (and 1)
    rlsuite eval RUN_DIR [--episodes 32]
    rlsuite envs
    rlsuite data build|info ...
    rlsuite meta es|lpo|ta-lpo|resume ...             evolution strategies over whole training runs
    rlsuite reproduce <paper|all> [--scale smoke|cpu|paper]   rerun a paper's scripts, rebuild results tables

``train`` flags are generated (tyro) from the run options below and the agent's config
dataclass, so ``rlsuite train ppo --help`` lists every field with its docstring.
JAX's persistent compilation cache is on: a repeated run skips XLA compilation.
"""

from __future__ import annotations

import dataclasses
import json
import os
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
  reproduce    rerun a paper's experiment scripts, rebuild results/README.md (`rlsuite reproduce --help`)

scale-out options of `train` and `meta` (rlsuite.core.sharding):
  --devices N|all          local devices the seeds / population are sharded over (default all)
  --coordinator HOST:PORT --num-processes K --process-id I
                           join K processes (hosts) with jax.distributed; process 0 writes the files
  --cpu-threads N          threads of the CPU runtime (default: one per core; 1 is faster for small nets)
"""


@dataclasses.dataclass
class RunArgs:
    """Run options (the agent's config fields follow)."""

    env: Optional[str] = None
    """Environment id (`rlsuite envs` lists them; default: the agent's default env)."""
    seeds: int = 1
    """Number of seeds trained at once (vmapped): seed0, seed0+1, ..."""
    seed0: int = 0
    """First seed (a non-negative integer)."""
    segments: int = 10
    """Jitted segments: an evaluation, a checkpoint, a metrics line and a progress update after each."""
    run_dir: Optional[str] = None
    """Run directory (default runs/<agent>-<env>-<time>)."""
    resume: Optional[str] = None
    """Continue the run in this directory from its newest checkpoint that verifies.  Only
    --no-progress, --keep-checkpoints and --data/--expert-data (the same paths) may be given too;
    flags that would change the run are refused."""
    keep_checkpoints: int = 2
    """Newest checkpoints kept in RUN_DIR/checkpoints (0: keep all).  Each is verified by a checksum
    on restore; --resume falls back to an older one when the newest is damaged."""
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
    env_kwargs: tuple[str, ...] = ()
    """Environment parameters NAME=VALUE (e.g. --env-kwargs max_steps_in_episode=200)."""
    no_progress: bool = False
    """Disable the progress bar."""
    tensorboard: bool = False
    """Also write the metrics as TensorBoard event files in RUN_DIR/tensorboard/ (tensorboardX)."""


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
        if out[name.strip()] != out[name.strip()]:
            raise ValueError(f"--hparam {item!r}: nan is not a valid hyper-parameter value")
    return out


def _parse_env_kwargs(items) -> dict:
    """``NAME=VALUE`` pairs; VALUE is read as JSON (numbers, true/false, quoted strings) or a bare string."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"--env-kwargs wants NAME=VALUE, got {item!r}")
        try:
            out[name.strip()] = json.loads(value)
        except ValueError:
            out[name.strip()] = value
    return out


_RESUME_FLAGS = {"--resume": 1, "--no-progress": 0, "--tensorboard": 0, "--keep-checkpoints": 1, "--data": 1, "--expert-data": 1}


def _resume(name: str, rest: list[str], devices: int | None = None) -> int:
    """``rlsuite train AGENT --resume RUN_DIR``: no flag that would change the run is accepted
    (the scale-out flags, already taken out of ``rest``, may differ: they do not change results)."""
    opts, refused, i = {}, [], 0
    while i < len(rest):
        flag, _, inline = rest[i].partition("=")
        if flag in _RESUME_FLAGS:
            n = _RESUME_FLAGS[flag]
            if n and not inline and (i + 1 >= len(rest) or rest[i + 1].startswith("--")):
                raise ValueError(f"{flag} needs a value")
            opts[flag] = inline or (rest[i + 1] if n else True)
            i += 1 + (n if not inline else 0)
        else:
            refused.append(rest[i])
            i += 1
    if refused:
        raise ValueError(f"--resume continues the saved run; these flags would change it and are refused: "
                         f"{' '.join(refused)} (start a new --run-dir instead)")
    keep = str(opts.get("--keep-checkpoints", "2"))
    if not keep.isdigit():
        raise ValueError(f"--keep-checkpoints must be a non-negative integer, got {keep!r}")
    keep = int(keep)
    data = opts.get("--data")
    if "--expert-data" in opts:
        if data is None:
            raise ValueError("--expert-data needs --data (the mixed dataset) too")
        data = {"dataset": data, "expert": opts["--expert-data"]}
    from rlsuite.train import enable_compilation_cache, run_training

    enable_compilation_cache()
    summary = run_training(name, None, None, seeds=None, run_dir=opts["--resume"], segments=None,
                           data=data if isinstance(data, str) else None, progress="--no-progress" not in opts,
                           resume=True, keep_checkpoints=keep or None, tensorboard="--tensorboard" in opts,
                           devices=devices)
    print(open(f"{summary['run_dir']}/results.md").read())
    print(f"run directory: {summary['run_dir']} (learning_curve.png, metrics.jsonl, checkpoints/)")
    return 0


# Run flags checked on the raw arguments, before the agent's module (jax, flax, gymnax: ~2-3 s of
# imports) is loaded, so the common input errors answer at once; tyro parses them again later.
_EARLY_INT_FLAGS = {"--seeds": (1, "a positive integer"), "--seed0": (0, "a non-negative integer"),
                    "--segments": (1, "a positive integer"), "--keep-checkpoints": (0, "a non-negative integer")}


def _early_checks(rest: list[str]) -> None:
    for i, arg in enumerate(rest):
        flag, eq, inline = arg.partition("=")
        if flag not in _EARLY_INT_FLAGS:
            continue
        value = inline if eq else (rest[i + 1] if i + 1 < len(rest) else None)
        lo, what = _EARLY_INT_FLAGS[flag]
        try:
            ok = value is not None and int(value) >= lo and str(int(value)) == value.strip().lstrip("+")
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{flag} must be {what}, got {value!r}")


def _help_cache_path(name: str, rest: list[str], module_file: str) -> str:
    """Where ``rlsuite train NAME --help`` output is cached: keyed by the agent, the flags, the
    terminal width and the size / mtime of this file, the agent module and the registry."""
    import hashlib
    import shutil

    from rlsuite import __version__
    from rlsuite import agents as _agents

    parts = [__version__, name, " ".join(rest), str(shutil.get_terminal_size().columns)]
    for f in (__file__, module_file, _agents.__file__):
        st = os.stat(f)
        parts.append(f"{f}:{st.st_size}:{st.st_mtime_ns}")
    key = hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]
    root = os.environ.get("RLSUITE_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "rlsuite"))
    return os.path.join(root, "help", f"train-{name}-{key}.txt")


def _agent_module_file(entry) -> str | None:
    import importlib.util

    spec = importlib.util.find_spec(entry.module)
    return spec.origin if spec is not None else None


def _train(argv: list[str]) -> int:
    from rlsuite import agents

    if not argv or argv[0] in ("-h", "--help"):
        from rlsuite.core.sharding import HELP

        print("usage: rlsuite train AGENT [flags]   (`rlsuite train AGENT --help` lists the flags)\n\n" + HELP + "\nagents:")
        print(agents.describe())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    entry = agents.get(name)
    wants_help = any(a in ("-h", "--help") for a in rest)
    cache = None
    if wants_help:  # the rendered help is cached: the agent's module takes seconds to import
        module_file = _agent_module_file(entry)
        cache = _help_cache_path(name, rest, module_file) if module_file else None
        if cache and os.path.isfile(cache):
            with open(cache) as f:
                sys.stdout.write(f.read())
            return 0
    else:
        _early_checks(rest)
    from rlsuite.core import sharding

    scale, rest = sharding.parse_flags(rest) if wants_help else sharding.from_argv(rest)
    if any(a == "--resume" or a.startswith("--resume=") for a in rest):
        return _resume(name, rest, scale.devices)
    if any(a == "--total-steps" or a.startswith("--total-steps=") for a in rest):  # alias of --total-timesteps
        if "total_timesteps" not in {f.name for f in dataclasses.fields(entry.config_cls)}:
            raise ValueError(f"--total-steps applies to online agents; {name} counts its run otherwise (see --help)")
        rest = [a.replace("--total-steps", "--total-timesteps", 1) if a.split("=")[0] == "--total-steps" else a
                for a in rest]

    import tyro

    from rlsuite.core.validate import require_nonneg_int, require_positive_int

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
    description = entry.summary + "\n\n" + (mod.__doc__ or "").strip().splitlines()[0]
    if wants_help and cache:
        import contextlib
        import io

        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                tyro.cli(cli_cls, args=rest, prog=f"rlsuite train {name}", default=cli_cls(RunArgs(), base),
                         description=description)
        except SystemExit as e:
            text = buf.getvalue()
            sys.stdout.write(text)
            if e.code in (0, None) and text:
                os.makedirs(os.path.dirname(cache), exist_ok=True)
                tmp = f"{cache}.{os.getpid()}.tmp"
                with open(tmp, "w") as f:
                    f.write(text)
                os.replace(tmp, cache)
            raise
    args = tyro.cli(cli_cls, args=rest, prog=f"rlsuite train {name}", default=cli_cls(RunArgs(), base),
                    description=description)
    run, config = args.run, args.config
    require_positive_int("--seeds", run.seeds)
    require_nonneg_int("--seed0", run.seed0)
    require_positive_int("--segments", run.segments)
    require_nonneg_int("--keep-checkpoints", run.keep_checkpoints)
    hparams = _parse_hparams(run.hparam)
    env_kwargs = _parse_env_kwargs(run.env_kwargs)
    if run.backend:
        env_kwargs["backend"] = run.backend
    env = run.env or entry.default_env
    if run.backend and not env.startswith("brax:"):
        raise ValueError(f"--backend applies to brax: envs only, got --env {env!r}")
    data = run.data
    if run.expert_data is not None:
        if run.data is None:
            raise ValueError("--expert-data needs --data (the mixed dataset) too")
        data = {"dataset": run.data, "expert": run.expert_data}
    if entry.kind == "offline" and data is None:
        raise ValueError(f"{name} is an offline agent: give --data PATH (build one with `rlsuite data build`)")
    from rlsuite.train import enable_compilation_cache, run_training

    enable_compilation_cache()
    summary = run_training(
        name, env, config, seeds=range(run.seed0, run.seed0 + run.seeds),
        run_dir=run.run_dir, segments=run.segments, env_kwargs=env_kwargs, data=data,
        progress=not run.no_progress, hparams=hparams, keep_checkpoints=run.keep_checkpoints or None,
        tensorboard=run.tensorboard, devices=scale.devices,
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

    from rlsuite.core.validate import require_nonneg_int, require_positive_int

    p = argparse.ArgumentParser(prog="rlsuite eval", description="Evaluate the latest checkpoint of a run.")
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=None, help="evaluation episodes (default: the run's eval_episodes)")
    p.add_argument("--seed", type=int, default=None,
                   help="fresh evaluation keys from this seed (default: the runner's keys, as in results.md)")
    a = p.parse_args(argv)
    if a.episodes is not None:
        require_positive_int("--episodes", a.episodes)
    if a.seed is not None:
        require_nonneg_int("--seed", a.seed)
    if not os.path.isfile(os.path.join(a.run_dir, "config.json")):
        raise FileNotFoundError(f"{a.run_dir!r} is not a run directory (no config.json)")
    with open(os.path.join(a.run_dir, "config.json")) as f:
        is_ga = "ga" in json.load(f)
    if is_ga:  # a Deep GA / GA-NS run (`rlsuite meta ga`): evaluate its exported elite
        from rlsuite.meta import deep_ga

        episodes, seed = a.episodes or 200, 12345 if a.seed is None else a.seed
        result = deep_ga.evaluate_elite(a.run_dir, episodes, seed)
        print(f"evaluation protocol: the exported elite (elite.msgpack), {episodes} fresh episodes from seed {seed}",
              file=sys.stderr)
        print(json.dumps({"run_dir": a.run_dir, "episodes": episodes, "seed": seed,
                          **{k: v for k, v in result.items() if isinstance(v, (int, float, str))}}, indent=2))
        return 0
    from rlsuite.train import enable_compilation_cache, evaluate_run

    enable_compilation_cache()
    result = evaluate_run(a.run_dir, a.episodes, a.seed)
    print(f"evaluation protocol: {result['protocol']}", file=sys.stderr)
    print(json.dumps(result, indent=2))
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


def _reproduce(argv: list[str]) -> int:
    # no jax import: `rlsuite reproduce --help` and --tables-only are instant
    from rlsuite.reproduce import main as reproduce_main

    return int(reproduce_main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"agents": _agents, "train": _train, "eval": _eval, "envs": _envs, "data": _data, "meta": _meta,
                "reproduce": _reproduce}
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
