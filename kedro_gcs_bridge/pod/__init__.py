"""The pod side: `GCSRunner`, the run prefix as data (`protocol`: layout, manifest, records;
`context`: the environment a DAG gives a pod), the commit, the store and its formats.

Runs inside each task's pod (`kedro run --runner kedro_gcs_bridge.GCSRunner`); imports nothing
of `dag/`.
"""
