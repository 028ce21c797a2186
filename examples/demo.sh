#!/usr/bin/env bash
# The kedro-gcs-bridge demo: the example project's DAG generated with the stock kedro-airflow
# command, checked, and its groups run as separate processes handing data over through a local
# run prefix. Run it with `make demo` (which sets up .venv first).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin="$repo/.venv/bin"
work="$repo/.demo"
export KEDRO_DISABLE_TELEMETRY=true DO_NOT_TRACK=1

rm -rf "$work" && mkdir -p "$work"
cp -r "$repo/examples/spaceflights" "$work/spaceflights"
cd "$work/spaceflights"

echo "== 1. validate the grouping and machine tags"
"$bin/kedro" gcs-bridge validate 2>/dev/null

echo "== 2. the task plan"
"$bin/kedro" gcs-bridge plan 2>/dev/null

echo "== 3. generate the Airflow DAG with the stock kedro-airflow command"
# The DAG names the team's tracking server (GKE pods cannot share a local file); this replay
# tracks into a local SQLite store instead (`--tracking-uri`, created once before tasks start).
tracking="sqlite:///$work/mlflow.db"
"$bin/kedro" airflow create -j "$repo/templates/gcs_bridge.j2" -t "$work/airflow_dags" \
  --params "mlflow_tracking_uri=http://mlflow.example.com,mlflow_experiment=spaceflights-demo" \
  2>/dev/null
dag_file="$work/airflow_dags/spaceflights_dag.py"

echo "== 4. load it in a real Airflow DagBag and run each task's command locally"
AIRFLOW_HOME="$work/airflow_home" "$bin/kedro" gcs-bridge replay "$dag_file" --prefix "file://$work/runs" \
  --tracking-uri "$tracking"

echo
echo "Outputs: $work/spaceflights/data/08_reporting/metrics.json"
cat "$work/spaceflights/data/08_reporting/metrics.json"
echo
echo "Handoff objects under: $work/runs"
echo "MLflow: one parent run for this DAG run, one child run per task. Open the UI with:"
echo "  $bin/mlflow ui --backend-store-uri $tracking --host 127.0.0.1 --port 5000"
