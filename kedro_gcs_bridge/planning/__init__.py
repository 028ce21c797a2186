"""Planning: grouping, machine classes, names and the plan of tasks (from the config in
`kedro_gcs_bridge/config.py`). Pure: no I/O.

Runs wherever a DAG is planned (`kedro airflow create`, `plan`, `validate`) and, for what crosses
between groups, in the pod too; nothing here touches storage, Airflow or MLflow.
"""
