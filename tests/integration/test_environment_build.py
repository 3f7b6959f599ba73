"""Local environment builds: real venvs made by uv from PyPI, reused by content hash, failing cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import modelport
from modelport.environments.build import EnvironmentBuildError, build_local
from modelport.environments.spec import EnvironmentSpec
from modelport.errors import InvalidInput

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
    with pytest.raises(InvalidInput, match="names condaDependenciesFile 'env.yml' but it was not read"):
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
