PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LAMBDA_FUNCTIONS := SlackFunction LazyFailureFunction SesFeedbackFunction DeviceRegistrationFunction DnsMirrorFunction
PIP_INSTALL ?= $(PYTHON) -m pip install --quiet --target "$(ARTIFACTS_DIR)" -r requirements.txt

.PHONY: demo test lint typecheck unit bench smoke clean $(addprefix build-,$(LAMBDA_FUNCTIONS))

# The virtualenv is (re)built whenever pyproject.toml changes.
# A venv whose creation failed half-way (no ensurepip) has a python but no pip: it is made again.
$(STAMP): pyproject.toml
	test -x $(BIN)/pip || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/opsbot demo

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check bot handlers tests bench
	$(BIN)/ruff format --check bot handlers tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite in parallel (one worker per core: each has its own moto, ports and tables), then the tests that
# assert on the wall clock alone, so that a busy machine cannot make them fail.
unit: $(STAMP)
	$(BIN)/pytest -n auto -m "not serial"
	$(BIN)/pytest -m serial

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

# `sam build` calls build-<FunctionLogicalId> (template.yaml: BuildMethod makefile) with ARTIFACTS_DIR set.
# opsbot's modules are compiled here because Lambda's file system is read-only: without shipped bytecode
# every cold start compiles them again (pip already compiles the dependencies). The artifact never changes
# once built, so the bytecode need not be checked against the source (unchecked-hash).
$(addprefix build-,$(LAMBDA_FUNCTIONS)):
	test -n "$(ARTIFACTS_DIR)"
	$(PIP_INSTALL)
	rm -rf "$(ARTIFACTS_DIR)/bot" "$(ARTIFACTS_DIR)/handlers"
	cp -R bot handlers "$(ARTIFACTS_DIR)/"
	find "$(ARTIFACTS_DIR)/bot" "$(ARTIFACTS_DIR)/handlers" -name __pycache__ -prune -exec rm -rf {} +
	$(PYTHON) -m compileall -q --invalidation-mode unchecked-hash "$(ARTIFACTS_DIR)/bot" "$(ARTIFACTS_DIR)/handlers"
