"""Runtime settings, read from the command line, the environment variables azmlinfsrv uses and its config file."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from . import config_file as config_file_module

SERVER_VERSION = f"modelport/{__version__}"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z", re.IGNORECASE)


class SettingsError(ValueError):
    """A setting has a value the runtime cannot use; the message names the setting and the fix."""


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    return _int(os.environ, name, default, minimum)  # type: ignore[arg-type]


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
    model_dir: str | None = None  # AZUREML_MODEL_DIR exactly as given (a relative path stays relative)
    models: tuple[ModelSpec, ...] = ()
    source_directory: str | None = None  # AZUREML_SOURCE_DIRECTORY: a folder inside the app root, on sys.path
    host: str = "127.0.0.1"
    port: int = 5001
    health_port: int | None = None  # a second listener (SEPERATE_HEALTH_ENDPOINT=true), same routes
    workers: int = 1
    scoring_timeout_ms: int = 3_600_000
    worker_timeout_s: int = 0  # WORKER_TIMEOUT; 0: a run() never makes its worker restart
    max_concurrent_requests: int = 1
    max_queue_wait_ms: int = 500
    max_body_bytes: int = 100 * 1024 * 1024
    graceful_timeout_s: int = 30
    service_name: str = "ML service"
    service_version: str = "1.0"
    service_path_prefix: str = ""
    log_level: str = "INFO"
    cors_origins: str | None = None  # AML_CORS_ORIGINS
    app_insights_enabled: bool = False
    app_insights_key: str | None = None
    server_version: str = SERVER_VERSION  # x-ms-server-version ("" when SERVER_VERSION_LOG_RESPONSE_ENABLED=false)
    config_file: Path | None = None
    notes: tuple[str, ...] = ()  # warnings to log at start-up (a missing model folder, ignored settings, ...)

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
        *,
        health_port: int | None = None,
        cors_origins: str | None = None,
        appinsights_key: str | None = None,
        config_file: str | None = None,
    ) -> RuntimeSettings:
        """Combine command-line values, the azmlinfsrv environment variables and its configuration
        file (flags win over variables, which win over the file)."""
        notes: list[str] = []
        cwd = Path.cwd()
        root_hint = source_dir or os.environ.get("AML_APP_ROOT")
        search = [Path(root_hint).expanduser() if root_hint else cwd]
        entry_hint = entry_script or os.environ.get("AZUREML_ENTRY_SCRIPT")
        if entry_hint:
            search.append(_resolve_against(Path(entry_hint).expanduser(), search[0], cwd).parent)
        try:
            config = config_file_module.load(config_file, search)
        except config_file_module.ConfigFileError as err:
            raise SettingsError(str(err)) from None
        notes.extend(config.warnings)
        env = {**config.values, **os.environ}  # the environment wins over the file

        app_root, script = _app_root_and_script(entry_script or env.get("AZUREML_ENTRY_SCRIPT"),
                                                source_dir or env.get("AML_APP_ROOT"), cwd, env)
        source_directory = env.get("AZUREML_SOURCE_DIRECTORY") or None
        if source_directory and not (app_root / source_directory).is_dir():
            notes.append(f"AZUREML_SOURCE_DIRECTORY={source_directory}: {app_root / source_directory} is not a "
                         "folder; nothing added to sys.path for it")

        model_dir = model_dir or env.get("AZUREML_MODEL_DIR") or None
        if model_dir is not None and models:
            raise SettingsError("use either --model-dir or --model, not both")
        if model_dir is not None and not (app_root / Path(model_dir).expanduser()).exists():
            notes.append(f"The model directory {model_dir} (AZUREML_MODEL_DIR) does not exist "
                         f"(relative paths are taken from the app root {app_root}); serving anyway, "
                         "as azmlinfsrv does: init() and run() see the value as given")

        workers = workers if workers is not None else _env_int("WORKER_COUNT", 1, minimum=1)
        if workers < 1:
            raise SettingsError(f"--workers {workers}: need at least 1 worker")
        port = port if port is not None else _env_int("AZUREML_SERVER_PORT", 5001, minimum=0)
        separate_health = os.environ.get("SEPERATE_HEALTH_ENDPOINT", "").lower() == "true"
        if separate_health:
            health_port = health_port if health_port is not None else _env_int("HEALTH_PORT", 5000, minimum=0)
        elif health_port is not None:
            notes.append(f"--health_port {health_port} is used only with SEPERATE_HEALTH_ENDPOINT=true "
                         "(as in azmlinfsrv); health is served on the scoring port")
            health_port = None
        if health_port is not None and health_port != 0 and health_port == port:
            raise SettingsError(f"--health_port {health_port} is the scoring port; choose another port")

        cors = cors_origins if cors_origins is not None else env.get("AML_CORS_ORIGINS")
        insights_enabled, insights_key = _app_insights(appinsights_key, env, notes)
        version_enabled = os.environ.get("SERVER_VERSION_LOG_RESPONSE_ENABLED", "true").lower() == "true"
        return cls(
            entry_script=script,
            app_root=app_root,
            model_dir=model_dir,
            models=tuple(ModelSpec.parse(m) for m in models),
            source_directory=source_directory,
            host=host or os.environ.get("MODELPORT_HOST", "127.0.0.1"),
            port=port,
            health_port=health_port,
            workers=workers,
            scoring_timeout_ms=_int(env, "SCORING_TIMEOUT_MS", 3_600_000, minimum=1),
            worker_timeout_s=_env_int("WORKER_TIMEOUT", 0),
            max_concurrent_requests=_env_int("MODELPORT_MAX_CONCURRENT_REQUESTS", 1, minimum=1),
            max_queue_wait_ms=_env_int("MODELPORT_MAX_QUEUE_WAIT_MS", 500),
            max_body_bytes=_env_int("MODELPORT_MAX_BODY_BYTES", 100 * 1024 * 1024, minimum=1),
            graceful_timeout_s=_env_int("MODELPORT_GRACEFUL_TIMEOUT_S", 30),
            service_name=env.get("SERVICE_NAME", "ML service"),
            service_version=env.get("SERVICE_VERSION", "1.0"),
            service_path_prefix=env.get("SERVICE_PATH_PREFIX", ""),
            log_level=env.get("AZUREML_LOG_LEVEL", "INFO").upper(),
            cors_origins=cors.strip() if cors and cors.strip() else None,
            app_insights_enabled=insights_enabled,
            app_insights_key=insights_key,
            server_version=SERVER_VERSION if version_enabled else "",
            config_file=config.path,
            notes=tuple(notes),
        )

    def environment(self) -> dict[str, str]:
        """Variables azmlinfsrv sets for the entry script from its settings (besides the layout's)."""
        env = {
            "AML_APP_INSIGHTS_ENABLED": "true" if self.app_insights_enabled else "false",
            "WORKER_COUNT": str(self.workers),
        }
        if self.app_insights_key is not None:
            env["AML_APP_INSIGHTS_KEY"] = self.app_insights_key
        if self.cors_origins:
            env["AML_CORS_ORIGINS"] = self.cors_origins
        if self.config_file is not None:
            env["AZUREML_CONFIG_FILE"] = str(self.config_file)
        return env


def _resolve_against(script: Path, app_root: Path, cwd: Path) -> Path:
    if script.is_absolute():
        return script
    for base in (app_root, cwd):
        if (base / script).is_file():
            return base / script
    return app_root / script


def _app_root_and_script(entry_script: str | None, root: str | None, cwd: Path,
                         env: dict[str, str]) -> tuple[Path, Path]:
    """The app root (``--source-dir``, else ``AML_APP_ROOT``, else the working directory) and the entry
    script, a relative one found in the app root, else the working directory, else the source folder."""
    if not entry_script:
        raise SettingsError("no entry script: pass --entry-script score.py (or set AZUREML_ENTRY_SCRIPT)")
    app_root = Path(root).expanduser().resolve() if root else cwd
    if not app_root.is_dir():
        raise SettingsError(f"--source-dir {root}: not a directory")
    script = Path(entry_script).expanduser()
    if script.is_absolute():
        candidates = [script]
    else:
        candidates = [app_root / script, cwd / script]
        source_directory = env.get("AZUREML_SOURCE_DIRECTORY")
        if source_directory:
            candidates.append(app_root / source_directory / script)
    for candidate in dict.fromkeys(candidates):
        if candidate.is_file():
            return app_root, candidate.resolve()
    tried = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise SettingsError(f"entry script {entry_script} not found (looked for {tried}); check --entry-script")


def _app_insights(flag_key: str | None, env: dict[str, str], notes: list[str]) -> tuple[bool, str | None]:
    """azmlinfsrv's rule: a key from the flag enables Application Insights; enabled only with
    ``AML_APP_INSIGHTS_ENABLED=true`` and a key that is a UUID, else ``false``."""
    enabled = "true" if flag_key is not None else env.get("AML_APP_INSIGHTS_ENABLED")
    key = flag_key if flag_key is not None else env.get("AML_APP_INSIGHTS_KEY")
    if enabled is None or key is None or enabled != "true":
        return False, key
    if not _UUID.match(key):
        notes.append("Invalid Application Insights instrumentation key provided (not a UUID); "
                     "AML_APP_INSIGHTS_ENABLED is false")
        return False, key
    notes.append("Application Insights is enabled: run() sees AML_APP_INSIGHTS_ENABLED=true and AML_APP_INSIGHTS_KEY; "
                 "modelport itself sends no telemetry there (use GET /metrics and the replica log)")
    return True, key


def _int(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number; set it to an integer such as {default}.") from None
    if value < minimum:
        raise SettingsError(f"{name}={value} is below {minimum}; set it to at least {minimum}.")
    return value
