"""What a project's image holds: Docker's ignore-file semantics (moby/patternmatcher, as
BuildKit and the classic builder apply them), case by case, and the ignore file init writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from kedro_gcs_bridge.planning.image import ImageFilter

REPO = Path(__file__).resolve().parents[2]
SHIPPED = (REPO / "docker" / "Dockerfile.dockerignore").read_text(encoding="utf-8")

#: (rules, path, excluded): what `docker build` leaves out of the context.
DOCKER_CASES = [
    # Patterns are anchored at the context root: no implicit `**/` (unlike .gitignore).
    ("mlruns", "mlruns/0/meta.yaml", True),
    ("mlruns", "src/mlruns/0/meta.yaml", False),
    ("*.log", "info.log", True),
    ("*.log", "logs/info.log", False),
    ("**/*.log", "logs/deep/info.log", True),
    ("**/*.log", "info.log", True),
    # `*` and `?` stay within one folder; `**` spans any number, zero included.
    ("conf/*/credentials.yml", "conf/dev/credentials.yml", True),
    ("conf/*/credentials.yml", "conf/dev/x/credentials.yml", False),
    ("conf/**/credentials*", "conf/credentials.yml", True),
    ("conf/**/credentials*", "conf/a/b/credentials.yaml", True),
    ("conf/**/credentials*", "conf/base/catalog.yml", False),
    ("data/0?_raw", "data/01_raw/x.csv", True),
    ("data/0?_raw", "data/010_raw/x.csv", False),
    # A pattern that matches a folder leaves out everything under it.
    ("data", "data/01_raw/companies.csv", True),
    ("data/**", "data", False),
    ("data/**", "data/01_raw", True),
    # Leading `/` and `./`, trailing `/`: cleaned as paths (a trailing `/` still matches a file).
    ("/data/**", "data/x.csv", True),
    ("./data/**", "data/x.csv", True),
    ("build/", "build", True),
    ("build/", "build/lib/x.py", True),
    # The last matching line wins; `!` keeps a path, even under a folder left out.
    ("data/**\n!data/**/.gitkeep", "data/01_raw/.gitkeep", False),
    ("data/**\n!data/**/.gitkeep", "data/01_raw/x.csv", True),
    ("!data/**/.gitkeep\ndata/**", "data/01_raw/.gitkeep", True),
    ("conf/local/**\n!conf/local/.gitkeep", "conf/local/.gitkeep", False),
    ("conf/local\n!conf/local/keep.yml", "conf/local/keep.yml", False),
    # Character classes and escapes.
    ("data/[ab].csv", "data/a.csv", True),
    ("data/[ab].csv", "data/c.csv", False),
    ("data/\\*.csv", "data/*.csv", True),
    ("data/\\*.csv", "data/x.csv", False),
    # Comments and blank lines are not rules.
    ("# data\n\n", "data/x.csv", False),
]


@pytest.mark.parametrize(("rules", "path", "excluded"), DOCKER_CASES)
def test_docker_semantics(rules: str, path: str, excluded: bool) -> None:
    assert ImageFilter.parse(rules, ".dockerignore").excludes(path) is excluded


class TestTheShippedIgnoreFile:
    """docker/Dockerfile.dockerignore, which `kedro gcs-bridge init` copies into a project."""

    @pytest.mark.parametrize(
        "path",
        [
            "conf/local/credentials.yml",
            "conf/dev/credentials.yml",
            "conf/prod/credentials.yaml",
            "conf/base/credentials.yml",
            "conf/gcs/nested/credentials.json",
            "conf/local/parameters.yml",
            "keys/sa-credentials.json",
            "data/01_raw/companies.csv",
            ".git/config",
        ],
    )
    def test_leaves_out(self, path: str) -> None:
        assert ImageFilter.parse(SHIPPED, "docker/Dockerfile.dockerignore").excludes(path)

    @pytest.mark.parametrize(
        "path",
        [
            "conf/base/catalog.yml",
            "conf/prod/parameters.yml",
            "conf/local/.gitkeep",
            "data/01_raw/.gitkeep",
            "src/spaceflights/pipeline_registry.py",
            "pyproject.toml",
        ],
    )
    def test_keeps(self, path: str) -> None:
        assert not ImageFilter.parse(SHIPPED, "docker/Dockerfile.dockerignore").excludes(path)


class TestRuleFor:
    """The ignore line that leaves a path out, for messages that name it."""

    @pytest.mark.parametrize(
        ("path", "rule"),
        [
            ("conf/local/parameters.yml", "conf/local/**"),
            ("conf/local/.gitkeep", None),
            ("conf/dev/credentials.yml", "conf/**/credentials*"),
            ("conf/base/catalog.yml", None),
            ("data/01_raw/companies.csv", "data/**"),
        ],
    )
    def test_names_the_last_matching_line(self, path: str, rule: str | None) -> None:
        image = ImageFilter.parse(SHIPPED, "docker/Dockerfile.dockerignore")
        assert image.rule_for(path) == rule

    def test_no_file_no_rule(self) -> None:
        assert ImageFilter().rule_for("conf/local/x.yml") is None
