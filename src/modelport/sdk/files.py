"""Reading the files users bring (Azure ML's inferenceconfig.json, deploymentconfig.json, Environment JSON).

Three rules every reader shares:

- **Keys** (``KeyRule``): Azure ML's readers ignored keys they did not use, and files in the wild carry them. A key
  Azure accepted that asks for nothing (null, false, empty, or Azure's default) is accepted silently; one that asks
  for something modelport does not do is accepted with one ``ConfigWarning`` naming the key and what modelport does
  instead; an unknown key (a likely typo) is a warning naming the nearest known key, and an error in strict mode.
  Messages name keys as the file spells them (``autoScaler.autoscaleEnabled``).
- **Paths** (``find_path``): as the ``az ml`` CLI, a relative path is taken from the current directory first, then
  from the file's own folder; when neither holds it, the error names every place tried.
- **Warnings** reach SDK users as Python warnings pointing at their own line, and CLI users as ``Warning:`` lines
  (``modelport.cli.output.config_warnings_shown``), never only in a build log.
"""

from __future__ import annotations

import difflib
import json
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
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
    """True for null, false, an empty string/list/object, or ``default`` (Azure's own default for the key)."""
    if value is None or value is False or (isinstance(value, str | list | dict) and not value):
        return True
    return default is not None and type(value) is type(default) and value == default


@dataclass(frozen=True)
class KeyRule:
    """The key rule for one file: ``source`` names it in messages; ``strict`` makes unknown keys errors."""

    source: str
    strict: bool = False

    def unknown(self, path: str, known: Iterable[str], prefix: str = "") -> None:
        """Report the unknown key ``path`` (its leaf is compared with ``known``, the keys beside it)."""
        known = sorted(known)
        leaf = path[len(prefix):]
        hint = suggest(leaf, known, prefix)
        if self.strict:
            where = f"under {prefix[:-1]}" if prefix else "at the top level"
            raise InvalidInput(f"{self.source}: unknown key {path!r}{hint}; known keys {where}: {', '.join(known)}; "
                               "fix or remove it (strict mode)")
        warn(f"{self.source}: unknown key {path!r} ignored{hint}; Azure ML ignored it too "
             "(strict mode makes this an error)")

    def unsupported(self, path: str, value: Any, instead: str, default: Any = None) -> None:
        """Warn that ``path`` asks for something modelport does not do, unless ``value`` asks for nothing."""
        if not asks_for_nothing(value, default):
            warn(f"{self.source}: {path} {_shown(value)}: {instead}")

    def note(self, text: str) -> None:
        """A warning about the file whatever the values (e.g. how a whole compute type is mapped)."""
        warn(f"{self.source}: {text}")


def _shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool | int | float) or value is None else repr(value)


def find_path(value: str, key: str, source: str, bases: Sequence[Path], wanted: Callable[[Path], bool],
              what: str) -> Path:
    """The first ``base / value`` (absolute ``value`` as is) for which ``wanted`` holds, resolved.

    ``bases`` are tried in order (the reader gives the current directory first, then the file's folder, as the
    ``az ml`` CLI took paths from the current directory). InvalidInput names ``key``, ``what`` was wanted and every
    place tried when none holds.
    """
    tried: list[Path] = []
    for base in bases:
        candidate = (base / Path(value).expanduser()).resolve()
        if candidate in tried:
            continue
        if wanted(candidate):
            return candidate
        tried.append(candidate)
    places = " or ".join(str(path) for path in tried)
    raise InvalidInput(f"{source}: {key} {value!r}: no {what} at {places}; fix the path (relative paths are taken "
                       "from the current directory, then from the file's folder)")
