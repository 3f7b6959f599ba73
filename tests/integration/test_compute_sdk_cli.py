"""Compute targets in the SDK and CLI where no cluster is needed: the built-in ``local`` target, what is refused
with its one-line fix (creating or deleting a cluster, Azure's AKS arguments with the user's names filled in, an
unknown or unreachable target),
and the kubeconfig an attach sends (only the context used, with its files inline, as ``kubectl config view
--minify --flatten``; no file content repeated in an error). Attaching to a cluster is tested against the API
emulator in ``tests/kubernetes/test_compute_targets_emulated.py``.
"""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest
import yaml

from modelport import (
    AksCompute,
    AksWebservice,
    ClusterPurpose,
    ComputeTarget,
    Environment,
    InferenceConfig,
    KubernetesCompute,
    Model,
)
from modelport.errors import Conflict, InvalidInput, NotFound
from modelport.sdk.compute import kubeconfig_text
from tests.conftest import FIXTURES

CLI = "from modelport.cli.computetarget import computetarget_group; computetarget_group()"
NO_CREATE = ("modelport does not create clusters: create one with your cluster's provider (AKS, EKS, GKE, kind, ...) "
             "and attach it with ComputeTarget.attach(ws, name, KubernetesCompute.attach_configuration(kubeconfig=..., "
             "context=...)) (CLI: modelport computetarget attach kubernetes)")
NOT_ATTACHED = ("compute target 'nope' is not attached to workspace 'computecli'; its targets are 'local' (this "
                "machine): deploy to one of them (--ct NAME, SDK: deployment_target=), or attach the cluster first "
                "(modelport computetarget attach kubernetes, SDK: ComputeTarget.attach)")


@pytest.fixture(scope="module")
def ws(new_workspace):
    return new_workspace("computecli")


def cli(ws, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLI, *args], cwd=ws.path, capture_output=True, text=True,
                          timeout=120)


def test_local_is_the_built_in_target(ws):
    targets = ws.compute_targets
    assert list(targets) == ["local"]
    local = ComputeTarget(ws, "local")
    assert (type(local), local.type, local.provisioning_state) == (ComputeTarget, "Local", "Succeeded")
    assert local.serialize() == {"name": "local", "type": "Local", "provisioningState": "Succeeded",
                                 "provisioningErrors": [], "properties": {"warnings": []}}
    local.refresh_state()
    assert local.provisioning_state == "Succeeded"
    refreshed = cli(ws, "refresh", "-n", "local")
    assert (refreshed.returncode, refreshed.stdout.splitlines()[1].split("\t")[:3]) == \
        (0, ["local", "Local", "Succeeded"])
    with pytest.raises(InvalidInput, match="^compute target 'local' is Local, not KubernetesCompute"):
        KubernetesCompute(ws, "local")
    with pytest.raises(Conflict, match="^'local' is this machine, built into every workspace: it cannot be "
                                       "detached$"):
        local.detach()
    listed = cli(ws, "list")
    assert (listed.returncode, listed.stdout.splitlines()[1].split("\t")[:3]) == (0, ["local", "Local", "Succeeded"])


def test_an_unknown_target_is_not_found_naming_the_attached_ones(ws):
    with pytest.raises(NotFound) as missing:
        ComputeTarget(ws, "nope")
    assert str(missing.value) == NOT_ATTACHED
    shown = cli(ws, "show", "-n", "nope")
    assert (shown.returncode, shown.stdout, shown.stderr) == (1, "", f"Error: {NOT_ATTACHED}\n")


def test_creating_or_deleting_a_cluster_is_refused_pointing_to_attach(ws):
    for create in (lambda: ComputeTarget.create(ws, "new-aks", None),
                   lambda: AksCompute.provisioning_configuration(agent_count=3, vm_size="Standard_D3_v2"),
                   lambda: KubernetesCompute.provisioning_configuration()):
        with pytest.raises(InvalidInput) as refused:
            create()
        assert str(refused.value) == NO_CREATE
    created = cli(ws, "create", "aks", "-n", "new-aks", "--agent-count", "3")
    assert (created.returncode, created.stderr) == (1, f"Error: {NO_CREATE}\n")
    local = ComputeTarget(ws, "local")
    with pytest.raises(InvalidInput, match="^modelport does not delete clusters: detach 'local' with detach()"):
        local.delete()


def test_azure_arguments_of_aks_attach_are_refused_with_the_kubeconfig_way(ws):
    with pytest.raises(InvalidInput) as refused:
        AksCompute.attach_configuration(resource_group="rg", cluster_name="prod-aks")
    assert str(refused.value) == (
        "resource_group and cluster_name name an AKS cluster in Azure, and modelport reaches a cluster through its "
        "kubeconfig: run `az aks get-credentials -g rg -n prod-aks`, then pass the kubeconfig (default "
        "~/.kube/config) and context prod-aks instead")
    with pytest.raises(InvalidInput, match="^resource_group names an AKS cluster in Azure, .* run `az aks "
                                           "get-credentials -g rg -n CLUSTER`, .* and context CLUSTER instead$"):
        AksCompute.attach_configuration(resource_group="rg")
    resource_id = "/subscriptions/0/resourceGroups/ml-rg/providers/Microsoft.ContainerService/managedClusters/prod-aks"
    with pytest.raises(InvalidInput, match="^resource_id names .* `az aks get-credentials -g ml-rg -n prod-aks`"):
        AksCompute.attach_configuration(resource_id=resource_id)
    attached = cli(ws, "attach", "aks", "-n", "prod", "-i", resource_id)
    assert attached.returncode == 1
    assert attached.stderr == (
        "Error: --compute-resource-id names an AKS cluster in Azure, and modelport reaches a cluster through its "
        "kubeconfig: run `az aks get-credentials -g ml-rg -n prod-aks`, then pass the kubeconfig (default "
        "~/.kube/config) and context prod-aks instead\n")
    with pytest.raises(InvalidInput, match="^leaf_domain_label asks Azure for a certificate"):
        AksCompute.attach_configuration(cluster_purpose=ClusterPurpose.DEV_TEST).enable_ssl(leaf_domain_label="ml")


def test_an_unreachable_cluster_is_refused_naming_its_address_and_nothing_is_stored(ws, tmp_path):
    config = tmp_path / "config"
    config.write_text(yaml.safe_dump(_kubeconfig("far", "https://127.0.0.1:1", {"token": "far-token-value"})))
    with pytest.raises(InvalidInput) as refused:
        ComputeTarget.attach(ws, "far-k8s", KubernetesCompute.attach_configuration(kubeconfig=str(config),
                                                                                   context="far"))
    assert str(refused.value).startswith("compute target 'far-k8s' was not attached: a problem (fix and attach "
                                         "again):\n- cannot reach the Kubernetes API at https://127.0.0.1:1: "
                                         "connection refused;")
    assert list(ws.compute_targets) == ["local"]
    assert not ws._dir.compute.exists() or not any(ws._dir.compute.iterdir())


def test_the_kubeconfig_sent_is_the_context_used_with_its_files_inline(tmp_path):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.crt").write_bytes(b"CA-BYTES")
    (tmp_path / "client.crt").write_bytes(b"CLIENT-CERT")
    (tmp_path / "client.key").write_bytes(b"CLIENT-KEY")
    (tmp_path / "token").write_text("file-token\n")
    document = {
        "apiVersion": "v1", "kind": "Config", "current-context": "dev",
        "clusters": [{"name": "prod", "cluster": {"server": "https://prod:6443",
                                                  "certificate-authority": "certs/ca.crt"}},
                     {"name": "dev", "cluster": {"server": "https://dev:6443"}}],
        "users": [{"name": "prod-admin", "user": {"client-certificate": "client.crt", "client-key": "client.key"}},
                  {"name": "prod-reader", "user": {"tokenFile": str(tmp_path / "token")}},
                  {"name": "dev-user", "user": {"token": "dev-secret"}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "prod-admin"}},
                     {"name": "prod-read", "context": {"cluster": "prod", "user": "prod-reader"}},
                     {"name": "dev", "context": {"cluster": "dev", "user": "dev-user"}}]}
    (tmp_path / "config").write_text(yaml.safe_dump(document))

    sent = yaml.safe_load(kubeconfig_text(str(tmp_path / "config"), "prod"))
    assert sent["current-context"] == "prod"
    assert sent["contexts"] == [{"name": "prod", "context": {"cluster": "prod", "user": "prod-admin"}}]
    assert sent["clusters"] == [{"name": "prod", "cluster": {
        "server": "https://prod:6443", "certificate-authority-data": base64.b64encode(b"CA-BYTES").decode()}}]
    assert sent["users"] == [{"name": "prod-admin", "user": {
        "client-certificate-data": base64.b64encode(b"CLIENT-CERT").decode(),
        "client-key-data": base64.b64encode(b"CLIENT-KEY").decode()}}]
    assert "dev-secret" not in kubeconfig_text(str(tmp_path / "config"), "prod")  # other users' credentials stay
    reader = yaml.safe_load(kubeconfig_text(str(tmp_path / "config"), "prod-read"))
    assert reader["users"] == [{"name": "prod-reader", "user": {"token": "file-token"}}]
    assert yaml.safe_load(kubeconfig_text(str(tmp_path / "config"), None))["current-context"] == "dev"


def test_kubeconfig_files_listed_in_KUBECONFIG_merge_as_kubectl_merges_them(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text(yaml.safe_dump({**_kubeconfig("one", "https://one:6443", {"token": "t1"}),
                                     "current-context": "one"}))
    second.write_text(yaml.safe_dump({**_kubeconfig("two", "https://two:6443", {"token": "t2"}),
                                      "current-context": "two"}))
    monkeypatch.setenv("KUBECONFIG", f"{first}:{tmp_path / 'absent'}:{second}")
    assert yaml.safe_load(kubeconfig_text(None, None))["current-context"] == "one"  # the first file's wins
    assert yaml.safe_load(kubeconfig_text(None, "two"))["clusters"][0]["cluster"]["server"] == "https://two:6443"
    with pytest.raises(InvalidInput, match="has no context 'three'; its contexts are: one, two$"):
        kubeconfig_text(None, "three")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(NotFound, match=r"^no kubeconfig found \(\$KUBECONFIG, else ~/.kube/config\)"):
        kubeconfig_text(None, None)


def test_a_kubeconfig_that_cannot_be_used_is_named_without_repeating_its_content(tmp_path):
    broken = tmp_path / "broken"
    broken.write_text("users:\n- name: u\n  user: {token: leaked-token-value\n")
    with pytest.raises(InvalidInput) as refused:
        kubeconfig_text(str(broken), None)
    assert str(refused.value) == (f"kubeconfig {broken} is not valid YAML (line 4); pass the file `kubectl config "
                                  "view --raw` writes")
    with pytest.raises(NotFound, match="^kubeconfig '/nowhere/config' is not a file"):
        kubeconfig_text("/nowhere/config", None)
    dangling = tmp_path / "dangling"
    dangling.write_text(yaml.safe_dump({**_kubeconfig("c", "https://c:6443", {"token": "t"}),
                                        "clusters": [], "current-context": "c"}))
    with pytest.raises(InvalidInput, match="^context 'c' of kubeconfig .* names cluster 'c', which it does not "
                                           "define"):
        kubeconfig_text(str(dangling), None)
    configuration = KubernetesCompute.attach_configuration(kubeconfig=str(dangling), ssl_cert_pem_file="/no/cert.pem")
    with pytest.raises(InvalidInput):
        configuration.validate_configuration()


def test_deployment_target_and_compute_target_name_must_agree(ws, tmp_path):
    (tmp_path / "weights.txt").write_text("w")
    model = Model.register(ws, tmp_path / "weights.txt", "weights")
    config = InferenceConfig("score.py", source_directory=FIXTURES / "deploy_app", environment=Environment("e"))
    with pytest.raises(InvalidInput, match="^deployment_target 'b-k8s' and the deployment config's "
                                           "compute_target_name 'a-k8s' differ; give one of them$"):
        Model.deploy(ws, "never-svc", [model], config, AksWebservice.deploy_configuration(compute_target_name="a-k8s"),
                     deployment_target="b-k8s")
    with pytest.raises(NotFound, match="^compute target 'b-k8s' is not attached to workspace 'computecli'"):
        Model.deploy(ws, "never-svc", [model], config, deployment_target="b-k8s")
    assert "never-svc" not in ws.webservices


def _kubeconfig(name: str, server: str, user: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": server}}],
            "users": [{"name": f"{name}-user", "user": user}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-user"}}]}
