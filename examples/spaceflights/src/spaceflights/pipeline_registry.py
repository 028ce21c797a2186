"""Project pipelines."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from spaceflights.pipelines import data_processing, data_science, reporting


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = {
        "data_processing": data_processing.create_pipeline(),
        "data_science": data_science.create_pipeline(),
        "reporting": reporting.create_pipeline(),
    }
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
