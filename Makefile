# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv and install into it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Label Studio's server pins Django, botocore and pyarrow releases the job cannot share: it gets a venv of its
# own, which the test importing pre-labels into a running server starts it from.
LABEL_STUDIO := .venv-labelstudio
PYTEST_ARGS ?=

.PHONY: demo demo-davis test lint typecheck unit clean

# Reinstall only when the dependency list changes.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(LABEL_STUDIO)/.installed:
	test -x $(LABEL_STUDIO)/bin/python || $(PYTHON) -m venv $(LABEL_STUDIO)
	$(LABEL_STUDIO)/bin/python -m pip install --quiet 'label-studio==1.23.2'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python -m savos_job.demo --out demo-output

# Real video: `make demo-davis DAVIS=path/to/DAVIS` (a DAVIS-2016 copy of your own; it is not shipped).
demo-davis: $(VENV)/.installed
	@test -n "$(DAVIS)" || { echo "make demo-davis DAVIS=path/to/DAVIS (a DAVIS-2016 root of your own)"; exit 2; }
	$(BIN)/python -m savos_job.demo --out demo-output --davis $(DAVIS)

lint: $(VENV)/.installed
	$(BIN)/ruff check savos jobs tests
	$(BIN)/ruff format --check savos jobs tests

typecheck: $(VENV)/.installed
	$(BIN)/mypy

unit: $(VENV)/.installed $(LABEL_STUDIO)/.installed
	SAVOS_LABEL_STUDIO=$(abspath $(LABEL_STUDIO)/bin/label-studio) $(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

clean:
	rm -rf $(VENV) $(LABEL_STUDIO) demo-output .pytest_cache .mypy_cache .ruff_cache
