"""Read a conda environment file and a pip requirements file into plain data, with errors that point at file:line.

Besides requirements, a pip list may hold the options that choose where packages come from (``--index-url``/``-i``,
``--extra-index-url``, ``--find-links``/``-f``, ``--trusted-host``, ``--no-index``): they are kept as lines and
passed to uv as they are. A relative ``--find-links`` folder is made absolute against the file that names it, as
pip took it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidInput

CONDA_KEYS = ("name", "channels", "dependencies", "prefix", "variables")
# The package-source options uv reads in requirements files: short form -> long form, and which take a value.
SOURCE_OPTIONS = {"-i": "--index-url", "--index-url": "--index-url", "--extra-index-url": "--extra-index-url",
                  "-f": "--find-links", "--find-links": "--find-links", "--trusted-host": "--trusted-host",
                  "--no-index": "--no-index"}
_SOURCE_OPTION = re.compile(r"^(-i|-f|--[a-z-]+)(?:(?:\s*=\s*|\s+)(\S+))?$")

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_VERSION = r"(?:===|~=|==|!=|<=|>=|<|>)\s*[A-Za-z0-9_.*+!-]+"
_REQUIREMENT = re.compile(
    rf"^(?P<name>{_NAME})"
    rf"\s*(?:\[\s*(?:{_NAME}(?:\s*,\s*{_NAME})*)?\s*\])?"
    rf"(?:\s*@\s*\S+(?:\s+;.*)?|\s*\(?\s*(?:{_VERSION}(?:\s*,\s*{_VERSION})*)?\s*\)?\s*(?:;.*)?)$"
)
_DIRECT_URL = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")
_CONDA_STYLE_PIN = re.compile(rf"^{_NAME}=[^=]")
_COMMENT = re.compile(r"(^|\s)#.*$")


def parse_conda_yaml(text: str, source: str) -> dict[str, Any]:
    """Parse conda environment YAML (``name``, ``channels``, ``dependencies`` with a ``{pip: [...]}`` item)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidInput(f"{where}: not valid YAML ({problem}); fix the conda file's syntax") from None
    if data is None:
        raise InvalidInput(f"{source} is empty; give it at least a 'dependencies' list")
    return check_conda_dict(data, source)


def load_conda_file(path: Path) -> dict[str, Any]:
    """Read a conda environment YAML file (see ``parse_conda_yaml``); relative ``--find-links`` folders in its pip
    list are taken from the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"conda file {path} does not exist; check the path")
    conda = parse_conda_yaml(path.read_text(encoding="utf-8"), str(path))
    for item in conda.get("dependencies") or []:
        if isinstance(item, dict):
            item["pip"] = absolute_find_links(item["pip"], lambda value: _local_folder(path.parent, value, path))
    return conda


def _local_folder(folder: Path, value: str, where: Path | str) -> Path:
    found = (folder / Path(value).expanduser()).resolve()
    if not found.exists():
        raise InvalidInput(f"{where}: --find-links {value}: {found} does not exist; fix the path (relative to "
                           f"{folder})")
    return found


def check_conda_dict(data: Any, source: str) -> dict[str, Any]:
    """Return ``data`` if it has the shape of a conda environment, else raise InvalidInput naming the problem."""
    if not isinstance(data, dict):
        raise InvalidInput(f"{source} must be a mapping with 'name', 'channels' and 'dependencies'")
    for key in data:
        if key not in CONDA_KEYS:
            raise InvalidInput(f"{source} has unknown key '{key}'; "
                               f"a conda environment has only {', '.join(CONDA_KEYS)}")
    if data.get("name") is not None and not isinstance(data["name"], str):
        raise InvalidInput(f"{source}: 'name' must be a string")
    channels = data.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(channel, str) for channel in channels):
        raise InvalidInput(f"{source}: 'channels' must be a list of channel names")
    dependencies = data.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise InvalidInput(f"{source}: 'dependencies' must be a list")
    for item in dependencies:
        _check_dependency(item, source)
    return data


def _check_dependency(item: Any, source: str) -> None:
    if isinstance(item, str):
        return
    if isinstance(item, dict) and list(item) == ["pip"]:
        pip = item["pip"]
        if isinstance(pip, list) and all(isinstance(line, str) for line in pip):
            return
        raise InvalidInput(f"{source}: the 'pip' item must be a list of requirement strings, not {pip!r}")
    raise InvalidInput(f"{source}: dependency {item!r} must be a package string or a {{pip: [...]}} list")


def requirement_name(line: str) -> str | None:
    """The normalized (PEP 503) project name of a requirement line, or None for options and URLs."""
    match = _REQUIREMENT.match(line.strip())
    return re.sub(r"[-_.]+", "-", match["name"]).lower() if match else None


def source_option(line: str) -> tuple[str, str | None] | None:
    """``(long option name, value)`` when ``line`` is a package-source option (e.g. ``-i URL`` gives
    ``("--index-url", "URL")``); None for any other line."""
    match = _SOURCE_OPTION.match(line.strip())
    if not match or match[1] not in SOURCE_OPTIONS:
        return None
    return SOURCE_OPTIONS[match[1]], match[2]


def absolute_find_links(lines: list[str], resolve: Callable[[str], Path]) -> list[str]:
    """``lines`` with each relative local ``--find-links`` folder replaced by ``resolve(folder)`` (absolute)."""
    out = []
    for line in lines:
        option = source_option(line)
        value = option[1] if option and option[0] == "--find-links" else None
        if value and "://" not in value and not Path(value).expanduser().is_absolute():
            line = f"--find-links {resolve(value)}"
        out.append(line)
    return out


def check_requirement(line: str, where: str) -> None:
    """Raise InvalidInput (naming ``where``) unless ``line`` is a requirement or a package-source option that a
    local build can install from."""
    text = line.strip()
    option = source_option(text)
    if option:
        if (option[1] is None) != (option[0] == "--no-index"):
            usage = option[0] if option[0] == "--no-index" else f"{option[0]} VALUE"
            raise InvalidInput(f"{where}: '{text}' is not a valid option line; write it as '{usage}'")
        return
    trailing = re.search(r"\s(--?[A-Za-z][\w-]*)", text)
    if trailing and not text.startswith("-"):
        raise InvalidInput(f"{where}: per-requirement pip option '{trailing[1]}' is not supported here; remove it")
    if text.startswith("-"):
        option_name = re.split(r"[\s=]", text, maxsplit=1)[0]
        raise InvalidInput(f"{where}: pip option '{option_name}' is not supported here; remove it (package-source "
                           f"options {', '.join(sorted(set(SOURCE_OPTIONS.values())))} are)")
    if _REQUIREMENT.match(text) or _DIRECT_URL.match(text):
        return
    hint = "; pip pins use '==', not conda's '='" if _CONDA_STYLE_PIN.match(text) else ""
    raise InvalidInput(f"{where}: '{text}' is not a valid requirement (like 'name', 'name==1.2' or "
                       f"'name @ https://...'){hint}")


def parse_requirements_file(path: Path) -> list[str]:
    """Read a pip requirements file: comments, line continuations and ``-r`` includes (relative to the file)."""
    return _read_requirements(Path(path), ())


def _read_requirements(path: Path, including: tuple[Path, ...]) -> list[str]:
    resolved = path.resolve()
    if resolved in including:
        raise InvalidInput(f"requirements file {path} includes itself through -r; remove the loop")
    if not path.is_file():
        raise InvalidInput(f"requirements file {path} does not exist; check the path")
    requirements: list[str] = []
    for lineno, text in _logical_lines(path.read_text(encoding="utf-8")):
        where = f"{path}:{lineno}"
        include = re.match(r"^(?:-r|--requirement)(?:\s+|=)(\S+)$", text)
        if include:
            requirements += _read_requirements(path.parent / include[1], (*including, resolved))
            continue
        check_requirement(text, where)
        requirements += absolute_find_links([text], lambda value, where=where: _local_folder(path.parent, value, where))
    return requirements


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) for each non-empty logical line, comments removed, continuations joined."""
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1]
            continue
        line = _COMMENT.sub("", pending + raw).strip()
        pending = ""
        if line:
            lines.append((start, line))
    tail = _COMMENT.sub("", pending).strip()
    if tail:
        lines.append((start, tail))
    return lines
