"""Plain values read strictly, the same on every route a setting takes (airflow.yml, `--params`,
a pod's environment, `--runner-params`, Python): booleans, whole numbers, Kubernetes quantities
and storage root URLs.

Each `*_value` function raises a `ValueError` that says what is wrong (the typed config in
`config.py` adds the key path); each `as_*` function names the key itself and raises a
`ConfigError`. Nothing here imports pydantic: a pod reads its settings with these alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any, TypeVar

from kedro_gcs_bridge.errors import ConfigError

T = TypeVar("T")

#: The words of a boolean, on every route (any case, trimmed); 1 and 0 also as numbers, as
#: OmegaConf types `--params x=1` and `--runner-params x=0`.
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
_WORDS = "/".join(f"{t}/{f}" for t, f in zip(TRUE_WORDS, FALSE_WORDS, strict=True))


def _named(key: str, read: Callable[..., T], value: Any, *args: Any) -> T:
    try:
        return read(value, *args)
    except ValueError as exc:
        raise ConfigError(f"'{key}' {exc}") from exc


def bool_value(value: Any) -> bool:
    """A boolean from a real bool, 1/0, or one of the words true/false, yes/no, on/off, 1/0.

    Raises:
        ValueError: Anything else; `bool("false")` would be True.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = value.strip().lower() if isinstance(value, str) else None
    if text in TRUE_WORDS or text in FALSE_WORDS:
        return text in TRUE_WORDS
    raise ValueError(f"must be true or false (accepted: {_WORDS}, any case), got {value!r}.")


def as_bool(key: str, value: Any) -> bool:
    """`bool_value`, naming `key` in its `ConfigError`."""
    return _named(key, bool_value, value)


def count_value(value: Any, minimum: int = 0) -> int:
    """A whole number >= `minimum` (default 0), given as an int or a string of digits.

    Raises:
        ValueError: Not a whole number, or below the minimum.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"must be a whole number, got {value!r}.")
    try:
        number = int(value)
    except ValueError as exc:
        raise ValueError(f"must be a whole number, got {value!r}.") from exc
    if number < 0 <= minimum:
        raise ValueError(f"must not be negative, got {number}.")
    if number < minimum:
        raise ValueError(f"must be at least {minimum}, got {number}.")
    return number


def as_count(key: str, value: Any, minimum: int = 0) -> int:
    """`count_value`, naming `key` in its `ConfigError`."""
    return _named(key, count_value, value, minimum)


GIB = 1024**3
MIB = 1024**2
_BINARY_SUFFIXES = {"Ki": 1024, "Mi": MIB, "Gi": GIB, "Ti": 1024**4, "Pi": 1024**5}
_DECIMAL_SUFFIXES = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "m": 10**-3}
_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*$")


#: Examples of each kind of quantity, for messages.
_QUANTITY_EXAMPLES = {"cpu": "'500m', '2'", "memory": "'512Mi', '4Gi'"}


def _quantity(text: str | int | float, what: str) -> Decimal:
    match = _QUANTITY.match(str(text))
    if match is None:
        examples = _QUANTITY_EXAMPLES.get(what, "'500m', '2', '4Gi'")
        raise ConfigError(
            f"{what} {text!r} is not a Kubernetes quantity; write it like {examples}."
        )
    number, suffix = match.groups()
    scale = _BINARY_SUFFIXES.get(suffix) or _DECIMAL_SUFFIXES.get(suffix)
    if scale is None and suffix:
        raise ConfigError(
            f"{what} {text!r} has an unknown unit {suffix!r}; use m, k, M, G, Ki, Mi or Gi."
        )
    return Decimal(number) * Decimal(str(scale or 1))


def cpu_millis(cpu: str | int | float) -> float:
    """CPU quantity in millicores ("500m" -> 500, "2" -> 2000)."""
    return float(_quantity(cpu, "cpu") * 1000)


def memory_bytes(memory: str | int | float) -> float:
    """Memory or storage quantity in bytes ("2Gi" -> 2147483648)."""
    return float(_quantity(memory, "memory"))


def byte_size_value(value: Any) -> int:
    """A whole number of bytes >= 1, given as bytes (134217728) or a quantity ('128Mi').

    Raises:
        ValueError: Anything else.
    """
    problem = (
        "must be a whole number of bytes >= 1, like 134217728 or a quantity like '128Mi' or "
        f"'1Gi', got {value!r}."
    )
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(problem)
    try:
        size = memory_bytes(value)
    except ConfigError as exc:
        raise ValueError(problem) from exc
    if size < 1 or size != int(size):
        raise ValueError(problem)
    return int(size)


_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://(.*)$")
#: GCS bucket names: lowercase letters, digits, `-`, `_`, `.`; a letter or digit at each end.
_BUCKET = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,220}[a-z0-9])?$")
_GCS = frozenset({"gs", "gcs"})
_LOCAL = frozenset({"file", "local"})


def _segments(url: str, scheme: str, rest: str) -> list[str]:
    """The path segments after the scheme, each checked (the first is the bucket on GCS)."""
    if scheme in _LOCAL:
        if not rest.startswith("/"):
            raise ValueError(f"{url!r} is not an absolute path: write file:///absolute/path.")
        segments = rest.strip("/").split("/") if rest.strip("/") else []
        if not segments:
            raise ValueError(f"{url!r} names no folder: write file:///absolute/path.")
    else:
        segments = rest.rstrip("/").split("/") if rest.rstrip("/") else []
        what = "bucket" if scheme in _GCS else "location"
        if not segments or not segments[0]:
            raise ValueError(f"{url!r} names no {what}: write {scheme}://{what}/path.")
    if any(part in {"", ".", ".."} for part in segments):
        raise ValueError(f"{url!r} has an empty, '.' or '..' path segment.")
    return segments


def root_url_value(value: Any, schemes: Collection[str] | None = None) -> str:
    """An absolute storage URL naming a place below the top of its file system.

    `gs://bucket[/path]` (a valid bucket name), `file:///absolute/path` (not `/`), or another
    fsspec `scheme://location[/path]`. Plain paths are refused, so a root never silently means
    the current directory (`gs:/x` is a local path to fsspec). `schemes` limits the schemes.

    Raises:
        ValueError: Not such a URL.
    """
    text = value if isinstance(value, str) else ""
    match = _SCHEME.match(text)
    if match is None:
        if schemes is not None:
            shown = " or ".join(f"{name}://bucket[/path]" for name in schemes)
            raise ValueError(f"must be {shown}, got {value!r}.")
        hint = f" (write file://{text})" if text.startswith("/") and text.strip("/") else ""
        raise ValueError(
            f"must be an absolute URL like gs://bucket/path (or, for local runs, "
            f"file:///absolute/path), got {value!r}{hint}."
        )
    scheme, rest = match[1], match[2]
    if schemes is not None and scheme not in schemes:
        shown = " or ".join(f"{name}://bucket[/path]" for name in schemes)
        raise ValueError(f"must be {shown}, got {value!r}.")
    segments = _segments(text, scheme, rest)
    if scheme in _GCS and not _BUCKET.match(segments[0]):
        raise ValueError(
            f"{text!r}: '{segments[0]}' is not a bucket name (lowercase letters, digits, '-', "
            "'_' and '.')."
        )
    return text


def as_root_url(key: str, value: Any, schemes: Collection[str] | None = None) -> str:
    """`root_url_value`, naming `key` (`gcs_bridge_root`, `--root`) in its `ConfigError`."""
    return _named(key, root_url_value, value, schemes)
