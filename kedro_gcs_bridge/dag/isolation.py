"""Replay's pod isolation: every task runs in its own fresh copy of the project as the image
holds it, with its own HOME and temp dir, as a GKE pod does.

What the image holds is decided by the project's docker ignore file, read by the same matcher
as the storage plan (`planning/image.py`): a raw input the ignore file leaves out is missing
here as it is in a pod, and a file one task writes to local disk is not in the next task's
copy. Replay's own folders and folders no image needs (`_NEVER_COPIED`, virtualenvs, VCS,
caches) are never copied. Files are copied, not hard-linked: a task that rewrites a file in
place must not change the project. After a task ends, the files it left in its copy (new or
changed) are listed: on GKE they are lost with the pod.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from kedro_gcs_bridge.dag.storage_check import read_image_filter
from kedro_gcs_bridge.planning.naming import LOCAL_RUNS_DIR

#: Folder names never copied into a task's project: replay's own run roots, environments,
#: version control and caches (an image built with a sensible ignore file lacks them too).
_NEVER_COPIED = frozenset(
    {
        ".git",
        ".venv",
        "venv",
        "__pycache__",
        LOCAL_RUNS_DIR,
        ".ruff_cache",
        ".pytest_cache",
        ".mypy_cache",
        ".ipynb_checkpoints",
    }
)


@dataclass(frozen=True)
class ImageContents:
    """The project files a task's copy gets, and those the ignore file leaves out."""

    project: Path
    files: tuple[str, ...]
    left_out: tuple[str, ...]
    source: str
    #: Folders the image holds (empty ones too: Kedro needs `conf/<env>` to exist).
    folders: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for replay's header: where the copies come from and what they lack."""
        if not self.source:
            return (
                f"isolated: each task runs in a fresh copy of the project ({len(self.files)} "
                "files; no docker ignore file, so the image holds the whole project)"
            )
        tops = _left_out_names(self.files, self.left_out)
        lacks = f", without {', '.join(tops)} ({len(self.left_out)} files)" if tops else ""
        return (
            f"isolated: each task runs in a fresh copy of the project as the image holds it "
            f"({self.source}: {len(self.files)} files{lacks})"
        )

    def lacked_in(self, log: str) -> list[str]:
        """The files the image leaves out that a task's log names as local files (what it
        failed to read); the same path inside a URL (`gs://b/data/...`) is not one of them."""
        return [path for path in self.left_out if _named_locally(path, log)]

    def remedy(self, log: str) -> str | None:
        """What to do when a failed task's log names files the image leaves out; None if none."""
        lacked = self.lacked_in(log)
        if not lacked:
            return None
        return (
            f"the image leaves out {', '.join(lacked[:3])} ({self.source}), as this task's "
            f"copy does: keep it in the image (edit {self.source}), or put the dataset on GCS "
            "(`kedro gcs-bridge catalog --root gs://<bucket>/<path>`)"
        )


def _named_locally(path: str, log: str) -> bool:
    """Whether `log` names `path` in a local path: a word holding it with no `://`."""
    words = re.finditer(r"[^\s'\"()\[\]]*" + re.escape(path), log)
    return any("://" not in word.group(0) for word in words)


#: Empty files that only keep a folder in version control: no content of the image.
_PLACEHOLDERS = frozenset({".gitkeep", ".keep"})


def _left_out_names(kept: Iterable[str], left_out: Iterable[str], most: int = 6) -> list[str]:
    """What the image lacks, named exactly: each left-out file's outermost folder that holds
    nothing of the image (placeholders aside), else the file itself (`conf/local`, not `conf`)."""
    holding: set[str] = set()
    for path in kept:
        parts = path.split("/")
        if parts[-1] not in _PLACEHOLDERS:
            holding.update("/".join(parts[:end]) for end in range(1, len(parts)))
    names: set[str] = set()
    for path in left_out:
        parts = path.split("/")
        prefixes = ("/".join(parts[:end]) for end in range(1, len(parts)))
        names.add(next((prefix for prefix in prefixes if prefix not in holding), path))
    shown = sorted(names)
    return shown[:most] + (["..."] if len(shown) > most else [])


def _skipped(folder: Path, skip: set[Path]) -> bool:
    return folder.name in _NEVER_COPIED or folder.resolve() in skip


def image_contents(project: Path, skip: Iterable[Path] = ()) -> ImageContents:
    """The files of `project` its image would hold (by its docker ignore file).

    Args:
        project: The Kedro project folder.
        skip: Folders never copied (replay's local run root, the task folders).
    """
    image = read_image_filter(project)
    skipped = {Path(path).resolve() for path in skip}
    kept: list[str] = []
    left_out: list[str] = []
    folders: list[str] = []
    for folder, dirs, names in os.walk(project):
        base = Path(folder)
        dirs[:] = sorted(d for d in dirs if not _skipped(base / d, skipped))
        for name in dirs:
            relative = (base / name).relative_to(project).as_posix()
            if not image.excludes(relative):
                folders.append(relative)
        for name in sorted(names):
            relative = (base / name).relative_to(project).as_posix()
            (left_out if image.excludes(relative) else kept).append(relative)
    return ImageContents(project, tuple(kept), tuple(left_out), image.source, tuple(folders))


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


class TaskDirs:
    """One folder per task under `root`: `project/` (the copy), `home/` and `tmp/`."""

    def __init__(self, contents: ImageContents, root: Path) -> None:
        self.contents = contents
        self.root = root
        self._copied: dict[str, dict[str, tuple[int, int]]] = {}

    def enter(self, task_id: str) -> tuple[Path, Mapping[str, str]]:
        """Makes the task's fresh copy; returns its working folder and environment."""
        folder = self.root / task_id
        if folder.exists():
            shutil.rmtree(folder)
        project = folder / "project"
        stamps: dict[str, tuple[int, int]] = {}
        project.mkdir(parents=True)
        for relative in self.contents.folders:
            (project / relative).mkdir(parents=True, exist_ok=True)
        for relative in self.contents.files:
            target = project / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.contents.project / relative, target)
            stamps[relative] = _stamp(target)
        self._copied[task_id] = stamps
        for own in ("home", "tmp"):
            (folder / own).mkdir(parents=True)
        tmp = str(folder / "tmp")
        env = {"HOME": str(folder / "home"), "TMPDIR": tmp, "TMP": tmp, "TEMP": tmp}
        return project, {**env, "PWD": str(project)}

    def left_on_disk(self, task_id: str) -> tuple[str, ...]:
        """Files the task wrote into its copy (new or changed): lost with a pod on GKE."""
        project = self.root / task_id / "project"
        copied = self._copied.get(task_id, {})
        left = []
        for folder, dirs, names in os.walk(project):
            dirs[:] = sorted(d for d in dirs if d not in _NEVER_COPIED)
            for name in sorted(names):
                path = Path(folder) / name
                relative = path.relative_to(project).as_posix()
                if copied.get(relative) != _stamp(path):
                    left.append(relative)
        return tuple(left)


def _local_folder(url: str) -> list[Path]:
    """The folder of a `file://` URL or plain path; none for a remote one."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return [Path(unquote(parsed.path))]
    return [Path(url)] if not parsed.scheme else []


def task_dirs(project: Path, run_root: str, keep_in: Path | None = None) -> TaskDirs:
    """Task folders for one isolated replay: under `keep_in` if given, else a new temp folder.

    Args:
        project: The Kedro project folder.
        run_root: Replay's root for run prefixes (never copied when it is in the project).
        keep_in: Where to make the task folders (kept); default a temp folder.
    """
    root = keep_in or Path(tempfile.mkdtemp(prefix="kedro-gcs-bridge-replay-"))
    root.mkdir(parents=True, exist_ok=True)
    return TaskDirs(image_contents(project, [*_local_folder(run_root), root]), root)
