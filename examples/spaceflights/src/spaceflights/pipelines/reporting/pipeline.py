"""Definition of the reporting pipeline."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .nodes import plot_passenger_capacity


def create_pipeline(**kwargs: object) -> Pipeline:
    """Create the reporting pipeline (1 node).

    The chart is drawn in the `shuttles` task, next to the node that makes its input: no pod
    of its own and no handoff for it.
    """
    return Pipeline(
        [
            Node(
                func=plot_passenger_capacity,
                inputs="preprocessed_shuttles",
                outputs="shuttle_passenger_capacity_plot",
                name="plot_passenger_capacity_node",
                tags=["airflow.shuttles", "machine.medium"],
            ),
        ]
    )
