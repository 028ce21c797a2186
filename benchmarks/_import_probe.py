"""Runs `kedro` as its console script does, and records what the process imported.

`python -X importtime benchmarks/_import_probe.py [--statements] OUT.json run --runner ...`, from
a project folder. The run itself is unchanged; two things are added for the record:

- `importlib.import_module` goes through the interpreter's import statement, so that
  `-X importtime` also times the modules Kedro loads by name (the `kedro.hooks` and
  `kedro.project_commands` entry points, the `--runner` class): the import timer only sees
  import statements and would otherwise leave out `kedro_gcs_bridge`, its hook and its CLI;
- with `--statements`, every import statement and `import_module` call that names a watched
  module is kept with the module that made it, even when the module was already loaded, so that
  a test can tell the bridge's imports from Kedro's whatever their order.

At exit OUT.json gets `modules` (sys.modules, sorted), `imports` ([importer, module] pairs) and
`package` (the file `kedro_gcs_bridge` was imported from).
"""

from __future__ import annotations

import atexit
import builtins
import importlib
import importlib.metadata
import importlib.util
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

#: Top-level packages whose imports `--statements` records.
WATCHED = frozenset({"kedro_gcs_bridge", "slugify", "kedro_airflow", "airflow"})

_imports: set[tuple[str, str]] = set()
_import = builtins.__import__
_import_module = importlib.import_module


def _note(importer: str, module: str) -> None:
    if module.partition(".")[0] in WATCHED:
        _imports.add((importer, module))


def _caller() -> str:
    """The module that called `import_module`, past importlib's own frames (entry points)."""
    frame = sys._getframe(2)
    while frame.f_back is not None and str(frame.f_globals.get("__name__")).startswith("importlib"):
        frame = frame.f_back
    return str(frame.f_globals.get("__name__"))


def _recording_import(
    name: str,
    globals: Mapping[str, Any] | None = None,
    locals: Mapping[str, Any] | None = None,
    fromlist: Sequence[str] | None = (),
    level: int = 0,
) -> ModuleType:
    module = _import(name, globals, locals, fromlist, level)
    importer = str((globals or {}).get("__name__"))
    full = name
    if level:
        package = str((globals or {}).get("__package__") or "")
        full = importlib.util.resolve_name("." * level + name, package)
    _note(importer, full)
    for item in fromlist or ():
        if f"{full}.{item}" in sys.modules:  # `from package import submodule`
            _note(importer, f"{full}.{item}")
    return module


def _timed_import_module(name: str, package: str | None = None) -> ModuleType:
    if name.startswith("."):
        return _import_module(name, package)
    _note(_caller(), name)
    _import(name)
    return sys.modules[name]


def _dump(out: Path) -> None:
    package = sys.modules.get("kedro_gcs_bridge")
    record = {
        "modules": sorted(sys.modules),
        "imports": sorted(_imports),
        "package": getattr(package, "__file__", None),
    }
    out.write_text(json.dumps(record, indent=1), encoding="utf-8")


def main(argv: Sequence[str]) -> None:
    """Records into `argv[0]` (after an optional `--statements`) and runs `kedro argv[1:]`."""
    statements = argv[0] == "--statements"
    out, *kedro_args = argv[1:] if statements else argv
    atexit.register(_dump, Path(out).resolve())
    importlib.import_module = _timed_import_module
    importlib.metadata.import_module = _timed_import_module  # EntryPoint.load uses this name
    if statements:
        builtins.__import__ = _recording_import
    from kedro.framework.cli import main as kedro_main

    sys.argv = ["kedro", *kedro_args]
    kedro_main()


if __name__ == "__main__":
    main(sys.argv[1:])
