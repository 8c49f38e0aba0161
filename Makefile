# Two entry points (README): `make demo` runs the main job, `make test` the fast tests.
# Both create .venv (Python >= 3.10) and install rlsuite from the tested constraints file.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,data]"
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/rlsuite train ppo --env gymnax:CartPole-v1 --seeds 8 --total-steps 500000

# Two pytest-xdist workers (work stealing balances the tail): the fast tests are dominated by XLA
# compilation, which is single-threaded, so two processes keep both cores busy.
test: $(BIN)/.installed
	$(BIN)/python -m pytest -q -n 2 --dist worksteal

# Every experiment and benchmark script in its --smoke mode (tiny sizes, < 60 s each; writes to
# /tmp/rlsuite-smoke, never to results/), two at a time, so a script cannot rot silently; then the
# results tables are built from those files (`rlsuite reproduce`, so the table builder is exercised
# too).  A failing script prints its log tail and fails the target; no new script starts after it.
# Files starting with `_` are helpers, not scripts.  One script alone: .ci/smoke_one.sh FILE.
smoke: $(BIN)/.installed
	$(BIN)/rlsuite reproduce all --scale smoke --jobs 2

test-slow: $(BIN)/.installed
	$(BIN)/python -m pytest -q -m slow

lint: $(BIN)/.installed
	$(BIN)/ruff check rlsuite envs tests benchmarks experiments

.PHONY: install demo test test-slow lint smoke
