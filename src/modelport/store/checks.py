"""Input checks of the store: each raises InvalidInput naming the value and the fix."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection

from ..errors import InvalidInput

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
ENVIRONMENT_VERSION = re.compile(r"^[1-9][0-9]{0,8}$")
ARTIFACT_KINDS = ("file", "folder")
MANIFEST_KEYS = ("mode", "path", "sha256", "size")
MAX_PATH_BYTES = 1024  # the longest blob name S3 and Azure accept
MAX_NAME_BYTES = 255  # the longest file name Linux, macOS and Windows accept
MAX_MODE = 0o777
PATH_RULE = ("a path is relative, made of '/'-separated file and folder names, without '.', '..', empty parts, "
             "'\\' or control characters")


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
    check_file_name("artifact name", name)
    check_count("artifact size", size_bytes)


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to about ``limit`` characters, so a hostile value keeps a message short and on one line."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 20]}… ({len(text)} characters)"


def path_problem(path: object) -> str | None:
    """Why ``path`` cannot name a file inside a folder on any file system, or None when it can.

    Refused: non-text, empty, over MAX_PATH_BYTES (UTF-8), control characters (NUL included), lone
    surrogates, a backslash, a leading '/', empty parts (``a//b``, a trailing '/'), parts made only of
    dots and spaces (``.``, ``..``, ``...``: a folder itself, its parent, or on Windows the same), parts
    over MAX_NAME_BYTES, and parts that read as such a part or hold a separator after Unicode
    compatibility normalisation (NFKC: ``．．``, ``a／b``). Other characters, look-alikes such as
    ``∕`` included, are plain name characters: on POSIX only '/' separates and only '..' climbs.
    """
    if not isinstance(path, str):
        return f"is {type(path).__name__}, not text"
    if not path:
        return "is empty"
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        return f"is over the {MAX_PATH_BYTES} byte limit"
    control = next((char for char in path if ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0), None)
    if control is not None:
        return f"contains the control character {control!r}"
    if any(0xD800 <= ord(char) <= 0xDFFF for char in path):
        return "contains a lone UTF-16 surrogate, which no file name can hold"
    if "\\" in path:
        return "contains '\\', a folder separator on Windows"
    if path.startswith("/"):
        return "is absolute"
    for part in path.split("/"):
        if not part:
            return "has an empty part ('//' or a '/' at either end)"
        if not part.strip(". "):
            return f"has the part {part!r}, which names a folder or its parent, not a file"
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            return f"has a part over the {MAX_NAME_BYTES} byte limit of a file name"
        normal = unicodedata.normalize("NFKC", part)
        if normal != part and (not normal.strip(". ") or "/" in normal or "\\" in normal):
            return f"has the part {part!r}, which reads as {normal!r} once Unicode-normalised (NFKC)"
    return None


def check_relative_path(what: str, path: object) -> str:
    """``path`` if it names a file inside a folder (see ``path_problem``); InvalidInput naming it otherwise."""
    problem = path_problem(path)
    if problem is not None:
        raise InvalidInput(f"{what} {shown(path)} {problem}; {PATH_RULE}")
    return str(path)


def check_file_name(what: str, name: object) -> str:
    """``name`` if it is one plain file or folder name (a relative path without '/'); InvalidInput otherwise."""
    name = check_relative_path(what, name)
    if "/" in name:
        raise InvalidInput(f"{what} {shown(name)} contains '/'; use one file or folder name such as 'model.pkl'")
    return name


def check_no_clash(what: str, paths: Collection[str]) -> None:
    """Refuse a set of file paths where one file's path is another's folder (``a`` and ``a/b``)."""
    for path in paths:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder in paths:
                raise InvalidInput(f"{what} lists {shown(folder)} as a file and {shown(path)} inside it; "
                                   "a path cannot be both a file and a folder, so rename one of them")


def check_manifest(entries: object, what: str = "folder manifest") -> list[dict]:
    """``entries`` if they are a folder manifest: a non-empty JSON list of ``{"path", "sha256", "size", "mode"}``.

    Each path passes ``check_relative_path`` and appears once, no path is both a file and a folder,
    sha256 is 64 lowercase hex digits, size a whole number >= 0 (bytes), mode a permission mode
    0-0o777. Raises InvalidInput whose one-line message names the first bad entry by index and path.
    """
    if not isinstance(entries, list) or not entries:
        raise InvalidInput(f"{what} must be a non-empty JSON list of {{path, sha256, size, mode}} entries, "
                           f"not {shown(entries, 40)}; upload the folder with the modelport SDK or CLI")
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or sorted(entry) != sorted(MANIFEST_KEYS):
            raise InvalidInput(f"{what} entry {index} is {shown(entry, 60)}; each entry has exactly the keys "
                               f"{', '.join(MANIFEST_KEYS)}")
        path = check_relative_path(f"{what} entry {index} path", entry["path"])
        named = f"{what} entry {index} ({shown(path)})"
        if path in seen:
            raise InvalidInput(f"{named} repeats entry {seen[path]}'s path; list each file once")
        seen[path] = index
        check_sha256(named, entry["sha256"])
        check_count(f"{named} size", entry["size"])
        mode = entry["mode"]
        if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= MAX_MODE:
            raise InvalidInput(f"{named} mode {shown(mode, 40)} is not a permission mode from 0 to 0o777 (511)")
    check_no_clash(what, seen)
    return entries


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
