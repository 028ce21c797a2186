"""Data science pipeline: split the data, train a regressor and evaluate it."""

from __future__ import annotations

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
