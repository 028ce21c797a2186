"""Nodes of the data science pipeline."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import pandas as pd
from sklearn.linear_model import LinearRegression
from sklearn.metrics import max_error, mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split

logger = logging.getLogger(__name__)


def split_data(
    data: pd.DataFrame, parameters: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Split the data into features and target, and into train and test sets.

    Args:
        data: Model input table.
        parameters: ``model_options`` from ``conf/base/parameters.yml``.

    Returns:
        ``X_train``, ``X_test``, ``y_train`` and ``y_test``.
    """
    features = data[parameters["features"]]
    target = data["price"]
    x_train, x_test, y_train, y_test = train_test_split(
        features,
        target,
        test_size=parameters["test_size"],
        random_state=parameters["random_state"],
    )
    return x_train, x_test, y_train, y_test


def train_model(
    x_train: pd.DataFrame, y_train: pd.Series
) -> tuple[LinearRegression, dict[str, float]]:
    """Train a linear regression model.

    Args:
        x_train: Training features.
        y_train: Training target (price).

    Returns:
        The fitted model, and its fit on the training set (a plain dict).
    """
    regressor = LinearRegression()
    regressor.fit(x_train, y_train)
    training_metrics = {
        "train_r2_score": float(regressor.score(x_train, y_train)),
        "train_rows": len(x_train),
    }
    return regressor, training_metrics


def evaluate_model(
    regressor: LinearRegression,
    x_test: pd.DataFrame,
    y_test: pd.Series,
    training_metrics: dict[str, float],
) -> dict[str, float]:
    """Compute and log the model's metrics on the test set.

    Args:
        regressor: Trained model.
        x_test: Test features.
        y_test: Test target (price).
        training_metrics: The model's fit on the training set, reported alongside.

    Returns:
        A plain dict with ``r2_score``, ``mae``, ``max_error`` and the training figures.
    """
    y_pred = regressor.predict(x_test)
    metrics = {
        "r2_score": float(r2_score(y_test, y_pred)),
        "mae": float(mean_absolute_error(y_test, y_pred)),
        "max_error": float(max_error(y_test, y_pred)),
        **training_metrics,
    }
    logger.info(
        "Model has a coefficient R^2 of %.3f on test data.", metrics["r2_score"]
    )
    _log_to_mlflow(metrics)
    return metrics


def _log_to_mlflow(metrics: dict[str, float]) -> None:
    """Logs the metrics into the group's MLflow run (named by `MLFLOW_RUN_ID`, which
    the runner sets while tracking is on) or into the run another plugin made active."""
    group_run = os.environ.get("MLFLOW_RUN_ID")
    if not group_run and "mlflow" not in sys.modules:
        return  # tracking is off: no import to pay
    import mlflow  # noqa: PLC0415 - only when tracking is on

    if group_run or mlflow.active_run() is not None:
        mlflow.log_metrics(metrics)
