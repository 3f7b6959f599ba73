"""Local environment builds: real venvs made by uv from PyPI, reused by content hash, failing cleanly; and from
package sources a pip list names (``--index-url``, ``--extra-index-url``, ``--find-links``), served here on
127.0.0.1 from wheels built or repacked by the test, so those tests reach no network beyond loopback."""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.metadata
import os
import re
import socket
import subprocess
import sys
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import modelport
from modelport.environments.build import EnvironmentBuildError, build_local, runtime_requirements
from modelport.environments.conda import parse_requirements_file
from modelport.environments.spec import EnvironmentSpec
from modelport.errors import InvalidInput

GREETING_PROJECT = "modelport-test-greeting"

pytestmark = pytest.mark.timeout(600)  # the first build downloads the runtime's wheels

THIS_PYTHON = f"python={sys.version_info.major}.{sys.version_info.minor}"


def spec(name: str, *pip: str, conda: tuple[str, ...] = (THIS_PYTHON,)) -> EnvironmentSpec:
    dependencies = [*conda, {"pip": list(pip)}]
    return EnvironmentSpec(name=name, python={"conda_dependencies": {"channels": ["conda-forge"],
                                                                     "dependencies": dependencies}})


def in_env(built, code: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run([str(built.python), "-c", code], env={**clean, "PYTHONPATH": str(built.pythonpath)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def greeting_wheel(folder: Path, version: str) -> Path:
    """Build ``modelport-test-greeting`` ``version``: a wheel whose module ``mp_greeting`` says where it came from."""
    info = f"modelport_test_greeting-{version}.dist-info"
    files = {"mp_greeting.py": f"GREETING = 'hello from the local index, version {version}'\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {GREETING_PROJECT}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: modelport-tests\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n"}
    record = [f"{name},sha256={_digest(text.encode())},{len(text.encode())}" for name, text in files.items()]
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"modelport_test_greeting-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return path


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def runtime_wheelhouse(folder: Path) -> Path:
    """Wheels of modelport's runtime requirements and all they need, repacked from this interpreter's installed
    distributions, so a build can install the runtime with ``--find-links`` and no network."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted, seen = [Requirement(line) for line in runtime_requirements()], set()
    while wanted:
        requirement = wanted.pop()
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in seen:
            continue
        seen.add(name)
        distribution = importlib.metadata.distribution(name)
        _repack(distribution, folder)
        for line in distribution.requires or []:
            needed = Requirement(line)
            extras = requirement.extras or {""}
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra}) for extra in extras):
                wanted.append(needed)
    return folder


def _repack(distribution: importlib.metadata.Distribution, folder: Path) -> None:
    site = Path(distribution.locate_file("")).resolve()
    tags = [line.split(":", 1)[1].strip().split("-") for line in distribution.read_text("WHEEL").splitlines()
            if line.startswith("Tag:")]
    tag = "-".join(".".join(sorted({parts[i] for parts in tags})) for i in range(3))  # e.g. py2.py3-none-any
    name = re.sub(r"[-_.]+", "_", distribution.metadata["Name"])
    with zipfile.ZipFile(folder / f"{name}-{distribution.version}-{tag}.whl", "w") as wheel:
        for file in distribution.files or []:
            path = Path(distribution.locate_file(file)).resolve()
            if path.is_relative_to(site) and path.is_file() and "__pycache__" not in file.parts:
                wheel.write(path, file.as_posix())


class LocalIndex:
    """A PEP 503 simple index on 127.0.0.1 serving ``root/<project>/<files>`` (the server's folder listings are the
    project pages); ``requested`` holds the paths asked for. A context manager: the server stops on exit."""

    def __init__(self, root: Path):
        requested: list[str] = []

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
                requested.append(self.path)

        self.requested = requested
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> LocalIndex:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def leftovers(envs: Path, key: str) -> list[Path]:
    found = envs.iterdir() if envs.exists() else []
    return [path for path in found if path.name.startswith((key, f".{key}")) and path.suffix != ".lock"]


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("environments")
    return base / "envs", base / "logs"


@pytest.fixture(scope="module")
def pinned_spec() -> EnvironmentSpec:
    return spec("pinned", "azureml-defaults", "six==1.16.0", "orjson==3.10.0", conda=(THIS_PYTHON, "libgomp"))


@pytest.fixture(scope="module")
def pinned(pinned_spec, roots):
    return build_local(pinned_spec, *roots, show_output=False)


def test_user_pins_are_kept(pinned):
    assert not pinned.reused
    versions = in_env(pinned, "import importlib.metadata as m; print(m.version('six'), m.version('orjson'))")
    assert versions == "1.16.0 3.10.0"


def test_runtime_imports_with_the_envs_own_packages(pinned, pinned_spec, roots):
    assert pinned.root == roots[0] / pinned_spec.content_hash()[:16]
    assert pinned.content_hash == pinned_spec.content_hash()
    assert pinned.python == pinned.root / "bin" / "python"
    assert sorted(path.name for path in pinned.pythonpath.iterdir()) == ["modelport"]
    where = in_env(pinned, "import sys, uvicorn, modelport.runtime.app as app; "
                           "print(sys.prefix); print(uvicorn.__file__); print(app.__file__)").splitlines()
    assert Path(where[0]) == pinned.root
    assert Path(where[1]).is_relative_to(pinned.root)
    assert Path(where[2]).resolve().is_relative_to(Path(modelport.__file__).resolve().parent)


def test_azure_packages_and_conda_packages_are_reported_not_installed(pinned):
    log = pinned.log.read_text()
    assert "azureml-defaults: Azure's package, not installed; modelport's runtime replaces it" in log
    assert "conda packages libgomp cannot be installed in a local build" in log
    assert in_env(pinned, "import importlib.util; print(importlib.util.find_spec('azureml') is None)") == "True"


def test_progress_shows_each_step_and_note(roots, capfd):
    build_local(spec("shown", "azureml-core", conda=(THIS_PYTHON, "conda-forge::libgomp")), *roots, show_output=True)
    shown = capfd.readouterr().err
    for line in ("azureml-core: Azure's package, not installed", "conda packages conda-forge::libgomp cannot be",
                 "creating venv", "installing the runtime", "verifying the runtime imports", "environment shown built"):
        assert line in shown


def test_second_build_is_reused(pinned, pinned_spec, roots, capfd):
    log_size = pinned.log.stat().st_size
    again = build_local(pinned_spec, *roots, show_output=True)
    assert again.reused
    assert (again.python, again.root, again.pythonpath) == (pinned.python, pinned.root, pinned.pythonpath)
    assert pinned.log.stat().st_size == log_size  # no build attempt was logged
    assert "environment pinned reused" in capfd.readouterr().err


def test_name_version_and_variables_do_not_make_a_new_environment(pinned, pinned_spec, roots, capfd):
    renamed = pinned_spec.model_copy(update={"name": "renamed", "version": "9", "environment_variables": {"A": "1"}})
    again = build_local(renamed, *roots, show_output=False)
    assert again.reused and again.root == pinned.root
    assert capfd.readouterr().err == ""


def test_conflicting_pin_names_the_package_and_leaves_nothing(roots):
    conflicting = spec("conflict", "werkzeug==2.3.8")
    key = conflicting.content_hash()[:16]
    with pytest.raises(EnvironmentBuildError, match="runtime requirements on werkzeug") as raised:
        build_local(conflicting, *roots, show_output=False)
    message = str(raised.value)
    assert str(roots[1] / f"{key}.log") in message
    assert "werkzeug>=3.0" in message  # the runtime's requirement, and the log's tail follows
    assert leftovers(roots[0], key) == []


def test_unknown_package_fails_with_the_log_tail(roots):
    missing = spec("missing", "modelport-test-no-such-package-7f3a")
    key = missing.content_hash()[:16]
    with pytest.raises(EnvironmentBuildError, match="installing the environment's pip packages failed") as raised:
        build_local(missing, *roots, show_output=False)
    tail = str(raised.value).split("\n", 1)[1]
    assert "modelport-test-no-such-package-7f3a" in tail
    assert leftovers(roots[0], key) == []


def test_python_version_that_is_not_installed_is_refused_up_front(roots):
    wanted = spec("old", "six", conda=("python=3.99",))
    key = wanted.content_hash()[:16]
    with pytest.raises(InvalidInput, match="asks for python 3.99, which is not installed here; install python3.99"):
        build_local(wanted, *roots, show_output=False)
    assert leftovers(roots[0], key) == []
    assert not (roots[1] / f"{key}.log").exists()


def test_unread_conda_file_is_refused_up_front(roots):
    unread = EnvironmentSpec(name="unread", python={"conda_dependencies_file": "env.yml"})
    with pytest.raises(InvalidInput, match="names condaDependenciesFile 'env.yml' but its content was not read; "
                                           "register the environment with the SDK or CLI, which read the file"):
        build_local(unread, *roots, show_output=False)
    assert not (roots[0] / unread.content_hash()[:16]).exists()


def test_user_managed_interpreter_is_used_as_is(roots):
    managed = EnvironmentSpec(name="managed", python={"user_managed_dependencies": True,
                                                      "interpreter_path": sys.executable})
    built = build_local(managed, *roots, show_output=False)
    assert built.python == Path(sys.executable)
    assert not (built.root / "bin").exists()
    assert in_env(built, "import modelport.runtime.app; print('ok')") == "ok"
    missing = EnvironmentSpec(name="managed", python={"user_managed_dependencies": True,
                                                      "interpreter_path": "/nonexistent/python"})
    with pytest.raises(InvalidInput, match="interpreterPath '/nonexistent/python' is not an executable"):
        build_local(missing, *roots, show_output=False)


def test_concurrent_builds_of_one_environment_build_once(roots):
    shared = spec("concurrent", "six==1.15.0")
    key = shared.content_hash()[:16]
    roots[0].mkdir(parents=True, exist_ok=True)
    (roots[0] / f".{key}.killed").mkdir()  # what a killed build leaves behind
    results, errors = [], []

    def build() -> None:
        try:
            results.append(build_local(shared, *roots, show_output=False))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(result.reused for result in results) == [False, True]
    assert results[0].root == results[1].root
    assert [path.name for path in leftovers(roots[0], key)] == [key]
    assert in_env(results[0], "import six; print(six.__version__)") == "1.15.0"


# Package sources named in the pip list, served on 127.0.0.1

@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory) -> Path:
    return runtime_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("index")
    greeting_wheel(root / GREETING_PROJECT, "1.0")
    with LocalIndex(root) as served:
        yield served


def test_a_requirements_file_with_an_index_and_find_links_builds_from_them(index, wheelhouse, roots, tmp_path):
    requirements = tmp_path / "requirements.txt"
    relative = os.path.relpath(wheelhouse, tmp_path)
    requirements.write_text(f"--index-url {index.url}\n--trusted-host 127.0.0.1\n--find-links {relative}\n"
                            f"{GREETING_PROJECT}==1.0\n")
    built = build_local(spec("indexed", *parse_requirements_file(requirements)), *roots, show_output=False)
    assert in_env(built, "import mp_greeting; print(mp_greeting.GREETING)") == \
        "hello from the local index, version 1.0"
    assert f"/{GREETING_PROJECT}/" in index.requested
    assert in_env(built, "import uvicorn, orjson; print('runtime ok')") == "runtime ok"  # from the find-links folder


def test_an_unreachable_index_is_named_in_the_build_error(index, wheelhouse, roots):
    unreachable = f"http://127.0.0.1:{closed_port()}/simple"
    wanted = spec("unreachable", f"--index-url {index.url}", f"--extra-index-url {unreachable}",
                  f"--find-links {wheelhouse}", GREETING_PROJECT)
    with pytest.raises(EnvironmentBuildError) as raised:
        build_local(wanted, *roots, show_output=False)
    first_line = str(raised.value).splitlines()[0]
    assert first_line.startswith(f"installing the environment's pip packages failed: package source "
                                 f"--extra-index-url {unreachable} could not be reached (Connection refused")
    assert first_line.endswith(f"; check the URL and that this machine can reach it. Log: "
                               f"{roots[1] / wanted.content_hash()[:16]}.log")
    assert leftovers(roots[0], wanted.content_hash()[:16]) == []
