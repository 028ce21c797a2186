"""Names for Airflow and Kubernetes: task ids, pod names, DAG ids and the run prefix.

Airflow task ids allow `[\\w.-]` up to 250 characters; pod names are RFC 1123 labels of at most
63 characters, of which the operator keeps 9 for its random suffix. Names come from group
names through python-slugify; two groups that slugify alike get a short hash of their
original name, so ids stay unique and stable.
"""

from __future__ import annotations

import hashlib
import keyword
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from slugify import slugify

TASK_ID_MAX = 250
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
#: 63 (RFC 1123) minus the operator's "-" + 8 random characters.
POD_NAME_MAX = 54
_HASH_LEN = 6

#: Airflow's default `allowed_run_id_pattern` admits `:` and `+` (manual and scheduled run
#: ids contain both). The run prefix percent-encodes them (Jinja's `urlencode`), which keeps
#: distinct run ids distinct. Kept in step with `run_segment` by a test that renders this
#: expression in Airflow.
RUN_SEGMENT_TEMPLATE = "{{ run_id | urlencode }}"
DAG_SEGMENT_TEMPLATE = "{{ dag.dag_id }}"
#: The project folder that holds run prefixes when no root is set (the `local` backend,
#: `replay`, `runs list/gc`); replay never copies it into a task's project.
LOCAL_RUNS_DIR = ".gcs-bridge-runs"


def run_segment(run_id: str) -> str:
    """The run id as it appears in the run prefix (what `RUN_SEGMENT_TEMPLATE` renders)."""
    return quote(run_id, safe="/")


def run_prefix_template(root: str) -> str:
    """The run prefix as an Airflow template: `<root>/<dag_id>/<run_id>`."""
    return f"{root.rstrip('/')}/{DAG_SEGMENT_TEMPLATE}/{RUN_SEGMENT_TEMPLATE}"


def local_runs_root(project_path: str | Path) -> str:
    """`file://<project>/.gcs-bridge-runs`: the root of run prefixes when none is set."""
    return (Path(project_path) / LOCAL_RUNS_DIR).as_uri()


#: Where `replay --emulator` puts run prefixes: a bucket of the in-memory GCS it starts.
REPLAY_EMULATOR_ROOT = "gs://kedro-gcs-bridge-replay/runs"


def replay_emulator_copy(prefix: str, local_root: str) -> str | None:
    """Where replay kept a copy of a run prefix on the emulator it started and stopped (its
    manifests, under the project's runs folder); None for a prefix elsewhere."""
    head = REPLAY_EMULATOR_ROOT + "/"
    if not prefix.startswith(head):
        return None
    return f"{local_root.rstrip('/')}/{prefix[len(head) :].strip('/')}"


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:_HASH_LEN]


def _unique(names: Iterable[str], make: callable, limit: int, joiner: str) -> dict[str, str]:
    """Applies `make` to each name; collisions and over-long results get a hash suffix."""
    names = list(dict.fromkeys(names))
    made = {name: make(name) or "x" for name in names}
    taken: set[str] = set()
    result: dict[str, str] = {}
    for name in sorted(names):
        candidate = made[name]
        if len(candidate) > limit or candidate in taken:
            suffix = joiner + _short_hash(name)
            candidate = candidate[: limit - len(suffix)].rstrip("-_.") + suffix
        taken.add(candidate)
        result[name] = candidate
    return {name: result[name] for name in names}


def nameless(group_names: Iterable[str]) -> list[str]:
    """Group names with no letter or digit: nothing of them would name a task or a pod."""
    return [name for name in group_names if not _LETTER_OR_DIGIT.search(name)]


#: Names python-slugify leaves to plain regex work: ASCII letters, digits, `_`, `.` and `-`
#: (no quote, entity, accent or digit-grouping comma for its other steps to change). Most
#: group names are node names like these, and slugify's full pipeline costs ~10 us a name.
_PLAIN = re.compile(r"[A-Za-z0-9_.-]+")
_SEPARATORS = re.compile(r"-{2,}")
_NOT_IN_POD_NAME = re.compile(r"[^-a-z0-9]+")
_NOT_IN_TASK_ID = re.compile(r"[^\w.-]+")


def task_id_slug(name: str) -> str:
    """`slugify(name, separator="_", lowercase=False, regex_pattern=r"[^\\w.-]+")`."""
    if _PLAIN.fullmatch(name):
        return _SEPARATORS.sub("-", name).strip("-").replace("-", "_")
    return slugify(name, separator="_", lowercase=False, regex_pattern=_NOT_IN_TASK_ID)


def pod_name_slug(name: str) -> str:
    """`slugify(name, separator="-")`: lower case, runs of other characters one `-`."""
    if _PLAIN.fullmatch(name):
        return _SEPARATORS.sub("-", _NOT_IN_POD_NAME.sub("-", name.lower())).strip("-")
    return slugify(name, separator="-")


def task_ids(group_names: Iterable[str]) -> dict[str, str]:
    """Group name -> Airflow task id (`[\\w.-]`, <= 250 characters, unique)."""
    return _unique(group_names, task_id_slug, TASK_ID_MAX, "_")


def pod_names(group_names: Iterable[str], prefix: str = "") -> dict[str, str]:
    """Group name -> pod name (RFC 1123, <= 54 characters so the random suffix fits, unique)."""
    return _unique(
        group_names,
        lambda name: pod_name_slug(f"{prefix}-{name}" if prefix else name),
        POD_NAME_MAX,
        "-",
    )


def python_names(ids: Iterable[str]) -> dict[str, str]:
    """Task id -> a Python variable name for the generated DAG file."""

    def make(task_id: str) -> str:
        name = re.sub(r"\W", "_", task_id)
        if name[0].isdigit() or keyword.iskeyword(name) or name in TEMPLATE_NAMES:
            name = f"task_{name}"
        return name

    return _unique(ids, make, TASK_ID_MAX, "_")


#: Names the DAG template defines or imports; a task variable never takes one of them.
TEMPLATE_NAMES = frozenset(
    {
        "dag",
        "k8s",
        "datetime",
        "timedelta",
        "timezone",
        "annotations",
        "DAG",
        "GKEStartPodOperator",
        "BashOperator",
        "RUN_ENV",
        "POD_DEFAULTS",
        "RESOURCES",
        "PROJECT_PATH",
        # The assets (dag/dagfile.py): the table, the save-version hook and what it uses.
        "Asset",
        "ASSETS",
        "ObjectStoragePath",
        "SAVE_VERSIONS",
        "json",
        "logging",
    }
)

#: A DAG id part kept as it is: no dots, no leading, trailing or double underscores (so the
#: `__` between parts stays unambiguous).
_PLAIN_PART = re.compile(r"[A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*")
DEFAULT_PIPELINE = "__default__"


def _dag_id_part(part: str) -> str:
    if part == DEFAULT_PIPELINE:
        return "default"
    if _PLAIN_PART.fullmatch(part) and part != "default":
        return part
    readable = slugify(part, separator="_", lowercase=False, regex_pattern=r"[^A-Za-z0-9-]+")
    return f"{readable or 'x'}-{_short_hash(part)}"


def dag_id(package_name: str, pipeline_name: str, env: str) -> str:
    """A DAG id that names the project, pipeline and env, so generated DAGs never share one.

    Parts are joined with `__`; a part that would lose characters (dots, odd underscores, a
    pipeline literally named `default`, which `__default__` shows as) gets a short hash of its
    real name, so distinct pipelines always get distinct ids.
    """
    return "__".join(_dag_id_part(part) for part in (package_name, pipeline_name, env))
