"""Loading an entry script and deciding how its ``run()`` is called.

Three input modes, as in azmlinfsrv: ``@rawhttp`` (run gets the HTTP request),
``@input_schema`` from inference-schema (run gets keyword arguments from the JSON body),
and undecorated (run gets the body as a string).
"""

from __future__ import annotations

import enum
import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

logger = logging.getLogger("modelport.user_script")

SHIMS_DIR = Path(__file__).parent / "shims"
RAWHTTP_MODULES = (
    "azureml.contrib.services.aml_request",
    "azureml_inference_server_http.api.aml_request",
)


class UserScriptError(Exception):
    """The entry script cannot be served as written; the message says what to change."""


class InputMode(enum.Enum):
    RAW_HTTP = "rawhttp"
    SCHEMA = "input_schema"
    STRING = "string"


def install_azureml_shims() -> None:
    """Make ``azureml.core.model``, ``azureml.exceptions``, ``azureml.contrib.services`` and
    ``azureml_inference_server_http.api`` importable without those packages.

    The folder goes to the end of ``sys.path`` so a real install is always preferred.
    """
    path = str(SHIMS_DIR)
    if path not in sys.path:
        sys.path.append(path)


class UserScript:
    """An entry script with ``init()`` and ``run()``, ready to be invoked."""

    def __init__(self, module: ModuleType, path: Path):
        self.path = path
        self.module = module
        for name in ("init", "run"):
            if not callable(getattr(module, name, None)):
                raise UserScriptError(f"{path} has no {name}() function; an entry script defines init() and run().")
        # Some generated "driver" scripts forward run() to the real score script's run().
        driver_target = getattr(module, "driver_module", None)
        if isinstance(driver_target, ModuleType) and callable(getattr(driver_target, "run", None)):
            self.run: Callable[..., Any] = driver_target.run
        else:
            self.run = module.run
        self.init: Callable[[], Any] = module.init
        self.mode, self.input_params, self.wants_headers = _analyze_run(self.run, path)

    @classmethod
    def load(cls, path: Path, app_root: Path, source_dir: Path | None = None) -> UserScript:
        """Import the entry script as ``entry_module``; its folder, the source folder
        (``AZUREML_SOURCE_DIRECTORY``) and the app root lead sys.path."""
        install_azureml_shims()
        folders = (str(app_root), str(source_dir) if source_dir is not None else None, str(path.parent))
        for folder in dict.fromkeys(f for f in folders if f):
            if folder not in sys.path:
                sys.path.insert(0, folder)
        spec = importlib.util.spec_from_file_location("entry_module", path)
        if spec is None or spec.loader is None:
            raise UserScriptError(f"{path} cannot be imported as a Python module; is it a .py file?")
        module = importlib.util.module_from_spec(spec)
        sys.modules["entry_module"] = module
        spec.loader.exec_module(module)
        return cls(module, path)


def _analyze_run(run: Callable[..., Any], path: Path) -> tuple[InputMode, list[inspect.Parameter], bool]:
    params = list(inspect.signature(run).parameters.values())
    allowed = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if any(p.kind not in allowed for p in params):
        raise UserScriptError(
            f"run() in {path} takes positional-only, *args or **kwargs parameters; "
            "the runtime calls it by keyword, so give it named parameters such as run(data)."
        )
    wants_headers = any(p.name == "request_headers" for p in params)
    params = [p for p in params if p.name != "request_headers"]
    if not params:
        raise UserScriptError(f"run() in {path} needs a parameter for the input data, e.g. run(data).")
    raw = _rawhttp_requested()
    decorated = _schema_decorated(run)
    if raw and decorated:
        raise UserScriptError(f"run() in {path} cannot be decorated with both @rawhttp and @input_schema.")
    if raw:
        logger.info("run() is decorated with @rawhttp: it receives the HTTP request object.")
        return InputMode.RAW_HTTP, params[:1], wants_headers
    if decorated:
        names = ", ".join(p.name for p in params)
        logger.info("run() is decorated with @input_schema: it receives these arguments: %s.", names)
        return InputMode.SCHEMA, params, wants_headers
    logger.info("run() is not decorated: it receives the request body as a string.")
    return InputMode.STRING, params[:1], wants_headers


def _rawhttp_requested() -> bool:
    return any(getattr(sys.modules.get(name), "_rawHttpRequested", False) for name in RAWHTTP_MODULES)


def _schema_decorated(run: Callable[..., Any]) -> bool:
    if "inference_schema" not in sys.modules:  # a script that never imported it cannot be decorated
        return False
    from inference_schema.schema_util import is_schema_decorated

    return is_schema_decorated(run)
