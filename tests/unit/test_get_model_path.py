"""The ``azureml.core.model.Model.get_model_path`` shim and ``azureml.exceptions``, imported as a script would."""

import importlib

import pytest

from modelport.runtime.user_script import install_azureml_shims

install_azureml_shims()  # appended to sys.path: azureml is not installed here
shim = importlib.import_module("azureml.core.model")
exceptions = importlib.import_module("azureml.exceptions")
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


def test_the_shims_come_from_the_shim_folder():
    assert shim.__file__.endswith("shims/azureml/core/model.py")
    assert exceptions.__file__.endswith("shims/azureml/exceptions/__init__.py")


def test_latest_numeric_version_wins(app_root):
    add(app_root, "m", 2)
    newest = add(app_root, "m", 10)
    assert Model.get_model_path("m") == str(newest)


def test_explicit_version(app_root):
    two = add(app_root, "m", 2)
    add(app_root, "m", 10)
    assert Model.get_model_path("m", version=2) == str(two)


def test_a_missing_version_is_a_webservice_exception_as_in_azure(app_root):
    # Azure's get_model_path re-raises the local ModelNotFoundException as WebserviceException
    # when a version was asked for.
    add(app_root, "m", 2)
    add(app_root, "m", 10)
    with pytest.raises(exceptions.WebserviceException, match=r"no version 3 .*\['2', '10'\]") as caught:
        Model.get_model_path("m", version=3)
    assert type(caught.value) is exceptions.WebserviceException
    assert caught.value.status_code is None
    assert caught.value.message == str(caught.value)


def test_a_missing_model_without_version_is_model_not_found(app_root):
    with pytest.raises(exceptions.ModelNotFoundException, match="missing is not deployed") as caught:
        Model.get_model_path("missing")
    assert isinstance(caught.value, exceptions.AzureMLException)
    assert not isinstance(caught.value, exceptions.WebserviceException)


def test_a_version_that_is_not_an_int_is_refused_as_azure_does(app_root):
    add(app_root, "m", 2)
    with pytest.raises(exceptions.WebserviceException, match="version should be an int"):
        Model.get_model_path("m", version="2")


def test_single_model_dir_finds_its_siblings(app_root, monkeypatch):
    mine = add(app_root, "mine", 1)
    other = add(app_root, "other", 4)
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(mine.parent))
    monkeypatch.delenv("AML_APP_ROOT")
    assert Model.get_model_path("other") == str(other)


def test_version_folder_must_hold_exactly_one_entry(app_root):
    path = add(app_root, "m", 1)
    (path.parent / "extra.txt").write_text("y")
    with pytest.raises(exceptions.WebserviceException, match="exactly one file or folder"):
        Model.get_model_path("m")


def test_falls_back_to_a_local_path_then_says_what_it_searched(app_root):
    (app_root / "local_model").write_text("x")
    assert Model.get_model_path("local_model") == "local_model"
    add(app_root, "m", 1)
    (app_root / "m").mkdir()
    assert Model.get_model_path("m", version=7) == "m"  # Azure falls back to ./<name> for a missing version too


def test_azure_exception_hierarchy():
    e = exceptions
    for name in ("UserErrorException", "WebserviceException", "ModelNotFoundException", "ModelPathNotFoundException"):
        assert issubclass(getattr(e, name), e.AzureMLException), name
    assert issubclass(e.AzureMLException, Exception)
    assert issubclass(e.AuthenticationException, e.UserErrorException)
    assert not issubclass(e.ModelNotFoundException, e.WebserviceException)
    err = e.WebserviceException("boom", status_code=404)
    assert (err.message, err.status_code, str(err)) == ("boom", 404, "boom")
    assert e.UserErrorException("bad input").message == "bad input"
