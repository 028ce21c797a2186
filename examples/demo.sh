#!/usr/bin/env bash
# The kedro-gcs-bridge demo: the user journey on the example project, whose catalog keeps every
# dataset on local disk like the Kedro spaceflights starter. validate names what a GKE pod would
# lose; `catalog --root` moves the catalog to a bucket (a local GCS emulator here), the raw
# inputs are uploaded, the stock `kedro airflow create -e gcs` writes the DAG, replay runs each
# task as a pod would (its own copy of the project without data/), and the outputs on the
# bucket are compared with a plain `kedro run`. Run it with `make demo` (which sets up .venv).
# DEMO_DIR picks the work folder (default .demo), DEMO_BIN the environment's bin folder (default
# .venv/bin); the detail of every command is in the work folder's demo.log.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin="${DEMO_BIN:-$repo/.venv/bin}"
work="${DEMO_DIR:-$repo/.demo}"
bucket=example-bucket
root="gs://$bucket/spaceflights"
started=$SECONDS

rm -rf "$work" && mkdir -p "$work"
log="$work/demo.log"
# Kedro's INFO records go to the log, one line each; the screen keeps warnings and what the
# commands print. OmegaConf's deprecation warning about Kedro's own resolvers is dropped.
cat >"$work/logging.yml" <<EOF
version: 1
disable_existing_loggers: false
formatters:
  line: {format: "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"}
  short: {format: "%(levelname)s %(name)s: %(message)s"}
handlers:
  file: {class: logging.FileHandler, filename: "$log", formatter: line, level: INFO}
  screen: {class: logging.StreamHandler, stream: "ext://sys.stderr", formatter: short, level: WARNING}
root: {level: INFO, handlers: [file, screen]}
EOF
export KEDRO_LOGGING_CONFIG="$work/logging.yml"
export PYTHONWARNINGS="ignore:register_new_resolver() is deprecated:UserWarning"
# Airflow (which replay loads the DAG with) and MLflow log INFO lines of their own: to the log.
export AIRFLOW__LOGGING__LOGGING_LEVEL=WARNING MLFLOW_CONFIGURE_LOGGING=false
export KEDRO_DISABLE_TELEMETRY=true DO_NOT_TRACK=1
kedro() { "$bin/kedro" "$@"; }
step() { printf '\n== %s\n' "$*"; }

cp -r "$repo/examples/spaceflights" "$work/spaceflights"
rm -rf "$work/spaceflights/data"/0[2-8]_*/* "$work/spaceflights/.ruff_cache"
cd "$work/spaceflights"

step "0. a local GCS emulator (bucket $bucket, in memory) for the whole demo"
port=$("$bin/python" -c 'from kedro_gcs_bridge.ops.emulator import free_port; print(free_port())')
"$bin/gcp-storage-emulator" start --host 127.0.0.1 --port "$port" --default-bucket "$bucket" \
  -q -M >"$work/emulator.log" 2>&1 &
emulator=$!
trap 'kill "$emulator" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (: </dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.1
done
export STORAGE_EMULATOR_HOST="http://127.0.0.1:$port" GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false
echo "STORAGE_EMULATOR_HOST=$STORAGE_EMULATOR_HOST (every command below, gcsfs included, uses it)"

step "1. init: the DAG template and docker/ (its ignore file leaves data/ out of the image)"
kedro gcs-bridge init

step "2. validate: every dataset on local disk that a GKE pod would lack or lose"
set +e
kedro gcs-bridge validate -p __default__
status=$?
set -e
[ "$status" -eq 1 ] || { echo "validate exited $status, expected 1" >&2; exit 1; }
echo "(validate exited 1: kedro airflow create would write no DAG either)"

step "3. catalog: conf/gcs/catalog.yml, every local-disk entry moved under $root"
kedro gcs-bridge catalog --root "$root" -e gcs

step "4. upload the raw inputs (with gcsfs; on GCS: gcloud storage cp -r data/01_raw $root/data/01_raw)"
"$bin/python" "$repo/examples/demo_bucket.py" upload data/01_raw "$root/data/01_raw"

step "5. the plan with -e gcs: tasks, and where each dataset lives"
kedro gcs-bridge plan -e gcs

step "6. the Airflow DAG, written by the stock kedro-airflow command"
# The DAG names the team's tracking server; the replay below tracks into a local SQLite store.
kedro airflow create -j templates/gcs_bridge.j2 -e gcs -t "$work/airflow_dags" \
  --params "mlflow.tracking_uri=http://mlflow.example.com,mlflow.experiment=spaceflights-demo"
dag_file="$work/airflow_dags/spaceflights_gcs_dag.py"

step "7. replay: each task a process in its own copy of the project, as a pod; data on the bucket"
tracking="sqlite:///$work/mlflow.db"
AIRFLOW_HOME="$work/airflow_home" kedro gcs-bridge replay "$dag_file" \
  --prefix "gs://$bucket/kedro-gcs-bridge" --tracking-uri "$tracking"

step "8. a plain kedro run of the same project (local disk), compared with the bucket's outputs"
kedro run
"$bin/python" "$repo/examples/demo_bucket.py" compare "$root" "$work/spaceflights"

echo
echo "Demo done in $((SECONDS - started)) s. Every command's detail: $log"
echo "MLflow (one parent run for the DAG run, one child run per task):"
echo "  $bin/mlflow ui --backend-store-uri $tracking --host 127.0.0.1 --port 5000"
