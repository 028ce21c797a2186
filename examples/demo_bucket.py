"""What the demo does on its GCS bucket: upload the raw inputs, and compare the outputs a replay
left there with those of a plain `kedro run` of the same project.

    python demo_bucket.py upload LOCAL_DIR gs://bucket/path
    python demo_bucket.py compare gs://bucket/root PROJECT_DIR

Both go through gcsfs, so they reach whatever `STORAGE_EMULATOR_HOST` points at (the demo's
local emulator) or real GCS. `compare` exits 1 on any difference.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import yaml

REPORTS = "data/08_reporting"
MODEL = "data/06_models/regressor.pickle"
PLOT = f"{REPORTS}/shuttle_passenger_capacity_plot.png"


def upload(local_dir: Path, url: str) -> None:
    """Copies every file under `local_dir` to `url`, keeping relative paths."""
    fs, root = fsspec.core.url_to_fs(url)
    for path in sorted(p for p in local_dir.rglob("*") if p.is_file()):
        fs.put_file(str(path), f"{root}/{path.relative_to(local_dir).as_posix()}")
        print(f"  uploaded {path.name} ({path.stat().st_size} bytes) -> {url}/{path.name}")


def _latest(fs: fsspec.AbstractFileSystem, versioned: str) -> str:
    """The newest version of a Kedro versioned dataset (`<path>/<version>/<name>`)."""
    name = versioned.rsplit("/", 1)[-1]
    versions = sorted(fs.glob(f"{versioned}/*/{name}"))
    if not versions:
        raise FileNotFoundError(f"no version of {versioned}")
    return versions[-1]


def _model_and_plot(url: str) -> tuple[Any, bytes]:
    fs, root = fsspec.core.url_to_fs(url)
    with fs.open(_latest(fs, f"{root}/{MODEL}"), "rb") as file:
        model = pickle.load(file)  # the demo's own model, just written
    return model, fs.cat_file(_latest(fs, f"{root}/{PLOT}"))


def compare(bucket_root: str, project: Path) -> bool:
    """Prints one line per output; True when the bucket's outputs equal the plain run's."""
    fs, root = fsspec.core.url_to_fs(bucket_root)
    bucket_metrics = json.loads(fs.cat_file(f"{root}/{REPORTS}/metrics.json"))
    plain_metrics = json.loads((project / REPORTS / "metrics.json").read_text(encoding="utf-8"))
    bucket_model, bucket_plot = _model_and_plot(bucket_root)
    plain_model, plain_plot = _model_and_plot(project.as_uri())

    features = yaml.safe_load((project / "conf/base/parameters.yml").read_text())
    table = pd.read_parquet(project / "data/03_primary/model_input_table.parquet")
    inputs = table[features["model_options"]["features"]]
    same_predictions = np.array_equal(bucket_model.predict(inputs), plain_model.predict(inputs))

    r2 = plain_metrics["r2_score"]
    checks = {
        "metrics.json": (bucket_metrics == plain_metrics, f"r2_score {r2:.4f}"),
        "regressor.pickle": (same_predictions, f"same predictions on {len(inputs)} rows"),
        "passenger capacity plot": (bucket_plot == plain_plot, f"{len(plain_plot)} bytes of PNG"),
    }
    for name, (equal, detail) in checks.items():
        print(f"  {name:<24} {'equal' if equal else 'DIFFERENT'} ({detail})")
    return all(equal for equal, _ in checks.values())


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "upload":
        upload(Path(argv[1]), argv[2].rstrip("/"))
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        return 0 if compare(argv[1].rstrip("/"), Path(argv[2])) else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
