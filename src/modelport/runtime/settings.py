"""Runtime settings, read from the command line and the environment variables azmlinfsrv uses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class SettingsError(ValueError):
    """A setting has a value the runtime cannot use; the message names the setting and the fix."""


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number; set it to an integer such as {default}.") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} is below {minimum}; set it to at least {minimum}.")
    return value


@dataclass(frozen=True)
class ModelSpec:
    """One registered model to lay out for a local run: ``--model NAME:VERSION=PATH``."""

    name: str
    version: str
    path: Path

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        spec, sep, path = text.partition("=")
        name, colon, version = spec.partition(":")
        if not sep or not colon or not name or not version or not path:
            raise SettingsError(f"--model {text!r} must look like NAME:VERSION=PATH, e.g. sklearn_mnist:3=./model.pkl")
        if not version.isdigit():
            raise SettingsError(f"--model {text!r}: the version must be a positive whole number, got {version!r}")
        resolved = Path(path).expanduser().resolve()
        if not resolved.exists():
            raise SettingsError(f"--model {text!r}: {resolved} does not exist; give the path of a model file or folder")
        return cls(name=name, version=version, path=resolved)


@dataclass(frozen=True)
class RuntimeSettings:
    """Everything a replica needs to serve one entry script."""

    entry_script: Path
    app_root: Path
    model_dir: Path | None = None
    models: tuple[ModelSpec, ...] = ()
    host: str = "127.0.0.1"
    port: int = 5001
    workers: int = 1
    scoring_timeout_ms: int = 3_600_000
    max_concurrent_requests: int = 1
    max_queue_wait_ms: int = 500
    max_body_bytes: int = 100 * 1024 * 1024
    graceful_timeout_s: int = 30
    service_name: str = "ML service"
    service_version: str = "1.0"
    service_path_prefix: str = ""
    log_level: str = "INFO"

    @classmethod
    def from_args(
        cls,
        entry_script: str | None,
        source_dir: str | None = None,
        model_dir: str | None = None,
        models: tuple[str, ...] = (),
        host: str | None = None,
        port: int | None = None,
        workers: int | None = None,
    ) -> RuntimeSettings:
        """Combine command-line values with the azmlinfsrv environment variables (flags win)."""
        source_dir = source_dir or os.environ.get("AZUREML_SOURCE_DIRECTORY") or os.environ.get("AML_APP_ROOT")
        entry_script = entry_script or os.environ.get("AZUREML_ENTRY_SCRIPT")
        if not entry_script:
            raise SettingsError("no entry script: pass --entry-script score.py (or set AZUREML_ENTRY_SCRIPT)")
        app_root = Path(source_dir).expanduser().resolve() if source_dir else None
        if app_root is not None and not app_root.is_dir():
            raise SettingsError(f"--source-dir {source_dir}: not a directory")
        script = Path(entry_script).expanduser()
        if not script.is_absolute():
            script = (app_root or Path.cwd()) / script
        script = script.resolve()
        if not script.is_file():
            hint = f" inside {app_root}" if app_root else ""
            raise SettingsError(f"entry script {entry_script}{hint} not found ({script}); check --entry-script")
        if app_root is None:
            app_root = script.parent
        model_dir = model_dir or os.environ.get("AZUREML_MODEL_DIR") or None
        resolved_model_dir = Path(model_dir).expanduser().resolve() if model_dir else None
        if resolved_model_dir is not None and not resolved_model_dir.exists():
            raise SettingsError(f"--model-dir {model_dir}: {resolved_model_dir} does not exist")
        if resolved_model_dir is not None and models:
            raise SettingsError("use either --model-dir or --model, not both")
        workers = workers if workers is not None else _env_int("WORKER_COUNT", 1, minimum=1)
        if workers < 1:
            raise SettingsError(f"--workers {workers}: need at least 1 worker")
        return cls(
            entry_script=script,
            app_root=app_root,
            model_dir=resolved_model_dir,
            models=tuple(ModelSpec.parse(m) for m in models),
            host=host or os.environ.get("MODELPORT_HOST", "127.0.0.1"),
            port=port if port is not None else _env_int("AZUREML_SERVER_PORT", 5001, minimum=0),
            workers=workers,
            scoring_timeout_ms=_env_int("SCORING_TIMEOUT_MS", 3_600_000, minimum=1),
            max_concurrent_requests=_env_int("MODELPORT_MAX_CONCURRENT_REQUESTS", 1, minimum=1),
            max_queue_wait_ms=_env_int("MODELPORT_MAX_QUEUE_WAIT_MS", 500),
            max_body_bytes=_env_int("MODELPORT_MAX_BODY_BYTES", 100 * 1024 * 1024, minimum=1),
            graceful_timeout_s=_env_int("MODELPORT_GRACEFUL_TIMEOUT_S", 30),
            service_name=os.environ.get("SERVICE_NAME", "ML service"),
            service_version=os.environ.get("SERVICE_VERSION", "1.0"),
            service_path_prefix=os.environ.get("SERVICE_PATH_PREFIX", ""),
            log_level=os.environ.get("AZUREML_LOG_LEVEL", "INFO").upper(),
        )
