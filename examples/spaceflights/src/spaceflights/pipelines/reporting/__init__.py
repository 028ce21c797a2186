"""Reporting pipeline: charts of the preprocessed data."""

from __future__ import annotations

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
