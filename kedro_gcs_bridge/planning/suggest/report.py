"""The suggestion for people and for airflow.yml: a comparison table and a `groups:` block."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import yaml

from kedro_gcs_bridge.planning.suggest.model import CostModel, Suggestion, groups_block
from kedro_gcs_bridge.planning.views import human_size


def groups_yaml(groups: Mapping[str, Sequence[str]]) -> str:
    """The suggestion as a `groups:` block to paste under `default:` in airflow.yml."""
    block = groups_block(groups)
    if not block:
        return "groups: {}  # every node in a pod of its own\n"
    return yaml.safe_dump({"groups": block}, sort_keys=False, default_flow_style=False)


def suggestion_text(suggestion: Suggestion, model: CostModel) -> str:
    """The comparison table, the `groups:` block and the notes, for a terminal."""
    from tabulate import tabulate  # the `dag` extra: json and yaml output need none

    rows = []
    for label, e in suggestion.rows():
        cyclic = e.makespan_s is None
        rows.append(
            (
                label + (" (mixes classes)" if e.mixed else ""),
                str(e.tasks),
                "cycle" if cyclic else f"{e.makespan_s:,.0f} s",
                "-" if cyclic else f"{e.pod_seconds:,.0f}",
                "-" if cyclic else human_size(e.bytes),
            )
        )
    table = tabulate(
        rows,
        headers=("grouping", "tasks", "makespan", "pod-seconds", "bytes via GCS"),
        colalign=("left", "right", "right", "right", "right"),
        disable_numparse=True,
    )
    assumptions = (
        f"model: pod start {model.pod_start_s:g} s, kedro start {model.kedro_start_s:g} s, "
        f"GCS round trip {model.round_trip_s * 1000:g} ms, {model.bandwidth_bytes_s / 1e6:g} MB/s, "
        f"encode/decode {model.encode_bytes_s / 1e6:g}/{model.decode_bytes_s / 1e6:g} MB/s"
    )
    notes = "".join(f"note: {note}\n" for note in suggestion.notes)
    block = groups_yaml(suggestion.suggested.groups)
    where = "Paste into airflow.yml, indented under `default:` (or under the pipeline's name):"
    return table + f"\n\n{assumptions}\n{notes}\n{where}\n\n{block}"
