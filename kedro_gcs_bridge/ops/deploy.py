"""`deploy`: the generated DAG files into an Airflow DAGs folder (Composer's gs://.../dags).

Each file is written as a whole, never half: on GCS one upload with a generation precondition
(`ifGenerationMatch`, 0 for a new object), so a concurrent writer is detected and its file is
looked at again, never overwritten blind; on local disk a temporary file renamed into place.
Every file deploy writes starts with a marker line holding the sha256 of the rest; a file at
the target without it (someone else's DAG), or whose rest no longer matches (edited since), is
refused unless `force`. All files are checked before the first one is written.

`image_digest` pins the `docker_image` of the GKE DAG files to `name@sha256:...`, so the pods
run exactly the image that CI built and tested, whatever its tag points to later.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kedro_gcs_bridge.errors import DeployError, GCSBridgeError
from kedro_gcs_bridge.pod.backend import KEEP, Backend, open_backend

MARKER = "# Deployed by `kedro gcs-bridge deploy`; edits here are overwritten. sha256="
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
#: The `image` operator argument in a generated GKE DAG file (dag/dagfile.py writes it).
_IMAGE_LINE = re.compile(r'^(?P<lead>\s*"image": )"(?P<ref>[^"]+)"', re.MULTILINE)


@dataclass(frozen=True)
class Deployed:
    """One file deploy handled: its target URL and what happened (created/updated/unchanged)."""

    name: str
    url: str
    action: str


def _body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def mark(body: bytes) -> bytes:
    """A DAG file as deploy writes it: the marker line, then the file."""
    return f"{MARKER}{_body_hash(body)}\n".encode() + body


def ownership(current: bytes | None) -> str:
    """Who wrote the file at the target: `absent`, `ours`, `edited` or `foreign`."""
    if current is None:
        return "absent"
    first, _, rest = current.partition(b"\n")
    head = first.decode("utf-8", errors="replace")
    if not head.startswith(MARKER):
        return "foreign"
    return "ours" if head.removeprefix(MARKER) == _body_hash(rest) else "edited"


_REFUSALS = {
    "foreign": "was not written by `kedro gcs-bridge deploy` (another DAG of the same name?)",
    "edited": "was edited after `kedro gcs-bridge deploy` wrote it",
}


def _refusal(url: str, current: bytes | None, force: bool) -> str | None:
    reason = _REFUSALS.get(ownership(current))
    if reason is None or force:
        return None
    return f"{url} {reason}; --force overwrites it."


def pin_image(text: str, digest: str) -> str:
    """The DAG file with every `image` pinned to `name@digest` (tag and old digest dropped).

    Raises:
        DeployError: `digest` is not `sha256:` and 64 hex digits.
    """
    if not _DIGEST.match(digest):
        raise DeployError(
            f"--image-digest '{digest}' is not an image digest: write sha256: and 64 lowercase "
            "hex digits, as `docker buildx imagetools inspect` or `gcloud artifacts docker "
            "images describe` print it."
        )

    def pinned(match: re.Match[str]) -> str:
        name = match["ref"].split("@", 1)[0]
        last = name.rsplit("/", 1)[-1]
        if ":" in last:
            name = name[: len(name) - len(last)] + last.split(":", 1)[0]
        return f'{match["lead"]}"{name}@{digest}"'

    return _IMAGE_LINE.sub(pinned, text)


def prepare(files: Iterable[Path], image_digest: str | None) -> dict[str, bytes]:
    """file name -> the bytes to deploy (marked; image pinned when a digest is given).

    Raises:
        DeployError: No file, a digest that is invalid, or a digest with no image to pin.
    """
    sources = sorted(files)
    if not sources:
        raise DeployError("no DAG file to deploy: run `kedro airflow create` first.")
    bodies = {path.name: path.read_text(encoding="utf-8") for path in sources}
    if image_digest is not None:
        bodies = {name: pin_image(text, image_digest) for name, text in bodies.items()}
        if not any(_IMAGE_LINE.search(text) for text in bodies.values()):
            raise DeployError(
                f"--image-digest given, but none of {sorted(bodies)} has a docker image "
                "(the local variant has none): deploy the GKE DAG files."
            )
    return {name: mark(text.encode("utf-8")) for name, text in bodies.items()}


def _open(dags_folder: str) -> Backend:
    try:
        return open_backend(dags_folder)
    except GCSBridgeError as exc:
        raise DeployError(f"--dags-folder {dags_folder}: {exc}") from exc


def deploy(
    files: Sequence[Path], dags_folder: str, force: bool = False, image_digest: str | None = None
) -> list[Deployed]:
    """Writes `files` into `dags_folder` (gs://, file:// or a path), each atomically.

    Raises:
        DeployError: A file at the target that deploy did not write (without `force`), checked
            for all files before any is written; or a bad digest; or a storage error.
    """
    payloads = prepare(files, image_digest)
    backend = _open(dags_folder)
    paths = {name: f"{backend.root.rstrip('/')}/{name}" for name in payloads}
    try:
        problems = [
            problem
            for name, path in paths.items()
            if (problem := _refusal(backend.url_of(path), backend.read_json(path), force))
        ]
        if problems:
            raise DeployError("nothing deployed:\n" + "\n".join(f"  - {p}" for p in problems))
        return [_write(backend, paths[name], name, data, force) for name, data in payloads.items()]
    except DeployError:
        raise
    except (OSError, GCSBridgeError) as exc:
        raise DeployError(f"deploying to {dags_folder} failed: {exc}") from exc


def _write(backend: Backend, path: str, name: str, data: bytes, force: bool) -> Deployed:
    """Writes one file if it is ours, absent, or `force`; decided again on every write race."""
    actions: list[str] = []

    def decide(current: bytes | None) -> bytes | object:
        problem = _refusal(backend.url_of(path), current, force)
        if problem is not None:
            raise DeployError(f"{problem} (it changed while deploying)")
        if current == data:
            actions.append("unchanged")
            return KEEP
        actions.append("created" if current is None else "updated")
        return data

    backend.update(path, decide)
    return Deployed(name, backend.url_of(path), actions[-1])
