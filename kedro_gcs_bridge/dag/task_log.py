"""What replay shows of a task's log: its warnings, its first exception and its final error.

A `kedro run` log is Kedro's Rich logging (`[time] LEVEL  message  file.py:NN`, long messages
wrapped onto indented lines, tracebacks in boxes) or plain logging; both are read here. The
first exception of a chained traceback is the cause; the last one is what the task raised, and
the bridge's errors end with what to do (the runner's hint).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_RICH_RECORD = re.compile(r"^(?:\[[^\]]*\]\s*|\s+)?(DEBUG|INFO|WARNING|ERROR|CRITICAL)\s{2,}(.*)$")
_PLAIN_WARNING = re.compile(r"\bWARNING\b[\s:\-\]|]+(.*)$")
_PY_WARNING = re.compile(r"^\S+:\d+: (\w*Warning: .*)$")
_SOURCE = re.compile(r"\s{2,}[\w.-]+\.py:\d+\s*$")
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)(?::\s.*|:?)$")
#: Rich indents a record's wrapped lines under its message column (after the time column).
_CONTINUATION_INDENT = 21
_MAX_CHARS = 600
#: A Python warning's first line (`file.py:NN: UserWarning: ...`, plain or in a record) and
#: the source line Python prints at its end: a traceback between them is the warning's text
#: (Kedro's `find_pipelines` quotes the import error of a module it skips), not the task's.
_WARNING_HEAD = re.compile(r"\.py:\d+: \w*Warning: ")
_WARNING_END = "warnings.warn("
#: Kedro's advice to repeat or resume `kedro run`: a replayed task is re-run with `--task`.
_RESUME_ADVICE = (
    "Repeat the previous command to attempt a new run",
    "You can resume the pipeline run from the nearest nodes",
)
#: Lines that end an exception's message: traceback frames and boxes, chaining notes, records.
_NOT_MESSAGE = ("│", "╭", "╰", "Traceback", "The above", "During handling", " ", "[")


@dataclass(frozen=True)
class TaskLog:
    """The parts of one task's log replay prints."""

    warnings: tuple[str, ...]
    first_exception: str | None
    final_error: str | None


def _message(text: str) -> str:
    return _SOURCE.sub("", text).strip()


def _warnings(lines: list[str]) -> list[str]:
    """WARNING records (wrapped lines joined) and Python warnings, each once, in order."""
    found: list[str] = []
    current: list[str] | None = None
    for line in lines:
        rich = _RICH_RECORD.match(line)
        if rich:
            current = [_message(rich.group(2))] if rich.group(1) == "WARNING" else None
            if current is not None:
                found.append("")
        elif current is not None and line.startswith(" " * _CONTINUATION_INDENT) and line.strip():
            current.append(_message(line))
        else:
            current = None
            plain = _PLAIN_WARNING.search(line) or _PY_WARNING.match(line)
            if plain:
                found.append(plain.group(1).strip())
            continue
        if current is not None:
            found[-1] = " ".join(part for part in current if part)
    return list(dict.fromkeys(_gist(text)[:_MAX_CHARS] for text in found if text))


def _gist(warning: str) -> str:
    """A warning's first line (a one-line record escapes its newlines), without the file and
    line that raised it: one warning raised from two lines is said once."""
    first = warning.split("\\n", 1)[0].strip()
    located = _PY_WARNING.match(first)
    return located.group(1) if located else first


def _exception_blocks(lines: list[str]) -> list[str]:
    """Each exception line at column 0 with the lines of its message that follow it."""
    blocks: list[list[str]] = []
    collecting = False
    for line in lines:
        if _EXCEPTION.match(line):
            blocks.append([line.strip()])
            collecting = True
        elif collecting and line.strip() and not line.startswith(_NOT_MESSAGE):
            blocks[-1].append(line.strip())
        else:
            collecting = False
    return [" ".join(block)[:_MAX_CHARS] for block in blocks]


def _outside_warnings(lines: list[str]) -> list[str]:
    """The lines of a log without the text of multi-line Python warnings (from a warning's
    first line to its closing `warnings.warn(` source line, when there is one)."""
    kept: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if _WARNING_HEAD.search(line):
            end = next(
                (i for i in range(index + 1, len(lines)) if lines[i].strip() == _WARNING_END),
                None,
            )
            if end is not None:
                kept.append(line)
                index = end + 1
                continue
        kept.append(line)
        index += 1
    return kept


def read_task_log(log: str) -> TaskLog:
    """The warnings, the first exception and the final error of one task's log."""
    lines = log.splitlines()
    blocks = _exception_blocks(_outside_warnings(lines))
    return TaskLog(
        tuple(_warnings(lines)),
        blocks[0] if blocks else None,
        blocks[-1] if blocks else None,
    )


def result_details(log: str, failed: bool, seen: set[str], tail: int = 40) -> str:
    """The lines replay prints under a task: its warnings (each new one; Kedro's advice to
    repeat or resume `kedro run` left out), and on failure the first exception, the final
    error and the tail. (The files tasks left on their disks are summed up once, after the
    replay: `dag/replay.py` `left_on_disk_summary`.)

    Args:
        log: The task's stdout and stderr.
        failed: The task failed.
        seen: Warnings already printed for earlier tasks (updated).
        tail: Lines of the log's end shown on failure.
    """
    read = read_task_log(log)
    new = [
        warning
        for warning in read.warnings
        if warning not in seen and not any(advice in warning for advice in _RESUME_ADVICE)
    ]
    seen.update(new)
    lines = [f"warning: {warning}" for warning in new]
    if failed:
        if read.first_exception:
            lines.append(f"first exception: {read.first_exception}")
        if read.final_error and read.final_error != read.first_exception:
            lines.append(f"error: {read.final_error}")
        lines += [f"| {line}" for line in log.rstrip().splitlines()[-tail:]]
    return "\n".join(f"    {line}" for line in lines)
