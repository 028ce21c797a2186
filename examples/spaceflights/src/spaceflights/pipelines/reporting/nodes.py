"""Nodes of the reporting pipeline."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure


def plot_passenger_capacity(preprocessed_shuttles: pd.DataFrame) -> Figure:
    """Bar chart of the average passenger capacity per shuttle type.

    A plain `Figure`, not pyplot: no display backend and no global figure state, so it draws
    the same in a pod, on CI and on a laptop.

    Args:
        preprocessed_shuttles: Preprocessed data for shuttles.

    Returns:
        The figure (the catalog's MatplotlibDataset saves it as PNG).
    """
    capacity = (
        preprocessed_shuttles.groupby("shuttle_type")["passenger_capacity"]
        .mean()
        .sort_index()
    )
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    axes.barh(capacity.index, capacity.to_numpy())
    axes.set_xlabel("Average passenger capacity")
    axes.set_ylabel("Shuttle type")
    axes.set_title("Shuttle passenger capacity")
    figure.tight_layout()
    return figure
