"""The ``azureml.core.model.Model.get_model_path`` shim, imported from the shim folder."""

import importlib.util

import pytest

from modelport.runtime.user_script import SHIMS_DIR

spec = importlib.util.spec_from_file_location("shim_model", SHIMS_DIR / "azureml" / "core" / "model.py")
shim = importlib.util.module_from_spec(spec)
spec.loader.exec_module(shim)
Model = shim.Model


@pytest.fixture
def app_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AZUREML_MODEL_DIR", raising=False)
    monkeypatch.setenv("AML_APP_ROOT", str(tmp_path))
    return tmp_path


def add(root, name, version, entry="model.pkl"):
    folder = root / "azureml-models" / name / str(version)
    folder.mkdir(parents=True)
    (folder / entry).write_text("x")
    return folder / entry


def test_latest_numeric_version_wins(app_root):
    add(app_root, "m", 2)
    newest = add(app_root, "m", 10)
    assert Model.get_model_path("m") == str(newest)


def test_explicit_version(app_root):
    two = add(app_root, "m", 2)
    add(app_root, "m", 10)
    assert Model.get_model_path("m", version=2) == str(two)
    with pytest.raises(shim.ModelPathNotFoundException, match=r"no version 3 .*\['2', '10'\]"):
        Model.get_model_path("m", version=3)


def test_single_model_dir_finds_its_siblings(app_root, monkeypatch):
    mine = add(app_root, "mine", 1)
    other = add(app_root, "other", 4)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(mine.parent))
    monkeypatch.delenv("AML_APP_ROOT")
    assert Model.get_model_path("other") == str(other)


def test_version_folder_must_hold_exactly_one_entry(app_root):
    path = add(app_root, "m", 1)
    (path.parent / "extra.txt").write_text("y")
    with pytest.raises(shim.ModelPathNotFoundException, match="exactly one file or folder"):
        Model.get_model_path("m")


def test_falls_back_to_a_local_path_then_says_what_it_searched(app_root):
    (app_root / "local_model").write_text("x")
    assert Model.get_model_path("local_model") == "local_model"
    with pytest.raises(shim.ModelPathNotFoundException, match="missing is not deployed"):
        Model.get_model_path("missing")
