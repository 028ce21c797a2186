"""Run prefixes made for tests of `runs list/gc` and finalize, through the real store."""

from __future__ import annotations

from kedro_gcs_bridge.pod.store import HandoffStore


def make_run(root: str, dag: str, run: str, done: list[str], expected: list[str]) -> str:
    """A marked run prefix `<root>/<dag>/<run>` whose `done` tasks committed a manifest."""
    prefix = f"{root}/{dag}/{run}"
    HandoffStore(prefix, task="setup").mark(dag, run)
    for task in done:
        store = HandoffStore(prefix, task=task)
        store.save(f"{task}_out", {"task": task})
        store.write_manifest([f"{task}_node"], "t0", {"dag_tasks": expected})
    return prefix
