"""What a project's image holds: Docker's ignore-file rules, as a pure matcher.

The build context of `docker build -f docker/Dockerfile .` is the project minus what the
ignore file excludes. BuildKit reads `docker/Dockerfile.dockerignore` (next to the Dockerfile)
and then ignores a root `.dockerignore`; the classic builder reads only the root one.
`IMAGE_IGNORE_FILES` lists them in that order: the first that exists decides. Without any,
the whole project is in the image.

Docker's matching (moby/patternmatcher) is gitignore's wildcard syntax with three differences,
which `_docker_line` maps onto pathspec's gitignore patterns: every pattern is anchored at the
context root (no implicit `**/`), a pattern is cleaned as a path first (`./x/`, `/x` and `x`
are one rule, and a trailing `/` still matches a file), and `!` keeps a path even under a
folder already left out. As in both, `**` spans folders, `*` and `?` stay within one, the last
matching line wins and a pattern that matches a folder excludes everything under it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pathspec

#: Ignore files, in the order a build reads them (the first that exists is used).
IMAGE_IGNORE_FILES = ("docker/Dockerfile.dockerignore", ".dockerignore")


def _docker_line(line: str) -> str | None:
    """One line of a Docker ignore file as a root-anchored gitignore pattern (None: no rule)."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    keep = line.startswith("!")
    pattern = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/")
    return f"{'!' if keep else ''}/{pattern}"


@dataclass(frozen=True)
class ImageFilter:
    """The rules of one ignore file; `source` names it in messages ("" when there is none)."""

    #: None without an ignore file (pathspec is imported only to read one).
    spec: pathspec.PathSpec | None = field(default=None, hash=False)
    source: str = ""
    #: The file's rule lines as written, one per pattern of `spec` (for messages).
    rules: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str, source: str) -> ImageFilter:
        """Reads the text of an ignore file.

        Args:
            text: The file's content.
            source: Its path relative to the project, for messages.
        """
        import pathspec

        pairs = [(raw.strip(), _docker_line(raw)) for raw in text.splitlines()]
        kept = [(raw, line) for raw, line in pairs if line is not None]
        spec = pathspec.PathSpec.from_lines("gitignore", [line for _, line in kept])
        return cls(spec, source, tuple(raw for raw, _ in kept))

    def excludes(self, relative: str) -> bool:
        """True when the build leaves this project-relative path out of the image."""
        return self.spec is not None and self.spec.match_file(posixpath.normpath(relative))

    def rule_for(self, relative: str) -> str | None:
        """The line that leaves this path out of the image (the last that matches), or None
        when the image holds it."""
        if self.spec is None:
            return None
        result = self.spec.check_file(posixpath.normpath(relative))
        if not result.include or result.index is None:
            return None
        return self.rules[result.index] if result.index < len(self.rules) else None
