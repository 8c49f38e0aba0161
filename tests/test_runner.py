"""One runner for every agent: parametrized over the registry.

Every registered agent smoke-trains through ``run_training`` (2 seeds, 2 segments), resumes
bit-identically after an interrupted run, stops on NaN hyper-parameters before writing a
checkpoint, and its ``vmap`` over two seeds equals two separate runs.  A run killed with SIGKILL
after its first checkpoint resumes to the identical final metrics (one online, one
trajectory-based and one offline agent, through the real CLI).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlsuite import agents
from rlsuite.core import checkpoint
from rlsuite.core.agent import eval_key, make_train
from rlsuite.envs import make
from rlsuite.train import NonFiniteError, evaluate_run, run_training

NAMES = agents.names()
# Registry variants that share a module with an agent of the fast tier (same init / segment /
# evaluate code, another config value) run in the slow tier, which CI leaves out; their own test
# files cover what differs.  `make test-slow` runs them all.  ``lpg`` is there too (its GRU
# meta-network costs ~30 s of CPU over these tests; tests/test_lpg.py trains it through the protocol
# in the fast tier), and ``odice`` (~35 s; bc and iql keep the offline path through the runner fast,
# and tests/test_odice.py checks O-DICE's vmap and prepared-data equivalences).
_VARIANTS_SLOW = {"npg-igt", "harpg", "dpo", "ta-lpo", "gbrl-a2c", "gbrl-awr", "lpg", "odice"}
CASES = [pytest.param(n, marks=pytest.mark.slow) if n in _VARIANTS_SLOW else n for n in NAMES]
_DATA_CACHE: dict = {}


def smoke_data(entry):
    """The tiny offline dataset of an entry (built once per session through the data builder)."""
    if entry.kind != "offline":
        return None
    env_id = entry.smoke_env or entry.default_env
    key = (env_id, tuple(sorted(entry.smoke_data.items())))
    if key not in _DATA_CACHE:
        from rlsuite.data import BuildSpec, build

        _DATA_CACHE[key] = build(BuildSpec(env_id=env_id, **dict(entry.smoke_data)))
    return _DATA_CACHE[key]


def smoke_setup(name):
    entry = agents.get(name)
    env_id = entry.smoke_env or entry.default_env
    return entry, env_id, entry.smoke_config(), smoke_data(entry)


def _leaves(tree):
    out = []
    for x in jax.tree.leaves(tree):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        out.append(np.asarray(x))
    return out


@pytest.mark.parametrize("name", CASES)
def test_every_agent_trains_resumes_and_reports_through_the_runner(name, tmp_path):
    entry, env_id, config, data = smoke_setup(name)
    kw = dict(config=config, seeds=[0, 1], segments=2, progress=False, data=data)
    full = run_training(name, env_id, run_dir=str(tmp_path / "full"), **kw)
    assert run_training(name, env_id, run_dir=str(tmp_path / "cut"), max_segments=1, **kw) is None
    resumed = run_training(name, env_id, run_dir=str(tmp_path / "cut"), resume=True, progress=False, data=data)
    assert resumed["final"] == full["final"]
    assert len(full["final"][full["score"]]) == 2 and np.all(np.isfinite(full["final"][full["score"]]))

    env, env_params = make(env_id)
    agent = entry.make(config, env, env_params, data)
    keys = jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1)])
    target = jax.eval_shape(jax.vmap(agent.init, in_axes=(0, None)), keys, entry.default_hparams(config))
    a, step_a = checkpoint.restore(str(tmp_path / "full"), target)
    b, step_b = checkpoint.restore(str(tmp_path / "cut"), target)
    assert step_a == step_b == agent.num_updates
    for x, y in zip(_leaves(a), _leaves(b)):
        np.testing.assert_array_equal(x, y)

    lines = [json.loads(line) for line in open(tmp_path / "cut" / "metrics.jsonl")]
    assert [r["update"] for r in lines] == [0, -(-agent.num_updates // 2), agent.num_updates]
    assert all(agent.counter in r for r in lines)
    for f in ("results.md", "summary.json", "learning_curve.png"):
        assert os.path.exists(tmp_path / "full" / f), f
    ev = evaluate_run(str(tmp_path / "full"), data=data)
    assert ev["update"] == agent.num_updates and len(ev[f"{agent.score}_per_seed"]) == 2
    # a finished run resumes as a no-op
    again = run_training(name, env_id, run_dir=str(tmp_path / "full"), resume=True, progress=False, data=data)
    assert again["final"] == full["final"]


@pytest.mark.parametrize("name", CASES)
def test_nan_hparams_stop_before_any_checkpoint(name, tmp_path):
    entry, env_id, config, data = smoke_setup(name)
    hp = entry.default_hparams(config)
    nan = {f: float("nan") for f in hp.__dataclass_fields__}
    run_dir = str(tmp_path / "nan")
    with pytest.raises(NonFiniteError, match="non-finite") as err:
        run_training(name, env_id, config=config, seeds=[0], segments=2, progress=False, data=data,
                     hparams=nan, run_dir=run_dir)
    assert checkpoint.latest_step(run_dir) is None
    assert "no checkpoint was written" in str(err.value)
    assert os.path.isfile(os.path.join(run_dir, "config.json"))


@pytest.mark.parametrize("name", CASES)
def test_vmap_over_two_seeds_equals_two_runs_and_eval_matches_runner_keys(name):
    entry, env_id, config, data = smoke_setup(name)
    env, env_params = make(env_id)
    agent = entry.make(config, env, env_params, data)
    hp = entry.default_hparams(config)
    train = jax.jit(make_train(agent))
    keys = jnp.stack([jax.random.PRNGKey(3), jax.random.PRNGKey(4)])
    vstate, vm = jax.jit(jax.vmap(make_train(agent), in_axes=(0, None)))(keys, hp)
    for i, s in enumerate((3, 4)):
        state, m = train(jax.random.PRNGKey(s), hp)
        for x, y in zip(_leaves(state), _leaves(vstate)):
            np.testing.assert_allclose(x, y[i], rtol=1e-4, atol=1e-3)
    assert vm[agent.counter][0, -1] == agent.num_updates * agent.steps_per_update
    ev = jax.jit(agent.evaluate)(state, eval_key(jax.random.PRNGKey(4), agent.num_updates))
    assert agent.score in ev and all(k.startswith("eval_") for k in ev)


def test_unknown_agent_and_wrong_config_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown agent 'sac'"):
        agents.get("sac")
    with pytest.raises(ValueError, match="NPGConfig.method='igt'"):
        entry = agents.get("npg-igt")
        env, p = make("gymnax:CartPole-v1")
        entry.make(entry.config(method="harpg"), env, p)
    with pytest.raises(ValueError, match="offline"):
        run_training("bc", "gymnax:Pendulum-v1", run_dir=str(tmp_path / "bc"))
    with pytest.raises(ValueError, match="unknown hparam"):
        run_training("ppo", hparams={"learning_rate": 1.0}, run_dir=str(tmp_path / "hp"))


def test_cli_lists_every_agent(capsys):
    from rlsuite.cli import main

    assert main(["agents"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {n} " in out for n in NAMES)
    assert main(["train", "--help"]) == 0
    assert "nharpg" in capsys.readouterr().out


def _cli(args, env=None):
    return subprocess.Popen([sys.executable, "-m", "rlsuite.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, text=True)


# ppo in the fast tier; the kill / resume path is the runner's, the same for every agent (the others
# resume through the runner in test_every_agent_trains_resumes_and_reports_through_the_runner).
@pytest.mark.parametrize("name", ["ppo", pytest.param("reinforce", marks=pytest.mark.slow),
                                  pytest.param("bc", marks=pytest.mark.slow)])
def test_sigkill_after_first_checkpoint_then_resume_is_identical(name, tmp_path):
    entry, env_id, config, data = smoke_setup(name)
    flags = []
    for k, v in entry.smoke.items():
        flag = f"--{k.replace('_', '-')}"
        flags += [flag, *map(str, v)] if isinstance(v, tuple) else [flag, str(v)]
    if data is not None:
        from rlsuite.data import save_minari

        flags += ["--data", save_minari(data, str(tmp_path / "data"), dataset_id="smoke-v0")]
    common = ["train", name, "--env", env_id, "--seeds", "2", "--segments", "4", "--no-progress", *flags]
    env = dict(os.environ, RLSUITE_JAX_CACHE=str(tmp_path / "jaxcache"))
    full = _cli(common + ["--run-dir", str(tmp_path / "full")], env)
    out, _ = full.communicate(timeout=600)
    assert full.returncode == 0, out

    cut_dir = str(tmp_path / "cut")
    proc = _cli(common + ["--run-dir", cut_dir], env)
    t0 = time.monotonic()
    while checkpoint.latest_step(cut_dir) is None and proc.poll() is None and time.monotonic() - t0 < 600:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    first = checkpoint.latest_step(cut_dir)
    assert first is not None
    res = _cli(["train", name, "--resume", cut_dir, "--no-progress"], env)
    out, _ = res.communicate(timeout=600)
    assert res.returncode == 0, out
    a = json.load(open(tmp_path / "full" / "summary.json"))["final"]
    b = json.load(open(os.path.join(cut_dir, "summary.json")))["final"]
    assert a == b
    lines = [json.loads(x) for x in open(os.path.join(cut_dir, "metrics.jsonl"))]
    assert [r["update"] for r in lines] == sorted({r["update"] for r in lines})  # no duplicated segment


def test_run_flag_errors_and_cached_help_answer_without_importing_jax(tmp_path):
    """`rlsuite train AGENT --seeds 0` fails before the agent's module (jax, flax, gymnax) loads,
    and `--help` is rendered once, then served from the cache without those imports."""
    probe = ("import sys; from rlsuite.cli import main; rc = main(sys.argv[1:]); "
             "print('JAX_IMPORTED' if 'jax' in sys.modules else 'NO_JAX'); sys.exit(rc)")
    env = dict(os.environ, RLSUITE_CACHE=str(tmp_path / "cache"), COLUMNS="100")

    def run(*args):
        p = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=env, timeout=300)
        return p.returncode, p.stdout, p.stderr

    rc, out, err = run("train", "ppo", "--seeds", "0")
    assert rc == 2 and "--seeds must be a positive integer, got '0'" in out + err and "NO_JAX" in out
    rc, first, _ = run("train", "ppo", "--help")
    assert rc == 0 and "--total-timesteps" in first
    assert len(list((tmp_path / "cache" / "help").iterdir())) == 1
    rc, second, _ = run("train", "ppo", "--help")
    assert rc == 0 and "NO_JAX" in second
    assert second.replace("NO_JAX", "").rstrip() == first.replace("JAX_IMPORTED", "").rstrip()
