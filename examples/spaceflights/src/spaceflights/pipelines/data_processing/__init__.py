"""Data processing pipeline: clean the raw inputs and build the model input table."""

from __future__ import annotations

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
