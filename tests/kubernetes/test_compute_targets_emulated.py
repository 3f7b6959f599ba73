"""Compute targets attached, listed, shown, refreshed and detached through the SDK and the CLI, against the Kubernetes
API EMULATOR (``emulator.py``: real HTTP, the official client, a real control plane process). A pass says modelport
asks the API the right things and tells the user the right things; it is not a real cluster.

What a user relies on: the credentials are kept for the owner only and the kubeconfig's token shows up nowhere; a
cluster and namespace is attached once (a second attachment, in this workspace or another, is refused naming the
first); every problem is listed at once and nothing is stored then; detach removes exactly the objects labelled
with the target (attach -> detach -> attach needs no manual step); a deploy records its target; rotated credentials
are replaced by refresh with a fresh kubeconfig (for the same cluster only), after which detach works again.
"""

from __future__ import annotations

import json
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelport import (
    AksCompute,
    AksWebservice,
    ComputeTarget,
    ComputeTargetWarning,
    Environment,
    InferenceConfig,
    KubernetesCompute,
    Model,
    Webservice,
)
from modelport.api import server
from modelport.backends.kubernetes.objects import target_labels
from modelport.errors import Conflict, InvalidInput, NotFound
from tests.conftest import register_weights

from .emulator import ApiEmulator, node

SECRET = f"kubeconfig-token-{secrets.token_hex(8)}"  # the kubeconfig's bearer token: in no output, log or answer
APP = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_app"
CLI = "from modelport.cli.computetarget import computetarget_group; computetarget_group()"


@pytest.fixture(scope="module")
def ws(new_workspace):
    return new_workspace("computews")


@pytest.fixture
def api():
    """An emulated API server whose valid token is SECRET, with a namespace ``ml`` besides ``default``."""
    with ApiEmulator(token=SECRET) as emulator:
        emulator.namespaces.add("ml")
        yield emulator


@pytest.fixture(autouse=True)
def nothing_left_attached(ws):
    """Each test starts and ends with only ``local``: what a test attached is detached (forced: its emulator may
    be gone) and its services deleted."""
    yield
    for service in Webservice.list(ws):
        service.delete()
    for target in ComputeTarget.list(ws):
        if target.name != "local":
            target.detach(force=True)


def kubeconfig_file(api: ApiEmulator, folder: Path, token: str | None = None) -> str:
    path = folder / "kubeconfig"
    path.write_text(api.kubeconfig(token=token))
    return str(path)


def attach(ws, name: str, kubeconfig: str, **settings) -> KubernetesCompute:
    return ComputeTarget.attach(ws, name, KubernetesCompute.attach_configuration(kubeconfig=kubeconfig, **settings))


def cli(ws, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLI, *args], cwd=ws.path, capture_output=True, text=True,
                          timeout=120)


def api_json(ws, path: str) -> str:
    """The control plane's raw answer to GET ``path``, as text."""
    base = server.ensure_running(ws._dir)
    return httpx.get(f"{base}/api/v1{path}", headers={"Authorization": f"Bearer {ws._dir.token()}"}).text


def test_emulated_attach_through_the_sdk_keeps_the_credentials_for_the_owner_only(ws, api, tmp_path):
    target = attach(ws, "sdk-k8s", kubeconfig_file(api, tmp_path), namespace="ml")
    assert isinstance(target, KubernetesCompute)
    assert (target.type, target.provisioning_state, target.provisioning_errors, target.warnings) == \
        ("Kubernetes", "Succeeded", [], [])
    assert (target.server, target.namespace, target.context, target.cluster_purpose, target.server_version,
            target.vcpus) == (api.url, "ml", "emulated", "FastProd", "v1.30.4", 12.0)

    folder = ws._dir.compute / "sdk-k8s"
    assert stat.S_IMODE(ws._dir.compute.stat().st_mode) == stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "kubeconfig").stat().st_mode) == 0o600
    assert SECRET in (folder / "kubeconfig").read_text()  # kept, for the control plane to connect with

    claim = api.get_object("ConfigMap", "modelport-attachment", "ml")
    assert claim["metadata"]["labels"] == target_labels("computews", "sdk-k8s")

    assert type(ComputeTarget(ws, "sdk-k8s")) is KubernetesCompute
    assert type(AksCompute(ws, "sdk-k8s")) is AksCompute
    targets = ws.compute_targets
    assert {name: t.type for name, t in targets.items()} == {"local": "Local", "sdk-k8s": "Kubernetes"}

    shown = [repr(target), json.dumps(target.serialize()), api_json(ws, "/computes"), api_json(ws, "/computes/sdk-k8s"),
             server.log_path(ws._dir).read_text()]
    assert not [text for text in shown if SECRET in text]


def test_emulated_attach_through_the_cli_prints_the_dev_test_warning_and_never_the_token(ws, api, tmp_path):
    api.nodes = [node("aks-small-00000", cpu="2", memory="8Gi")]
    attached = cli(ws, "attach", "kubernetes", "-n", "cli-k8s", "--kubeconfig", kubeconfig_file(api, tmp_path),
                   "--cluster-purpose", "DevTest", "-o", "json")
    assert attached.returncode == 0, attached.stderr
    assert attached.stderr.startswith("Warning: cluster_purpose DevTest is for development and test, not production")
    row = json.loads(attached.stdout)
    assert (row["name"], row["provisioning_state"], row["cluster_purpose"], row["vcpus"]) == \
        ("cli-k8s", "Succeeded", "DevTest", 2.0)

    listed = cli(ws, "list")
    assert listed.returncode == 0, listed.stderr
    lines = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [cells[:3] for cells in lines] == [["name", "type", "provisioning_state"], ["local", "Local", "Succeeded"],
                                              ["cli-k8s", "Kubernetes", "Succeeded"]]
    shown = cli(ws, "show", "-n", "cli-k8s", "-o", "json")
    assert json.loads(shown.stdout)["warnings"] == [row["warnings"][0]]
    outputs = [attached.stdout, attached.stderr, listed.stdout, listed.stderr, shown.stdout, shown.stderr,
               server.log_path(ws._dir).read_text()]
    assert not [text for text in outputs if SECRET in text]


def test_emulated_the_sdk_issues_each_warning_of_an_attach(ws, api, tmp_path):
    api.nodes = [node("aks-small-00000", cpu="2", memory="8Gi")]
    with pytest.warns(ComputeTargetWarning, match="^cluster_purpose DevTest is for development and test"):
        attach(ws, "warned-k8s", kubeconfig_file(api, tmp_path), cluster_purpose="DevTest")


def test_emulated_a_second_attachment_of_a_cluster_namespace_is_refused_naming_the_first(ws, api, tmp_path):
    kubeconfig = kubeconfig_file(api, tmp_path)
    attach(ws, "first-k8s", kubeconfig)
    with pytest.raises(Conflict) as refused:
        attach(ws, "second-k8s", kubeconfig)
    assert str(refused.value) == (
        "compute target 'second-k8s' was not attached: a problem (fix and attach again):\n"
        f"- namespace 'default' on {api.url} is attached already as compute target 'first-k8s': deploy to it "
        "(--ct first-k8s), or detach it first")
    assert set(ws.compute_targets) == {"local", "first-k8s"}
    assert not (ws._dir.compute / "second-k8s").exists()
    assert attach(ws, "second-k8s", kubeconfig, namespace="ml").provisioning_state == "Succeeded"


def test_emulated_a_namespace_another_workspace_attached_is_refused_until_it_detaches(ws, new_workspace, api,
                                                                                      tmp_path):
    kubeconfig = kubeconfig_file(api, tmp_path)
    ours = attach(ws, "ours-k8s", kubeconfig)
    other = new_workspace("otherws")
    with pytest.raises(Conflict) as refused:
        attach(other, "theirs-k8s", kubeconfig)
    assert str(refused.value).endswith(
        f"- namespace 'default' on {api.url} is used by compute target 'ours-k8s' of workspace 'computews' "
        "(ConfigMap/modelport-attachment): detach it there first, or attach another namespace")
    assert list(other.compute_targets) == ["local"]

    ours.detach()
    theirs = attach(other, "theirs-k8s", kubeconfig)  # no manual step between
    assert theirs.provisioning_state == "Succeeded"
    assert theirs.detach() == ["ConfigMap/modelport-attachment"]


def test_emulated_every_problem_is_listed_at_once_and_nothing_is_stored(ws, api, tmp_path):
    api.nodes = [node("aks-nodepool1-00000")]  # 4 vCPU: short of FastProd's 12
    api.deny("", "configmaps", "delete")
    certificate = tmp_path / "tls.crt"
    certificate.write_bytes(_certificate())
    with pytest.raises(InvalidInput) as refused:
        attach(ws, "Bad_Name", kubeconfig_file(api, tmp_path), ingress_service_type="Ingress",
               ssl_cert_pem_file=str(certificate), ssl_cname="scoring.example.com")
    message = str(refused.value)
    assert message.startswith("compute target 'Bad_Name' was not attached: 5 problems (fix and attach again):\n")
    problems = [line for line in message.splitlines() if line.startswith("- ")]
    assert [problem[:40] for problem in problems] == [
        "- compute target name 'Bad_Name' is inva", "- ingress_service_type 'Ingress' is not ",
        "- TLS needs ssl_cert_pem_file, ssl_key_p", "- cluster_purpose FastProd needs at leas",
        "- the kubeconfig's credentials lack 1 pe"]
    assert "delete configmaps" in problems[4]
    assert "\n  - apiGroups:\n    - ''\n" in message  # the proposed Role, indented under its problem
    assert list(ws.compute_targets) == ["local"]
    assert not (ws._dir.compute.exists() and any(ws._dir.compute.iterdir()))
    assert api.list_objects("ConfigMap") == []


@pytest.mark.parametrize("name", ["ab", "local", "a" * 25, "9lives", "ends-", "has_underscore"])
def test_emulated_compute_names_keep_azure_rules(ws, api, tmp_path, name):
    with pytest.raises(InvalidInput) as refused:
        attach(ws, name, kubeconfig_file(api, tmp_path))
    [problem] = [line for line in str(refused.value).splitlines() if line.startswith("- ")]
    assert problem == (f"- '{name}' is the name of this machine's built-in target; choose another name"
                       if name == "local" else
                       f"- compute target name {name!r} is invalid: use 3-24 letters, digits and dashes, starting "
                       "with a letter and not ending with a dash")
    assert list(ws.compute_targets) == ["local"]


def test_emulated_detach_removes_the_targets_labelled_objects_and_nothing_else(ws, api, tmp_path):
    kubeconfig = kubeconfig_file(api, tmp_path)
    target = attach(ws, "gone-k8s", kubeconfig)
    labels = target_labels("computews", "gone-k8s")
    for kind, name in (("Deployment", "svc-default-1"), ("Service", "svc-default-1"), ("Secret", "svc-keys")):
        api.put({"kind": kind, "metadata": {"name": name, "labels": labels}})
    api.put({"kind": "ConfigMap", "metadata": {"name": "unrelated"}})
    api.put({"kind": "Secret", "metadata": {"name": "another-target", "labels": target_labels("computews", "x-k8s")}})

    assert target.detach() == ["Deployment/svc-default-1", "Service/svc-default-1", "ConfigMap/modelport-attachment",
                               "Secret/svc-keys"]
    assert [(o["kind"], o["metadata"]["name"]) for kind in ("Deployment", "Service", "ConfigMap", "Secret")
            for o in api.list_objects(kind)] == [("ConfigMap", "unrelated"), ("Secret", "another-target")]
    assert not (ws._dir.compute / "gone-k8s").exists()
    with pytest.raises(NotFound, match="^compute target 'gone-k8s' is not attached to workspace 'computews'; its "
                                       "targets are 'local' \\(this machine\\): deploy to one of them"):
        ComputeTarget(ws, "gone-k8s")

    api.remove("Secret", "another-target")
    again = attach(ws, "gone-k8s", kubeconfig)  # attach -> detach -> attach: no manual step
    assert again.provisioning_state == "Succeeded"


def test_emulated_refresh_reports_what_changed_in_the_cluster(ws, api, tmp_path):
    target = attach(ws, "fresh-k8s", kubeconfig_file(api, tmp_path))
    nodes = api.nodes
    api.nodes = nodes[:1]
    target.refresh_state()
    assert target.provisioning_state == "Failed"
    [problem] = target.provisioning_errors
    assert problem.startswith("cluster_purpose FastProd needs at least 12 vCPUs on schedulable nodes; the cluster "
                              "has 4 vCPUs on 1 schedulable node(s)")
    with pytest.raises(Exception, match="^compute target 'fresh-k8s' is Failed: cluster_purpose FastProd"):
        target.wait_for_completion()
    assert ComputeTarget(ws, "fresh-k8s").provisioning_state == "Failed"  # stored, as of the last check

    failed = cli(ws, "refresh", "-n", "fresh-k8s")  # scripts notice: exit 1, after the row and its problem
    assert failed.returncode == 1
    assert failed.stdout.splitlines()[1].split("\t")[:3] == ["fresh-k8s", "Kubernetes", "Failed"]
    assert failed.stderr.splitlines() == [f"Problem: {problem}", "Error: compute target 'fresh-k8s' is Failed: fix "
                                          "the problems above and refresh again"]
    assert cli(ws, "show", "-n", "fresh-k8s").returncode == 0  # show reports; it does not fail

    api.nodes = nodes
    refreshed = cli(ws, "refresh", "-n", "fresh-k8s", "-o", "json")
    assert (json.loads(refreshed.stdout)["provisioning_state"], json.loads(refreshed.stdout)["provisioning_errors"]) \
        == ("Succeeded", [])


def test_emulated_detaching_a_cluster_that_is_gone_needs_force(ws, tmp_path):
    with ApiEmulator(token=SECRET) as api:
        target = attach(ws, "lost-k8s", kubeconfig_file(api, tmp_path))
    with pytest.raises(Conflict) as refused:
        target.detach()
    assert str(refused.value).startswith("compute target 'lost-k8s' was not detached: cannot reach the Kubernetes API")
    assert str(refused.value).endswith("or detach with force=True (modelport computetarget detach --force) to forget "
                                       "it and leave its objects in namespace 'default'")
    forced = cli(ws, "detach", "-n", "lost-k8s", "--force")
    assert (forced.returncode, forced.stdout) == (0, "Detached lost-k8s; removed 0 objects\n")
    assert list(ws.compute_targets) == ["local"]


def test_emulated_services_on_a_cluster_that_is_gone_are_listed_and_can_be_deleted(ws, tmp_path):
    """A cluster that went away for good: its services are still listed (their state says why), deleting them
    works (their objects stay, labelled, for the cluster's next pass), and the target is then forgotten with --force."""
    model = register_weights(ws, tmp_path, "w-1")
    config = InferenceConfig("score.py", source_directory=APP, environment=Environment("compute-test-env"))
    with ApiEmulator(token=SECRET) as api:
        attach(ws, "gone-k8s", kubeconfig_file(api, tmp_path))
        Model.deploy(ws, "on-gone-k8s", [model], config, AksWebservice.deploy_configuration(num_replicas=1),
                     deployment_target=ComputeTarget(ws, "gone-k8s"))
    assert [s.name for s in Webservice.list(ws)] == ["on-gone-k8s"]
    assert Webservice(ws, "on-gone-k8s").scoring_uri is None  # no front end to name
    Webservice(ws, "on-gone-k8s").delete()
    assert Webservice.list(ws) == []
    forced = cli(ws, "detach", "-n", "gone-k8s", "--force")
    assert forced.returncode == 0, forced.stderr
    assert list(ws.compute_targets) == ["local"]


def test_emulated_a_deploy_records_its_target_and_detach_waits_for_its_services(ws, api, tmp_path):
    attach(ws, "deploy-k8s", kubeconfig_file(api, tmp_path))
    model = register_weights(ws, tmp_path, "w-1")
    config = InferenceConfig("score.py", source_directory=APP, environment=Environment("compute-test-env"))
    Model.deploy(ws, "sdk-on-k8s", [model], config, AksWebservice.deploy_configuration(num_replicas=1),
                 deployment_target=ComputeTarget(ws, "deploy-k8s"))
    (tmp_path / "ic.json").write_text(json.dumps({"entryScript": "score.py", "sourceDirectory": str(APP)}))
    deployed = subprocess.run([sys.executable, "-m", "modelport.cli.main", "model", "deploy", "-n", "cli-on-k8s",
                               "-m", model.id, "--ic", str(tmp_path / "ic.json"), "--ct", "deploy-k8s", "--no-wait"],
                              cwd=ws.path, capture_output=True, text=True, timeout=120)
    assert deployed.returncode == 0, deployed.stderr
    for name in ("sdk-on-k8s", "cli-on-k8s"):
        assert json.loads(api_json(ws, f"/services/{name}"))["compute_target"] == "deploy-k8s"

    with pytest.raises(Conflict, match="^compute target 'deploy-k8s' still runs services cli-on-k8s, sdk-on-k8s: "
                                       "delete them first \\(modelport service delete -n cli-on-k8s\\), then detach$"):
        ComputeTarget(ws, "deploy-k8s").detach()
    Webservice(ws, "cli-on-k8s").delete()
    with pytest.raises(Conflict, match="^compute target 'deploy-k8s' still runs service sdk-on-k8s: delete it first "
                                       "\\(modelport service delete -n sdk-on-k8s\\), then detach$"):
        ComputeTarget(ws, "deploy-k8s").detach()
    for service in Webservice.list(ws):
        service.delete()
    assert ComputeTarget(ws, "deploy-k8s").detach() == ["ConfigMap/modelport-attachment"]


def test_emulated_rotated_credentials_are_replaced_by_refresh_with_a_fresh_kubeconfig(ws, api, tmp_path):
    target = attach(ws, "rot-k8s", kubeconfig_file(api, tmp_path), namespace="ml")
    rotated = f"rotated-token-{secrets.token_hex(8)}"
    api.token = rotated  # the cluster's token changed: the stored kubeconfig's is refused (401)
    fix = "refresh it with a fresh kubeconfig: modelport computetarget refresh -n rot-k8s --kubeconfig FILE"

    target.refresh_state()
    [problem] = target.provisioning_errors
    assert problem == f"the Kubernetes API at {api.url} rejected the credentials (401): they are wrong or expired; " \
        + fix
    with pytest.raises(Conflict) as refused:
        target.detach()
    assert str(refused.value).startswith(f"compute target 'rot-k8s' was not detached: the Kubernetes API at {api.url} "
                                         f"rejected the credentials (401): they are wrong or expired; {fix}, then "
                                         "detach again, or detach with force=True")

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    refreshed = cli(ws, "refresh", "-n", "rot-k8s", "--kubeconfig", kubeconfig_file(api, fresh), "-o", "json")
    assert refreshed.returncode == 0, refreshed.stderr
    row = json.loads(refreshed.stdout)
    assert (row["provisioning_state"], row["provisioning_errors"], row["namespace"]) == ("Succeeded", [], "ml")
    stored = ws._dir.compute / "rot-k8s" / "kubeconfig"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert rotated in stored.read_text() and SECRET not in stored.read_text()
    assert not [text for text in (refreshed.stdout, refreshed.stderr, server.log_path(ws._dir).read_text())
                if rotated in text]
    # the cached connection (old token) was dropped: detach connects with the new credentials, without --force
    assert target.detach() == ["ConfigMap/modelport-attachment"]


def test_emulated_new_credentials_for_another_cluster_or_refused_ones_are_not_stored(ws, api, tmp_path):
    kubeconfig = kubeconfig_file(api, tmp_path)
    target = attach(ws, "keep-k8s", kubeconfig)
    stored = (ws._dir.compute / "keep-k8s" / "kubeconfig").read_text()
    with ApiEmulator(token=SECRET) as other:
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        with pytest.raises(InvalidInput) as refused:
            target.update_credentials(kubeconfig_file(other, elsewhere))
        other_url = other.url
    assert str(refused.value) == (
        f"compute target 'keep-k8s' is attached to the cluster at {api.url}, and the new kubeconfig's context "
        f"'emulated' reaches {other_url}: give a kubeconfig for {api.url}, or attach the other cluster under another "
        "name")

    wrong = tmp_path / "wrong"
    wrong.mkdir()
    with pytest.raises(InvalidInput) as refused:
        target.update_credentials(kubeconfig_file(api, wrong, token="not-the-token"))
    assert str(refused.value) == (
        "compute target 'keep-k8s' was not refreshed: a problem (fix and refresh again):\n"
        f"- the Kubernetes API at {api.url} rejected the credentials (401): they are wrong or expired; refresh it "
        "with a fresh kubeconfig: modelport computetarget refresh -n keep-k8s --kubeconfig FILE")
    assert (ws._dir.compute / "keep-k8s" / "kubeconfig").read_text() == stored
    assert ComputeTarget(ws, "keep-k8s").provisioning_state == "Succeeded"

    local = cli(ws, "refresh", "-n", "local", "--kubeconfig", kubeconfig)
    assert (local.returncode, local.stderr) == (1, "Error: 'local' is this machine: it has no kubeconfig to replace; "
                                                   "--kubeconfig and --context are for attached clusters\n")


def test_emulated_a_refused_token_at_attach_says_attach_again(ws, api, tmp_path):
    with pytest.raises(InvalidInput) as refused:
        attach(ws, "tok-k8s", kubeconfig_file(api, tmp_path, token="expired-token"))
    assert str(refused.value) == (
        "compute target 'tok-k8s' was not attached: a problem (fix and attach again):\n"
        f"- the Kubernetes API at {api.url} rejected the credentials (401): they are wrong or expired; attach again "
        "with a fresh kubeconfig")


def test_emulated_a_namespace_that_does_not_exist_is_a_listed_problem_and_nothing_is_stored(ws, api, tmp_path):
    attached = cli(ws, "attach", "kubernetes", "-n", "nons-k8s", "--kubeconfig", kubeconfig_file(api, tmp_path),
                   "--namespace", "doesnotexist")
    assert (attached.returncode, attached.stdout) == (1, "")
    assert attached.stderr == (
        "Error: compute target 'nons-k8s' was not attached: a problem (fix and attach again):\n"
        f"- namespace 'doesnotexist' does not exist on {api.url}: create it (kubectl create namespace doesnotexist) "
        "or attach another\n")
    assert list(ws.compute_targets) == ["local"]
    assert not (ws._dir.compute / "nons-k8s").exists()


def test_emulated_a_system_namespace_is_attached_with_a_warning(ws, api, tmp_path):
    with pytest.warns(ComputeTargetWarning, match="^namespace 'kube-system' is for the cluster's own components"):
        target = attach(ws, "sys-k8s", kubeconfig_file(api, tmp_path), namespace="kube-system")
    assert target.provisioning_state == "Succeeded"
    assert ComputeTarget(ws, "sys-k8s").warnings == target.warnings  # kept with the target, as of its last check


def test_emulated_show_prints_the_main_columns_with_times_in_seconds_and_json_everything(ws, api, tmp_path):
    attach(ws, "show-k8s", kubeconfig_file(api, tmp_path), namespace="ml")
    shown = cli(ws, "show", "-n", "show-k8s")
    assert shown.returncode == 0, shown.stderr
    header, row = (line.split("\t") for line in shown.stdout.splitlines())
    assert header == ["name", "type", "provisioning_state", "namespace", "server", "cluster_purpose", "vcpus",
                      "checked_at"]
    assert row[:7] == ["show-k8s", "Kubernetes", "Succeeded", "ml", api.url, "FastProd", "12.0"]
    seconds = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")
    assert seconds.match(row[7])
    everything = json.loads(cli(ws, "show", "-n", "show-k8s", "-o", "json").stdout)
    assert {"context", "ingress_service_type", "has_tls", "server_version", "warnings", "provisioning_errors",
            "created_at"} <= set(everything)
    assert seconds.match(everything["created_at"]) and seconds.match(everything["checked_at"])


def _certificate() -> bytes:
    """A self-signed PEM certificate for scoring.example.com."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "scoring.example.com")])
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now)
                   .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM)
