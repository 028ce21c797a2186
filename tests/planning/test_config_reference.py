"""The config keys stay documented where users read them: every key the parser accepts is in the
file `kedro gcs-bridge init` writes (commented, with its default) and in the README's config
reference (with its default), the init file parses as it is and uncommented, and the README's
production checklist keeps the issue's order. Also the two large-data keys, `parallel_threshold`
and `parallel_concurrency`, read strictly."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from kedro_gcs_bridge.errors import ConfigError
from kedro_gcs_bridge.planning.config import (
    BridgeConfig,
    accepted_keys,
    merge_airflow_config,
    parse_config,
)
from kedro_gcs_bridge.planning.machines import MachineClass

REPO = Path(__file__).resolve().parents[2]
INIT_FILE = REPO / "kedro_gcs_bridge" / "project_files" / "airflow.yml"
README = REPO / "README.md"
#: A commented line that is YAML once its `# ` goes: a key, or a list item.
_COMMENTED_YAML = re.compile(r"^(\s*)# (\s*)(?=[a-z_][\w.-]*:|- )")
#: Fields of a machine class a user sets (its name is the mapping key).
CLASS_FIELDS = sorted(f.name for f in fields(MachineClass) if f.name != "name")


def uncomment(text: str) -> str:
    """The init file with every commented key switched on, as a user would do one by one."""
    return "\n".join(_COMMENTED_YAML.sub(r"\1\2", line) for line in text.splitlines())


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def reference_rows() -> dict[str, str]:
    """README config reference: key -> its default cell (`a / b` rows give each key its part)."""
    rows: dict[str, str] = {}
    for line in _section(README.read_text("utf-8"), "Config reference").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        keys = re.findall(r"`([a-z0-9_]+)`", cells[0])
        defaults = [part.strip() for part in cells[1].split(" / ")]
        for i, key in enumerate(keys):
            rows[key] = defaults[i] if len(defaults) == len(keys) else cells[1]
    return rows


def _written(value: Any) -> str:
    """A default as the README writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class TestInitFile:
    @pytest.mark.parametrize("key", accepted_keys())
    def test_lists_every_key(self, key: str) -> None:
        assert re.search(rf"^\s*(# )?{key}:", INIT_FILE.read_text("utf-8"), re.MULTILINE), key

    @pytest.mark.parametrize("field", CLASS_FIELDS)
    def test_lists_every_machine_class_field(self, field: str) -> None:
        example = yaml.safe_load(uncomment(INIT_FILE.read_text("utf-8")))
        listed = {key for spec in example["default"]["machine_classes"].values() for key in spec}
        assert field in listed

    @pytest.mark.parametrize("switch_on", [False, True], ids=["as-shipped", "uncommented"])
    def test_parses(self, switch_on: bool) -> None:
        text = INIT_FILE.read_text("utf-8")
        raw = yaml.safe_load(uncomment(text) if switch_on else text)
        config = parse_config(merge_airflow_config(raw, "__default__"))
        assert config.missing_deployment_keys() == []

    def test_uncommented_it_sets_every_key(self) -> None:
        raw = yaml.safe_load(uncomment(INIT_FILE.read_text("utf-8")))
        assert set(accepted_keys()) <= set(raw["default"])

    def test_shows_the_defaults(self) -> None:
        """A key with a plain default is written with it (commented or not)."""
        raw = yaml.safe_load(uncomment(INIT_FILE.read_text("utf-8")))["default"]
        parsed, default = parse_config(raw), BridgeConfig()
        plain = (bool, int, float, str)
        for key in accepted_keys():
            value = getattr(default, key, None)
            if isinstance(value, plain) and key not in ("dag_id",):
                assert getattr(parsed, key) == value, key


class TestReadmeReference:
    @pytest.mark.parametrize("key", accepted_keys())
    def test_lists_every_key_with_a_default(self, key: str) -> None:
        rows = reference_rows()
        assert key in rows, key
        assert rows[key], f"{key} has no default in the README"

    def test_plain_defaults_are_the_parsers(self) -> None:
        rows, default = reference_rows(), BridgeConfig()
        for key in accepted_keys():
            value = getattr(default, key, None)
            if isinstance(value, bool | int | float | str) and key in rows:
                if key in ("parallel_threshold",):
                    continue  # written as a quantity, checked below
                assert rows[key] == f"`{_written(value)}`", (key, rows[key])
        assert rows["parallel_threshold"] == "`128Mi`"

    def test_names_every_machine_class_field(self) -> None:
        reference = _section(README.read_text("utf-8"), "Config reference")
        assert [f for f in CLASS_FIELDS if f"`{f}`" not in reference] == []

    def test_production_checklist_is_in_the_issues_order(self) -> None:
        checklist = _section(README.read_text("utf-8"), "Production checklist")
        steps = re.findall(r"^\d+\. \*\*(.+?)\*\*", checklist, re.MULTILINE)
        wanted = ["Identity", "Pools and priority", "Timeouts", "Image", "Storage", "Alerting"]
        assert steps[: len(wanted)] == wanted
        flowing = " ".join(checklist.split())
        for words in ("Workload Identity", "@sha256", "lifecycle rule", "on_failure_callback"):
            assert words in flowing


class TestParallelTransfer:
    def test_defaults(self) -> None:
        config = BridgeConfig()
        assert (config.parallel_threshold, config.parallel_concurrency) == (128 * 2**20, 8)

    @pytest.mark.parametrize(
        ("value", "size"),
        [
            ("128Mi", 128 * 2**20),
            (1000, 1000),
            ("1Gi", 2**30),
            ("1.5Ki", 1536),
            ("64M", 64 * 10**6),
        ],
    )
    def test_threshold_is_bytes_or_a_quantity(self, value: Any, size: int) -> None:
        assert parse_config({"parallel_threshold": value}).parallel_threshold == size

    def test_concurrency(self) -> None:
        assert parse_config({"parallel_concurrency": "4"}).parallel_concurrency == 4

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("parallel_threshold", "lots"),
            ("parallel_threshold", 0),
            ("parallel_threshold", -5),
            ("parallel_threshold", True),
            ("parallel_threshold", "0.5"),
            ("parallel_threshold", "100m"),
            ("parallel_threshold", [1]),
            ("parallel_concurrency", 0),
            ("parallel_concurrency", "many"),
            ("parallel_concurrency", 2.5),
        ],
    )
    def test_bad_value_names_the_key(self, key: str, value: Any) -> None:
        with pytest.raises(ConfigError) as caught:
            parse_config({key: value})
        assert f"'{key}'" in str(caught.value)
