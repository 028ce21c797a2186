"""Pipelines of the spaceflights example project."""

from __future__ import annotations
