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

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

test-slow: $(BIN)/.installed
	$(BIN)/python -m pytest -q -m slow

lint: $(BIN)/.installed
	$(BIN)/ruff check rlsuite envs tests benchmarks experiments

.PHONY: install demo test test-slow lint
