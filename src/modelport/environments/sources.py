"""Naming the package source (index or find-links location) that a failed install could not reach.

Used by the local build (``build.py``) on uv's output, so that an unreachable ``--index-url``, ``--extra-index-url``
or ``--find-links`` from the environment's pip list is named in the build error, credentials hidden.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from .conda import source_option

_FAILED_FETCH = re.compile(r"Failed to (?:fetch|read `--find-links` URL): (\S+)")
_CAUSE = re.compile(r"^\s*cause: (.+)$", re.MULTILINE)
_LOCATED = ("--index-url", "--extra-index-url", "--find-links")


def unreachable_source(output: str, sources: list[str]) -> str | None:
    """``"<option> <url> could not be reached (<reason>)..."`` when ``output`` (uv's) says a fetch under one of the
    ``sources`` option lines failed; None when the failure is something else."""
    located = [option for option in map(source_option, sources) if option and option[0] in _LOCATED and option[1]]
    for fetch in _FAILED_FETCH.finditer(output):
        for option, url in located:
            if fetch[1].startswith(url.rstrip("/")):
                causes = _CAUSE.findall(output, fetch.end())
                reason = f" ({causes[-1].strip()})" if causes else ""
                return (f"package source {option} {_without_credentials(url)} could not be reached{reason}; check "
                        "the URL and that this machine can reach it")
    return None


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=f"***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")))
