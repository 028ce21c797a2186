"""The pod side: `GCSRunner`, the run-prefix store and its formats, catalog inspection, and the
environment-variable contract between the DAG and the pod.

Runs inside each task's pod (`kedro run --runner kedro_gcs_bridge.GCSRunner`); imports nothing
of `dag/`.
"""
