"""Auto-grouping: a cost model of a DAG on GKE Autopilot, and a search for cheaper groups.

Pure functions over `NodeSpec` plus what a measured run left behind (each node's seconds, each
dataset's bytes); `kedro gcs-bridge suggest` reads those from a run prefix and calls
`suggest_groups`. By job:

- `model`: the cost constants (`CostModel`) and the figures of one grouping (`Estimate`);
- `evaluation`: the pipeline as arrays, and one grouping's durations and makespan;
- `search`: greedy merging in checked batches;
- `groupings`: the groupings compared (current, ungrouped, kedro-airflow's) and
  `suggest_groups`;
- `measured`: what a run's manifests say (node seconds, dataset bytes, pod starts);
- `report`: the comparison table and the `groups:` block.
"""

from __future__ import annotations

from kedro_gcs_bridge.planning.suggest.groupings import (
    memory_grouping,
    namespace_grouping,
    suggest_groups,
)
from kedro_gcs_bridge.planning.suggest.measured import (
    RunFigures,
    figures_from_manifests,
    measured_pod_start,
    mlflow_run_id,
    pod_start_choice,
    unsized_catalog_reads,
)
from kedro_gcs_bridge.planning.suggest.model import (
    OBJECTIVES,
    CostModel,
    Estimate,
    Measurements,
    Suggestion,
    cost_model,
    groups_block,
)
from kedro_gcs_bridge.planning.suggest.report import groups_yaml, suggestion_text

__all__ = [
    "OBJECTIVES",
    "CostModel",
    "Estimate",
    "Measurements",
    "RunFigures",
    "Suggestion",
    "cost_model",
    "figures_from_manifests",
    "groups_block",
    "groups_yaml",
    "measured_pod_start",
    "memory_grouping",
    "mlflow_run_id",
    "namespace_grouping",
    "pod_start_choice",
    "suggest_groups",
    "suggestion_text",
    "unsized_catalog_reads",
]
