"""Plain config values read strictly: booleans, whole numbers and storage root URLs, with
errors that name the key."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from kedro_gcs_bridge.errors import ConfigError

_TRUE = frozenset({"true", "yes"})
_FALSE = frozenset({"false", "no"})


def as_bool(key: str, value: Any) -> bool:
    """A YAML boolean, or one of the strings true/false/yes/no (any case, trimmed).

    The one reader of booleans for every route a setting takes: airflow.yml, an environment
    variable, a `--runner-params` value (OmegaConf-typed) and a Python argument.

    Raises:
        ConfigError: Anything else; `bool("false")` would be True.
    """
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ConfigError(f"'{key}' must be true or false, got {value!r}.")


def as_count(key: str, value: Any, minimum: int = 0) -> int:
    """A whole number >= `minimum` (default 0), given as an int or a string of digits.

    Raises:
        ConfigError: Not a whole number, or below the minimum.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"'{key}' must be a whole number, got {value!r}.")
    try:
        number = int(value)
    except ValueError as exc:
        raise ConfigError(f"'{key}' must be a whole number, got {value!r}.") from exc
    if number < 0 <= minimum:
        raise ConfigError(f"'{key}' must not be negative, got {number}.")
    if number < minimum:
        raise ConfigError(f"'{key}' must be at least {minimum}, got {number}.")
    return number


_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://(.*)$")
#: GCS bucket names: lowercase letters, digits, `-`, `_`, `.`; a letter or digit at each end.
_BUCKET = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,220}[a-z0-9])?$")
_GCS = frozenset({"gs", "gcs"})
_LOCAL = frozenset({"file", "local"})
_EXAMPLES = "like gs://bucket/path or file:///absolute/path"


def _location(key: str, url: str, scheme: str, rest: str) -> list[str]:
    """The path segments after the scheme, each checked (the first is the bucket on GCS)."""
    if scheme in _LOCAL:
        if not rest.startswith("/"):
            raise ConfigError(
                f"'{key}' {url!r} is not an absolute path: write file:///absolute/path."
            )
        segments = rest.strip("/").split("/") if rest.strip("/") else []
        if not segments:
            raise ConfigError(f"'{key}' {url!r} names no folder: write file:///absolute/path.")
    else:
        segments = rest.rstrip("/").split("/") if rest.rstrip("/") else []
        what = "bucket" if scheme in _GCS else "location"
        if not segments or not segments[0]:
            raise ConfigError(f"'{key}' {url!r} names no {what}: write {scheme}://{what}/path.")
    if any(part in {"", ".", ".."} for part in segments):
        raise ConfigError(f"'{key}' {url!r} has an empty, '.' or '..' path segment.")
    return segments


def as_root_url(key: str, value: Any, schemes: Collection[str] | None = None) -> str:
    """An absolute storage URL naming a place below the top of its file system.

    `gs://bucket[/path]` (a valid bucket name), `file:///absolute/path` (not `/`), or another
    fsspec `scheme://location[/path]`. Plain paths are refused, so a root never silently means
    the current directory (`gs:/x` is a local path to fsspec).

    Args:
        key: The setting, named in errors (`gcs_bridge_root`, `--root`).
        value: The value given.
        schemes: The schemes allowed; None allows any.

    Returns:
        The URL as given.

    Raises:
        ConfigError: Not such a URL.
    """
    text = value if isinstance(value, str) else ""
    match = _SCHEME.match(text)
    if match is None:
        hint = f" (write file://{text})" if text.startswith("/") and text.strip("/") else ""
        raise ConfigError(f"'{key}' must be an absolute URL {_EXAMPLES}, got {value!r}{hint}.")
    scheme, rest = match[1], match[2]
    if schemes is not None and scheme not in schemes:
        shown = " or ".join(f"{name}://bucket[/path]" for name in schemes)
        raise ConfigError(f"'{key}' must be {shown}, got {value!r}.")
    segments = _location(key, text, scheme, rest)
    if scheme in _GCS and not _BUCKET.match(segments[0]):
        raise ConfigError(
            f"'{key}' {text!r}: '{segments[0]}' is not a bucket name (lowercase letters, "
            "digits, '-', '_' and '.')."
        )
    return text
