"""azmlinfsrv's JSON configuration file (``--config_file``, ``AZUREML_CONFIG_FILE`` or ``config.json``).

The file holds server settings under their environment variable names, for example
``{"AZUREML_ENTRY_SCRIPT": "/app/score.py", "SCORING_TIMEOUT_MS": 6000,
"AML_CORS_ORIGINS": "www.microsoft.com", "AML_APP_INSIGHTS_ENABLED": true}``. As in
azmlinfsrv: command-line flags win over environment variables, which win over the file; the
file is the one named by the flag, else by ``AZUREML_CONFIG_FILE``, else a ``config.json`` in
the app root or beside the entry script. Keys it does not know are named in a warning and
ignored (a ``config.json`` of an Azure ML workspace, with ``subscription_id``, is only that).

Called once by ``RuntimeSettings.from_args``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

# The keys azmlinfsrv 1.5.1 reads from the file, and what modelport does with them.
KEYS = {
    "AML_APP_ROOT": "the app root",
    "AZUREML_SOURCE_DIRECTORY": "the source folder inside the app root (on sys.path)",
    "AZUREML_ENTRY_SCRIPT": "the entry script",
    "SERVICE_NAME": "swagger title",
    "WORKSPACE_NAME": "workspace name (no effect here)",
    "SERVICE_PATH_PREFIX": "swagger path prefix",
    "SERVICE_VERSION": "swagger version",
    "SCORING_TIMEOUT_MS": "scoring timeout",
    "AZUREML_LOG_LEVEL": "log level",
    "AML_APP_INSIGHTS_ENABLED": "Application Insights switch (seen by run())",
    "AML_APP_INSIGHTS_KEY": "Application Insights key (seen by run())",
    "AML_MODEL_DC_STORAGE_ENABLED": "model data collection (no effect here)",
    "APP_INSIGHTS_LOG_RESPONSE_ENABLED": "Application Insights response logging (no effect here)",
    "AML_CORS_ORIGINS": "CORS origins",
    "AZUREML_MODEL_DIR": "the model directory",
    "HOSTNAME": "container name (no effect here)",
    "AZUREML_DEBUG_PORT": "debugpy port (not supported here)",
}
DEFAULT_NAME = "config.json"


class ConfigFileError(ValueError):
    """An explicitly named configuration file cannot be used; the message names the file."""


@dataclass
class ConfigFile:
    """The settings a configuration file holds, as environment-variable strings."""

    path: Path | None = None
    values: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def load(explicit: str | None, search: list[Path]) -> ConfigFile:
    """Read the configuration file: ``explicit`` (the flag), ``AZUREML_CONFIG_FILE``, or ``config.json``
    in the first of ``search`` that has one. An explicit file that is missing or invalid is an error;
    a ``config.json`` found by searching that is not a settings object is a warning."""
    named = explicit or os.environ.get("AZUREML_CONFIG_FILE")
    if named:
        path = Path(named).expanduser()
        if explicit and not path.is_file():
            raise ConfigFileError(f"--config_file {explicit}: no such file")
        if path.is_file() and path.stat().st_size:
            return _read(path.resolve(), strict=True)
    for folder in search:
        path = folder / DEFAULT_NAME
        if path.is_file() and path.stat().st_size:
            return _read(path.resolve(), strict=False)
    return ConfigFile()


def _read(path: Path, strict: bool) -> ConfigFile:
    try:
        content = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return _refuse(path, strict, f"is not valid JSON ({err})")
    if not isinstance(content, dict):
        return _refuse(path, strict, "does not hold a JSON object of settings")
    config = ConfigFile(path=path)
    unknown = []
    for key, value in content.items():
        if key not in KEYS:
            unknown.append(key)
        elif value is None:
            continue
        elif isinstance(value, bool):
            config.values[key] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            config.values[key] = str(value)
        else:
            config.warnings.append(f"{path}: {key} must be a string, number or boolean; ignored")
    if unknown:
        config.warnings.append(
            f"{path}: keys that are not server settings, ignored: {', '.join(map(repr, unknown))} "
            f"(known keys: {', '.join(KEYS)})"
        )
    if "AZUREML_DEBUG_PORT" in config.values:
        config.warnings.append(f"{path}: AZUREML_DEBUG_PORT is not supported by modelport; no debugger is attached")
    return config


def _refuse(path: Path, strict: bool, problem: str) -> ConfigFile:
    if strict:
        raise ConfigFileError(f"configuration file {path} {problem}")
    return ConfigFile(warnings=[f"{path} {problem}; not used as a server configuration file"])
