# Two commands for a newcomer: `make demo` and `make test`. Each creates .venv itself.
# `make test-fast` is the quick loop while working: ruff, then every test not marked `slow`.
VENV := .venv
PYTHON := $(VENV)/bin/python
UV := $(VENV)/bin/uv
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1

.PHONY: install demo test test-fast lint clean

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
	$(VENV)/bin/pytest -m "not image"

test-fast: lint
	$(VENV)/bin/pytest -m "not slow and not image"

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache

# docker/Dockerfile built for real with podman and a pod's `kedro run` in the image (minutes;
# needs the Debian packages podman and mmdebstrap; tests/test_image.py). Not part of `make test`.
.PHONY: test-image
test-image: install
	$(VENV)/bin/pytest -m image tests/test_image.py
