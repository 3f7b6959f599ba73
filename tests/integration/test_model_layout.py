"""The app root and model layout a replica sees: AZUREML_MODEL_DIR, cwd, get_model_path, shims."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURES

APP = FIXTURES / "app_nested"
MODELS = FIXTURES / "models"


def call(server, body: bytes) -> dict:
    response = httpx.post(f"{server.url}/score", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def two_models(start_runtime):
    return start_runtime("--source-dir", str(APP), "--entry-script", "src/score.py",
                         "--model", f"m1:1={MODELS / 'm1'}", "--model", f"m1:3={MODELS / 'm1'}",
                         "--model", f"m2:1={MODELS / 'm2' / 'model.pkl'}")


def test_several_models_share_the_azureml_models_root(two_models):
    answer = call(two_models, b"{}")
    root = Path(answer["app_root"])
    assert answer["cwd"] == str(root)
    assert answer["model_dir"] == str(root / "azureml-models")
    assert answer["m1"] == str(root / "azureml-models" / "m1" / "3" / "m1")  # the highest version
    assert answer["m2"] == str(root / "azureml-models" / "m2" / "1" / "model.pkl")
    assert answer["m1_weights"] == "w1"


def test_nested_entry_script_imports_from_the_app_root_and_reads_relative_files(two_models):
    answer = call(two_models, b"{}")
    assert answer["greeting"] == "hello from the app root"
    assert answer["labels"] == ["cat", "dog"]


def test_get_model_path_names_what_is_missing_with_azures_exception_classes(two_models):
    # Azure: a missing version (version given) is re-raised as WebserviceException, a missing model
    # (no version) is ModelNotFoundException; both from azureml.exceptions.
    missing_version = call(two_models, b'{"lookup": ["m1", 2]}')
    assert missing_version["error"] == "WebserviceException"
    assert missing_version["module"] == "azureml.exceptions"
    assert "no version 2" in missing_version["message"] and "['1', '3']" in missing_version["message"]
    unknown = call(two_models, b'{"lookup": ["nope", null]}')
    assert (unknown["error"], unknown["module"]) == ("ModelNotFoundException", "azureml.exceptions")
    assert "nope is not deployed" in unknown["message"]


def test_one_model_sets_model_dir_to_its_version_folder(start_runtime):
    server = start_runtime("--entry-script", str(FIXTURES / "scripts" / "score_plain.py"),
                           "--model", f"solo:4={MODELS / 'm2' / 'model.pkl'}")
    answer = call(server, b'{"kind": "env"}')
    model_dir = Path(answer["model_dir"])
    assert model_dir.parts[-3:] == ("azureml-models", "solo", "4")
    assert (model_dir / "model.pkl").read_text().strip() == "w2"
    assert answer["cwd"] == str(model_dir.parent.parent.parent)


def test_model_dir_flag_is_used_as_given(start_runtime, tmp_path):
    version_dir = tmp_path / "azureml-models" / "m1" / "5"
    version_dir.mkdir(parents=True)
    (version_dir / "m1").symlink_to(MODELS / "m1")
    m2 = tmp_path / "azureml-models" / "m2" / "1"
    m2.mkdir(parents=True)
    (m2 / "model.pkl").write_text("w2")
    server = start_runtime("--source-dir", str(APP), "--entry-script", "src/score.py", "--model-dir", str(version_dir))
    answer = call(server, b"{}")
    assert answer["model_dir"] == str(version_dir)
    assert answer["m1"] == str(version_dir / "m1")
    assert answer["cwd"] == str(APP)  # no staging: the source folder is the app root


def test_app_root_with_azureml_models_needs_no_flag(start_runtime, tmp_path):
    app = tmp_path / "app"
    (app / "azureml-models" / "m1" / "2").mkdir(parents=True)
    (app / "azureml-models" / "m1" / "2" / "m1").symlink_to(MODELS / "m1")
    (app / "azureml-models" / "m2" / "1").mkdir(parents=True)
    (app / "azureml-models" / "m2" / "1" / "model.pkl").write_text("w2")
    for entry in APP.iterdir():
        (app / entry.name).symlink_to(entry)
    server = start_runtime("--source-dir", str(app), "--entry-script", "src/score.py")
    answer = call(server, b"{}")
    assert answer["model_dir"] == str(app / "azureml-models")
    assert answer["m1"] == str(app / "azureml-models" / "m1" / "2" / "m1")


def test_a_real_azureml_install_wins_over_the_shims(start_runtime, tmp_path):
    fake = tmp_path / "site" / "azureml" / "core"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "model.py").write_text(
        "class Model:\n    @staticmethod\n    def get_model_path(name, version=None):\n        return 'real-azureml'\n"
    )
    server = start_runtime("--source-dir", str(APP), "--entry-script", "src/score.py",
                           "--model", f"m1:1={MODELS / 'm1'}", env={"PYTHONPATH": str(tmp_path / "site")},
                           ready=False)
    # the "real" Model returns a path that does not exist, so init() fails reading weights from it
    assert server.proc.wait(timeout=30) == 3
    assert "real-azureml/weights.txt" in server.log()


def test_staged_app_root_is_removed_on_exit(start_runtime):
    server = start_runtime("--source-dir", str(APP), "--entry-script", "src/score.py",
                           "--model", f"m1:1={MODELS / 'm1'}", "--model", f"m2:1={MODELS / 'm2' / 'model.pkl'}")
    root = Path(call(server, b"{}")["app_root"])
    assert root.is_dir() and root != APP
    assert server.stop() == 0
    assert not root.exists()
    assert os.path.exists(MODELS / "m1" / "weights.txt")  # the user's files are untouched
