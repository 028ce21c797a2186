"""`kedro gcs-bridge deploy`: DAG files into a DAGs folder, atomically, never over someone
else's file, the image pinned to a digest.

The gs:// tests run against the GCS emulator behind the precondition proxy (GCS's
`ifGenerationMatch`); a concurrent writer is forced between deploy's read and its write.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from _gcs_emulator import BUCKET
from _precondition_proxy import PreconditionProxy
from click.testing import CliRunner

from kedro_gcs_bridge.cli import commands
from kedro_gcs_bridge.errors import DeployError
from kedro_gcs_bridge.ops.deploy import MARKER, deploy, mark, ownership, pin_image
from kedro_gcs_bridge.pod.backend import GCSBackend, open_backend

DIGEST = "sha256:" + "0123456789abcdef" * 4
IMAGE = "europe-west1-docker.pkg.dev/example-project/kedro/spaceflights"
GKE_DAG = f'"""A DAG."""\n\nPOD_DEFAULTS = {{\n    "image": "{IMAGE}:0.1.0",\n}}\n'
LOCAL_DAG = '"""A local variant."""\n\nPROJECT_PATH = "/tmp/p"\n'


def _sources(tmp_path: Path, **files: str) -> list[Path]:
    folder = tmp_path / "airflow_dags"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.py").write_text(text, encoding="utf-8")
    return sorted(folder.iterdir())


def _folder() -> str:
    return f"gs://{BUCKET}/composer-{uuid.uuid4().hex[:8]}/dags"


def _read(url: str) -> bytes:
    backend = open_backend(url)
    return bytes(backend.fs.cat_file(backend.root))


class TestPinImage:
    @pytest.mark.parametrize(
        ("ref", "name"),
        [
            (f"{IMAGE}:0.1.0", IMAGE),
            (IMAGE, IMAGE),
            (f"{IMAGE}:prod@sha256:{'f' * 64}", IMAGE),
            ("localhost:5000/kedro/app:1", "localhost:5000/kedro/app"),
            ("localhost:5000/kedro/app", "localhost:5000/kedro/app"),
        ],
    )
    def test_tag_and_old_digest_give_way(self, ref: str, name: str) -> None:
        text = f'x = {{\n    "image": "{ref}",\n}}\n'
        assert pin_image(text, DIGEST) == f'x = {{\n    "image": "{name}@{DIGEST}",\n}}\n'

    @pytest.mark.parametrize(
        "digest", ["0123", "sha256:abc", "sha256:" + "G" * 64, "sha512:" + "0" * 64, "latest"]
    )
    def test_a_bad_digest_is_refused_before_anything_is_written(
        self, tmp_path: Path, digest: str
    ) -> None:
        target = tmp_path / "dags"
        with pytest.raises(DeployError, match="is not an image digest"):
            deploy(_sources(tmp_path, a_dag=GKE_DAG), str(target), image_digest=digest)
        assert not target.exists()

    def test_a_digest_with_no_image_to_pin_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(DeployError, match="the local variant has none"):
            deploy(_sources(tmp_path, a_dag=LOCAL_DAG), str(tmp_path / "d"), image_digest=DIGEST)


class TestMarker:
    def test_ownership(self) -> None:
        body = GKE_DAG.encode()
        assert ownership(None) == "absent"
        assert ownership(mark(body)) == "ours"
        assert ownership(mark(body) + b"# an edit\n") == "edited"
        assert ownership(body) == "foreign"
        assert mark(body).startswith(MARKER.encode()) and mark(body).endswith(body)


class TestOnGCS:
    def test_create_update_unchanged_and_digest(
        self, tmp_path: Path, gcs_preconditions: PreconditionProxy
    ) -> None:
        folder = _folder()
        sources = _sources(tmp_path, a_dag=GKE_DAG, b_local_dag=LOCAL_DAG)
        done = deploy(sources, folder)
        assert [(d.name, d.action) for d in done] == [
            ("a_dag.py", "created"),
            ("b_local_dag.py", "created"),
        ]
        assert _read(f"{folder}/a_dag.py") == mark(GKE_DAG.encode())
        assert [d.action for d in deploy(sources, folder)] == ["unchanged", "unchanged"]
        done = deploy(sources, folder, image_digest=DIGEST)
        assert [d.action for d in done] == ["updated", "unchanged"]
        deployed = _read(f"{folder}/a_dag.py").decode()
        assert f'"image": "{IMAGE}@{DIGEST}"' in deployed and ":0.1.0" not in deployed
        # New objects were written with ifGenerationMatch=0, updates with the read generation.
        assert gcs_preconditions.counts["412"] == 0

    @pytest.mark.parametrize(
        ("existing", "reason"),
        [
            (GKE_DAG.encode(), "was not written by `kedro gcs-bridge deploy`"),
            (mark(GKE_DAG.encode()) + b"# hand edit\n", "was edited after"),
        ],
    )
    def test_a_file_deploy_did_not_write_is_refused_unless_forced(
        self,
        tmp_path: Path,
        gcs_preconditions: PreconditionProxy,
        existing: bytes,
        reason: str,
    ) -> None:
        folder = _folder()
        open_backend(folder).fs.pipe_file(f"{open_backend(folder).root}/b_dag.py", existing)
        sources = _sources(tmp_path, a_dag=GKE_DAG, b_dag=GKE_DAG.replace("A DAG", "B"))
        with pytest.raises(DeployError, match=reason) as caught:
            deploy(sources, folder)
        assert "--force overwrites it" in str(caught.value)
        # Checked before writing: the other file was not written either.
        assert not open_backend(folder).fs.exists(f"{open_backend(folder).root}/a_dag.py")
        assert _read(f"{folder}/b_dag.py") == existing
        done = deploy(sources, folder, force=True)
        assert [d.action for d in done] == ["created", "updated"]
        assert ownership(_read(f"{folder}/b_dag.py")) == "ours"

    def test_a_concurrent_writer_is_detected_not_overwritten(
        self, tmp_path: Path, gcs_preconditions: PreconditionProxy, monkeypatch: Any
    ) -> None:
        """Another writer puts its own file between deploy's read and its conditional write:
        GCS refuses the write (412), deploy looks again and refuses the foreign file."""
        folder = _folder()
        foreign = b'"""Someone else\'s DAG."""\n'
        read_versioned = GCSBackend._read_versioned
        raced: list[str] = []

        def racing_read(self: GCSBackend, path: str) -> tuple[bytes | None, int]:
            found = read_versioned(self, path)
            if not raced:
                raced.append(path)
                self.fs.pipe_file(path, foreign)  # the other writer, after deploy's read
            return found

        monkeypatch.setattr(GCSBackend, "_read_versioned", racing_read)
        with pytest.raises(DeployError, match="changed while deploying"):
            deploy(_sources(tmp_path, a_dag=GKE_DAG), folder)
        assert raced and gcs_preconditions.counts["412"] == 1
        assert _read(f"{folder}/a_dag.py") == foreign


class TestOnLocalDisk:
    def test_written_by_rename_with_nothing_left_behind(self, tmp_path: Path) -> None:
        target = tmp_path / "dags"
        sources = _sources(tmp_path, a_dag=GKE_DAG)
        assert [d.action for d in deploy(sources, str(target))] == ["created"]
        (target / "other_dag.py").write_text("# someone else's\n")
        assert [d.action for d in deploy(sources, str(target), image_digest=DIGEST)] == ["updated"]
        assert sorted(p.name for p in target.iterdir()) == ["a_dag.py", "other_dag.py"]
        assert (target / "other_dag.py").read_text() == "# someone else's\n"

    def test_no_files_is_a_clear_error(self, tmp_path: Path) -> None:
        with pytest.raises(DeployError, match="run `kedro airflow create` first"):
            deploy([], str(tmp_path / "dags"))


class TestCommand:
    def _invoke(self, project: Path, *args: str) -> Any:
        obj = SimpleNamespace(project_path=project)
        return CliRunner().invoke(commands, ["gcs-bridge", "deploy", *args], obj=obj)

    def test_deploys_the_generated_folder(self, tmp_path: Path) -> None:
        _sources(tmp_path, spaceflights_dag=GKE_DAG, notes=LOCAL_DAG)  # notes.py: not a DAG
        target = tmp_path / "dags"
        result = self._invoke(tmp_path, "--dags-folder", str(target), "--image-digest", DIGEST)
        assert result.exit_code == 0, result.output
        assert f"created   {target / 'spaceflights_dag.py'}" in result.output
        assert f"1 DAG file(s) in {target}, image pinned to {DIGEST}" in result.output
        assert sorted(p.name for p in target.iterdir()) == ["spaceflights_dag.py"]

    def test_errors_are_one_line_and_exit_1(self, tmp_path: Path) -> None:
        _sources(tmp_path, spaceflights_dag=GKE_DAG)
        target = tmp_path / "dags"
        target.mkdir()
        (target / "spaceflights_dag.py").write_text("# mine\n")
        result = self._invoke(tmp_path, "--dags-folder", str(target))
        assert result.exit_code == 1
        assert "Error: nothing deployed:" in result.output
        assert (target / "spaceflights_dag.py").read_text() == "# mine\n"

    def test_a_missing_source_folder_says_what_to_run(self, tmp_path: Path) -> None:
        result = self._invoke(tmp_path, "--dags-folder", str(tmp_path / "d"), "--from", "nope")
        assert result.exit_code == 2
        assert "run `kedro airflow create -t nope` first" in " ".join(result.output.split())
