"""Versioned JSON objects of the run prefix: the protocol version, field checks, serialising.

Every object the bridge writes under a run prefix carries `"protocol": "<major>.<minor>"`
(`PROTOCOL_VERSION`). A reader refuses a newer major version (`ProtocolVersionError`, naming
both versions and what to do); a newer minor version only adds fields, which load and are said
once per process, as is any field this version does not know. An object without a version was
written before versions existed: it reads as "1.0". The models are `pod/protocol.py`'s.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from kedro_gcs_bridge.errors import MetadataError, ProtocolVersionError

logger = logging.getLogger(__name__)

#: The run-prefix protocol this version writes and reads: a newer minor version only adds
#: fields an older reader may ignore; a newer major version is refused.
PROTOCOL_VERSION = "1.1"
VERSION_KEY = "protocol"
_VERSION = re.compile(r"(\d{1,4})\.(\d{1,4})")
#: The version of an object written before versions existed.
_UNVERSIONED = "1.0"

INT_OR_NONE = (int, type(None))
STR_OR_NONE = (str, type(None))
BOOL_OR_NONE = (bool, type(None))
NUMBER = (int, float)


def _bool_for_number(value: Any, kind: Kind) -> bool:
    """A JSON boolean where the kind wants a number (`bool` is an `int` to Python)."""
    return isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,))


class _Notice:
    """Unknown fields are said once per process, not once per object."""

    given = False


def _checked_version(payload: Mapping[str, Any], what: str) -> str:
    """The object's protocol version; refuses a newer major version.

    Raises:
        ProtocolVersionError: A newer major version than this one reads.
        MetadataError: The version is not "major.minor".
    """
    version = payload.get(VERSION_KEY, _UNVERSIONED)
    match = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        raise MetadataError(f"{what} is damaged: protocol {version!r} is not a version like 1.0.")
    if int(match[1]) > int(PROTOCOL_VERSION.split(".", maxsplit=1)[0]):
        raise ProtocolVersionError(
            f"{what} was written with run-prefix protocol {version} by a newer "
            f"kedro-gcs-bridge; this one reads protocol {PROTOCOL_VERSION} and refuses it. Two "
            "images met in one run prefix (a retried or cleared task pulled another image): "
            "finish the run on one image (pin the image by digest), or re-run it from the start."
        )
    return version


def _notice_unknown(what: str, version: str, unknown: set[str]) -> None:
    if not unknown or _Notice.given:
        return
    _Notice.given = True
    logger.warning(
        "%s has fields this kedro-gcs-bridge (protocol %s) does not know: %s (written with "
        "protocol %s); they are ignored. Said once per process.",
        what,
        PROTOCOL_VERSION,
        ", ".join(sorted(unknown)),
        version,
    )


Kind = type | tuple[type, ...]


def _kind(kind: Kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def checked(
    payload: Any, required: Mapping[str, Kind], optional: Mapping[str, Kind], what: str
) -> dict[str, Any]:
    """The known fields of a JSON object, each of the right type (booleans never pass as
    numbers); a newer major version is refused, unknown fields are said once.

    Raises:
        MetadataError: Not an object, or a field is missing or of the wrong type.
        ProtocolVersionError: A newer major version.
    """
    if not isinstance(payload, dict):
        raise MetadataError(f"{what} is a JSON {type(payload).__name__}, not an object.")
    version = _checked_version(payload, what)
    problems = [f"'{name}' is missing" for name in required if name not in payload]
    problems += [
        f"'{name}' is not {_kind(kind)}"
        for name, kind in {**required, **optional}.items()
        if name in payload
        and (not isinstance(payload[name], kind) or _bool_for_number(payload[name], kind))
    ]
    if problems:
        raise MetadataError(f"{what} is damaged: {', '.join(problems)}.")
    known = {*required, *optional, VERSION_KEY}
    _notice_unknown(what, version, set(payload) - known)
    return {name: payload[name] for name in payload if name in known} | {VERSION_KEY: version}


def json_of(value: Any) -> dict[str, Any]:
    """A model as JSON-safe data: None fields left out, tuples as lists."""
    out: dict[str, Any] = {}
    for item in fields(value):
        current = getattr(value, item.name)
        if current is None:
            continue
        if isinstance(current, tuple):
            current = [part.to_json() if hasattr(part, "to_json") else part for part in current]
        elif isinstance(current, Mapping):
            current = {k: v.to_json() if hasattr(v, "to_json") else v for k, v in current.items()}
        out[item.name] = current
    return out


def now() -> str:
    """The current UTC time as the objects of a run prefix record it."""
    return dt.datetime.now(dt.UTC).isoformat()


def parse_json(raw: bytes, what: str) -> Any:
    """JSON bytes read from the run prefix.

    Raises:
        MetadataError: Not JSON.
    """
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MetadataError(f"{what} is not valid JSON ({exc}).") from exc


def dumps(payload: Any) -> bytes:
    """The JSON bytes the store writes for metadata (stable key order)."""
    return json.dumps(payload, indent=2, sort_keys=True).encode()
