# Two commands for a newcomer: `make demo` and `make test`. Each creates .venv itself.
VENV := .venv
PYTHON := $(VENV)/bin/python
UV := $(VENV)/bin/uv
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1

.PHONY: install demo test lint clean

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	$(UV) pip install --quiet --compile-bytecode --python $(PYTHON) --constraint constraints.txt --editable ".[dag,airflow,test]"
	touch $@

install: $(VENV)/.installed

demo: install
	bash examples/demo.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache

# The oldest and newest supported Airflow/provider sets (constraints/): builds the oldest venv
# once (cached in ~/.cache/kedro-gcs-bridge/venvs/ by the constraints file's hash).
.PHONY: test-providers
test-providers: install
	$(VENV)/bin/pytest -m providers tests/test_providers.py
