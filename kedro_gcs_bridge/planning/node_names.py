"""Node names Kedro generates: `train_model__199807b9` for a node given no name, which Kedro
prints as `train_model([X_train;y_train]) -> [regressor]`. `plan` says which is which, and
the `groups:` config takes either form. Pure, and imported by grouping: no other import of
the package (the pod side imports grouping too).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol


class _Printed(Protocol):
    """What is read of a node (`grouping.NodeSpec` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def kedro_node(self) -> str: ...


def _plain(description: str) -> str:
    """A Kedro node's printed form, spacing and list separators aside (Kedro 1.x joins
    inputs with `;`, older versions and people with `,`)."""
    return re.sub(r"\s+", "", description).replace(",", ";")


def generated_names(nodes: Iterable[_Printed]) -> dict[str, str]:
    """Node name Kedro generated (`train_model__199807b9`) -> the node as Kedro prints it
    (`train_model([X_train;y_train]) -> [regressor]`), for the nodes that have one."""
    return {node.name: node.kedro_node for node in nodes if node.kedro_node}


def resolve_node_names(
    nodes: Sequence[_Printed], groups: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """The `groups:` config with every node given in Kedro's printed form
    (`train_model([X_train,y_train]) -> [regressor]`) replaced by its name
    (`train_model__199807b9`); other entries, and forms two nodes share, stay as they are."""
    found: dict[str, list[str]] = {}
    for node in nodes:
        if node.kedro_node:
            found.setdefault(_plain(node.kedro_node), []).append(node.name)
    names = {node.name for node in nodes}

    def resolved(entry: str) -> str:
        if entry in names:
            return entry
        matches = found.get(_plain(entry), [])
        return matches[0] if len(matches) == 1 else entry

    return {group: [resolved(entry) for entry in entries] for group, entries in groups.items()}


def generated_text(nodes: Iterable[_Printed], planned: Iterable[str]) -> str:
    """For `plan`: which Kedro node each generated name it plans stands for ("" if none)."""
    wanted = set(planned)
    found = {name: shown for name, shown in generated_names(nodes).items() if name in wanted}
    if not found:
        return ""
    lines = ["", "Node names Kedro generated (`groups:` takes either form):"]
    lines += [f"  {name} = {shown}" for name, shown in sorted(found.items())]
    return "\n".join(lines) + "\n"
