"""The suite's GCS emulator is one per test module, so its memory stays bounded (issue 27).

gcp-storage-emulator keeps every object it ever held in memory; one instance for the whole
suite grew to 6-8 GB. Two test modules, run by pytest in a subprocess with the suite's own
fixture: each gets its own emulator, and the first is stopped before the second starts.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

TESTS = Path(__file__).resolve().parent

_MODULE = """
import json, pathlib
import gcsfs
from _gcs_emulator import RUNNING

def test_write_and_record(gcs_emulator):
    fs = gcsfs.GCSFileSystem(token="anon", project="local-emulator")
    fs.pipe("bridge-test/{name}", b"x")
    fs.invalidate_cache()
    record = {{"url": gcs_emulator, "running": list(RUNNING), "objects": fs.ls("bridge-test")}}
    with pathlib.Path("seen.jsonl").open("a") as handle:
        handle.write(json.dumps(record) + "\\n")
"""


def test_each_module_gets_its_own_emulator_and_the_last_one_is_stopped(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\npytest_plugins = ['_gcs_emulator']\n"
    )
    pytester.makepyfile(
        test_a=_MODULE.format(name="a"),
        test_b=_MODULE.format(name="b"),
        test_c="def test_c(): pass",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=3)

    seen = [json.loads(line) for line in (pytester.path / "seen.jsonl").read_text().splitlines()]
    assert len(seen) == 2
    # One emulator at a time, and a fresh one for module b: nothing of module a is kept.
    assert [record["running"] for record in seen] == [[record["url"]] for record in seen]
    assert [[Path(o).name for o in record["objects"]] for record in seen] == [["a"], ["b"]]
    for record in seen:  # each stopped with its module
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", urlsplit(record["url"]).port)) != 0
