"""The package's version, in a module of its own: the pod side reads it without importing the
package's `__init__` (which leads to the runner)."""

from __future__ import annotations

__version__ = "0.1.0"
