"""What a project's image holds: Docker's ignore-file rules, as a pure matcher.

The build context of `docker build -f docker/Dockerfile .` is the project minus what the
ignore file excludes. BuildKit reads `docker/Dockerfile.dockerignore` (next to the Dockerfile)
and then ignores a root `.dockerignore`; the classic builder reads only the root one.
`IMAGE_IGNORE_FILES` lists them in that order: the first that exists decides. Without any,
the whole project is in the image. The matching follows moby/patternmatcher: `**` spans
folders, `*` and `?` stay within one, the last matching line wins, `!` keeps a path, and a
pattern that matches a folder excludes everything under it.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

#: Ignore files, in the order a build reads them (the first that exists is used).
IMAGE_IGNORE_FILES = ("docker/Dockerfile.dockerignore", ".dockerignore")


def _ignore_regex(pattern: str) -> re.Pattern[str]:
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
class ImageFilter:
    """The rules of one ignore file; `source` names it in messages ("" when there is none)."""

    rules: tuple[tuple[bool, re.Pattern[str]], ...] = ()
    source: str = ""

    @classmethod
    def parse(cls, text: str, source: str) -> ImageFilter:
        """Reads the text of an ignore file.

        Args:
            text: The file's content.
            source: Its path relative to the project, for messages.
        """
        rules = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            keep = line.startswith("!")
            pattern = posixpath.normpath(line.removeprefix("!").strip()).lstrip("/")
            rules.append((keep, _ignore_regex(pattern)))
        return cls(tuple(rules), source)

    def excludes(self, relative: str) -> bool:
        """True when the build leaves this project-relative path out of the image."""
        parts = posixpath.normpath(relative).split("/")
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        excluded = False
        for keep, regex in self.rules:
            if any(regex.match(candidate) for candidate in candidates):
                excluded = not keep
        return excluded
