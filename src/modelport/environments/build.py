"""Local environment builds: one venv per environment content hash, made with uv, reused once complete.

A build happens in a hidden sibling folder that is renamed into place only after the runtime imports
in it, so a failed or killed build leaves nothing half-made; a file lock per hash keeps concurrent
builds of the same environment from running twice.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from rich.console import Console

from ..errors import InvalidInput
from .conda import check_requirement, requirement_name, source_option
from .sources import unreachable_source
from .spec import EnvironmentSpec

# The distributions that ``modelport.runtime`` imports inside a model's environment. Their version
# ranges are read from modelport's own metadata (pyproject.toml), so the two cannot drift apart.
RUNTIME_REQUIREMENTS = ("click", "uvicorn", "orjson", "prometheus-client", "inference-schema", "werkzeug")
MARKER = ".modelport-complete"
LOG_TAIL_LINES = 20
PACKAGE_DIR = Path(__file__).resolve().parent.parent
VERIFY = "import modelport.runtime.app"


class EnvironmentBuildError(InvalidInput):
    """An environment could not be built; the message names the cause and ends with the log's last lines."""

    def __init__(self, message: str, output: str = ""):
        super().__init__(message)
        self.output = output  # what the failed command printed


@dataclass(frozen=True)
class BuiltEnvironment:
    python: Path  # the interpreter replicas run
    root: Path
    pythonpath: Path  # holds only a ``modelport`` link, for PYTHONPATH
    content_hash: str
    log: Path
    reused: bool


def build_log_path(spec: EnvironmentSpec, logs_root: Path) -> Path:
    """Where ``build_local`` logs the builds of ``spec``: ``logs_root/<hash[:16]>.log``."""
    return Path(logs_root) / f"{spec.content_hash()[:16]}.log"


def local_build_state(spec: EnvironmentSpec, envs_root: Path) -> str:
    """Where the local build of ``spec`` under ``envs_root`` stands: ``Built``, ``Building`` (a build's staging
    folder exists; one a killed build left reads so until the next build clears it) or ``Not built``."""
    key, root = spec.content_hash()[:16], Path(envs_root)
    if (root / key / MARKER).is_file():
        return "Built"
    return "Building" if any(root.glob(f".{key}.*")) else "Not built"


def tail_lines(path: Path, num_lines: int) -> str:
    """The last ``num_lines`` lines of a text file ("" when it does not exist)."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-num_lines:])


def build_local(spec: EnvironmentSpec, envs_root: Path, logs_root: Path, show_output: bool = True) -> BuiltEnvironment:
    """Build (or reuse) the local environment for ``spec`` under ``envs_root/<hash[:16]>``."""
    digest = spec.content_hash()
    key = digest[:16]
    envs_root, logs_root = Path(envs_root), Path(logs_root)
    target, log_path = envs_root / key, build_log_path(spec, logs_root)
    recipe = _Recipe.of(spec)
    envs_root.mkdir(parents=True, exist_ok=True)
    logs_root.mkdir(parents=True, exist_ok=True)
    with _Progress(show_output) as progress, _exclusive(envs_root / f"{key}.lock", progress):
        if not (target / MARKER).is_file():
            _build(spec, recipe, target, log_path, progress)
            reused = False
        else:
            reused = True
        marker = json.loads((target / MARKER).read_text())
        pythonpath = _link_package(target)
        progress.done(f"environment {spec.name} {'reused' if reused else 'built'}: {target}")
    return BuiltEnvironment(python=target / marker["python"], root=target, pythonpath=pythonpath,
                            content_hash=digest, log=log_path, reused=reused)


def runtime_requirements() -> list[str]:
    """modelport's declared requirements for the packages in RUNTIME_REQUIREMENTS (e.g. ``orjson>=3.9``)."""
    try:
        declared = importlib.metadata.requires("modelport") or []
    except importlib.metadata.PackageNotFoundError:
        raise EnvironmentBuildError("modelport's package metadata is missing, so its runtime requirements are "
                                    "unknown; install modelport (pip install -e .)") from None
    return [line for line in declared
            if requirement_name(line) in RUNTIME_REQUIREMENTS and not re.search(r";.*\bextra\b", line)]


@dataclass(frozen=True)
class _Recipe:
    """What to do, checked before anything is created: the interpreter, pip lines and notes.

    ``sources`` are the pip list's package-source option lines (``--index-url`` ...) and ``trusted_hosts`` its
    ``--trusted-host`` values (uv takes those on its command line only): the environment's sources, used for its
    own packages and for the runtime's alike, as one ``pip install`` of the whole list used them on Azure.
    """

    base_python: str
    user_managed: bool
    sources: list[str]
    trusted_hosts: list[str]
    requirements: list[str]
    notes: list[str]

    @classmethod
    def of(cls, spec: EnvironmentSpec) -> _Recipe:
        if spec.python.user_managed_dependencies:
            return cls(_user_interpreter(spec.python.interpreter_path), True, [], [], [], [])
        if spec.python.conda_dependencies_file and spec.python.conda_dependencies is None:
            raise InvalidInput(f"environment {spec.name} names condaDependenciesFile "
                               f"'{spec.python.conda_dependencies_file}' but its content was not read; register the "
                               "environment with the SDK or CLI, which read the file, or inline condaDependencies")
        lines = spec.pip_requirements()
        for line in lines:
            check_requirement(line, f"environment {spec.name} pip dependencies")
        options = {line: source_option(line) for line in lines}
        trusted = [option[1] for option in options.values() if option and option[0] == "--trusted-host"]
        sources = [line for line, option in options.items() if option and option[0] != "--trusted-host"]
        notes = [f"{line}: Azure's package, not installed; modelport's runtime replaces it"
                 for line in spec.dropped_requirements()]
        if spec.conda_packages():
            notes.append(f"conda packages {', '.join(spec.conda_packages())} cannot be installed in a local build "
                         "(no conda here); they are kept for image builds. Add pip equivalents if score.py needs them")
        return cls(_base_python(spec.python_version()), False, sources, trusted,
                   [line for line, option in options.items() if not option], notes)


def _build(spec: EnvironmentSpec, recipe: _Recipe, target: Path, log_path: Path, progress: _Progress) -> None:
    for leftover in target.parent.glob(f".{target.name}.*"):
        shutil.rmtree(leftover, ignore_errors=True)  # from a killed build; the lock says none is running
    if target.exists():
        shutil.rmtree(target)  # no completion marker: not a finished environment
    digest = spec.content_hash()
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with open(log_path, "a", encoding="utf-8") as log:
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            log.write(f"\n===== {now} build of environment {spec.name} ({digest}) =====\n")
            for note in recipe.notes:
                log.write(f"note: {note}\n")
                progress.note(note)
            python = _Builder(staging, log, log_path, progress).populate(recipe)
        (staging / MARKER).write_text(json.dumps({"contentHash": digest, "python": python}))
        os.chmod(staging, 0o755)  # mkdtemp made it private
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


class _Builder:
    """Runs the build steps in ``root``, appending every command and its output to the log."""

    def __init__(self, root: Path, log: IO[str], log_path: Path, progress: _Progress):
        self.root = root
        self.log = log
        self.log_path = log_path
        self.progress = progress
        self.tool = _Tool.find()

    def populate(self, recipe: _Recipe) -> str:
        """Build the venv (unless user-managed) and verify; return the interpreter, relative to the root if inside."""
        if recipe.user_managed:
            self.progress.step(f"using the user-managed interpreter {recipe.base_python}")
            python = Path(recipe.base_python)
        else:
            python = self._venv(recipe)
        self.progress.step("verifying the runtime imports")
        self._run([str(python), "-c", VERIFY], "modelport's runtime does not import in this environment",
                  env={"PYTHONPATH": str(_link_package(self.root))})
        return "bin/python" if not recipe.user_managed else str(python)

    def _venv(self, recipe: _Recipe) -> Path:
        self.progress.step(f"creating venv with {recipe.base_python}")
        self._run(self.tool.create(recipe.base_python, self.root), "creating the venv failed")
        python = self.root / "bin" / "python"
        if recipe.requirements:
            self.progress.step(f"installing {len(recipe.requirements)} package(s)")
            user_file = self._write("modelport-requirements.txt", recipe.sources + recipe.requirements)
            self._install(python, user_file, None, recipe, "installing the environment's pip packages failed")
        listed = self._run(self.tool.freeze(python), "listing the installed packages failed", merge=False)
        frozen = [line for line in listed.splitlines() if requirement_name(line)]
        constraints = self._write("modelport-constraints.txt", frozen) if frozen else None
        runtime = runtime_requirements()
        self.progress.step("installing the runtime")
        try:
            self._install(python, self._write("modelport-runtime.txt", recipe.sources + runtime), constraints,
                          recipe, "installing modelport's runtime packages failed")
        except EnvironmentBuildError as exc:
            conflicts = _conflicts(exc.output, {requirement_name(line) for line in frozen + runtime} - {None})
            if not conflicts:
                raise
            raise EnvironmentBuildError(
                f"the environment's pins conflict with modelport's runtime requirements on {', '.join(conflicts)}; "
                f"relax or remove those pins (runtime needs: {', '.join(runtime)}). Log: {self.log_path}\n"
                + _tail(self.log_path)) from None
        return python

    def _install(self, python: Path, requirements: Path, constraints: Path | None, recipe: _Recipe,
                 failure: str) -> None:
        """Install a requirements file; a failure to reach one of the recipe's sources is named as such."""
        try:
            self._run(self.tool.install(python, requirements, constraints, recipe.trusted_hosts), failure)
        except EnvironmentBuildError as exc:
            source = unreachable_source(exc.output, recipe.sources)
            if source is None:
                raise
            raise EnvironmentBuildError(f"{failure}: {source}. Log: {self.log_path}\n{_tail(self.log_path)}",
                                        exc.output) from None

    def _write(self, name: str, lines: list[str]) -> Path:
        path = self.root / name
        path.write_text("".join(f"{line}\n" for line in lines))
        return path

    def _run(self, command: list[str], failure: str, env: dict[str, str] | None = None, merge: bool = True) -> str:
        """Run ``command`` with its output appended to the log; return stdout (with stderr when ``merge``)."""
        self.log.write(f"$ {' '.join(command)}\n")
        self.log.flush()
        clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge else self.log,
                                   text=True, cwd=self.root, env={**clean, **(env or {})})
        assert process.stdout is not None
        output = []
        for line in process.stdout:
            output.append(line)
            self.log.write(line)
        self.log.flush()
        if process.wait() != 0:
            self.log.write(f"(exit status {process.returncode})\n")
            self.log.flush()
            raise EnvironmentBuildError(f"{failure}. Log: {self.log_path}\n{_tail(self.log_path)}", "".join(output))
        return "".join(output)


@dataclass(frozen=True)
class _Tool:
    """uv when installed (the normal case: it is a dependency of modelport), else venv + pip."""

    uv: str | None

    @classmethod
    def find(cls) -> _Tool:
        try:
            from uv import find_uv_bin

            return cls(find_uv_bin())
        except (ImportError, FileNotFoundError):
            return cls(None)

    def create(self, base_python: str, root: Path) -> list[str]:
        if self.uv:
            return [self.uv, "venv", "--no-config", "--relocatable", "--python", base_python, str(root)]
        return [base_python, "-m", "venv", str(root)]

    def install(self, python: Path, requirements: Path, constraints: Path | None,
                trusted_hosts: list[str]) -> list[str]:
        extra = ["-c", str(constraints)] if constraints else []
        if self.uv:
            hosts = [arg for host in trusted_hosts for arg in ("--allow-insecure-host", host)]
            return [self.uv, "pip", "install", "--no-config", "--python", str(python), "-r", str(requirements),
                    *extra, *hosts]
        hosts = [arg for host in trusted_hosts for arg in ("--trusted-host", host)]
        return [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(requirements), *extra,
                *hosts]

    def freeze(self, python: Path) -> list[str]:
        if self.uv:
            return [self.uv, "pip", "freeze", "--no-config", "--python", str(python)]
        return [str(python), "-m", "pip", "freeze", "--disable-pip-version-check"]


def _base_python(version: str | None) -> str:
    current = f"{sys.version_info.major}.{sys.version_info.minor}"
    if version is None or version == current:
        return sys.executable
    candidate = shutil.which(f"python{version}")
    if candidate and _python_version(candidate) == version:
        return candidate
    raise InvalidInput(f"environment asks for python {version}, which is not installed here; "
                       f"install python{version} or change the conda python= pin")


def _python_version(executable: str) -> str | None:
    try:
        result = subprocess.run([executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                capture_output=True, text=True, timeout=60)
    except OSError:
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _user_interpreter(interpreter_path: str) -> str:
    found = shutil.which(interpreter_path)
    if not found:
        raise InvalidInput(f"userManagedDependencies is true but interpreterPath '{interpreter_path}' is not an "
                           "executable here; point it at an existing python or set userManagedDependencies to false")
    return os.path.abspath(found)


def _link_package(root: Path) -> Path:
    """``root/pythonpath/modelport`` -> this modelport package, re-pointed atomically if modelport moved."""
    folder = root / "pythonpath"
    folder.mkdir(exist_ok=True)
    link = folder / "modelport"
    if not (link.is_symlink() and os.readlink(link) == str(PACKAGE_DIR)):
        temporary = folder / f".modelport.{os.getpid()}"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(PACKAGE_DIR, target_is_directory=True)
        os.replace(temporary, link)
    return folder


def _conflicts(output: str, names: set[str]) -> list[str]:
    """The package names (from ``names``) that a resolver failure (uv's or pip's) mentions; [] for other failures."""
    failure = re.search(r"^.*(?:No solution found|conflicting dependencies)", output, re.MULTILINE)
    if not failure:
        return []
    explanation = output[failure.start():]
    return sorted(name for name in names if re.search(_name_pattern(name), explanation, re.IGNORECASE))


def _name_pattern(name: str) -> str:
    """A normalized project name as a whole word, with '-', '_' and '.' interchangeable."""
    return r"(?<![\w.-])" + "[-_.]".join(re.escape(part) for part in name.split("-")) + r"(?![\w-])"


def _tail(log_path: Path) -> str:
    return tail_lines(log_path, LOG_TAIL_LINES)


@contextmanager
def _exclusive(lock_path: Path, progress: _Progress) -> Iterator[None]:
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress.step("waiting for another build of the same environment")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class _Progress:
    """A status line per build step on stderr (rich); silent when not shown."""

    def __init__(self, show: bool):
        self.console = Console(stderr=True) if show else None
        self.status = self.console.status("preparing the environment") if self.console else None

    def __enter__(self) -> _Progress:
        if self.status:
            self.status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status:
            self.status.stop()

    def step(self, text: str) -> None:
        if self.console and self.status:
            self.status.update(text)
            self.console.print(f"› {text}", markup=False, highlight=False, soft_wrap=True)

    def note(self, text: str) -> None:
        if self.console:
            self.console.print(f"! {text}", style="yellow", markup=False, highlight=False, soft_wrap=True)

    def done(self, text: str) -> None:
        if self.console:
            self.console.print(f"✓ {text}", style="green", markup=False, highlight=False, soft_wrap=True)
