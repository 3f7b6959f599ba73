"""Reading the JSON files users bring (Azure ML's inferenceconfig.json, deploymentconfig.json, Environment JSON)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InvalidInput


def read_json_object(path: str | Path, what: str) -> dict:
    """The JSON object in ``path``; one-line InvalidInput when it is missing, malformed or not an object."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInput(f"{what} {path} not found; check the path") from None
    except json.JSONDecodeError as err:
        raise InvalidInput(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} must hold a JSON object ({what}); got {type(data).__name__}")
    return data
