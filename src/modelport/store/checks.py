"""Input checks of the store: each raises InvalidInput naming the value and the fix."""

from __future__ import annotations

import re

from ..errors import InvalidInput

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
ENVIRONMENT_VERSION = re.compile(r"^[1-9][0-9]{0,8}$")
ARTIFACT_KINDS = ("file", "folder")


def listing(values: list, limit: int = 10) -> str:
    shown = ", ".join(str(value) for value in values[:limit])
    return shown if len(values) <= limit else f"{shown}, … ({len(values) - limit} more)"


def check_name(kind: str, name: object) -> None:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput(f"{kind} name {name!r} is not valid; use 1-255 letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit")


def required_version(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput(f"model version {version!r} is not a positive whole number; use 1, 2, 3, …")
    return version


def check_sha256(what: str, sha256: object) -> None:
    if not isinstance(sha256, str) or not SHA256.match(sha256):
        raise InvalidInput(f"{what} digest {sha256!r} is not a sha256 (64 lowercase hex digits)")


def check_count(what: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{what} {value!r} is not a whole number of zero or more")


def check_artifact(sha256: str, kind: str, name: str, size_bytes: int) -> None:
    check_sha256("artifact", sha256)
    if kind not in ARTIFACT_KINDS:
        raise InvalidInput(f"artifact kind {kind!r} is not one of {', '.join(ARTIFACT_KINDS)}")
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise InvalidInput(f"artifact name {name!r} must be a file or folder name without '/'")
    check_count("artifact size", size_bytes)


def text_map(kind: str, values: object) -> dict[str, str]:
    """Tags and properties: text keys to text values (Azure ML's ``dict[str, str]``)."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise InvalidInput(f"{kind}s must be a mapping of text to text, not {type(values).__name__}")
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            raise InvalidInput(f"{kind} key {key!r} is not valid; keys are non-empty text")
        if not isinstance(value, str):
            raise InvalidInput(f"{kind} '{key}' has value {value!r}; values are text, so quote it")
    return dict(values)


def conditions(kind: str, items: object) -> list[tuple[str, str | None]]:
    """A ``Model.list`` filter: items are a key or a ``[key, value]`` pair; value None means any value."""
    if items is None:
        return []
    if isinstance(items, (str, dict)) or not isinstance(items, (list, tuple)):
        raise InvalidInput(f"{kind} filter {items!r} must be a list of keys or [key, value] pairs")
    conditions: list[tuple[str, str | None]] = []
    for item in items:
        if isinstance(item, str):
            conditions.append((item, None))
        elif isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(part, str) for part in item):
            conditions.append((item[0], item[1]))
        else:
            raise InvalidInput(f"{kind} filter item {item!r} is neither a key nor a [key, value] pair of text")
    return conditions


def matches(mapping: dict[str, str], conditions: list[tuple[str, str | None]]) -> bool:
    return all(key in mapping and (value is None or mapping[key] == value) for key, value in conditions)
