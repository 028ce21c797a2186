"""Issue 22 item 2, the image for real: docker/Dockerfile built by podman from the example
project, then a pod's `kedro run --runner kedro_gcs_bridge.GCSRunner` run in that image as uid
1000 against a GCS emulator on 127.0.0.1.

No container registry is reachable here, so the base image is made from Debian packages
(mmdebstrap of bookworm with Debian's python3 3.11, python3-venv and pip, plus this machine's CA
bundle so pip can reach PyPI through its proxy), imported with `podman import` and passed as
`BASE_IMAGE`; it is kept in podman's store between runs. `podman run` cannot start a container
in this sandbox (crun fails to set rlimits), so the pod's command runs as a RUN step of a test
Containerfile `FROM` the project image, with the host's network (the emulator listens on the
host's 127.0.0.1). Marked `image` (`make test-image`); skipped where podman or mmdebstrap is
missing. The build takes minutes (pip downloads the example's dependencies from PyPI).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _gcs_emulator import BUCKET

from kedro_gcs_bridge.pod.store import HandoffStore

pytestmark = pytest.mark.image

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "spaceflights"
UV = Path(sys.executable).parent / "uv"
#: Debian's own Python (3.11 in bookworm), venv and pip; `python` and `pip` as the Python
#: images name them.
DEBIAN_PACKAGES = "python3,python3-venv,python3-pip,python-is-python3,ca-certificates"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PROJECT_IMAGE = "localhost/kedro-gcs-bridge-test/spaceflights:latest"
#: A fixed wheel timestamp: the same package gives the same wheel, so podman reuses the
#: dependency layer until the package (or the example's dependencies) change.
SOURCE_DATE_EPOCH = "1767225600"
#: The pod's command for the example's `companies` group, as the generated DAG writes it.
POD_ARGS = "run --runner kedro_gcs_bridge.GCSRunner --pipelines __default__ --env pod"
POD_ARGS += " --nodes preprocess_companies_node"
#: Secrets of other envs in the build context, which the ignore file must keep out.
SECRETS = ("conf/local/credentials.yml", "conf/dev/credentials.yml", "conf/prod/credentials.yaml")

_MISSING = [tool for tool in ("podman", "mmdebstrap") if shutil.which(tool) is None]
if _MISSING:
    pytestmark = [
        pytest.mark.image,
        pytest.mark.skip(
            reason=f"{' and '.join(_MISSING)} not installed: `apt-get install podman mmdebstrap`"
            " (Debian packages) to build the image for real (`make test-image`)"
        ),
    ]


@pytest.fixture(scope="module", autouse=True)
def _asked_for(request: pytest.FixtureRequest) -> None:
    """The build takes minutes: only when the `image` mark is selected (`make test-image`)."""
    if "image" not in request.config.getoption("markexpr", ""):
        pytest.skip("builds the image for minutes: run `make test-image` (pytest -m image)")


def podman(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """One podman command; its output is kept for the failure message."""
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def base_image(log: Path) -> str:
    """A Debian bookworm base with Python 3.11, imported once per CA bundle and kept."""
    digest = hashlib.sha256(HOST_CA_BUNDLE.read_bytes()).hexdigest()[:12]
    tag = f"localhost/kedro-gcs-bridge-test/debian-python:bookworm-{digest}"
    if podman("image", "exists", tag).returncode == 0:
        return tag
    with log.open("wb") as errors:
        bootstrap = subprocess.Popen(
            [
                "mmdebstrap",
                "--variant=minbase",
                f"--include={DEBIAN_PACKAGES}",
                f"--customize-hook=copy-in {HOST_CA_BUNDLE} /etc/ssl/certs",
                "bookworm",
                "-",
            ],
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        imported = subprocess.run(
            ["podman", "import", "-", tag],
            stdin=bootstrap.stdout,
            capture_output=True,
            timeout=1200,
            check=False,
        )
        bootstrap.wait(timeout=60)
    assert bootstrap.returncode == 0, log.read_text(errors="replace")[-3000:]
    assert imported.returncode == 0, imported.stderr.decode(errors="replace")
    return tag


def build_context(folder: Path, bucket: str) -> Path:
    """The example project as a user's checkout: the docker/ recipe with this repo's wheel, a
    `pod` env that reads its input from the bucket, and credentials the image must not hold."""
    context = folder / "spaceflights"
    shutil.copytree(EXAMPLE, context, ignore=shutil.ignore_patterns(".ruff_cache", "airflow_dags"))
    shutil.copytree(REPO / "docker", context / "docker")
    subprocess.run(
        [str(UV), "build", "--wheel", "--quiet", "--out-dir", str(context / "docker"), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
        env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
    )
    (context / "conf" / "pod").mkdir()
    (context / "conf" / "pod" / "catalog.yml").write_text(
        f"companies:\n  type: pandas.CSVDataset\n  filepath: gs://{bucket}/raw/companies.csv\n"
    )
    for secret in SECRETS:
        (context / secret).parent.mkdir(parents=True, exist_ok=True)
        (context / secret).write_text("gcp:\n  token: not-for-the-image\n")
    return context


@pytest.fixture(scope="module")
def project_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """docker/Dockerfile built from the example project, as a user builds it."""
    folder = tmp_path_factory.mktemp("image")
    base = base_image(folder / "mmdebstrap.log")
    context = build_context(folder, BUCKET)
    (wheel,) = (context / "docker").glob("kedro_gcs_bridge-*.whl")
    started = time.monotonic()
    built = podman(
        "build",
        "--isolation=chroot",
        "--network=host",
        "--file=docker/Dockerfile",
        "--ignorefile=docker/Dockerfile.dockerignore",
        f"--build-arg=BASE_IMAGE={base}",
        f"--build-arg=KEDRO_GCS_BRIDGE_REQUIREMENT=./docker/{wheel.name}",
        f"--tag={PROJECT_IMAGE}",
        str(context),
    )
    print(f"image built in {time.monotonic() - started:.0f} s")  # docs/benchmarks.md
    assert built.returncode == 0, (built.stdout + built.stderr)[-6000:]
    yield PROJECT_IMAGE


def run_in_image(image: str, folder: Path, env: dict[str, str], script: str) -> str:
    """`script` as a RUN step of a Containerfile `FROM image` (as its USER, in its WORKDIR,
    with its ENV plus `env`), on the host's network; its output."""
    lines = [f"FROM {image}", *(f'ENV {key}="{value}"' for key, value in env.items())]
    (folder / "Containerfile").write_text("\n".join([*lines, f"RUN {script}", ""]))
    started = time.monotonic()
    done = podman(
        "build",
        "--isolation=chroot",
        "--network=host",
        "--no-cache",
        "--layers=false",
        "--tag=localhost/kedro-gcs-bridge-test/pod-run:latest",
        str(folder),
        timeout=600,
    )
    print(f"pod run in the image in {time.monotonic() - started:.0f} s")  # docs/benchmarks.md
    podman("rmi", "--force", "localhost/kedro-gcs-bridge-test/pod-run:latest")
    assert done.returncode == 0, (done.stdout + done.stderr)[-6000:]
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def pod_run(project_image: str, gcs_emulator: str, tmp_path_factory: pytest.TempPathFactory):
    """The companies group's pod, run in the image: (its output, its run prefix)."""
    import fsspec

    fs = fsspec.filesystem("gs", token="anon", project="local-emulator")
    fs.put(str(EXAMPLE / "data" / "01_raw" / "companies.csv"), f"{BUCKET}/raw/companies.csv")
    prefix = f"gs://{BUCKET}/runs/spaceflights/manual__1"
    env = {
        "STORAGE_EMULATOR_HOST": gcs_emulator,
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "KEDRO_GCS_BRIDGE_RUN_PREFIX": prefix,
        "KEDRO_GCS_BRIDGE_PIPELINE": "__default__",
        "KEDRO_GCS_BRIDGE_TASK": "companies",
        # As the DAG sets it: the example's Parquet intermediates cross through the prefix.
        "KEDRO_GCS_BRIDGE_LOCAL_HANDOFF": "true",
    }
    checks = " && ".join(
        [
            'test "$(id -u):$(id -g)" = 1000:1000',
            'test "$PWD" = /home/kedro/project',
            *(f"test ! -e {secret}" for secret in SECRETS),
            "test -d conf/local",
            "test -f conf/logging.yml",
            'test "$(command -v kedro)" = /opt/venv/bin/kedro',
            # `kedro` as `python -m kedro`, to list what it imports (on stderr).
            f"python -X importtime -m kedro {POD_ARGS}",
        ]
    )
    output = run_in_image(project_image, tmp_path_factory.mktemp("pod"), env, checks)
    return output, prefix


def test_the_pods_command_runs_a_group_in_the_image_as_uid_1000(
    pod_run: tuple[str, str],
) -> None:
    _, prefix = pod_run
    # Read back through the store, which alone knows the run prefix's layout.
    record = HandoffStore(prefix, task="inspect").read_record("preprocessed_companies")
    assert record.to_json()["size"] > 0


def test_the_image_loads_no_dag_side_module(pod_run: tuple[str, str]) -> None:
    """The image holds no kedro-airflow (its CLI plugin loads slugify) and pods plan nothing."""
    output, _ = pod_run
    loaded = {
        line.rsplit("|", 1)[-1].strip()
        for line in output.splitlines()
        if line.startswith("import time:")
    }
    dag_side = {
        name
        for name in loaded
        if name.split(".")[0] in {"slugify", "kedro_airflow", "airflow"}
        or name.startswith(("kedro_gcs_bridge.dag", "kedro_gcs_bridge.planning.naming"))
    }
    assert "kedro_gcs_bridge.pod.runner" in loaded
    assert dag_side == set()


def test_the_image_logs_one_line_per_record(pod_run: tuple[str, str]) -> None:
    """The image's conf/logging.yml: Kedro's plain format, no Rich wrapping or boxes."""
    output, _ = pod_run
    assert "kedro_gcs_bridge.pod.runner - INFO - GCSRunner: task companies, 1 node(s)" in output
    assert not {"│", "╭", "╰"} & set(output)
