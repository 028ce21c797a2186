# Two commands for a newcomer: `make demo` and `make test`. Each creates .venv itself.
# `make test-fast` is the quick loop while working: ruff, then every test not marked `slow`.
VENV := .venv
PYTHON := $(VENV)/bin/python
UV := $(VENV)/bin/uv
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1

.PHONY: install bytecode demo test test-fast test-real test-bench test-image test-providers test-airflow lint clean

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	$(UV) pip install --quiet --compile-bytecode --python $(PYTHON) --constraint constraints.txt --editable ".[dag,airflow,test]"
	touch $@

install: $(VENV)/.installed

# The package is installed editable, so `uv --compile-bytecode` leaves its own modules out, and
# where PYTHONDONTWRITEBYTECODE is set (as on this project's CI machines) every `kedro` process
# a test starts would compile them again (~0.3 s of CPU each for the runner or create).
# Written here as a wheel install writes them; up-to-date files are skipped.
bytecode: install
	$(PYTHON) -m compileall -q kedro_gcs_bridge

demo: bytecode
	bash examples/demo.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The real parts (the image, a real Airflow deployment, the oldest provider set) are jobs of
# their own: `make test-real`, which .ci/run runs after `make test`.
REAL := image or airflow_real or providers
# The benchmark scripts' smoke runs (tests/test_benchmarks.py): `make test-bench`, a CI job of
# its own after `make test-real`.
NOT_IN_TEST := $(REAL) or bench
# Three pytest workers (pytest-xdist), each test file whole on one of them: slow tests wait on
# processes (`kedro run`, replay, Airflow), pod start delays and backoffs, so on 2 CPUs two
# workers left a third of a CPU idle (1.64 CPUs busy; three: 1.92, 14.7 -> 12.0 min).
# `make test WORKERS=0` runs in one process.
WORKERS ?= 3
XDIST := $(if $(filter 0,$(WORKERS)),-p no:xdist,-n $(WORKERS) --dist loadfile)

test: lint bytecode
	$(VENV)/bin/pytest $(XDIST) -m "not ($(NOT_IN_TEST))"

test-fast: lint bytecode
	$(VENV)/bin/pytest $(XDIST) -m "not slow and not ($(NOT_IN_TEST))"

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache

# Minutes each: docker/Dockerfile built with podman and a pod run in it (needs the Debian
# packages podman and mmdebstrap, tests/test_image_build.py); the local variant under a real
# scheduler, DAG processor and API server (tests/test_airflow_real.py); the oldest supported
# Airflow/provider set, its venv built once and cached in ~/.cache/kedro-gcs-bridge/
# (tests/test_providers.py).
test-real: bytecode
	$(VENV)/bin/pytest -m "$(REAL)"

test-bench: bytecode
	$(VENV)/bin/pytest -m bench

test-image: install
	$(VENV)/bin/pytest -m image

test-airflow: install
	$(VENV)/bin/pytest -m airflow_real

test-providers: install
	$(VENV)/bin/pytest -m providers
