"""`GCSRunner`: runs one group of Kedro nodes in a pod, as if the whole pipeline ran in one process.

Before the nodes run, every boundary dataset is put into the catalog as a `HandoffDataset`:
what another group made is loaded from the run prefix, what another group needs is saved
there. Boundary datasets are found by comparing the nodes this pod runs (after `--nodes`,
`--tags`, ...) with the registered pipeline named by `KEDRO_GCS_BRIDGE_PIPELINE` (or the
`pipeline` runner param). Only datasets that would otherwise be in-memory cross; catalog
datasets already persist and are left alone, except that one on local disk is carried
through the run prefix too (`local_handoff`, default on, as in airflow.yml), in its own
catalog type (a Parquet entry stays Parquet, a pickle stays pickle), and still saved to its
own filepath as `kedro run` saves it; or, with it off, reported: it is lost between pods.
After its nodes ran, the group writes its manifest.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from kedro.framework.hooks import hook_impl
from kedro.io import AbstractDataset
from kedro.runner import SequentialRunner

from kedro_gcs_bridge.errors import HandoffError
from kedro_gcs_bridge.planning.grouping import base_name, boundary_datasets, node_specs
from kedro_gcs_bridge.pod.catalog import entry_of, is_memory, local_path
from kedro_gcs_bridge.pod.context import (
    PIPELINE_ENV,
    RUN_PREFIX_ENV,
    TaskContext,
)
from kedro_gcs_bridge.values import as_bool

if TYPE_CHECKING:
    from kedro.pipeline import Pipeline
    from pluggy import PluginManager

    from kedro_gcs_bridge.pod.formats import Format
    from kedro_gcs_bridge.pod.store import HandoffStore

logger = logging.getLogger(__name__)


class HandoffDataset(AbstractDataset[Any, Any]):
    """A boundary dataset: saved to or loaded from the run prefix, kept in memory meanwhile.

    A value saved here and read again by a node of the same group comes from memory, not
    from storage; loaded values are kept until Kedro releases the dataset. Every load hands
    out a copy made by Kedro's MemoryDataset rules (pandas and numpy `.copy()`, others deep
    copies, frames that cannot be copied as they are), so a node mutating its input changes
    nothing another node of the group sees. The copy is made when the value is handed out,
    not when it is saved: an output no node of the group reads is never copied.

    A persisted catalog dataset it replaces (`persist`) is saved too, after the run prefix:
    the catalog output is written to its filepath, as `kedro run` writes it.
    """

    def __init__(
        self,
        store: HandoffStore,
        name: str,
        producer_node: str | None,
        catalog_format: Format | None = None,
        persist: AbstractDataset[Any, Any] | None = None,
    ) -> None:
        self._store = store
        self._name = name
        self._producer_node = producer_node
        self._format = catalog_format  # the catalog type of a local-disk dataset it replaces
        self._persist = persist
        self._data: Any = None
        self._has_data = False

    def _load(self) -> Any:
        if not self._has_data:
            self._data = self._store.load(
                self._name, self._producer_node, catalog_format=self._format
            )
            self._has_data = True
        return _handed_out(self._data)

    def _save(self, data: Any) -> None:
        self._store.save(self._name, data, catalog_format=self._format)
        if self._persist is not None:
            self._persist.save(data)
        self._data, self._has_data = data, True

    def _exists(self) -> bool:
        return self._has_data or self._store.exists(self._name, self._producer_node)

    def _release(self) -> None:
        self._data, self._has_data = None, False

    def _describe(self) -> dict[str, Any]:
        return {"name": self._name, "prefix": self._store.prefix}


def _handed_out(data: Any) -> Any:
    """The copy of a value a consumer gets, by Kedro's own MemoryDataset rules."""
    try:
        from kedro.io.memory_dataset import _copy_with_mode, _infer_copy_mode
    except ImportError:  # pragma: no cover - a Kedro without the helpers: its public dataset
        from kedro.io import MemoryDataset

        return MemoryDataset(data=data).load()
    return _copy_with_mode(data, copy_mode=_infer_copy_mode(data))


def _setting(key: str, value: Any, from_env: bool | None, default: bool) -> bool:
    """A boolean setting: the Python/runner-param value, else the pod's context, else the
    default.

    One strict reader for every route (`values.as_bool`): OmegaConf hands `--runner-params
    allow_pickle=false` over as the boolean False, which must stay False.
    """
    if value is None:
        value = from_env
    return default if value is None else as_bool(key, value)


class _NoReplacingNote(logging.Filter):
    """Drops Kedro's "Replacing dataset" warning: a dataset the catalog declares that crosses
    pods is replaced on purpose (the INFO line after says what crosses)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Replacing dataset '%s'"


@contextmanager
def _replacing_quietly() -> Iterator[None]:
    """Kedro's catalog logger without its "Replacing dataset" warning, for one replacement."""
    catalog_logger = logging.getLogger("kedro.io.data_catalog")
    quiet = _NoReplacingNote()
    catalog_logger.addFilter(quiet)
    try:
        yield
    finally:
        catalog_logger.removeFilter(quiet)


def _catalog_format_of(catalog: Any, name: str) -> Format | None:
    """The own catalog type a crossing dataset on local disk keeps through the run prefix."""
    from kedro_gcs_bridge.pod.formats import catalog_format

    dataset = catalog.get(name) if name in catalog else None
    if is_memory(dataset) or local_path(dataset) is None:
        return None
    entry = entry_of(dataset)
    fmt = catalog_format(entry) if entry is not None else None
    if fmt is None:
        logger.info(
            "Dataset '%s' (%s) crosses through the run prefix in the format its value takes: "
            "its catalog entry has no single filepath, or options JSON cannot record.",
            name,
            type(dataset).__name__,
        )
    return fmt


def _persisted(catalog: Any, name: str) -> AbstractDataset[Any, Any] | None:
    """The catalog's own dataset of a crossing output that persists (not in memory): the
    run prefix carries it, and it is still saved where the catalog says."""
    dataset = catalog.get(name) if name in catalog else None
    return None if dataset is None or is_memory(dataset) else dataset


def _task_of(pipeline: Pipeline) -> str:
    """The task id of a group run by hand (no DAG set it): what the planner would name it."""
    from kedro_gcs_bridge.planning.naming import task_ids  # DAG-side; pods get TASK_ENV

    names = [node.name for node in pipeline.nodes]
    return task_ids(["+".join(names)]).popitem()[1]


def _check_local_inputs(
    pipeline: Pipeline, catalog: Any, loaded: set[str], made_by: Mapping[str, str]
) -> None:
    """Fails before any node runs when a dataset another group saved on its local disk is
    not on this pod's disk (each GKE pod has its own), naming it and the remedy.

    Raises:
        HandoffError: Such a dataset does not exist here.
    """
    for name in sorted({ds for node in pipeline.nodes for ds in node.inputs}):
        if base_name(name) not in loaded or name not in catalog:
            continue
        dataset = catalog.get(name)
        path = local_path(dataset)
        if path is None or isinstance(dataset, HandoffDataset) or dataset.exists():
            continue
        raise HandoffError(
            f"dataset '{name}' is made by node {made_by.get(base_name(name), '?')} in another "
            f"task and saved on that task's local disk ({path}); this pod has its own disk and "
            "does not have it. Set `handoff.local_handoff: true` in airflow.yml so the run prefix "
            "carries it, or put it on GCS (`kedro gcs-bridge catalog --root gs://<bucket>/<path>`)."
        )


class _NodeTimer:
    """A Kedro hook that times each node, for the manifest and the group's MLflow child run."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self.first_node_at: str | None = None

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        if self.first_node_at is None:
            self.first_node_at = dt.datetime.now(dt.UTC).isoformat()
        self.started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        self.seconds[node.name] = time.perf_counter() - self.started.pop(node.name)


def _measured(
    timer: _NodeTimer, store: HandoffStore, run_id: str | None, context: TaskContext
) -> dict[str, Any]:
    """The manifest's extra fields: what `kedro gcs-bridge suggest` reads to model the DAG.

    Bytes saved are in the manifest's dataset records already; bytes loaded are added here.
    """
    return {
        "kedro_run_id": run_id,
        "dag_tasks": context.tasks,
        "node_seconds": {name: round(seconds, 6) for name, seconds in timer.seconds.items()},
        "loaded_bytes": {name: record.size for name, record in sorted(store.loaded.items())},
        "first_node_at": timer.first_node_at,
        **_pod_start(timer.first_node_at, context.task_start),
        **_how_replayed(context.replay_parallel, context.replay_warm),
    }


def _how_replayed(parallel: int | None, warm: bool | None = None) -> dict[str, Any]:
    """`replay_parallel`, `cpus` and `warm_start` when `kedro gcs-bridge replay` runs the group
    (it sets `KEDRO_GCS_BRIDGE_REPLAY_PARALLEL`, and `..._REPLAY_WARM` for a warm task):
    suggest leaves out a pod start measured with more tasks at once than CPUs, and adds a cold
    `kedro run` start to a warm one. Nothing in a pod."""
    if parallel is None:
        return {}
    getaffinity = getattr(os, "sched_getaffinity", None)
    cpus = len(getaffinity(0)) if getaffinity is not None else os.cpu_count()
    return {"replay_parallel": parallel, "cpus": cpus} | ({"warm_start": True} if warm else {})


def _pod_start(first_node_at: str | None, started: dt.datetime | None) -> dict[str, Any]:
    """`task_start_at` and `pod_start_seconds` (task start to first node) when the task's start
    is known (`KEDRO_GCS_BRIDGE_TASK_START`); a missing or unreadable start omits them."""
    if started is None:
        return {}
    fields: dict[str, Any] = {"task_start_at": started.isoformat()}
    if first_node_at is None:
        return fields
    seconds = (dt.datetime.fromisoformat(first_node_at) - started).total_seconds()
    if seconds < 0:  # the worker's clock is ahead of the pod's: not a duration
        logger.warning(
            "No pod start measurement: the task started at %s, after the first node (%s)",
            started.isoformat(),
            first_node_at,
        )
        return fields
    return fields | {"pod_start_seconds": round(seconds, 3)}


class GCSRunner(SequentialRunner):
    """Runs a group of nodes, handing boundary datasets over through a run prefix.

    Use: `kedro run --runner kedro_gcs_bridge.GCSRunner --nodes ...` with
    `KEDRO_GCS_BRIDGE_RUN_PREFIX` set (the generated DAG sets it), or
    `--runner-params prefix=file:///tmp/run1,task=split`.
    """

    def __init__(
        self,
        is_async: bool = False,
        prefix: str | None = None,
        pipeline: str | None = None,
        task: str | None = None,
        allow_pickle: bool | str | None = None,
        handoff_local_datasets: bool | str | None = None,
        full_pipeline: Pipeline | None = None,
    ) -> None:
        """Creates the runner.

        Args:
            is_async: Load and save node data in threads (Kedro's `--async`).
            prefix: Run prefix URL; default `$KEDRO_GCS_BRIDGE_RUN_PREFIX`.
            pipeline: Registered pipeline the groups are cut from; default
                `$KEDRO_GCS_BRIDGE_PIPELINE`, else `__default__`.
            task: This group's task id, for records and the manifest; default
                `$KEDRO_GCS_BRIDGE_TASK`, else derived from the node names.
            allow_pickle: False forbids the pickle fallback; default
                `$KEDRO_GCS_BRIDGE_ALLOW_PICKLE`, else True.
            handoff_local_datasets: Also carry crossing catalog datasets that live on local
                disk through the run prefix; default `$KEDRO_GCS_BRIDGE_LOCAL_HANDOFF` (the
                DAG sets it from `local_handoff`), else True (the same default).
            full_pipeline: The pipeline the groups are cut from, given directly (for use
                from Python); default: the registered one named by `pipeline`.
        """
        super().__init__(is_async=is_async)
        self._prefix = prefix
        self._pipeline_name = pipeline
        self._task = task
        self._allow_pickle = allow_pickle
        self._context = TaskContext.from_env()
        self._handoff_local = _setting(
            "handoff_local_datasets", handoff_local_datasets, self._context.local_handoff, True
        )
        self._full_pipeline = full_pipeline

    def _resolve_prefix(self) -> str:
        prefix = self._prefix or self._context.run_prefix
        if not prefix:
            raise HandoffError(
                "GCSRunner needs a run prefix: the generated DAG sets "
                f"{RUN_PREFIX_ENV}; outside Airflow export {RUN_PREFIX_ENV}=file:///tmp/run1 "
                "or pass `--runner-params prefix=file:///tmp/run1`."
            )
        return prefix

    def _registered_pipeline(self) -> Pipeline:
        if self._full_pipeline is not None:
            return self._full_pipeline
        from kedro.framework.project import pipelines

        name = self._name()
        pipeline = pipelines.get(name)
        if pipeline is None:
            raise HandoffError(
                f"GCSRunner: pipeline '{name}' is not registered (from {PIPELINE_ENV} or the "
                f"`pipeline` runner param); registered: {sorted(pipelines)}."
            )
        tags = self._context.tags
        # The DAG was planned from the pipeline filtered by `kedro airflow create --tags`.
        return pipeline.only_nodes_with_tags(*tags) if tags else pipeline

    def _open_store(self, pipeline: Pipeline) -> HandoffStore:
        from kedro_gcs_bridge.pod.store import HandoffStore
        from kedro_gcs_bridge.pod.transfer import TransferSettings

        context = self._context
        store = HandoffStore(
            self._resolve_prefix(),
            task=self._task or context.task or _task_of(pipeline),
            attempt=context.attempt,
            allow_pickle=_setting("allow_pickle", self._allow_pickle, context.allow_pickle, True),
            upstream=context.upstream,
            transfer=TransferSettings.from_context(context),
        )
        store.check_reachable()
        return store

    def _crossing_names(
        self, pipeline: Pipeline, catalog: Any, bases: set[str], inputs: bool
    ) -> dict[str, str]:
        """Names the nodes use (transcoded ones included) for boundary bases that cross here."""
        names: dict[str, str] = {}
        for node in pipeline.nodes:
            for name in node.inputs if inputs else node.outputs:
                if base_name(name) in bases:
                    names[name] = base_name(name)
        return {name: base for name, base in names.items() if self._crosses(catalog, name)}

    def _crosses(self, catalog: Any, name: str) -> bool:
        dataset = catalog.get(name) if name in catalog else None
        if is_memory(dataset):
            return True
        path = local_path(dataset)
        if path is not None:
            if self._handoff_local:
                return True
            logger.warning(
                "Dataset '%s' crosses between groups but is saved on local disk (%s): the "
                "next pod will not find it. Put it on gs://, remove it from the catalog, or "
                "set handoff.local_handoff: true in airflow.yml (handoff_local_datasets here).",
                name,
                path,
            )
        return False

    def run(
        self,
        pipeline: Pipeline,
        catalog: Any,
        hook_manager: PluginManager | None = None,
        run_id: str | None = None,
        only_missing_outputs: bool = False,
    ) -> dict[str, Any]:
        """Runs the group: boundary inputs from the run prefix, outputs to it, then a manifest.

        Raises:
            HandoffError: No run prefix, an unreachable bucket, a missing or corrupt upstream
                dataset, a value that cannot be stored.
        """
        started_at = dt.datetime.now(dt.UTC).isoformat()
        registered = self._registered_pipeline()
        selected = [node.name for node in pipeline.nodes]
        loaded, saved = boundary_datasets(node_specs(registered), selected)
        store = self._open_store(pipeline)
        made_by: Mapping[str, str] = {
            base_name(out): node.name for node in registered.nodes for out in node.outputs
        }
        for bases, inputs in ((loaded, True), (saved, False)):
            for name, base in self._crossing_names(pipeline, catalog, bases, inputs).items():
                fmt = _catalog_format_of(catalog, name)
                if fmt is not None and not inputs:  # before a node runs, not after it
                    store.check_catalog_format(base, fmt)
                persist = None if inputs else _persisted(catalog, name)
                with _replacing_quietly():
                    catalog[name] = HandoffDataset(store, base, made_by.get(base), fmt, persist)
        _check_local_inputs(pipeline, catalog, loaded, made_by)
        logger.info(
            "GCSRunner: task %s, %d node(s), loads %s, saves %s, run prefix %s",
            store.task,
            len(selected),
            sorted(loaded) or "nothing",
            sorted(saved) or "nothing",
            store.prefix,
        )
        store.mark(self._context.dag_id, self._context.run_id)
        store.start_attempt()
        if hook_manager is None:
            from kedro.framework.hooks.manager import _create_hook_manager

            hook_manager = _create_hook_manager()
        timer = _NodeTimer()
        hook_manager.register(timer)
        with ExitStack() as stack:
            tracking = self._start_tracking(store, catalog, registered_name=self._name())
            if tracking is not None:
                stack.callback(tracking.end)
                hook_manager.register(tracking.collector)
                stack.callback(hook_manager.unregister, tracking.collector)
            try:
                result = super().run(pipeline, catalog, hook_manager, run_id, only_missing_outputs)
            except BaseException:
                if tracking is not None:  # never raises: the node's error is the task's error
                    tracking.record(selected, timer.seconds, store, failed=True)
                raise
            finally:
                hook_manager.unregister(timer)
            measured = _measured(timer, store, run_id, self._context)
            store.write_manifest(selected, started_at, measured)
            if tracking is not None:  # best effort: the manifest above is the commit
                tracking.record(selected, timer.seconds, store, failed=False)
        return result

    def _name(self) -> str:
        return self._pipeline_name or self._context.pipeline or "__default__"

    def _start_tracking(self, store: HandoffStore, catalog: Any, registered_name: str) -> Any:
        """Opens the group's MLflow child run when a tracking URI is configured.

        None when there is none, or (after one warning) when the server is unavailable.
        """
        uri = self._context.tracking_uri
        if uri is None:
            return None
        from kedro_gcs_bridge.pod.group_run import start_group_tracking

        return start_group_tracking(uri, store, catalog, registered_name, self._context)
