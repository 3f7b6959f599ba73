from pathlib import Path

import pytest

from modelport.runtime.layout import describe_tree, prepare
from modelport.runtime.settings import ModelSpec, RuntimeSettings, SettingsError


@pytest.fixture
def source(tmp_path):
    (tmp_path / "score.py").write_text("def init(): pass\ndef run(d): return d\n")
    (tmp_path / "util.py").write_text("")
    return tmp_path


@pytest.mark.parametrize("text", ["m=./x", "m:1", "m:one=./x", ":1=./x"])
def test_model_spec_rejects_malformed_values(text, tmp_path):
    with pytest.raises(SettingsError, match="NAME:VERSION=PATH|whole number"):
        ModelSpec.parse(text)


def test_model_spec_needs_an_existing_path(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        ModelSpec.parse(f"m:1={tmp_path / 'nope'}")


def test_missing_entry_script_is_named(source, monkeypatch):
    monkeypatch.delenv("AZUREML_ENTRY_SCRIPT", raising=False)
    with pytest.raises(SettingsError, match="entry script nope.py"):
        RuntimeSettings.from_args("nope.py", str(source))
    with pytest.raises(SettingsError, match="--entry-script"):
        RuntimeSettings.from_args(None)


def test_bad_environment_values_are_named(source, monkeypatch):
    monkeypatch.setenv("SCORING_TIMEOUT_MS", "soon")
    with pytest.raises(SettingsError, match="SCORING_TIMEOUT_MS='soon'"):
        RuntimeSettings.from_args("score.py", str(source))


def test_staged_layout_links_sources_and_models(source, tmp_path_factory):
    weights = tmp_path_factory.mktemp("w") / "weights.bin"
    weights.write_bytes(b"1")
    settings = RuntimeSettings.from_args("score.py", str(source), models=(f"net:3={weights}",))
    layout = prepare(settings)
    try:
        assert layout.model_dir == layout.app_root / "azureml-models" / "net" / "3"
        assert (layout.model_dir / "weights.bin").read_bytes() == b"1"
        assert (layout.app_root / "util.py").exists()
        assert layout.entry_script == layout.app_root / "score.py"
        assert layout.environment()["AML_APP_ROOT"] == str(layout.app_root)
    finally:
        layout.cleanup()
    assert not layout.app_root.exists()
    assert weights.exists() and (source / "score.py").exists()


def test_describe_tree_lists_nested_entries(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "w.bin").write_bytes(b"")
    assert describe_tree(tmp_path).splitlines()[1:] == ["  a/", "    b/", "      w.bin"]
    assert "does not exist" in describe_tree(Path(tmp_path / "nope"))
    assert "not set" in describe_tree(None)
