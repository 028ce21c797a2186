"""Plain config values read strictly: booleans and whole numbers, with errors that name the key."""

from __future__ import annotations

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


def as_count(key: str, value: Any) -> int:
    """A whole number >= 0, given as an int or a string of digits.

    Raises:
        ConfigError: Not a whole number, or negative.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"'{key}' must be a whole number, got {value!r}.")
    try:
        number = int(value)
    except ValueError as exc:
        raise ConfigError(f"'{key}' must be a whole number, got {value!r}.") from exc
    if number < 0:
        raise ConfigError(f"'{key}' must not be negative, got {number}.")
    return number
