"""The user journey end to end, as `make demo` runs it: examples/demo.sh itself, checked by its
output and exit code, so that what the README promises of `make demo` is tested.

The demo takes the example project (its catalog on local disk, like the Kedro spaceflights
starter), lets `validate` name what GKE pods would lack or lose, moves the catalog to a bucket
of a local GCS emulator with `kedro gcs-bridge catalog`, uploads the raw inputs, writes the DAG
with `kedro airflow create -e gcs`, replays it with every task isolated as a pod, and compares
the outputs on the bucket with a plain `kedro run`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "demo.sh"
TASKS = ("companies", "shuttles", "split", "train_model_node", "evaluate_model_node")
#: What validate must name: raw inputs the image leaves out, and outputs a pod's disk loses.
LOCAL_DISK = (
    "raw input 'companies'",
    "raw input 'shuttles'",
    "raw input 'reviews'",
    "output 'shuttle_passenger_capacity_plot'",
    "output 'metrics'",
)


def _section(out: str, step: int) -> str:
    """The screen output of one numbered step of the demo."""
    start = out.index(f"\n== {step}. ")
    end = out.find(f"\n== {step + 1}. ", start)
    return out[start : end if end != -1 else len(out)]


@pytest.mark.journey
@pytest.mark.slow
def test_make_demo_walks_the_journey_and_matches_a_plain_run(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    env = {**os.environ, "DEMO_DIR": str(work), "DEMO_BIN": str(Path(sys.executable).parent)}
    env.pop("STORAGE_EMULATOR_HOST", None)  # the demo starts its own emulator
    done = subprocess.run(
        ["bash", str(DEMO)], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    out = done.stdout
    assert done.returncode == 0, f"{out[-6000:]}\n--- stderr\n{done.stderr[-3000:]}"

    validate = _section(out, 2)
    for dataset in LOCAL_DISK:  # each said once, after the pipelines it affects
        (line,) = [line for line in validate.splitlines() if f"error: {dataset}" in line]
        assert "__default__" in line.split(": error: ")[0]
    assert "(validate exited 1" in validate

    catalog = _section(out, 3)
    assert "wrote conf/gcs/catalog.yml: 9 local-disk entries moved to gs://example-bucket/" in (
        catalog
    )
    assert "gcloud storage cp -r data/01_raw gs://example-bucket/spaceflights/data/01_raw" in (
        catalog
    )
    assert _section(out, 4).count("  uploaded ") == 3
    assert "Storage (each GKE pod has its own disk)" in _section(out, 5)
    assert "spaceflights_gcs_dag.py" in _section(out, 6)

    replay = _section(out, 7)
    assert "isolated: each task runs in a fresh copy of the project as the image holds it" in (
        replay
    )
    assert "without data" in replay
    for task in TASKS:
        assert re.search(rf"^\[\d/6\] {task}: success", replay, re.MULTILINE), replay
    assert "[6/6] " in replay and "failed" not in replay

    compare = _section(out, 8)
    for output in ("metrics.json", "regressor.pickle", "passenger capacity plot"):
        assert re.search(rf"^  {output} +equal ", compare, re.MULTILINE), compare
    assert "DIFFERENT" not in compare

    # The screen shows the steps; Kedro's INFO records and OmegaConf's warning are in the log.
    screen = out + done.stderr
    assert "INFO" not in screen and "register_new_resolver" not in screen
    log = (work / "demo.log").read_text(encoding="utf-8")
    assert "Running node: evaluate_model_node" in log
    assert re.search(r"^Demo done in \d+ s\. Every command's detail: .*demo\.log$", out, re.M)
