"""The config keys stay documented where users read them, generated from the model: the config
reference (docs/config.md) and the file `kedro gcs-bridge init` writes are what `config.py` makes
of its fields (a test fails when either drifts: run `python -m kedro_gcs_bridge.config`), every
key is in both with its default, the init file parses as it is and uncommented, the README links
to the reference, and the README's production checklist keeps the issue's order. Also the two
large-data keys, read strictly."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from test_config import read

from kedro_gcs_bridge import config as model
from kedro_gcs_bridge.config import (
    CLASS_FIELDS,
    INIT_FILE,
    REFERENCE,
    REFERENCE_TITLE,
    REPO,
    BridgeConfig,
    accepted_keys,
    merge_airflow_config,
    parse_config,
)
from kedro_gcs_bridge.errors import ConfigError

#: A commented line that is YAML once its `# ` goes: a key, or a list item.
_COMMENTED_YAML = re.compile(r"^(\s*)# (\s*)(?=[a-z_][\w.-]*:|- )")
#: Every key path but the groups themselves.
KEYS = [key for key in accepted_keys() if key not in model._GROUPS]
REGENERATE = "out of date: run `python -m kedro_gcs_bridge.config`"
README = REPO / "README.md"


def uncomment(text: str) -> str:
    """The init file with every commented key switched on, as a user would do one by one."""
    return "\n".join(_COMMENTED_YAML.sub(r"\1\2", line) for line in text.splitlines())


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start + 1 : end + 1 if end != -1 else len(text)]


def reference_rows() -> dict[str, str]:
    """Config reference (docs/config.md): key path -> its default cell."""
    rows: dict[str, str] = {}
    for line in REFERENCE.read_text("utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`"):
            for key in re.findall(r"`([a-z0-9_.]+)`", cells[0]):
                rows[key] = cells[1]
    return rows


class TestGenerated:
    def test_the_init_file_is_the_models(self) -> None:
        assert INIT_FILE.read_text("utf-8") == model.init_yaml(), REGENERATE

    def test_the_reference_is_the_models(self) -> None:
        text = REFERENCE.read_text("utf-8")
        assert text.startswith(REFERENCE_TITLE)
        assert text == model.reference_markdown(), REGENERATE

    def test_the_readme_links_to_the_reference(self) -> None:
        section = _section(README.read_text("utf-8"), "Config reference")
        assert "(docs/config.md)" in section
        assert REFERENCE == REPO / "docs" / "config.md"


class TestInitFile:
    @pytest.mark.parametrize("key", KEYS)
    def test_lists_every_key(self, key: str) -> None:
        short = key.rsplit(".", 1)[-1]
        assert re.search(rf"^\s*(# )?(\s*){short}:", INIT_FILE.read_text("utf-8"), re.M), key

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
        raw = yaml.safe_load(uncomment(INIT_FILE.read_text("utf-8")))["default"]
        for key in KEYS:
            group, _, field = key.rpartition(".")
            assert field in (raw[group] if group else raw), key

    def test_shows_the_defaults(self) -> None:
        """A key with a plain default is written with it (commented or not)."""
        raw = yaml.safe_load(uncomment(INIT_FILE.read_text("utf-8")))["default"]
        parsed, default = parse_config(raw), BridgeConfig()
        for key in KEYS:
            value = read(default, key)
            if isinstance(value, bool | int | float | str):
                assert read(parsed, key) == value, key


class TestReference:
    @pytest.mark.parametrize("key", KEYS)
    def test_lists_every_key_with_a_default(self, key: str) -> None:
        rows = reference_rows()
        assert key in rows, key
        assert rows[key], f"{key} has no default in docs/config.md"

    def test_plain_defaults_are_the_models(self) -> None:
        rows, default = reference_rows(), BridgeConfig()
        for key in KEYS:
            value = read(default, key)
            if isinstance(value, bool | int | float | str) and key != "handoff.parallel_threshold":
                written = (
                    str(value).lower()
                    if isinstance(value, bool)
                    else f"{value:g}"
                    if isinstance(value, float)
                    else str(value)
                )
                assert rows[key] == f"`{written}`", (key, rows[key])
        assert rows["handoff.parallel_threshold"] == "`128Mi`"

    def test_names_every_machine_class_field(self) -> None:
        reference = REFERENCE.read_text("utf-8")
        assert [f for f in CLASS_FIELDS if f"`{f}`" not in reference] == []

    def test_says_what_happens_to_old_spellings(self) -> None:
        reference = " ".join(REFERENCE.read_text("utf-8").split())
        assert "old flat spellings" in reference and "deprecation warning" in reference

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
        handoff = BridgeConfig().handoff
        assert (handoff.parallel_threshold, handoff.parallel_concurrency) == (128 * 2**20, 8)

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
        config = parse_config({"handoff": {"parallel_threshold": value}})
        assert config.handoff.parallel_threshold == size

    def test_concurrency(self) -> None:
        config = parse_config({"handoff": {"parallel_concurrency": "4"}})
        assert config.handoff.parallel_concurrency == 4

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
            parse_config({"handoff": {key: value}})
        assert f"'handoff.{key}'" in str(caught.value)
