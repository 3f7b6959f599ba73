"""Reading the files users bring (Azure ML's inferenceconfig.json, deploymentconfig.json, Environment JSON).

Three rules every reader shares:

- **Keys** (``KeyRule``): Azure ML's readers ignored keys they did not use, and files in the wild carry them. A key
  Azure accepted that asks for nothing (null, false, empty, or Azure's default) is accepted silently; one that asks
  for something modelport does not do is accepted with one ``ConfigWarning`` naming the key and what modelport does
  instead; an unknown key (a likely typo) is a warning naming the nearest known key, and in strict mode an error
  listing every unknown key of the file. Messages name keys as the file spells them (``autoScaler.autoscaleEnabled``),
  settings given as flags or keyword arguments as the user wrote them (``--conda-file``, ``conda_file``), and show
  values as JSON.
- **Paths** (``find_path``): as the ``az ml`` CLI, a relative path is taken from the current directory first, then
  from the file's own folder; when neither holds it, the error names every place tried.
- **Warnings** reach SDK users as Python warnings pointing at their own line, and CLI users as ``Warning:`` lines
  (``modelport.cli.output.config_warnings_shown``), never only in a build log.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidInput

_PACKAGE = str(Path(__file__).resolve().parent.parent)


class ConfigWarning(UserWarning):
    """A key (or parameter) Azure ML accepted that modelport reads but does not act on as Azure did."""


def warn(message: str) -> None:
    """Emit ``message`` as a ConfigWarning attributed to the first caller outside modelport (the user's line)."""
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is warn()'s caller
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, ConfigWarning, stacklevel=level)


def read_json_object(path: str | Path, what: str) -> dict:
    """The JSON object in ``path`` (a ``.yml``/``.yaml`` file is read as YAML, as the ``az ml`` CLI accepted both);
    one-line InvalidInput when it is missing, malformed or not an object."""
    path = Path(path)
    try:
        text = path.read_text()
        data = yaml.safe_load(text) if path.suffix.lower() in (".yml", ".yaml") else json.loads(text)
    except FileNotFoundError:
        raise InvalidInput(f"{what} {path} not found; check the path") from None
    except json.JSONDecodeError as err:
        raise InvalidInput(f"{path} is not valid JSON: {err}") from None
    except yaml.YAMLError as err:
        raise InvalidInput(f"{path} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} must hold a JSON object ({what}); got {type(data).__name__}")
    return data


def suggest(word: str, options: Iterable[str], prefix: str = "") -> str:
    """`` (did you mean 'prefix+closest'?)`` for the option closest to ``word`` (case-insensitive), or ``''``."""
    by_lower = {option.lower(): option for option in options}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1)
    return f" (did you mean {prefix + by_lower[close[0]]!r}?)" if close else ""


def asks_for_nothing(value: Any, default: Any = None) -> bool:
    """True for null, false, an empty string, ``default`` (Azure's own default for the key), or a list or object
    (an SDK object: its public attributes) whose every item asks for nothing, e.g.
    ``{"address": null, "username": null, "password": null}``."""
    if default is not None and type(value) is type(default) and value == default:
        return True
    value = plain(value)
    if isinstance(value, dict):
        return all(asks_for_nothing(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(asks_for_nothing(item) for item in value)
    return value is None or value is False or value == ""


def plain(value: Any) -> Any:
    """``value`` as JSON-shaped data: an object that is not a JSON value (Azure's ``ContainerRegistry``) becomes its
    public attributes, a path its text; other values are returned as they are."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, str | int | float | bool | list | tuple | dict) or not hasattr(value, "__dict__"):
        return value
    return {name: item for name, item in vars(value).items() if not name.startswith("_")}


@dataclass(frozen=True)
class KeyRule:
    """The key rule for one file (or the flags or keyword arguments of one call): ``source`` names it in messages;
    ``strict`` makes unknown keys errors.

    Use it as a context manager around the whole reading: in strict mode every unknown key is collected and raised
    at its end in one InvalidInput, one line per key, followed by the reading's own InvalidInput if it failed (a
    misspelt key often causes that one).
    """

    source: str
    strict: bool = False
    _unknown: list[str] = field(default_factory=list, compare=False, repr=False)

    def __enter__(self) -> KeyRule:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if self._unknown and (kind is None or issubclass(kind, InvalidInput)):
            raise InvalidInput("\n".join([*self._unknown, *([str(error)] if error else [])])) from None

    def unknown(self, path: str, known: Iterable[str], prefix: str = "") -> None:
        """Report the unknown key ``path`` (its leaf is compared with ``known``, the keys beside it)."""
        known = sorted(known)
        leaf = path[len(prefix):]
        hint = suggest(leaf, known, prefix)
        if self.strict:
            where = f"under {prefix[:-1]}" if prefix else "at the top level"
            self._unknown.append(f"{self.source}: unknown key {path!r}{hint}; known keys {where}: "
                                 f"{', '.join(known)}; fix or remove it (strict mode)")
            return
        warn(f"{self.source}: unknown key {path!r} ignored{hint}; Azure ML ignored it too "
             "(strict mode makes this an error)")

    def unsupported(self, path: str, value: Any, instead: str, default: Any = None) -> None:
        """Warn that ``path`` asks for something modelport does not do, unless ``value`` asks for nothing."""
        if not asks_for_nothing(value, default):
            warn(f"{self.source}: {path} {shown(value)}: {instead}")

    def note(self, text: str) -> None:
        """A warning about the file whatever the values (e.g. how a whole compute type is mapped)."""
        warn(f"{self.source}: {text}")


def shown(value: Any) -> str:
    """``value`` as a message shows it: JSON, any password or secret in it as ``"***"``."""
    return json.dumps(_hidden(value), default=str)


def _hidden(value: Any) -> Any:
    value = plain(value)
    if isinstance(value, dict):
        return {key: "***" if _secret(key) and not asks_for_nothing(item) else _hidden(item)
                for key, item in value.items()}
    return [_hidden(item) for item in value] if isinstance(value, list | tuple) else value


def _secret(key: object) -> bool:
    return any(word in str(key).lower() for word in ("password", "secret"))


def candidates(value: str | os.PathLike, bases: Sequence[Path]) -> list[Path]:
    """``base / value`` for each of ``bases`` in order, resolved, without repeats (an absolute ``value``: once)."""
    found: list[Path] = []
    for base in bases:
        candidate = (base / Path(value).expanduser()).resolve()
        if candidate not in found:
            found.append(candidate)
    return found


def find_path(value: str | os.PathLike, key: str, source: str, bases: Sequence[Path],
              wanted: Callable[[Path], bool], what: str) -> Path:
    """The first of ``candidates(value, bases)`` for which ``wanted`` holds.

    ``bases`` are tried in order (the reader gives the current directory first, then the file's folder, as the
    ``az ml`` CLI took paths from the current directory). InvalidInput names ``key``, ``what`` was wanted and every
    place tried when none holds.
    """
    tried = candidates(value, bases)
    for candidate in tried:
        if wanted(candidate):
            return candidate
    places = " or ".join(str(path) for path in tried)
    raise InvalidInput(f"{source}: {key} {os.fspath(value)!r}: no {what} at {places}; fix the path")
