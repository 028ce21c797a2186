"""Definition of the data science pipeline."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .nodes import evaluate_model, split_data, train_model


def create_pipeline(**kwargs: object) -> Pipeline:
    """Create the data science pipeline (3 nodes)."""
    return Pipeline(
        [
            Node(
                func=split_data,
                inputs=["model_input_table", "params:model_options"],
                outputs=["X_train", "X_test", "y_train", "y_test"],
                name="split_data_node",
                tags=["airflow.split", "machine.medium"],
            ),
            Node(
                func=train_model,
                inputs=["X_train", "y_train"],
                outputs=["regressor", "training_metrics"],
                name="train_model_node",
                tags=["machine.medium"],
            ),
            Node(
                func=evaluate_model,
                inputs=["regressor", "X_test", "y_test", "training_metrics"],
                outputs="metrics",
                name="evaluate_model_node",
                tags=["machine.medium"],
            ),
        ]
    )
