"""The Airflow side: the `kedro airflow create` hook, the DAG file the template renders, replay.

Runs on the machine that writes DAG files and in `replay`; never imported by a pod.
"""
