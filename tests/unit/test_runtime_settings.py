"""Settings as azmlinfsrv reads them: the app-root layout, its flags, variables and JSON config file.

Reference behaviour (azureml-inference-server-http 1.5.1): the entry script is resolved from the
working directory, ``AML_APP_ROOT`` defaults to it and ``AML_APP_ROOT/AZUREML_SOURCE_DIRECTORY`` is
put on sys.path; flags win over variables, which win over the config file; a key from
``--appinsights_instrumentation_key`` enables Application Insights when it is a UUID.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelport.runtime.layout import prepare
from modelport.runtime.settings import SERVER_VERSION, RuntimeSettings, SettingsError

KEY = "12345678-1234-1234-1234-123456789abc"
VARIABLES = ("AML_APP_ROOT", "AZUREML_SOURCE_DIRECTORY", "AZUREML_ENTRY_SCRIPT", "AZUREML_MODEL_DIR",
             "AZUREML_CONFIG_FILE", "AML_CORS_ORIGINS", "AML_APP_INSIGHTS_ENABLED", "AML_APP_INSIGHTS_KEY",
             "SEPERATE_HEALTH_ENDPOINT", "HEALTH_PORT", "WORKER_TIMEOUT", "WORKER_COUNT", "SCORING_TIMEOUT_MS",
             "SERVER_VERSION_LOG_RESPONSE_ENABLED", "SERVICE_NAME")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def azure_app(tmp_path, monkeypatch):
    """InferenceConfig(source_directory="source_directory", entry_script="x/y/score.py") as Azure lays it out."""
    script = tmp_path / "source_directory" / "x" / "y" / "score.py"
    script.parent.mkdir(parents=True)
    script.write_text("def init(): pass\ndef run(d): return d\n")
    (tmp_path / "source_directory" / "data.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_azure_source_directory_layout(azure_app, monkeypatch):
    monkeypatch.setenv("AZUREML_SOURCE_DIRECTORY", "source_directory")
    settings = RuntimeSettings.from_args("source_directory/x/y/score.py")
    assert settings.app_root == azure_app  # the folder that contains source_directory/, not source_directory
    assert settings.entry_script == azure_app / "source_directory" / "x" / "y" / "score.py"
    layout = prepare(settings)
    assert layout.app_root == azure_app
    assert layout.source_dir == azure_app / "source_directory"
    assert layout.environment()["AZUREML_SOURCE_DIRECTORY"] == "source_directory"
    assert layout.environment()["AML_APP_ROOT"] == str(azure_app)


def test_entry_script_relative_to_the_source_directory_is_found_too(azure_app, monkeypatch):
    monkeypatch.setenv("AZUREML_SOURCE_DIRECTORY", "source_directory")
    settings = RuntimeSettings.from_args("x/y/score.py")
    assert (settings.app_root, settings.entry_script) == (azure_app, azure_app / "source_directory/x/y/score.py")


def test_the_app_root_defaults_to_the_working_directory_as_azmlinfsrv(azure_app):
    settings = RuntimeSettings.from_args("source_directory/x/y/score.py")
    assert settings.app_root == azure_app  # not the script's folder


def test_aml_app_root_and_the_working_directory(azure_app, tmp_path_factory, monkeypatch):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.setenv("AML_APP_ROOT", str(azure_app))
    monkeypatch.chdir(elsewhere)
    settings = RuntimeSettings.from_args("source_directory/x/y/score.py")
    assert settings.app_root == azure_app
    (elsewhere / "local.py").write_text("def init(): pass\ndef run(d): return d\n")
    assert RuntimeSettings.from_args("local.py").entry_script == elsewhere / "local.py"  # as azmlinfsrv: from cwd


def test_a_missing_entry_script_names_every_place_tried(azure_app, monkeypatch):
    monkeypatch.setenv("AZUREML_SOURCE_DIRECTORY", "source_directory")
    with pytest.raises(SettingsError, match=r"entry script nope.py not found \(looked for .*nope.py, "
                                            r".*source_directory/nope.py\)"):
        RuntimeSettings.from_args("nope.py")


def test_model_dir_is_passed_as_given_and_a_missing_one_is_a_warning(azure_app):
    settings = RuntimeSettings.from_args("source_directory/x/y/score.py", model_dir="./models/m/1")
    assert settings.model_dir == "./models/m/1"
    assert prepare(settings).environment()["AZUREML_MODEL_DIR"] == "./models/m/1"  # relative stays relative
    assert any("./models/m/1 (AZUREML_MODEL_DIR) does not exist" in note for note in settings.notes)
    (azure_app / "models" / "m" / "1").mkdir(parents=True)
    assert RuntimeSettings.from_args("source_directory/x/y/score.py", model_dir="./models/m/1").notes == ()


def write_config(folder: Path, content, name: str = "config.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(content))
    return path


def test_config_file_settings_and_their_priority(azure_app, monkeypatch):
    path = write_config(azure_app, {
        "AZUREML_ENTRY_SCRIPT": str(azure_app / "source_directory/x/y/score.py"),
        "SCORING_TIMEOUT_MS": 6000, "AML_CORS_ORIGINS": "https://a.example", "AML_APP_INSIGHTS_ENABLED": True,
        "AML_APP_INSIGHTS_KEY": KEY, "SERVICE_NAME": "from-file", "AZUREML_LOG_LEVEL": "debug",
    }, "server.json")
    settings = RuntimeSettings.from_args(None, config_file=str(path))
    assert settings.entry_script == azure_app / "source_directory/x/y/score.py"
    assert (settings.scoring_timeout_ms, settings.cors_origins, settings.service_name) == (6000, "https://a.example",
                                                                                          "from-file")
    assert (settings.app_insights_enabled, settings.app_insights_key, settings.log_level) == (True, KEY, "DEBUG")
    assert settings.config_file == path
    assert settings.environment()["AZUREML_CONFIG_FILE"] == str(path)
    monkeypatch.setenv("SCORING_TIMEOUT_MS", "7000")  # a variable wins over the file
    monkeypatch.setenv("AML_CORS_ORIGINS", "https://env.example")
    settings = RuntimeSettings.from_args(None, config_file=str(path), cors_origins="https://flag.example")
    assert (settings.scoring_timeout_ms, settings.cors_origins) == (7000, "https://flag.example")  # the flag wins


def test_config_json_in_the_app_root_is_found_and_unknown_keys_are_named(azure_app):
    write_config(azure_app, {"SCORING_TIMEOUT_MS": 1234, "subscription_id": "x", "resource_group": "y"})
    settings = RuntimeSettings.from_args("source_directory/x/y/score.py")
    assert settings.scoring_timeout_ms == 1234
    assert settings.config_file == azure_app / "config.json"
    assert any("'subscription_id', 'resource_group'" in note for note in settings.notes)


def test_config_file_from_the_variable(azure_app, tmp_path_factory, monkeypatch):
    path = write_config(tmp_path_factory.mktemp("cfg"), {"SERVICE_VERSION": "7.0"}, "settings.json")
    monkeypatch.setenv("AZUREML_CONFIG_FILE", str(path))
    assert RuntimeSettings.from_args("source_directory/x/y/score.py").service_version == "7.0"


def test_an_unusable_config_file(azure_app):
    with pytest.raises(SettingsError, match="--config_file missing.json: no such file"):
        RuntimeSettings.from_args("source_directory/x/y/score.py", config_file="missing.json")
    bad = write_config(azure_app, [1, 2], "list.json")
    with pytest.raises(SettingsError, match="does not hold a JSON object"):
        RuntimeSettings.from_args("source_directory/x/y/score.py", config_file=str(bad))
    write_config(azure_app, [1, 2])  # a config.json that happens to be there is only a warning
    settings = RuntimeSettings.from_args("source_directory/x/y/score.py")
    assert settings.config_file is None and any("not used as a server configuration" in n for n in settings.notes)


@pytest.mark.parametrize(("flag", "enabled", "key", "expected"), [
    (KEY, None, None, ("true", KEY)),
    ("not-a-uuid", None, None, ("false", "not-a-uuid")),
    (None, "true", KEY, ("true", KEY)),
    (None, "true", None, ("false", None)),
    (None, "True", KEY, ("false", KEY)),  # azmlinfsrv compares with "true" exactly
    (None, None, KEY, ("false", KEY)),
    (None, None, None, ("false", None)),
])
def test_app_insights_variables_seen_by_run(azure_app, monkeypatch, flag, enabled, key, expected):
    if enabled is not None:
        monkeypatch.setenv("AML_APP_INSIGHTS_ENABLED", enabled)
    if key is not None:
        monkeypatch.setenv("AML_APP_INSIGHTS_KEY", key)
    env = RuntimeSettings.from_args("source_directory/x/y/score.py", appinsights_key=flag).environment()
    assert (env["AML_APP_INSIGHTS_ENABLED"], env.get("AML_APP_INSIGHTS_KEY")) == expected


def test_health_port_only_with_seperate_health_endpoint(azure_app, monkeypatch):
    script = "source_directory/x/y/score.py"
    settings = RuntimeSettings.from_args(script, health_port=5055)
    assert settings.health_port is None
    assert any("SEPERATE_HEALTH_ENDPOINT=true" in note for note in settings.notes)
    monkeypatch.setenv("SEPERATE_HEALTH_ENDPOINT", "true")
    assert RuntimeSettings.from_args(script).health_port == 5000  # azmlinfsrv's default
    assert RuntimeSettings.from_args(script, health_port=5055).health_port == 5055
    monkeypatch.setenv("HEALTH_PORT", "5066")
    assert RuntimeSettings.from_args(script).health_port == 5066
    with pytest.raises(SettingsError, match="is the scoring port"):
        RuntimeSettings.from_args(script, port=5066)


def test_worker_timeout_server_version_and_cors(azure_app, monkeypatch):
    script = "source_directory/x/y/score.py"
    settings = RuntimeSettings.from_args(script)
    assert (settings.worker_timeout_s, settings.server_version, settings.cors_origins) == (0, SERVER_VERSION, None)
    assert SERVER_VERSION.startswith("modelport/")
    monkeypatch.setenv("WORKER_TIMEOUT", "300")
    monkeypatch.setenv("SERVER_VERSION_LOG_RESPONSE_ENABLED", "false")
    monkeypatch.setenv("AML_CORS_ORIGINS", " https://a.example, https://b.example ")
    settings = RuntimeSettings.from_args(script)
    assert (settings.worker_timeout_s, settings.server_version) == (300, "")
    assert settings.cors_origins == "https://a.example, https://b.example"
    monkeypatch.setenv("WORKER_TIMEOUT", "soon")
    with pytest.raises(SettingsError, match="WORKER_TIMEOUT='soon'"):
        RuntimeSettings.from_args(script)
