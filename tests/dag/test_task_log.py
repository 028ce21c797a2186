"""What replay shows of a task's log (dag/task_log.py): the exception that failed the task,
not one printed inside a harmless warning; none of Kedro's resume advice."""

from __future__ import annotations

import pytest

from kedro_gcs_bridge.dag.task_log import read_task_log, result_details

#: Kedro's `find_pipelines` warning as Python prints it (warnings not routed to logging).
_FIND_PIPELINES_PLAIN = """\
/venv/kedro/framework/project/__init__.py:736: UserWarning: An error occurred while importing \
the 'demo.pipelines.tuning' module. Nothing defined therein will be returned by 'find_pipelines'.

Traceback (most recent call last):
  File "/venv/kedro/framework/project/__init__.py", line 728, in find_pipelines
    pipeline_module = importlib.import_module(pipeline_module_name)
  File "/project/src/demo/pipelines/tuning/__init__.py", line 1, in <module>
    import optuna
ModuleNotFoundError: No module named 'optuna'

  warnings.warn(
"""

#: The same warning as a Rich record, its message column indented.
_FIND_PIPELINES_RICH = """\
[12/07/26 12:16:20] WARNING  /venv/kedro/framework/project/__init__.py:736: UserWarning: An \
error occurred while importing the 'demo.pipelines.tuning' module. Nothing defined therein

                             Traceback (most recent call last):
                               File "/project/src/demo/pipelines/tuning/__init__.py", line 1
                                 import optuna
ModuleNotFoundError: No module named 'optuna'

                               warnings.warn(
"""

_FAILURE = """\
                    INFO     Loading data from companies (CSVDataset)...
                    WARNING  No nodes ran. Repeat the previous command to attempt a new run.
Traceback (most recent call last):
  File "/venv/pandas/io/common.py", line 954, in get_handle
    handle = open(handle, ioargs.mode)
FileNotFoundError: [Errno 2] No such file or directory: 'data/01_raw/companies.csv'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/venv/kedro/io/data_catalog.py", line 1161, in load
DatasetError: companies: Failed while loading data
"""

_RESUME = """\
2026-12-07 12:15:56,569 - kedro.runner.sequential_runner - WARNING - There are 3 nodes that \
have not run.\\nYou can resume the pipeline run from the nearest nodes with persisted inputs by \
adding the following argument to your previous command:\\n  --from-nodes "split"
"""


@pytest.mark.parametrize("warning", [_FIND_PIPELINES_PLAIN, _FIND_PIPELINES_RICH])
def test_first_exception_is_not_one_inside_a_warning(warning: str) -> None:
    read = read_task_log(warning + _FAILURE)
    assert read.first_exception is not None
    assert read.first_exception.startswith("FileNotFoundError: [Errno 2]"), read.first_exception
    assert read.final_error == "DatasetError: companies: Failed while loading data"


def test_a_warning_with_no_failure_after_it_gives_no_exception() -> None:
    assert read_task_log(_FIND_PIPELINES_PLAIN).first_exception is None


@pytest.mark.parametrize("log", [_FAILURE, _RESUME])
def test_kedros_resume_advice_is_not_repeated(log: str) -> None:
    """Kedro's advice to repeat or resume `kedro run` is not what a replayed task needs."""
    details = result_details(log, True, set())
    shown = [line for line in details.splitlines() if not line.strip().startswith("|")]
    assert not any("previous command" in line for line in shown), details


def test_a_python_warning_is_its_first_line_once_whatever_the_line_that_raised_it() -> None:
    """Kedro registers OmegaConf resolvers from two lines: the same deprecation twice, each a
    one-line record with its newlines escaped. Replay shows it once, on one line."""
    text = (
        "UserWarning: register_new_resolver() is deprecated and will be removed in a future "
        "release."
    )
    rest = "\\nUse register_resolver() instead.\\n\\n  OmegaConf.register_new_resolver(\\n"
    log = "\n".join(
        f"2026-12-08 04:07:21,000 - py.warnings - WARNING - /venv/kedro/config/"
        f"omegaconf_config.py:{line}: {text}{rest}"
        for line in (637, 644)
    )
    assert read_task_log(log).warnings == (text,)
