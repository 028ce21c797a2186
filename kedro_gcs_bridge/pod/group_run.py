"""The MLflow child run of one group pod: opened before its nodes run, filled in after.

While the nodes run, the child run is MLflow's active run in this process, so a node's own
`mlflow.log_metric(...)` lands in its group's child run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kedro_gcs_bridge.pod.contract import DAG_ID_ENV, EXPERIMENT_ENV, KEDRO_ENV_ENV, RUN_ID_ENV
from kedro_gcs_bridge.tracking.tracker import RunIdentity, Tracker

if TYPE_CHECKING:
    from kedro_gcs_bridge.pod.store import HandoffStore

logger = logging.getLogger(__name__)


def _identity(store: HandoffStore, pipeline: str) -> RunIdentity:
    from kedro.framework import project

    return RunIdentity(
        dag_id=os.environ.get(DAG_ID_ENV) or "local",
        airflow_run_id=os.environ.get(RUN_ID_ENV) or store.prefix,
        pipeline=pipeline,
        env=os.environ.get(KEDRO_ENV_ENV) or "local",
        project=str(project.PACKAGE_NAME or ""),
    )


def _parameters(catalog: Any) -> Mapping[str, Any]:
    if "parameters" not in catalog:
        return {}
    loaded = catalog.load("parameters")
    return loaded if isinstance(loaded, Mapping) else {}


@dataclass
class GroupTracking:
    """A group's parent and child runs, and the MLflow run active while its nodes run."""

    tracker: Tracker
    parent_id: str
    child_id: str
    active: bool = True

    @classmethod
    def start(cls, uri: str, store: HandoffStore, catalog: Any, pipeline: str) -> GroupTracking:
        """Finds or creates the parent run, logs the parameters on it, opens the child run."""
        import mlflow

        tracker = Tracker(uri, store, os.environ.get(EXPERIMENT_ENV))
        parent_id, experiment_id = tracker.parent_run(_identity(store, pipeline))
        tracker.log_params_once(parent_id, _parameters(catalog))
        child_id = tracker.child_run(parent_id, experiment_id, store.task)
        logger.info("MLflow: parent run %s, child run %s (%s)", parent_id, child_id, uri)
        outer = mlflow.active_run()
        if outer is not None:
            # Another plugin (kedro-mlflow) opened a run for this process: it stays the active
            # run (nodes' own mlflow calls land there, as that plugin promises); the group's
            # child run is filled in through the client only.
            logger.info(
                "MLflow run %s of another plugin is active: node metrics go there; the "
                "bridge logs its figures into child run %s directly.",
                outer.info.run_id,
                child_id,
            )
            return cls(tracker, parent_id, child_id, active=False)
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(experiment_id=experiment_id)
        mlflow.start_run(run_id=child_id)
        return cls(tracker, parent_id, child_id)

    def record(
        self, nodes: list[str], seconds: Mapping[str, float], store: HandoffStore, failed: bool
    ) -> None:
        """Logs the group's nodes, node durations and handed-off bytes; ends the child run."""

        try:
            self.tracker.log_group(
                self.child_id,
                nodes,
                seconds,
                bytes_in=sum(record.size for record in store.loaded.values()),
                bytes_out=sum(record.size for record in store.saved.values()),
                attempt=store.attempt,
            )
        finally:
            self._end("FAILED" if failed else "FINISHED")

    def _end(self, status: str) -> None:
        import mlflow

        if self.active:
            current = mlflow.active_run()
            if current is not None and current.info.run_id == self.child_id:
                mlflow.end_run(status)
        else:
            self.tracker.client.set_terminated(self.child_id, status)
        self.active = False

    def end(self) -> None:
        """Ends the child run if `record` did not (an error while logging)."""
        import mlflow

        current = mlflow.active_run()
        if self.active and current is not None and current.info.run_id == self.child_id:
            self._end("FAILED")
