"""Deploy a registered model as a local service and use it: the whole flow through real processes."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from datetime import datetime
from functools import partial
from pathlib import Path

import httpx
import pytest

from modelport import AksWebservice, Environment, InferenceConfig, Model, Webservice
from modelport.api import server
from modelport.errors import Conflict, InvalidInput
from modelport.frontend.config import REPLICA_SET_HEADER, VERSION_HEADER
from modelport.sdk.webservice import WebserviceError
from tests.conftest import register_weights
from tests.processes import parent_of, refuses_connections, replica_states, running
from tests.traffic import Traffic, bearer, ok_if_200
from tests.traffic import wait_until as _wait_until

APP = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_app"
wait_until = partial(_wait_until, interval=0.1)  # these polls ask the control plane or score: 10 a second


@pytest.fixture(scope="module")
def ws(new_workspace):
    return new_workspace("deployws", MODELPORT_SCALE_DOWN_DELAY_S="2")


@pytest.fixture(scope="module")
def model(ws, tmp_path_factory):
    return register_weights(ws, tmp_path_factory.mktemp("model"))


def inference_config(**variables) -> InferenceConfig:
    env = Environment("deploy-test-env")
    env.environment_variables = dict(variables)
    return InferenceConfig("score.py", source_directory=APP, environment=env)


def init_line(ws, service: str, version: str = "default-1") -> str:
    """The runtime's log line as it calls the entry script's ``init()`` in a replica of ``service`` (the source
    folder ``deploy_app`` lies in the app root, as Azure ML laid it out)."""
    script = ws._dir.root / "services" / service / version / "app" / APP.name / "score.py"
    return f"modelport.worker - Calling init() of {script}"


def status(ws, name: str) -> dict:
    return Webservice(ws, name).serialize()["status"]


def settled(ws, name: str, replicas: int) -> dict[str, dict]:
    """Wait (bounded) until the service is Healthy on ``replicas`` ready replicas of its serving version,
    with no other replica left (an older version retired); that version's replica states."""
    def done() -> bool:
        state = status(ws, name)
        files = replica_states(ws, name)
        serving = state.get("serving_version")
        return (Webservice(ws, name).state == "Healthy" and state.get("ready_replicas") == replicas
                and serving == state.get("desired_version")
                and set(files) == {f"{serving}/replica-{i}" for i in range(replicas)}
                and all(s["port"] and running(s["pid"]) for s in files.values()))

    assert wait_until(done, timeout=60), (status(ws, name), replica_states(ws, name))
    return replica_states(ws, name)


def test_deploy_score_and_delete(ws, model):
    config = AksWebservice.deploy_configuration(num_replicas=1, auth_enabled=False)
    service = Model.deploy(ws, "echo-svc", [model], inference_config(), config)
    assert service.state == "Transitioning"
    service.wait_for_deployment(timeout_sec=120)
    assert service.state == "Healthy"
    answer = service.run({"echo": "hi"})
    assert (answer["weights"], answer["version"], answer["echo"]) == ("w-1", "1", "hi")
    response = httpx.post(service.scoring_uri, json={}, timeout=30)
    assert (response.status_code, response.headers[VERSION_HEADER]) == (200, "default")
    assert httpx.get(service.swagger_uri).json()["swagger"] == "2.0"
    assert init_line(ws, "echo-svc") in service.get_logs()
    assert "pip install" in service.get_logs(init=True)  # Azure's init logs: here, the environment's build
    assert [s.name for s in Webservice.list(ws, model_name="echo-model")] == ["echo-svc"]
    with pytest.raises(Conflict, match="already exists"):
        Model.deploy(ws, "echo-svc", [model], inference_config(), config)
    [replica] = replica_states(ws, "echo-svc").values()
    worker = service.run({})["pid"]
    assert parent_of(worker) == replica["pid"]  # the replica's own worker answered
    service.delete()
    assert not running(worker) and not running(replica["pid"])  # stopped before delete() returned
    assert replica_states(ws, "echo-svc") == {}
    root = ws._dir.root
    assert not (root / "replicas" / "echo-svc").exists() and not (root / "services" / "echo-svc").exists()


def test_init_failure_is_failed_with_the_log_tail(ws, model):
    config = AksWebservice.deploy_configuration(num_replicas=1, auth_enabled=False)
    service = Model.deploy(ws, "broken-svc", [model], inference_config(FAIL_INIT="1"), config)
    # the reason, not "did not become Healthy in 60 s": the failure is reported, not waited out
    with pytest.raises(WebserviceError, match="init exploded on purpose"):
        service.wait_for_deployment(timeout_sec=60)
    assert service.state == "Failed"
    error = service.serialize()["error"]  # ends with the replica's log tail
    assert init_line(ws, "broken-svc") in error and "RuntimeError: init exploded on purpose" in error
    service.delete()


def test_bad_names_and_missing_models(ws, model):
    config = AksWebservice.deploy_configuration(num_replicas=1)
    with pytest.raises(InvalidInput, match="service name"):
        Model.deploy(ws, "Bad_Name", [model], inference_config(), config)
    with pytest.raises(InvalidInput):
        Model.deploy(ws, "no-models", [], inference_config(), config)


def test_autoscaling_follows_load_up_and_down(ws, model):
    config = AksWebservice.deploy_configuration(autoscale_min_replicas=1, autoscale_max_replicas=3,
                                                autoscale_refresh_seconds=1, autoscale_target_utilization=70,
                                                max_request_wait_time=5000, auth_enabled=False)
    service = Model.deploy(ws, "scaled-svc", [model], inference_config(), config)
    service.wait_for_deployment(timeout_sec=120)

    def replicas() -> tuple[int, int]:
        current = status(ws, "scaled-svc")
        return current.get("replicas", 0), current.get("ready_replicas", 0)

    with Traffic(service.scoring_uri, ok_if_200, threads=6, body={"sleep": 0.3}) as traffic:
        assert wait_until(lambda: replicas() == (3, 3), timeout=60), replicas()
        assert traffic.wait_for_ok(10)  # served by the three
    assert traffic.failures() == {}, traffic.failures()
    assert wait_until(lambda: replicas() == (1, 1), timeout=60), replicas()  # down after the (short) delay
    assert len(replica_states(ws, "scaled-svc")) == 1
    service.delete()


@pytest.fixture(scope="module")
def keyed(ws, model):
    """A key-auth service with 2 replicas, for the auth, update and resilience tests. Each test starts by
    waiting for it to be settled; an update sets APP_VERSION to the new generation, as here (1)."""
    config = AksWebservice.deploy_configuration(num_replicas=2)
    service = Model.deploy(ws, "keyed-svc", [model], inference_config(APP_VERSION="1"), config)
    service.wait_for_deployment(timeout_sec=120)
    yield service
    service.delete()


def call(service, key: str | None, body: dict | None = None) -> httpx.Response:
    return httpx.post(service.scoring_uri, json=body or {}, headers=bearer(key), timeout=30)


def test_key_auth(keyed):
    primary, secondary = keyed.get_keys()
    assert call(keyed, primary).status_code == 200
    assert call(keyed, secondary).status_code == 200
    for bad in (None, "wrong-key"):
        response = call(keyed, bad)
        assert response.status_code == 401
        assert "message" in response.json()
    keyed.regen_key("Primary")
    new_primary, same_secondary = keyed.get_keys()
    assert new_primary != primary and same_secondary == secondary
    # at once: regen_key returns only when the front end enforces the new key
    assert call(keyed, primary).status_code == 401
    assert call(keyed, new_primary).status_code == 200
    assert keyed.run({"echo": 1})["echo"] == 1  # the SDK uses the current key


def test_token_auth(ws, model, keyed):
    config = AksWebservice.deploy_configuration(num_replicas=1, auth_enabled=False, token_auth_enabled=True)
    service = Model.deploy(ws, "token-svc", [model], inference_config(), config)
    service.wait_for_deployment(timeout_sec=120)
    token, refresh_by = service.get_token()
    assert refresh_by > datetime.now()  # Azure's naive local datetime
    assert call(service, token).status_code == 200
    assert call(service, None).status_code == 401
    assert call(service, token[:-4] + "AAAA").status_code == 401  # forged signature
    assert service.run({"echo": "t"})["echo"] == "t"
    with pytest.raises(InvalidInput, match="tokens are not enabled for service 'keyed-svc': it uses key auth"):
        Webservice(ws, keyed.name).get_token()
    service.delete()


def test_response_names_the_version(ws, keyed):
    settled(ws, keyed.name, 2)
    serving = status(ws, keyed.name)["serving_version"]
    response = call(keyed, keyed.get_keys()[0])
    assert response.status_code == 200
    assert response.headers[VERSION_HEADER] == "default"  # a web service's one version
    assert response.headers[REPLICA_SET_HEADER] == serving == f"default-{response.json()['version']}"


def serving_supervisors(service, key: str, expected: set[int], attempts: int = 100) -> set[int]:
    """The replicas (supervisor pids) whose workers answered, scoring one request at a time until every
    ``expected`` one answered (bounded): idle replicas are picked at random."""
    seen: set[int] = set()
    for _ in range(attempts):
        response = call(service, key)
        assert response.status_code == 200, response.text
        seen.add(parent_of(response.json()["pid"]))
        if seen >= expected:
            break
    return seen


def test_a_killed_replica_is_restarted_by_the_backend_while_the_other_serves(ws, keyed):
    """SIGKILL a replica itself (its supervisor, from its state file), not a worker the runtime would replace:
    the local backend restarts it (same index, new process), the other one keeps its process and serves."""
    key = keyed.get_keys()[0]
    before = settled(ws, keyed.name, 2)
    victim_name, peer_name = sorted(before)
    victim, peer = before[victim_name], before[peer_name]
    assert serving_supervisors(keyed, key, {victim["pid"], peer["pid"]}) == {victim["pid"], peer["pid"]}

    os.kill(victim["pid"], signal.SIGKILL)
    outcomes: Counter[str] = Counter()

    def restarted() -> bool:  # one request at a time meanwhile: none is in flight on the victim when it dies
        try:
            outcomes[ok_if_200(call(keyed, key))] += 1
        except httpx.HTTPError as err:
            outcomes[type(err).__name__] += 1
        state = replica_states(ws, keyed.name).get(victim_name)
        return bool(state and state["pid"] != victim["pid"] and status(ws, keyed.name).get("ready_replicas") == 2)

    assert wait_until(restarted, timeout=60), (replica_states(ws, keyed.name), status(ws, keyed.name))
    after = replica_states(ws, keyed.name)
    assert set(after) == set(before)  # no replica added
    assert after[victim_name]["restarts"] == victim["restarts"] + 1
    assert (after[peer_name]["pid"], after[peer_name]["port"], after[peer_name]["restarts"]) == (
        peer["pid"], peer["port"], peer["restarts"])
    assert not running(victim["pid"])
    assert set(outcomes) == {"ok"}, outcomes  # the other replica answered every request meanwhile
    replacement = after[victim_name]["pid"]
    assert serving_supervisors(keyed, key, {replacement, peer["pid"]}) == {replacement, peer["pid"]}
    assert Webservice(ws, keyed.name).state == "Healthy"


def test_rolling_update_under_load_has_no_failed_request(ws, keyed):
    key = keyed.get_keys()[0]
    settled(ws, keyed.name, 2)
    new = keyed.serialize()["generation"] + 1

    def outcome(response: httpx.Response) -> str:  # every answer names the version that answered it
        if response.status_code != 200:
            return f"{response.status_code} {response.text[:100]}"
        named, answered = response.headers.get(REPLICA_SET_HEADER), response.json()["version"]
        return "ok" if named == f"default-{answered}" else f"{REPLICA_SET_HEADER} {named!r} from version {answered!r}"

    with Traffic(keyed.scoring_uri, outcome, threads=3, headers=bearer(key), body={"sleep": 0.02}) as traffic:
        assert traffic.wait_for_ok(20)
        keyed.update(inference_config=inference_config(APP_VERSION=str(new)))
        keyed.wait_for_deployment(timeout_sec=120)
        assert wait_until(lambda: call(keyed, key).json()["version"] == str(new), timeout=30)
        # the old version's replicas are stopped while the load runs
        only_new = {f"default-{new}/replica-0", f"default-{new}/replica-1"}
        assert wait_until(lambda: set(replica_states(ws, keyed.name)) == only_new, timeout=30), \
            replica_states(ws, keyed.name)
        assert traffic.wait_for_ok(20)
    assert traffic.failures() == {}, traffic.failures()


def test_control_plane_restart_re_adopts_the_replicas(ws, keyed):
    key = keyed.get_keys()[0]
    before = settled(ws, keyed.name, 2)
    old, url = server.read_info(ws._dir)["pid"], server.read_info(ws._dir)["url"]
    os.kill(old, signal.SIGKILL)
    # dead, sockets closed: an SDK call while its other threads still exit meets a reset connection (a client
    # bug, see test_concurrent_and_interrupted.py); this test is about what the next control plane does
    assert wait_until(lambda: not running(old) and refuses_connections(url), timeout=10)
    assert call(keyed, key).status_code == 200  # Envoy and the replicas outlive the control plane
    # the client starts a new control plane; regen_key returns once that one has routed the service
    # again, so it has been through the service's replicas at least once
    keyed.regen_key("Secondary")
    assert server.read_info(ws._dir)["pid"] != old
    after = replica_states(ws, keyed.name)
    assert {k: (v["pid"], v["port"]) for k, v in after.items()} == \
        {k: (v["pid"], v["port"]) for k, v in before.items()}  # re-adopted, not started again
    assert all(running(state["pid"]) for state in after.values())
    assert Webservice(ws, keyed.name).state == "Healthy"
    assert call(keyed, keyed.get_keys()[1]).status_code == 200
    pids = {state["pid"] for state in after.values()}
    assert serving_supervisors(keyed, key, pids) == pids


def test_an_environment_that_fails_to_build_fails_the_service_with_the_log_tail(ws, model):
    env = Environment("unbuildable-env")
    env.python.conda_dependencies.add_pip_package("modelport-no-such-package==0.0.1")
    config = AksWebservice.deploy_configuration(num_replicas=1)
    service = Model.deploy(ws, "unbuildable", [model],
                           InferenceConfig("score.py", source_directory=APP, environment=env), config)
    with pytest.raises(WebserviceError, match="modelport-no-such-package"):
        service.wait_for_deployment(timeout_sec=120)
    assert service.state == "Failed"
    service.delete()


def test_gpu_cores_without_a_gpu_is_refused(ws, model):
    if Path("/dev/nvidia0").exists():
        pytest.skip("this machine has a GPU")
    with pytest.raises(InvalidInput, match="gpu_cores=1"):
        Model.deploy(ws, "gpu-svc", [model], inference_config(), AksWebservice.deploy_configuration(gpu_cores=1))


def test_resource_limits_are_reported(ws, model):
    config = AksWebservice.deploy_configuration(num_replicas=1, auth_enabled=False, cpu_cores_limit=1,
                                                memory_gb_limit=2)
    service = Model.deploy(ws, "limited-svc", [model], inference_config(), config)
    service.wait_for_deployment(timeout_sec=120)
    resources = service.serialize()["status"]["resources"]
    assert any("RLIMIT_AS" in note for note in resources) and any("affinity" in note for note in resources)
    service.delete()


def test_cli_deploys_azure_ml_files_unchanged(ws, model, tmp_path):
    import subprocess
    import sys

    (tmp_path / "inferenceconfig.json").write_text(json.dumps({
        "entryScript": "score.py", "sourceDirectory": str(APP),
        "environment": {"name": "cli-env", "python": {"userManagedDependencies": False,
                                                      "condaDependencies": {"dependencies": []}}}}))
    (tmp_path / "deploymentconfig.json").write_text(json.dumps({
        "computeType": "aks", "autoScaler": {"autoscaleEnabled": False}, "numReplicas": 1, "authEnabled": True,
        "containerResourceRequirements": {"cpu": 0.5, "memoryInGB": 1.0}, "scoringTimeoutMs": 60000}))

    def modelport(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "modelport.cli.main", *args], cwd=ws.path, capture_output=True,
                              text=True, timeout=300)

    deployed = modelport("model", "deploy", "-n", "cli-svc", "-m", model.id, "--ic",
                         str(tmp_path / "inferenceconfig.json"), "--dc", str(tmp_path / "deploymentconfig.json"),
                         "-o", "json")
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(deployed.stdout)["state"] == "Healthy"
    assert json.loads(modelport("service", "run", "-n", "cli-svc", "-d", '{"echo": 5}').stdout)["echo"] == 5
    listed = json.loads(modelport("service", "list", "-o", "json").stdout)
    assert "cli-svc" in [s["name"] for s in listed]
    keys = json.loads(modelport("service", "keys", "-n", "cli-svc", "-o", "json").stdout)
    assert keys["primaryKey"] and keys["secondaryKey"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"computeType": "aks", "autoScaler": {"autoscaleEnabled": True, "minReplica": 1}}))
    refused = modelport("model", "deploy", "-n", "cli-bad", "-m", model.id, "--ic",
                        str(tmp_path / "inferenceconfig.json"), "--dc", str(bad), "--strict")
    assert refused.returncode == 1, refused.stdout
    assert "'autoScaler.minReplica'" in refused.stderr and "'autoScaler.minReplicas'" in refused.stderr
    assert modelport("service", "delete", "-n", "cli-svc").returncode == 0
