"""A deployment laid out as Azure ML laid it out: the source folder inside the app root, by its name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelport import AksWebservice, Environment, InferenceConfig, Model
from tests.conftest import register_weights

SOURCE = Path(__file__).resolve().parents[1] / "fixtures" / "azure_layout" / "source_directory"


@pytest.fixture(scope="module")
def ws(new_workspace):
    return new_workspace("layoutws")


def test_an_azure_source_directory_deploys_unchanged(ws, tmp_path):
    model = register_weights(ws, tmp_path, "w", "layout-model")
    config = InferenceConfig("x/y/score.py", source_directory=SOURCE, environment=Environment("layout-env"))
    service = Model.deploy(ws, "layout-svc", [model], config,
                           AksWebservice.deploy_configuration(num_replicas=1, auth_enabled=False))
    service.wait_for_deployment(timeout_sec=120)
    answer = service.run({})
    app_root = Path(answer["app_root"])
    assert answer["data"] == json.loads((SOURCE / "data.json").read_text())  # read as ./source_directory/data.json
    assert (answer["cwd"], answer["source_directory"]) == (str(app_root), "source_directory")
    assert (app_root / "source_directory" / "x" / "y" / "score.py").is_file()
    assert answer["helper"] == "helper from source_directory"  # the source folder is on sys.path
    assert (answer["missing_model"], answer["missing_version"]) == ("ModelNotFoundException", "WebserviceException")
