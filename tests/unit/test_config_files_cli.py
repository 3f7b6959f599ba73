"""The CLI's side of users' files: az ml model deploy's flags (the azure-cli-ml reference's long and short forms, true/
false values, flags over files), ConfigWarnings as Warning lines, and help text on every command."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from modelport.cli.deploy_flags import deploy_flags, deployment_config, inference_config
from modelport.cli.main import cli
from modelport.cli.output import config_warnings_shown
from modelport.errors import InvalidInput
from modelport.sdk.files import ConfigWarning, warn

FILES = Path(__file__).resolve().parent.parent / "fixtures" / "azure_files"

# az ml model deploy's flags with the short forms of the azure-cli-ml reference (docs-ref-autogen ml(v1)/model.yml);
# --token-auth-enabled, --namespace, --tag, --property and --description have none there.
REFERENCE = {
    "--auth-enabled": "--ae", "--token-auth-enabled": None, "--autoscale-enabled": "--as",
    "--autoscale-min-replicas": "--mi", "--autoscale-max-replicas": "--ma", "--autoscale-refresh-seconds": "--ar",
    "--autoscale-target-utilization": "--at", "--cpu-cores": "--cc", "--cpu-cores-limit": "--ccl",
    "--memory-gb": "--gb", "--memory-gb-limit": "--gbl", "--gpu-cores": "--gc", "--num-replicas": "--nr",
    "--scoring-timeout-ms": "--tm", "--replica-max-concurrent-requests": "--rm", "--max-request-wait-time": "--mr",
    "--period-seconds": "--ps", "--initial-delay-seconds": "--id", "--timeout-seconds": "--ts",
    "--success-threshold": "--st", "--failure-threshold": "--ft", "--primary-key": "--kp", "--secondary-key": "--ks",
    "--namespace": None, "--enable-app-insights": "--ai", "--collect-model-data": "--md", "--tag": None,
    "--property": None, "--description": None, "--entry-script": "--es", "--source-directory": "--sd",
    "--runtime": "--rt", "--conda-file": "--cf", "--environment-name": "-e", "--environment-version": "--ev",
}


def commands(group: click.Command, path: str = "modelport"):
    yield path, group
    for name, command in getattr(group, "commands", {}).items():
        yield from commands(command, f"{path} {name}")


def test_every_command_has_help_text():
    missing = [path for path, command in commands(cli) if not (command.help or "").strip()]
    assert missing == []


def test_deploy_takes_each_az_flag_with_the_references_short_form():
    deploy = cli.commands["model"].commands["deploy"]
    forms = {option.opts[0]: option.opts[1:] for option in deploy.params if isinstance(option, click.Option)}
    assert {flag: forms.get(flag) for flag in REFERENCE} == {
        flag: [short] if short else [] for flag, short in REFERENCE.items()}
    text = CliRunner().invoke(cli, ["model", "deploy", "--help"], terminal_width=200).output
    listed = [set(re.findall(r"(?<![\w-])-{1,2}[\w-]+", line.split("  ")[1])) for line in text.splitlines()
              if line.startswith("  -")]
    for flag, short in REFERENCE.items():
        assert {flag, short} - {None} in listed


@click.command()
@deploy_flags
def echo_flags(settings, inference_flags, strict):
    """Print what deploy_flags hands the command."""
    click.echo(json.dumps({"settings": settings, "inference": inference_flags, "strict": strict}))


def test_boolean_flags_take_true_or_false_and_short_forms_work():
    result = CliRunner().invoke(echo_flags, ["--auth-enabled", "false", "--token-auth-enabled", "true", "--nr", "2",
                                             "--tag", "team=ml", "--tag", "stage=dev", "--property", "owner=ana",
                                             "--es", "score.py", "--rt", "python", "--strict"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "settings": {"auth_enabled": False, "token_auth_enabled": True, "num_replicas": 2,
                     "tags": {"team": "ml", "stage": "dev"}, "properties": {"owner": "ana"}},
        "inference": {"entryScript": "score.py", "sourceDirectory": None, "runtime": "python", "condaFile": None,
                      "environment": None},
        "strict": True}
    refused = CliRunner().invoke(echo_flags, ["--ae", "maybe"])
    assert refused.exit_code == 2 and "'maybe' is not a valid boolean" in refused.output


def test_flags_override_the_file(tmp_path):
    path = tmp_path / "deploymentconfig.json"
    path.write_text(json.dumps({"computeType": "aks", "authEnabled": True, "tags": {"team": "ml"},
                                "properties": {"owner": "ana"}, "autoScaler": {"maxReplicas": 5}}))
    config = deployment_config(str(path), {"auth_enabled": False, "token_auth_enabled": True, "num_replicas": 2,
                                           "tags": {"stage": "dev"}, "properties": {"owner": "bo"}}, strict=False)
    assert (config.auth_enabled, config.token_auth_enabled, config.num_replicas, config.autoscale_enabled,
            config.tags, config.properties) == (False, True, 2, False, {"team": "ml", "stage": "dev"},
                                                {"owner": "bo"})
    with pytest.raises(InvalidInput, match="autoscale_max_replicas .* is given but autoscaling is off"):
        deployment_config(str(path), {"autoscale_max_replicas": 3, "num_replicas": 2}, strict=False)


def test_flags_for_settings_not_applied_locally_warn_by_their_flag():
    with pytest.warns(ConfigWarning) as record:
        deployment_config(None, {"enable_app_insights": True}, strict=False)
    assert [str(w.message) for w in record] == [
        "the command line: --enable-app-insights true: there is no Application Insights; replicas export Prometheus "
        "metrics at /metrics and their logs are read with `modelport service logs`"]


def test_config_warnings_are_printed_as_one_line_each_on_stderr():
    @click.command()
    def warns():
        """Warn twice the same way (both are shown)."""
        with config_warnings_shown():
            for _ in range(2):
                warn("dc.json: appInsightsEnabled true: there is no Application Insights")
            warnings.warn("unrelated", DeprecationWarning, stacklevel=1)

    with pytest.warns(DeprecationWarning, match="unrelated"):  # other warnings take Python's usual way
        result = CliRunner().invoke(warns, [])
    assert result.exit_code == 0
    assert result.stderr.splitlines() == ["Warning: dc.json: appInsightsEnabled true: there is no Application "
                                          "Insights"] * 2


FLAGS = {"entryScript": None, "sourceDirectory": None, "runtime": None, "condaFile": None, "environment": None}


def test_warnings_about_a_flag_name_the_flag_not_the_file_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "score.py").write_text("def init(): pass\ndef run(data): return data\n")
    (tmp_path / "env.yml").write_text("dependencies:\n  - scikit-learn=1.3\n  - pip:\n    - six\n")
    (tmp_path / "ic.json").write_text(json.dumps({"entryScript": "score.py", "runtime": "python"}))
    with pytest.warns(ConfigWarning) as record:
        config = inference_config("ic.json", {**FLAGS, "condaFile": "env.yml", "runtime": "spark-py"}, None, False)
    assert [str(w.message) for w in record if issubclass(w.category, ConfigWarning)] == [  # not a stray GC warning
        'the command line: --runtime "spark-py": the entry script runs with Python; add pyspark to the pip list if '
        "score.py uses Spark",
        "the command line: --conda-file: conda packages scikit-learn=1.3 are not installed by local builds (there is "
        "no conda here); add their pip names to the pip list if score.py needs them"]
    assert config.environment.python.conda_dependencies.pip_packages == ["six"]


def test_errors_about_a_flag_name_the_flag(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text("def init(): pass\ndef run(data): return data\n")
    with pytest.raises(InvalidInput) as raised:
        inference_config(None, {**FLAGS, "entryScript": "scor.py", "sourceDirectory": "src"}, None, False)
    assert str(raised.value) == (f"the command line: --entry-script 'scor.py': no file in --source-directory "
                                 f"{tmp_path / 'src'} (did you mean 'score.py'?); fix the name (it is relative to "
                                 "--source-directory)")


# Commands that print no record: what they print instead.
NO_RECORD = {
    "modelport serve": "the scoring server's log",
    "modelport server": "the control plane's log (foreground)",
    "modelport server stop": "a sentence",
    "modelport model download": "the downloaded path",
    "modelport model delete": "a sentence",
    "modelport environment build": "the build log and the environment's Python",
    "modelport service logs": "the replicas' log lines",
    "modelport service delete": "a sentence",
    "modelport computetarget attach aks": "the refusal: pass a kubeconfig context (attach kubernetes)",
    "modelport computetarget create aks": "the refusal: clusters are created by their provider",
    "modelport computetarget detach": "the objects removed from the cluster",
    "modelport kubernetes render": "the Kubernetes objects, as YAML",
    "modelport studio": "Studio's address and a one-time sign-in link",
}


def test_every_command_that_prints_a_record_takes_output_table_or_json():
    without, choices = [], {}
    for path, command in commands(cli):
        if isinstance(command, click.Group) and not command.invoke_without_command:
            continue
        output = next((p for p in command.params if isinstance(p, click.Option) and "--output" in p.opts), None)
        if output is None:
            without.append(path)
        else:
            choices[path] = (output.opts, list(output.type.choices))
    assert sorted(without) == sorted(NO_RECORD)
    assert {path for path, forms in choices.items() if forms != (["--output", "-o"], ["table", "json"])} == set()
    assert {"modelport service regen-key", "modelport service run"} <= set(choices)
