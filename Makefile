PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LAMBDA_FUNCTIONS := SlackFunction LazyFailureFunction SesFeedbackFunction DeviceRegistrationFunction DnsMirrorFunction AlarmsFunction

.PHONY: demo test test-slow test-all lint typecheck unit unit-and-typecheck bench smoke clean $(addprefix build-,$(LAMBDA_FUNCTIONS))

# The virtualenv is (re)built whenever pyproject.toml changes.
# A venv whose creation failed half-way (no ensurepip) has a python but no pip: it is made again.
$(STAMP): pyproject.toml
	test -x $(BIN)/pip || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/opsbot demo

test: $(STAMP) lint unit-and-typecheck

lint: $(STAMP)
	$(BIN)/ruff check bot handlers tests bench
	$(BIN)/ruff format --check bot handlers tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# The tests that assert on the wall clock run alone first (with mypy beside them: they mostly wait, on
# timeouts, sockets and sleeps, and leave a core idle), then the rest in parallel (each worker has its own
# moto, ports and tables). In that order the serial run, one process, writes the bytecode of every test
# module with its asserts rewritten (and Hypothesis's cache of their constants) before the workers start:
# in a fresh clone, started first, each of the six parallel processes rewrote and compiled all of tests/
# (about 4 s of CPU each, at once). Both phases run even when the first fails; the target fails if either
# (or mypy) did.
#
# Five workers for two cores (2 a core, plus one): many tests wait (on tails, timeouts, sockets), so
# fewer workers leave the CPU idle. Measured back to back on 2 cores (other suites running): 4 workers
# 114 s, 5 workers 101 s, 6 workers 126 s for the parallel phase; a fresh clone's `make test` in 110-126 s
# (157-184 s before the session-7 changes). bench/README.md (Developer loop) has the figures and commands.
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(2 * (os.cpu_count() or 1) + 1)')
# The slow tests run whole demos and builds in subprocesses (CPU, not waiting): three workers for two cores.
SLOW_WORKERS ?= $(shell $(PYTHON) -c 'import os; print((3 * (os.cpu_count() or 1) + 1) // 2)')
# Bytecode is written (into the git-ignored __pycache__ folders) even where PYTHONDONTWRITEBYTECODE is set:
# pytest keeps each test module with its asserts rewritten as bytecode, and without it every pytest process
# (each worker, then the serial run) rewrites all of tests/ again, about 4 s of CPU each.
#
# worksteal: a worker that runs out of tests takes queued ones from another, so a run of long tests
# queued on one worker does not leave the others idle at the end.
# `make test` is the developer loop: everything but the tests marked slow (real processes: the demo, servers,
# nsd, builds, cfn-lint; the demo stack seeded in process; the fault matrix; the two longest property runs).
# `make test-slow` runs those; CI runs both (`make test-all`), so every test still runs on every landing.
# The property tests try a third of their examples here (HYPOTHESIS_PROFILE=dev, tests/support/properties.py);
# .ci/run sets HYPOTHESIS_PROFILE=full, so CI's `make test` tries every one.
HYPOTHESIS_PROFILE ?= dev
LOOP_ENV = PYTHONDONTWRITEBYTECODE= HYPOTHESIS_PROFILE=$(HYPOTHESIS_PROFILE)
SERIAL_RUN = $(LOOP_ENV) $(BIN)/pytest -m "serial and not slow"
PARALLEL_RUN = $(LOOP_ENV) $(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal -m "not serial and not slow"

unit: $(STAMP)
	$(SERIAL_RUN); serial=$$?; \
	$(PARALLEL_RUN); parallel=$$?; \
	test $$serial -eq 0 && test $$parallel -eq 0

unit-and-typecheck: $(STAMP)
	$(BIN)/mypy > .mypy.out 2>&1 & mypy=$$!; \
	$(SERIAL_RUN); serial=$$?; \
	wait $$mypy; typed=$$?; cat .mypy.out; rm -f .mypy.out; \
	$(PARALLEL_RUN); parallel=$$?; \
	test $$serial -eq 0 && test $$typed -eq 0 && test $$parallel -eq 0

test-slow: $(STAMP)
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -n $(SLOW_WORKERS) --dist worksteal -m "slow and not serial"
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -m "slow and serial"

test-all: test test-slow

# Every bench runs, even after one misses its target; the misses are listed at the end and fail the target.
bench: $(STAMP)
	@missed=""; for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || missed="$$missed $$script"; done; \
	if [ -n "$$missed" ]; then echo "targets missed in:$$missed"; exit 1; fi; echo "every bench met its targets"

# The doctor and read-only commands against a real sandbox account: only with OPSBOT_SMOKE=1 and AWS
# credentials (otherwise one sentence says it was skipped). CI does not run it.
smoke: $(STAMP)
	$(BIN)/python scripts/smoke.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

# `sam build` calls build-<LogicalId> (template.yaml: BuildMethod makefile) with ARTIFACTS_DIR set; samconfig.toml
# builds in the source folder, so SAM does not first copy this checkout (and its .venv) once per function.
# Everything is built for the template's runtime and architecture, not this machine's: the dependencies
# are the lock's wheels for that platform, and the bytecode is compiled by the runtime's Python version
# (Python ignores bytecode tagged for another version, so a cold start would compile everything again).
# The bytecode is never checked against the source (unchecked-hash): Lambda's file system is read-only
# and an artifact never changes once built.
LAMBDA_PYTHON_VERSION := $(shell sed -n 's/^ *Runtime: *python\([0-9][0-9.]*\).*/\1/p' template.yaml | head -n 1)
# Architectures as a flow list ([arm64], ["arm64"]) or a block list (the next line's "- arm64").
LAMBDA_ARCHITECTURE := $(shell sed -n '/^ *Architectures:/{N;p;q;}' template.yaml | grep -o -m 1 -E 'arm64|x86_64' | head -n 1)
LAMBDA_PLATFORM = manylinux2014_$(if $(filter arm64,$(LAMBDA_ARCHITECTURE)),aarch64,x86_64)
# The runtime's interpreter: python3.12 on the PATH (a pyenv shim that cannot run counts as absent), else pyenv's.
LAMBDA_PYTHON ?= $(firstword $(foreach candidate,python$(LAMBDA_PYTHON_VERSION) $(sort $(wildcard $(HOME)/.pyenv/versions/$(LAMBDA_PYTHON_VERSION).*/bin/python$(LAMBDA_PYTHON_VERSION))),$(shell $(candidate) -c 'import sys; print("$(candidate)" if "%d.%d" % sys.version_info[:2] == "$(LAMBDA_PYTHON_VERSION)" else "")' 2>/dev/null)))
LAMBDA_COMPILE = "$(LAMBDA_PYTHON)" -m compileall -q -j 0 --invalidation-mode unchecked-hash
LAYER_PIP_INSTALL ?= "$(LAMBDA_PYTHON)" -m pip install --quiet --no-compile --disable-pip-version-check --root-user-action=ignore \
	--platform $(LAMBDA_PLATFORM) --implementation cp --python-version $(LAMBDA_PYTHON_VERSION) --only-binary=:all: \
	--require-hashes -r requirements.lock --target "$(ARTIFACTS_DIR)/python"

.PHONY: lambda-python lock lock-check build-DependenciesLayer

# Refuses, with the reason, rather than ship bytecode that the runtime would ignore.
lambda-python:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: sam build sets it (make build-<Function> ARTIFACTS_DIR=/some/folder by hand)." >&2; exit 1; }
	@test -n "$(LAMBDA_PYTHON_VERSION)" || { echo "template.yaml names no pythonX.Y Runtime, so the build cannot tell which Python to compile for." >&2; exit 1; }
	@test -n "$(LAMBDA_ARCHITECTURE)" || { echo "template.yaml names no arm64 or x86_64 Architectures, so the build cannot tell which platform's wheels to ship." >&2; exit 1; }
	@"$(LAMBDA_PYTHON)" -c 'import sys; sys.exit("%d.%d" % sys.version_info[:2] != "$(LAMBDA_PYTHON_VERSION)")' 2>/dev/null || { \
	  echo "The functions run python$(LAMBDA_PYTHON_VERSION) (template.yaml), but '$(or $(LAMBDA_PYTHON),python$(LAMBDA_PYTHON_VERSION))' is not a working Python $(LAMBDA_PYTHON_VERSION): install it (or pass LAMBDA_PYTHON=/path/to/python$(LAMBDA_PYTHON_VERSION)), or build in the SAM build image with 'sam build --use-container'. Bytecode compiled by another version would be ignored by the runtime." >&2; exit 1; }

# The dependencies, once for every function: exactly the lock's versions and hashes, wheels for the
# runtime's platform only (no source builds, which would compile for this machine).
build-DependenciesLayer: lambda-python
	rm -rf "$(ARTIFACTS_DIR)/python"
	$(LAYER_PIP_INSTALL)
	rm -rf "$(ARTIFACTS_DIR)/python/bin"
	$(LAMBDA_COMPILE) "$(ARTIFACTS_DIR)/python"

# opsbot's own code only; its dependencies come from DependenciesLayer (/opt/python on Lambda).
$(addprefix build-,$(LAMBDA_FUNCTIONS)): lambda-python
	rm -rf "$(ARTIFACTS_DIR)/bot" "$(ARTIFACTS_DIR)/handlers"
	cp -R bot handlers "$(ARTIFACTS_DIR)/"
	find "$(ARTIFACTS_DIR)/bot" "$(ARTIFACTS_DIR)/handlers" -name __pycache__ -prune -exec rm -rf {} +
	$(LAMBDA_COMPILE) "$(ARTIFACTS_DIR)/bot" "$(ARTIFACTS_DIR)/handlers"

# requirements.lock: every runtime dependency of pyproject.toml, pinned with hashes, for the runtime's platform.
# `make lock` keeps the pinned versions that still satisfy pyproject.toml; `make lock UPGRADE=1` takes the newest.
LOCK_COMPILE = $(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes --only-binary :all: --custom-compile-command "make lock" --python-version $(LAMBDA_PYTHON_VERSION) \
	--python-platform $(if $(filter arm64,$(LAMBDA_ARCHITECTURE)),aarch64,x86_64)-manylinux2014
lock: $(STAMP)
	$(LOCK_COMPILE) $(if $(UPGRADE),--upgrade) --output-file requirements.lock

# CI: the committed lock is what `make lock` makes of pyproject.toml (it fails when a dependency was added,
# removed or re-bounded without running `make lock`).
lock-check: $(STAMP)
	@tmp=$$(mktemp -d) && cp requirements.lock "$$tmp/requirements.lock" && \
	$(LOCK_COMPILE) --output-file "$$tmp/requirements.lock" && \
	if diff -u requirements.lock "$$tmp/requirements.lock"; then rm -rf "$$tmp"; echo "requirements.lock matches pyproject.toml"; \
	else rm -rf "$$tmp"; echo "requirements.lock does not match pyproject.toml: run 'make lock' and commit it." >&2; exit 1; fi
