"""Reliability: bad inputs are refused with one clear message, damaged checkpoints are detected,
killed runs resume bit-identically (issue 14).

- ``test_bad_input_is_refused``: a table of bad inputs across the CLI (in-process ``main``) and the
  Python API, every agent family (online ppo / a2c, episodic reinforce / nharpg / bpg, evaluation
  martingale, offline odice / bc, meta es).  Each must fail with a message naming the bad value
  (CLI: exit code 2, no traceback) and leave an existing run directory and dataset byte-identical.
- ``test_every_checkpoint_file_corruption_is_detected``: flip a byte in, truncate and delete every
  file of a checkpoint (and the whole checkpoint); every one is detected, none restored; resume
  falls back to the previous checkpoint and still ends bit-identical.
- ``test_sigkill_at_random_points_resumes_bit_identically`` (slow): SIGKILL at random times,
  inside a checkpoint write and inside a metrics line; every resumed run ends with the same state,
  summary and metrics.jsonl (no duplicate or junk lines) as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
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
from rlsuite.core.agent import make_train
from rlsuite.envs import make
from rlsuite.train import NonFiniteError, evaluate_run, run_training

PPO_SMOKE = ["--num-envs", "4", "--num-steps", "32", "--eval-episodes", "2", "--hidden", "16",
             "--total-timesteps", "2048"]
PEND = ["--env", "gymnax:Pendulum-v1", "--gradient-steps", "20", "--eval-every", "10", "--eval-episodes", "2",
        "--batch-size", "16"]


def _tree_digest(root: str) -> dict[str, str]:
    out = {}
    for r, _, files in os.walk(root):
        for f in files:
            p = os.path.join(r, f)
            out[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def _leaves(tree):
    out = []
    for x in jax.tree.leaves(tree):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        out.append(np.asarray(x))
    return out


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    """A finished tiny PPO run directory and a tiny offline dataset (both must stay byte-identical)."""
    root = tmp_path_factory.mktemp("rel")
    entry = agents.get("ppo")
    run_dir = str(root / "run")
    run_training("ppo", "gymnax:CartPole-v1", entry.smoke_config(), seeds=[0], segments=2, run_dir=run_dir,
                 progress=False)
    from rlsuite.data import BuildSpec, build, save_minari

    ds = build(BuildSpec(env_id="gymnax:Pendulum-v1", kind="random", size=400))
    ds_path = save_minari(ds, str(root / "data"), dataset_id="smoke-v0")
    return {"run": run_dir, "data": ds_path, "root": str(root)}


def _cli_cases(run, data, root):
    odice = ["train", "odice", *PEND, "--data", data]
    bc = ["train", "bc", *PEND, "--data", data]
    pg = ["--horizon", "50", "--batch-episodes", "2", "--num-iterations", "4", "--eval-every", "2",
          "--eval-episodes", "2"]
    new = os.path.join(root, "new-run")
    return [
        # (argv, substrings the message must contain)
        (["train", "sac"], ["'sac'"]),
        (["train", "ppo", "--env", "gymnax:CartPol-v1"], ["CartPol-v1"]),
        (["train", "ppo", "--env", "gymnax:MNISTBandit-bsuite"], ["MNISTBandit"]),
        (["train", "ppo", "--total-timesteps", "1.5"], ["1.5"]),
        (["train", "ppo", "--total-steps", "1.5"], ["1.5"]),
        (["train", "ppo", "--seed0", "-1", *PPO_SMOKE], ["--seed0", "-1"]),
        (["train", "ppo", "--seed0", "1.7"], ["1.7"]),
        (["train", "ppo", "--seeds", "0", *PPO_SMOKE], ["--seeds", "0"]),
        (["train", "ppo", "--lr", "-0.001", *PPO_SMOKE], ["PPOConfig.lr", "-0.001"]),
        (["train", "ppo", "--gamma", "1.5", *PPO_SMOKE], ["PPOConfig.gamma", "1.5"]),
        (["train", "ppo", "--gae-lambda", "-0.1", *PPO_SMOKE], ["gae_lambda", "-0.1"]),
        (["train", "ppo", "--clip-eps", "0", *PPO_SMOKE], ["clip_eps", "0"]),
        (["train", "ppo", "--max-grad-norm", "-1", *PPO_SMOKE], ["max_grad_norm", "-1"]),
        (["train", "ppo", "--hparam", "lr=-1", *PPO_SMOKE], ["hparam lr", "-1"]),
        (["train", "ppo", "--hparam", "ent_coef=nan", *PPO_SMOKE], ["ent_coef", "nan"]),
        (["train", "ppo", "--hparam", "lr", *PPO_SMOKE], ["'lr'"]),
        (["train", "ppo", "--hparam", "nosuch=1", *PPO_SMOKE], ["nosuch"]),
        (["train", "ppo", "--eval-episodes", "0"], ["eval_episodes", "0"]),
        (["train", "ppo", "--num-envs", "0"], ["num_envs", "0"]),
        (["train", "ppo", "--segments", "0", *PPO_SMOKE], ["--segments", "0"]),
        (["train", "ppo", "--keep-checkpoints", "-1", *PPO_SMOKE], ["--keep-checkpoints", "-1"]),
        (["train", "ppo", "--env-kwargs", "max_steps_in_episode=-5", *PPO_SMOKE], ["max_steps_in_episode", "-5"]),
        (["train", "ppo", "--env-kwargs", "max_steps_in_episode=1.5", *PPO_SMOKE], ["max_steps_in_episode", "1.5"]),
        (["train", "ppo", "--env-kwargs", "nosuch=1", *PPO_SMOKE], ["nosuch"]),
        (["train", "ppo", "--env-kwargs", "garbage", *PPO_SMOKE], ["garbage"]),
        (["train", "ppo", "--backend", "spring", *PPO_SMOKE], ["--backend"]),
        (["train", "ppo", "--run-dir", run, *PPO_SMOKE], [run, "already has checkpoints"]),
        (["train", "ppo", "--resume", run, "--lr", "0.1"], ["--lr 0.1"]),
        (["train", "ppo", "--resume", run, "--seeds", "3"], ["--seeds 3"]),
        (["train", "ppo", "--resume", run, "--total-steps", "99"], ["--total-steps 99"]),
        (["train", "a2c", "--resume", run], ["'a2c'"]),
        (["train", "ppo", "--resume", os.path.join(root, "nonexistent")], ["nonexistent"]),
        (["train", "a2c", "--lr", "0"], ["A2CConfig.lr", "0"]),
        (["train", "a2c", "--gamma", "0"], ["A2CConfig.gamma", "0"]),
        (["train", "reinforce", "--horizon", "0"], ["horizon", "0"]),
        (["train", "reinforce", *pg, "--hparam", "discount=2"], ["discount", "2"]),
        (["train", "nharpg", *pg, "--hparam", "gamma0=-1"], ["gamma0", "-1"]),
        (["train", "nharpg", "--num-iterations", "2.5"], ["2.5"]),
        (["train", "bpg", "--gamma", "1.5"], ["gamma", "1.5"]),
        (["train", "bpg", "--num-updates", "2", "--hparam", "noise_var=0"], ["noise_var", "0"]),
        (["train", "martingale", "--num-paths", "0"], ["num_paths", "0"]),
        (["train", "martingale", "--num-paths", "4", "--hparam", "lr=-1"], ["lr", "-1"]),
        (["train", "odice", *PEND], ["--data"]),
        (["train", "odice", *PEND, "--data", os.path.join(root, "no-such-data")], ["no-such-data"]),
        ([*odice, "--hparam", "gamma=0"], ["gamma", "0"]),
        ([*odice, "--hparam", "tau=1.5"], ["tau", "1.5"]),
        ([*bc, "--batch-size", "0"], ["batch_size", "0"]),
        ([*bc, "--hparam", "pi_lr=-1"], ["pi_lr", "-1"]),
        ([*bc, "--run-dir", new, "--seeds", "2", "--seed0", "-2"], ["--seed0", "-2"]),
        (["eval", run, "--episodes", "0"], ["--episodes", "0"]),
        (["eval", run, "--seed", "-3"], ["--seed", "-3"]),
        (["eval", os.path.join(root, "nonexistent")], ["nonexistent"]),
        (["meta", "es", "--agent", "sac", "--smoke"], ["'sac'"]),
        (["meta", "es", "--smoke", "--evolve", "nosuch", "--bounds", "nosuch=0:1"], ["nosuch"]),
        (["meta", "es", "--smoke", "--bounds", "lr=1e-4:1e-2", "--population", "0"], ["population", "0"]),
        (["meta", "es", "--smoke", "--bounds", "lr=1:0"], ["lr", "1", "0"]),
        (["meta", "es", "--smoke", "--generations", "1.5"], ["1.5"]),
    ]


def _api_cases(run, data, root):
    ppo = agents.get("ppo")
    env, p = make("gymnax:CartPole-v1")
    cfg = ppo.smoke_config()
    hp = ppo.default_hparams(cfg)
    key = jax.random.PRNGKey(0)
    train = make_train(ppo.make(cfg, env, p))
    rf = agents.get("reinforce")
    rf_train = make_train(rf.make(rf.smoke_config(), env, p))
    rf_hp = rf.default_hparams(rf.smoke_config())
    d = os.path.join(root, "api-run")
    return [
        (lambda: run_training("ppo", config=cfg, seeds=[1.7], run_dir=d, progress=False), ["1.7"]),
        (lambda: run_training("ppo", config=cfg, seeds=[-1], run_dir=d, progress=False), ["-1"]),
        (lambda: run_training("ppo", config=cfg, seeds=[0, 0], run_dir=d, progress=False), ["[0, 0]"]),
        (lambda: run_training("ppo", config=cfg, segments=2.5, run_dir=d, progress=False), ["2.5"]),
        (lambda: run_training("ppo", config=cfg, keep_checkpoints=0, run_dir=d, progress=False), ["keep_checkpoints"]),
        (lambda: run_training("ppo", config=ppo.smoke_config(total_timesteps=1500.5), run_dir=d, progress=False),
         ["1500.5"]),
        (lambda: run_training("ppo", "gymnax:Acrobot-v1", run_dir=run, resume=True, progress=False),
         ["Acrobot-v1"]),
        (lambda: run_training("ppo", run_dir=run, resume=True, progress=False, hparams={"lr": 0.5}), ["0.5"]),
        (lambda: run_training("ppo", config=cfg, run_dir=d, progress=False, hparams={"gamma": 0.0}), ["gamma", "0"]),
        (lambda: train(0, hp), ["PRNG key", "int 0"]),
        (lambda: train(key, {"lr": 1e-3}), ["PPOHParams", "dict"]),
        (lambda: train(key, hp.replace(lr=jnp.ones(3))), ["hparams.lr", "shape (3,)"]),
        (lambda: train(key, hp.replace(gamma="0.99")), ["gamma", "'0.99'"]),
        (lambda: train(key, hp.replace(lr=-1.0)), ["hparams.lr", "-1"]),
        (lambda: jax.jit(train)(jnp.zeros(3, jnp.uint32), hp), ["PRNG key", "(3,)"]),
        (lambda: jax.jit(rf_train)(key, rf_hp.replace(discount=jnp.ones(2))), ["discount", "(2,)"]),
        (lambda: rf_train(key, rf_hp.replace(discount=1.5)), ["hparams.discount", "1.5"]),
        (lambda: ppo.make(ppo.smoke_config(lr=-1.0), env, p), ["PPOConfig.lr", "-1"]),
        (lambda: evaluate_run(run, episodes=0), ["episodes", "0"]),
        (lambda: make("gymnax:CartPole-v1", max_steps_in_episode=1.5), ["max_steps_in_episode", "1.5"]),
    ]


def test_bad_input_is_refused(fixtures, capsys):
    from rlsuite.cli import main

    run, data, root = fixtures["run"], fixtures["data"], fixtures["root"]
    before = (_tree_digest(run), _tree_digest(data))
    cli, api = _cli_cases(run, data, root), _api_cases(run, data, root)
    assert len(cli) + len(api) >= 40
    families = {a[1] for a, _ in cli if a[0] == "train"} | {"es" for a, _ in cli if a[0] == "meta"}
    assert {"ppo", "a2c", "reinforce", "nharpg", "bpg", "martingale", "odice", "bc", "es"} <= families
    failures = []
    for argv, needles in cli:
        try:
            rc = main(list(argv))
        except SystemExit as e:  # tyro / argparse usage errors
            rc = e.code
        out = capsys.readouterr()
        text = out.err + out.out
        if rc != 2 or "Traceback" in text or not all(n in text for n in needles):
            failures.append(f"CLI {argv[:3]}...{argv[-2:]}: rc={rc}, wanted {needles} in {text.strip()[-300:]!r}")
    for fn, needles in api:
        try:
            fn()
        except (ValueError, FileNotFoundError) as e:
            if not all(n in str(e) for n in needles) or "\n" in str(e).strip():
                failures.append(f"API: wanted {needles} in one line, got {e!r}")
        else:
            failures.append(f"API case with {needles}: silently accepted")
    assert not failures, "\n".join(failures)
    assert (_tree_digest(run), _tree_digest(data)) == before
    assert not os.path.exists(os.path.join(root, "new-run", "checkpoints"))
    print(f"bad inputs tried: {len(cli) + len(api)} ({len(cli)} CLI, {len(api)} API); all refused")


def _corruptions(ckpt: str):
    files = sorted(os.path.relpath(os.path.join(r, f), ckpt) for r, _, fs in os.walk(ckpt) for f in fs)
    for rel in files:
        for mode in ("flip", "truncate", "delete"):
            yield rel, mode


def _corrupt(path: str, mode: str) -> None:
    if mode == "delete":
        os.remove(path)
        return
    b = bytearray(open(path, "rb").read())
    if mode == "flip":
        b[len(b) // 2] ^= 0xFF
    else:
        b = b[: len(b) // 2]
    open(path, "wb").write(bytes(b))


@pytest.fixture(scope="module")
def three_segments(tmp_path_factory):
    """A finished 2-seed PPO smoke run in 3 segments (16 updates: 6, 12, 16), every checkpoint kept."""
    full = str(tmp_path_factory.mktemp("three") / "full")
    ref = run_training("ppo", "gymnax:CartPole-v1", agents.get("ppo").smoke_config(), seeds=[0, 1], segments=3,
                       run_dir=full, progress=False, keep_checkpoints=None)
    return full, ref


def test_every_checkpoint_file_corruption_is_detected(three_segments, tmp_path, capsys):
    entry = agents.get("ppo")
    cfg = entry.smoke_config()
    full, ref = three_segments
    env, p = make("gymnax:CartPole-v1")
    agent = entry.make(cfg, env, p)
    keys = jnp.stack([jax.random.PRNGKey(0), jax.random.PRNGKey(1)])
    target = jax.eval_shape(jax.vmap(agent.init, in_axes=(0, None)), keys, entry.default_hparams(cfg))
    steps = checkpoint.list_checkpoints(full)
    assert len(steps) == 3
    last = os.path.join(full, "checkpoints", str(steps[-1]))
    tried = detected = 0
    for rel, mode in _corruptions(last):
        work = str(tmp_path / "work")
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(full, work)
        _corrupt(os.path.join(work, "checkpoints", str(steps[-1]), rel), mode)
        tried += 1
        with pytest.raises(checkpoint.CorruptCheckpointError) as err:
            checkpoint.restore(work, target)
        msg = str(err.value)
        assert os.path.join(work, "checkpoints", str(steps[-1])) in msg and "\n" not in msg, msg
        detected += 1
        if tried <= 3:  # the fallback itself (one orbax restore each) on a few
            state, step = checkpoint.restore(work, target, fallback=True, say=lambda m: None)
            assert step == steps[-2]
    # the whole newest checkpoint missing its checksum / deleted data directory
    assert tried == detected and tried >= 30
    err = capsys.readouterr().err
    assert "Traceback" not in err and "tensorstore" not in err.lower()

    # --resume falls back (saying so) and still ends bit-identical; eval of a damaged run exits 1-line 2
    from rlsuite.cli import main

    work = str(tmp_path / "resume")
    shutil.copytree(full, work)
    os.remove(os.path.join(work, "summary.json"))
    data_files = [r for r, _ in _corruptions(last) if "/d/" in r and not r.startswith("ocdbt")]
    _corrupt(os.path.join(work, "checkpoints", str(steps[-1]), data_files[0]), "flip")
    assert main(["eval", work]) == 2
    out = capsys.readouterr()
    assert "is corrupt" in out.err and "Traceback" not in out.err
    again = run_training("ppo", run_dir=work, resume=True, progress=False)
    err = capsys.readouterr().err
    assert f"falling back to checkpoint {steps[-2]}" in err
    assert again["final"] == ref["final"]
    a, _ = checkpoint.restore(full, target)
    b, _ = checkpoint.restore(work, target)
    for x, y in zip(_leaves(a), _leaves(b)):
        np.testing.assert_array_equal(x, y)
    strip = lambda path: [{k: v for k, v in json.loads(x).items() if k != "wall_s"} for x in open(path)]  # noqa: E731
    assert strip(os.path.join(work, "metrics.jsonl")) == strip(os.path.join(full, "metrics.jsonl"))
    print(f"checkpoint corruptions tried: {tried}; detected: {detected}")


def test_nan_stop_names_the_last_verified_checkpoint(tmp_path):
    run_dir = str(tmp_path / "nan")
    with pytest.raises(NonFiniteError, match="no checkpoint was written yet"):
        run_training("ppo", config=agents.get("ppo").smoke_config(), seeds=[0], segments=2, progress=False,
                     hparams={"lr": float("nan")}, run_dir=run_dir)


def test_finished_or_cut_run_resumes_without_junk(three_segments, tmp_path, capsys):
    """Segment length not dividing the update count (16 updates / 3 segments = 6, 6, 4); a run
    whose last checkpoint exists but whose report was never written; a finished run (no-op)."""
    full, ref = three_segments
    lines = open(os.path.join(full, "metrics.jsonl")).read()
    cut = str(tmp_path / "cut")
    shutil.copytree(full, cut)
    for f in ("summary.json", "results.md", "learning_curve.png"):
        os.remove(os.path.join(cut, f))
    with open(os.path.join(cut, "metrics.jsonl"), "a") as f:
        f.write('{"update": 16, "env_st')  # a line cut short by a kill
    again = run_training("ppo", run_dir=cut, resume=True, progress=False)
    assert again["final"] == ref["final"]
    assert [json.loads(x)["update"] for x in open(os.path.join(cut, "metrics.jsonl"))] == [0, 6, 12, 16]
    assert "writing its report" in capsys.readouterr().err
    before = _tree_digest(full)
    run_training("ppo", run_dir=full, resume=True, progress=False)
    assert "already finished" in capsys.readouterr().err
    assert _tree_digest(full) == before and open(os.path.join(full, "metrics.jsonl")).read() == lines


_KILLER = r"""
import os, signal, sys
from rlsuite.core import checkpoint, logging as lg
mode, at = sys.argv[1], int(sys.argv[2])
n = {"save": 0, "write": 0}
if mode == "in_checksum":   # orbax committed the checkpoint, the checksum file never written
    orig = checkpoint._write_checksum
    def patched(path, digest):
        n["save"] += 1
        if n["save"] == at:
            os.kill(os.getpid(), signal.SIGKILL)
        orig(path, digest)
    checkpoint._write_checksum = patched
elif mode == "in_metrics":  # half a metrics line written
    orig_w = lg.MetricsWriter.write
    def patched_w(self, record):
        n["write"] += 1
        if n["write"] == at:
            with open(self.path, "a") as f:
                f.write('{"update": 99, "half')
            os.kill(os.getpid(), signal.SIGKILL)
        orig_w(self, record)
    lg.MetricsWriter.write = patched_w
from rlsuite.cli import main
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.slow
def test_sigkill_at_random_points_resumes_bit_identically(tmp_path):
    flags = ["train", "ppo", "--seeds", "2", "--segments", "5", "--no-progress", *PPO_SMOKE]
    env = dict(os.environ, RLSUITE_JAX_CACHE=str(tmp_path / "jaxcache"))
    full = str(tmp_path / "full")
    subprocess.run([sys.executable, "-m", "rlsuite.cli", *flags, "--run-dir", full], env=env, check=True,
                   capture_output=True)
    strip = lambda path: [{k: v for k, v in json.loads(x).items() if k != "wall_s"} for x in open(path)]  # noqa: E731
    ref_lines, ref_final = strip(os.path.join(full, "metrics.jsonl")), json.load(open(os.path.join(full, "summary.json")))["final"]
    rng = random.Random(14)
    trials = [("in_checksum", 2), ("in_checksum", 4), ("in_metrics", 3), ("in_metrics", 5)]  # 4 segments: 4, 8, 12, 16
    trials += [("timer", rng.uniform(0.0, 1.5)) for _ in range(4)]
    results = []
    for i, (mode, at) in enumerate(trials):
        run_dir = str(tmp_path / f"cut{i}")
        if mode == "timer":
            proc = subprocess.Popen([sys.executable, "-m", "rlsuite.cli", *flags, "--run-dir", run_dir], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            t0 = time.monotonic()
            while not os.path.exists(os.path.join(run_dir, "metrics.jsonl")) and proc.poll() is None:
                if time.monotonic() - t0 > 300:
                    break
                time.sleep(0.01)
            time.sleep(at)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        else:
            proc = subprocess.run([sys.executable, "-c", _KILLER, mode, str(at), *flags, "--run-dir", run_dir],
                                  env=env, capture_output=True)
            assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
        if os.path.exists(os.path.join(run_dir, "summary.json")):
            results.append((mode, "finished before the kill"))
            continue
        if checkpoint.latest_step(run_dir) is None:  # killed before the first checkpoint: start again
            shutil.rmtree(run_dir)
            res = subprocess.run([sys.executable, "-m", "rlsuite.cli", *flags, "--run-dir", run_dir], env=env,
                                 capture_output=True, text=True)
        else:
            res = subprocess.run([sys.executable, "-m", "rlsuite.cli", "train", "ppo", "--resume", run_dir,
                                  "--no-progress"], env=env, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-2000:]
        assert "Traceback" not in res.stderr
        assert strip(os.path.join(run_dir, "metrics.jsonl")) == ref_lines, (mode, at)
        assert json.load(open(os.path.join(run_dir, "summary.json")))["final"] == ref_final
        content = lambda d: {s: json.load(open(os.path.join(d, "checkpoints", str(s), checkpoint.CHECKSUM_FILE)))[  # noqa: E731
            "content_sha256"] for s in checkpoint.list_checkpoints(d)}
        assert content(run_dir) == content(full)  # same saved states, bit for bit
        results.append((mode, "bit-identical"))
    print(f"SIGKILL trials: {len(results)}; {results}")
    assert sum(r == "bit-identical" for _, r in results) >= 6


def test_loss_explosion_warns_once_and_progress_fits_80_columns(capsys):
    from rlsuite.core.logging import Progress
    from rlsuite.train import LossWatch

    w = LossWatch()
    assert w.check({"loss/value": np.array([0.5, 0.7])}) == []
    assert w.check({"loss/value": np.array([2.0, 3.0])}) == []
    msgs = w.check({"loss/value": np.array([4e3, 9e3])})
    assert len(msgs) == 1 and "loss/value exploded" in msgs[0]
    assert w.check({"loss/value": np.array([5e4, 9e4])}) == []  # once per key
    bar = Progress(123_456_789, "ppo CartPole-v1 x16", 0, True, counter="env_steps", metric="return")
    bar.update(98_765_432, -1234.5678)
    bar.close()
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert len(line) <= 80, line


_IMPORT_PROBE = r"""
import io, sys, contextlib
from rlsuite.cli import main
for argv in (["train", "ppo", "--num-envs", "0"], ["train", "bpg", "--num-episodes", "0"],
             ["train", "a2c", "--lr", "-1"], ["train", "gbrl-ppo", "--num-envs", "0"]):
    with contextlib.redirect_stderr(io.StringIO()) as err:
        assert main(argv) == 2, argv
    assert argv[-2] in err.getvalue().replace("_", "-") or argv[-2][2:].replace("-", "_") in err.getvalue(), err.getvalue()
from rlsuite import agents
for name in agents.names():
    agents.get(name).load()
heavy = sorted(m for m in ("gymnax", "brax", "mujoco", "seaborn", "matplotlib", "orbax") if m in sys.modules)
print(",".join(heavy))
"""


def test_config_errors_and_agent_modules_do_not_import_env_libraries():
    """`--help` and bad config values answer fast because nothing on their path imports gymnax,
    brax or orbax (>1 s of imports each): checked by what is in ``sys.modules``, not by timing."""
    res = subprocess.run([sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "RLSUITE_CACHE": "/nonexistent-rlsuite-cache"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip() == "", f"imported at module load: {res.stdout.strip()}"
