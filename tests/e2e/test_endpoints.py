"""Endpoints end to end: versions with traffic percentiles, mirroring, Azure ML's rules, promote and rollback,
through the real control plane, real replicas and the real Envoy front end.

Each version runs the deploy app with ``APP_VERSION`` set to the version's name, so an answer says which version
ran it (in its body, and in the ``x-ms-model-version`` header the front end adds). One replica per version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from modelport import AksEndpoint, Endpoint, Environment, InferenceConfig, Model, Webservice
from modelport.api import server
from modelport.errors import InvalidInput, NotFound
from tests.conftest import register_weights
from tests.traffic import Traffic, answered_by, wait_until

APP = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_app"
AZURE_ENDPOINT_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "azure_files" / "endpoint" / \
    "deploymentconfig.json"
# A queued request may wait for its replica's one run() slot longer than Azure's 500 ms on a busy 2-core machine:
# a 503 for that would say nothing about endpoints.
WAIT_MS = 10000
# Envoy picks a version at random per request by weight: over 4,000 requests a share strays more than 3 points
# from its percentile about once in 5,000 runs (over 2,000, about once in 100).
SPLIT_REQUESTS = 4000


@pytest.fixture(scope="module")
def ws(new_workspace):
    return new_workspace("endpointws")


@pytest.fixture(scope="module")
def model(ws, tmp_path_factory):
    return register_weights(ws, tmp_path_factory.mktemp("model"))


def inference_config(source: Path = APP, **variables: str) -> InferenceConfig:
    env = Environment("endpoint-test-env")
    env.environment_variables = dict(variables)
    return InferenceConfig("score.py", source_directory=source, environment=env)


def deploy_endpoint(ws, model, name: str, version: str) -> AksEndpoint:
    """An endpoint whose first version ``version`` runs the deploy app (one replica, no auth), Healthy."""
    config = AksEndpoint.deploy_configuration(num_replicas=1, auth_enabled=False, max_request_wait_time=WAIT_MS,
                                              version_name=version)
    endpoint = Model.deploy(ws, name, [model], inference_config(APP_VERSION=version), config)
    endpoint.wait_for_deployment(timeout_sec=120)
    return endpoint


def add_version(endpoint: AksEndpoint, name: str, **traffic) -> None:
    """Add version ``name`` (the deploy app answering ``name``) and wait until every version is Healthy."""
    endpoint.create_version(name, inference_config=inference_config(APP_VERSION=name), **traffic)
    endpoint.wait_for_deployment(timeout_sec=120)


@pytest.fixture(scope="module")
def three(ws, model):
    """Endpoint ``three``: ``blue`` (default, control), ``green`` and ``red``. Each test sets the traffic it needs."""
    endpoint = deploy_endpoint(ws, model, "three", "blue")
    add_version(endpoint, "green", traffic_percentile=30)
    add_version(endpoint, "red", traffic_percentile=20)
    return endpoint


def reset(endpoint: AksEndpoint, **percentiles: float) -> None:
    """``blue`` the default and control version, the others at ``percentiles`` (lowered before any is raised, so
    their sum never passes 100 on the way), whatever an earlier test left."""
    endpoint.update_version("blue", is_default=True, is_control_version_type=True)
    current = endpoint.versions
    for name, value in sorted(percentiles.items(), key=lambda item: item[1] - current[item[0]].traffic_percentile):
        endpoint.update_version(name, traffic_percentile=value)


def traffic_to(endpoint: AksEndpoint, threads: int = 4) -> Traffic:
    """Threads scoring ``endpoint`` until the block ends, each answer counted as ``answered_by`` names it."""
    return Traffic(endpoint.scoring_uri, answered_by, threads=threads, request_timeout=60)


def desired(ws, name: str) -> tuple:
    """What the control plane holds as desired for endpoint ``name``: each version's traffic, flags, mirror and
    replica set, its own settings, and its traffic history."""
    endpoint = Webservice(ws, name)
    versions = {v.name: (v.traffic_percentile, v.is_default, v.is_control_version_type, v.mirror_percentile,
                         v.replica_set) for v in endpoint.versions.values()}
    view = endpoint.serialize()
    return versions, view["auth"], view["tags"], view["description"], endpoint.history()


def replica_metrics(ws, endpoint: AksEndpoint, version: str) -> str:
    """The ``/metrics`` page of ``version``'s one replica (asked directly: the front end never answers it)."""
    replica_set = Webservice(ws, endpoint.name).versions[version].replica_set
    state = json.loads((ws._dir.root / "replicas" / endpoint.name / replica_set / "replica-0.json").read_text())
    return httpx.get(f"http://127.0.0.1:{state['port']}/metrics", timeout=10).text


def scored(ws, endpoint: AksEndpoint, version: str, status: int) -> int:
    """How many scoring requests ``version``'s replica answered with ``status``."""
    line = f'modelport_requests_total{{route="/score",status="{status}"}} '
    found = [row for row in replica_metrics(ws, endpoint, version).splitlines() if row.startswith(line)]
    return int(float(found[0][len(line):])) if found else 0


def in_flight(ws, endpoint: AksEndpoint, version: str) -> int:
    rows = [row for row in replica_metrics(ws, endpoint, version).splitlines()
            if row.startswith("modelport_requests_in_flight")]
    return int(float(rows[0].split()[-1])) if rows else 0


def test_the_split_follows_the_percentiles_and_the_default_gets_the_rest(ws, three):
    reset(three, green=30, red=20)
    assert isinstance(Webservice(ws, "three"), AksEndpoint)  # Azure's Webservice(ws, name) gives the endpoint's class
    assert {s.name: type(s) for s in Webservice.list(ws)}["three"] is AksEndpoint
    assert Endpoint is AksEndpoint and isinstance(three, AksEndpoint)
    versions = Webservice(ws, "three").versions
    assert {name: (v.traffic_percentile, v.effective_percentile, v.is_default, v.version_type)
            for name, v in versions.items()} == {
        "blue": (0, 50, True, "Control"), "green": (30, 30, False, "Treatment"), "red": (20, 20, False, "Treatment")}
    with traffic_to(three) as traffic:
        assert traffic.wait_for_phase(SPLIT_REQUESTS)
    answers = traffic.phases[0]
    total = sum(answers.values())
    assert set(answers) == {"blue", "green", "red"}, answers  # nothing failed, every answer named its version
    shares = {version: 100 * answers[version] / total for version in answers}
    for version, expected in (("blue", 50), ("green", 30), ("red", 20)):
        assert abs(shares[version] - expected) <= 3, (shares, total)


def test_a_weight_change_applies_once_it_returns_with_no_failed_request(three):
    reset(three, green=30, red=20)
    with traffic_to(three) as traffic:
        assert traffic.wait_for_phase(100)
        with traffic.change():
            three.update_version("green", traffic_percentile=0)
        assert traffic.wait_for_phase(300)
        with traffic.change():
            three.update_version("red", traffic_percentile=100)
        assert traffic.wait_for_phase(300)
    before, during_first, green_off, during_second, all_red = traffic.phases
    assert set(before) == {"blue", "green", "red"}, before
    assert set(during_first) | set(during_second) <= {"blue", "green", "red"}, traffic.phases  # none failed
    assert set(green_off) == {"blue", "red"}, green_off  # blue 80 %, red 20 %: green gets nothing any more
    assert set(all_red) == {"red"}, all_red  # red 100 %: the default gets what is left, nothing
    assert three.versions["red"].traffic_percentile == 100 and three.versions["blue"].effective_percentile == 0


RULES = {
    "a 7th version": (lambda e: e.create_version("g7", traffic_percentile=0), InvalidInput,
                      "endpoint 'three' would have 7 versions; an endpoint has at most 6: delete one first"),
    "a sum over 100": (lambda e: e.update_version("green", traffic_percentile=80), InvalidInput,
                       "the traffic percentiles of endpoint 'three' add up to 110 (green 80, red 30); their sum may be "
                       "at most 100: lower one first"),
    "a new version over 100": (lambda e: e.create_version("big", traffic_percentile=50), InvalidInput,
                               "the traffic percentiles of endpoint 'three' add up to 110 (green 30, red 30, big 50); "
                               "their sum may be at most 100: lower one first"),
    "deleting the default": (lambda e: e.delete_version("blue"), InvalidInput,
                             "'blue' is the default version of endpoint 'three': make another version the default "
                             "first (SDK: update_version(..., is_default=True); CLI: modelport endpoint version update "
                             "--is-default; Studio: its Default column)"),
    "clearing the only default": (lambda e: e.update_version("blue", is_default=False), InvalidInput,
                                  "'blue' is the default version of endpoint 'three': make another version the "
                                  "default instead of clearing it"),
    "clearing the only control": (lambda e: e.update_version("blue", is_control_version_type=False), InvalidInput,
                                  "'blue' is the control version of endpoint 'three': make another version the "
                                  "control instead of clearing it"),
    "a mirrored version with a share": (lambda e: e.update_version("red", mirror_percentile=10), InvalidInput,
                                        "version 'red' is mirrored (mirror_percentile 10): a mirrored version takes "
                                        "no share of the split, so set its traffic_percentile to 0"),
    "a mirrored default": (lambda e: e.update_version("blue", mirror_percentile=10), InvalidInput,
                           "version 'blue' is mirrored (mirror_percentile 10): a mirrored version takes no share of "
                           "the split, so make another version the default"),
    "a share over 100": (lambda e: e.update_version("green", traffic_percentile=101), InvalidInput,
                         "version 'green': traffic_percentile must be a number from 0 to 100; got 101"),
    "a taken name": (lambda e: e.create_version("green"), InvalidInput,
                     "endpoint 'three' already has a version 'green': update it with update_version, or choose "
                     "another name"),
    "an unknown version": (lambda e: e.update_version("purple", traffic_percentile=1), NotFound,
                           "endpoint 'three' has no version 'purple'; its versions: blue, green, red"),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_a_rule_violation_says_which_rule_and_changes_nothing(ws, three, rule):
    call, error, message = RULES[rule]
    reset(three, green=30, red=30)
    extra = ["d4", "e5", "f6"] if rule == "a 7th version" else []
    for name in extra:
        three.create_version(name)
    try:
        before = desired(ws, "three")
        with pytest.raises(error) as raised:
            call(three)
        assert str(raised.value) == message
        assert desired(ws, "three") == before
    finally:
        for name in extra:
            three.delete_version(name)
    assert list(Webservice(ws, "three").versions) == ["blue", "green", "red"]


def test_the_traffic_of_several_versions_changes_together_or_not_at_all(ws, three):
    """``PUT /services/<name>/traffic`` (Studio's traffic form): one change, one history entry; a broken rule,
    an unknown version or no version changes nothing."""
    reset(three, green=30, red=30)
    url = f"{server.ensure_running(ws._dir)}/api/v1/services/three/traffic"
    headers = {"Authorization": f"Bearer {ws._dir.token()}"}
    before = desired(ws, "three")
    refused = {
        "the sum": ({"green": {"traffic_percentile": 60}, "red": {"traffic_percentile": 50}}, 400,
                    "the traffic percentiles of endpoint 'three' add up to 110 (green 60, red 50); their sum may be "
                    "at most 100: lower one first"),
        "an unknown version": ({"green": {"traffic_percentile": 10}, "teal": {"traffic_percentile": 10}}, 404, "teal"),
        "no version": ({}, 400, "name at least one version of endpoint 'three' whose traffic to change"),
    }
    for case, (versions, status, message) in refused.items():
        answer = httpx.put(url, json={"versions": versions}, headers=headers, timeout=60)
        assert (answer.status_code, message in answer.json()["message"]) == (status, True), (case, answer.text)
        assert desired(ws, "three") == before, case
    answer = httpx.put(url, json={"versions": {"green": {"traffic_percentile": 60}, "red": {
        "traffic_percentile": 10, "is_default": True, "is_control_version_type": True}}}, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    versions = answer.json()["versions"]
    shown = {n: (v["traffic_percentile"], v["is_default"], v["is_control"]) for n, v in versions.items()}
    assert shown == {"blue": (0, False, False), "green": (60, False, False), "red": (10, True, True)}
    *_, last, current = three.history()
    assert (last.percentiles, last.default, last.reason) == ({"blue": 0, "green": 30, "red": 30}, "blue",
                                                             "set traffic of green, red")
    three.rollback()
    assert desired(ws, "three")[0] == before[0]


def test_promote_and_rollback_under_load_lose_no_request(ws, three):
    reset(three, green=0, red=0)  # blue, the default, gets everything
    with traffic_to(three, threads=3) as traffic:
        assert traffic.wait_for_phase(100)
        with traffic.change():
            three.promote("red")
        assert traffic.wait_for_phase(200)
        promoted = three.history()
        with traffic.change():
            three.rollback()
        assert traffic.wait_for_phase(200)
    before, promoting, after_promote, rolling_back, after_rollback = traffic.phases
    assert (set(before), set(after_promote), set(after_rollback)) == ({"blue"}, {"red"}, {"blue"}), traffic.phases
    assert set(promoting) | set(rolling_back) <= {"blue", "red"}, traffic.phases  # no request failed meanwhile
    *_, last, current = promoted
    assert (last.percentiles, last.default, last.control, last.reason) == (
        {"blue": 0, "green": 0, "red": 0}, "blue", "blue", "promote red")
    assert (current.percentiles, current.default, current.control) == ({"blue": 0, "green": 0, "red": 100}, "red",
                                                                      "red")
    *rest, current = three.history()
    assert (current.percentiles, current.default, current.control) == ({"blue": 0, "green": 0, "red": 0}, "blue",
                                                                      "blue")
    assert rest == promoted[:-2]  # the promotion's entry is used up by the rollback
    assert {name: (v.is_default, v.version_type) for name, v in three.versions.items()} == {
        "blue": (True, "Control"), "green": (False, "Treatment"), "red": (False, "Treatment")}


def shadow_app(folder: Path, run_body: str) -> Path:
    """A scoring app whose ``run()`` does ``run_body`` (a shadow that fails or hangs), written into ``folder``."""
    folder.mkdir()
    (folder / "score.py").write_text(f"import os\nimport time\n\n\ndef init():\n    pass\n\n\ndef run(raw_data):\n"
                                     f"{run_body}\n")
    return folder


def test_a_mirrored_version_gets_copies_and_never_changes_answers(ws, model, tmp_path):
    endpoint = deploy_endpoint(ws, model, "mirrored", "blue")
    add_version(endpoint, "shadow", mirror_percentile=100)
    shadow = endpoint.versions["shadow"]
    assert (shadow.mirror_percentile, shadow.traffic_percentile, shadow.effective_percentile) == (100, 0, 0)
    assert endpoint.versions["blue"].effective_percentile == 100

    def copies_of(count: int, version: str, status: int) -> None:
        """Score ``count`` requests: blue answers each; ``version`` gets exactly one copy of each, answering
        ``status``. Scored one at a time until its first copy arrived (mirroring routed), counted from then on."""
        answers: Counter[str] = Counter()
        with httpx.Client(timeout=60) as client:
            def score() -> None:
                answers[answered_by(client.post(endpoint.scoring_uri, json={}))] += 1

            assert wait_until(lambda: score() or scored(ws, endpoint, version, status) > 0, timeout=60)
            start = scored(ws, endpoint, version, status)
            for _ in range(count):
                score()
        assert set(answers) == {"blue"}, answers
        assert wait_until(lambda: scored(ws, endpoint, version, status) >= start + count, timeout=30)
        assert scored(ws, endpoint, version, status) == start + count

    copies_of(30, "shadow", 200)

    failing = shadow_app(tmp_path / "failing", "    raise RuntimeError('the shadow fails on purpose')")
    endpoint.delete_version("shadow")
    endpoint.create_version("failing", inference_config=inference_config(failing), mirror_percentile=100)
    endpoint.wait_for_deployment(timeout_sec=120)
    copies_of(30, "failing", 500)  # its 500s reach no client

    gate = tmp_path / "gate-open"
    hanging = shadow_app(tmp_path / "hanging", f"    while not os.path.exists({str(gate)!r}):\n"
                                               "        time.sleep(0.05)\n    return 'late'")
    endpoint.delete_version("failing")
    endpoint.create_version("hanging", inference_config=inference_config(hanging), mirror_percentile=100)
    endpoint.wait_for_deployment(timeout_sec=120)
    answers: Counter[str] = Counter()
    with httpx.Client(timeout=60) as client:
        def score() -> None:
            answers[answered_by(client.post(endpoint.scoring_uri, json={}))] += 1

        assert wait_until(lambda: score() or in_flight(ws, endpoint, "hanging") == 1, timeout=60)
        for _ in range(20):  # while the shadow still runs a copy: the client's answers do not wait for it
            score()
    assert set(answers) == {"blue"}, answers
    assert in_flight(ws, endpoint, "hanging") == 1
    gate.touch()
    assert wait_until(lambda: in_flight(ws, endpoint, "hanging") == 0, timeout=30)
    endpoint.delete()


def test_endpoint_settings_logs_and_dispatch(ws, model):
    endpoint = deploy_endpoint(ws, model, "settings-ep", "solo")
    assert endpoint.versions["solo"].is_default and endpoint.default_version.name == "solo"
    endpoint.update(description="rollout of solo", tags={"team": "ml"})
    assert (Webservice(ws, "settings-ep").description, Webservice(ws, "settings-ep").tags) == (
        "rollout of solo", {"team": "ml"})
    assert httpx.post(endpoint.scoring_uri, json={}, timeout=30).status_code == 200
    endpoint.update(auth_enabled=True)  # returns once the front end enforces keys
    assert httpx.post(endpoint.scoring_uri, json={}, timeout=30).status_code == 401
    assert endpoint.run({"echo": 7})["echo"] == 7  # with the endpoint's key
    assert "Calling init()" in endpoint.get_logs(version_name="solo")
    with pytest.raises(InvalidInput, match="^update got nothing to change for endpoint 'settings-ep'"):
        endpoint.update()
    endpoint.delete()


def test_cli_round_trip(ws, model, tmp_path):
    (tmp_path / "inferenceconfig.json").write_text(json.dumps({
        "entryScript": "score.py", "sourceDirectory": str(APP),
        "environment": {"name": "endpoint-test-env", "python": {"userManagedDependencies": False,
                                                                "condaDependencies": {"dependencies": []}}}}))

    def modelport(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "modelport.cli.main", *args], cwd=ws.path, capture_output=True,
                              text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})

    def json_of(*args: str):
        result = modelport(*args, "-o", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    # Azure's AKSENDPOINT file, unchanged: versionName blue, trafficPercentile 20, one replica, key auth
    deployed = json_of("model", "deploy", "-n", "cli-ep", "-m", model.id, "--ic",
                       str(tmp_path / "inferenceconfig.json"), "--dc", str(AZURE_ENDPOINT_FILE))
    assert (deployed["kind"], deployed["state"], deployed["auth"]) == ("endpoint", "Healthy", "key")
    blue = deployed["versions"]["blue"]
    assert (blue["traffic_percentile"], blue["effective_percentile"], blue["is_default"]) == (20, 100, True)

    created = json_of("endpoint", "version", "create", "-n", "cli-ep", "--version-name", "green",
                      "--traffic-percentile", "30", "--tag", "stage=canary")
    green = created["versions"]["green"]
    assert (green["traffic_percentile"], green["type"], green["deploy"]["tags"]) == (30, "treatment",
                                                                                    {"stage": "canary"})
    updated = json_of("endpoint", "version", "update", "-n", "cli-ep", "--version-name", "green",
                      "--traffic-percentile", "50", "--is-control-version-type")
    assert {name: (v["traffic_percentile"], v["type"]) for name, v in updated["versions"].items()} == {
        "blue": (20, "treatment"), "green": (50, "control")}
    listed = json_of("endpoint", "version", "list", "-n", "cli-ep")
    assert [(v["name"], v["effective_percentile"]) for v in listed] == [("blue", 50), ("green", 50)]

    refused = modelport("endpoint", "version", "update", "-n", "cli-ep", "--version-name", "green",
                        "--traffic-percentile", "90")
    assert (refused.returncode, refused.stderr.splitlines()) == (1, [
        "Error: the traffic percentiles of endpoint 'cli-ep' add up to 110 (blue 20, green 90); their sum may be at "
        "most 100: lower one first"])
    refused = modelport("endpoint", "version", "create", "-n", "cli-ep", "--version-name", "red",
                        "--auth-enabled", "false")
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1
    assert "--auth-enabled is a setting of the endpoint" in refused.stderr

    promoted = json_of("endpoint", "promote", "cli-ep", "green")
    assert {n: (v["traffic_percentile"], v["is_default"]) for n, v in promoted["versions"].items()} == {
        "blue": (0, False), "green": (100, True)}
    history = json_of("endpoint", "history", "cli-ep")
    assert (history[-2]["reason"], history[-1]["percentiles"]) == ("promote green", {"blue": 0, "green": 100})
    rolled_back = json_of("endpoint", "rollback", "cli-ep")
    assert {n: (v["traffic_percentile"], v["is_default"]) for n, v in rolled_back["versions"].items()} == {
        "blue": (20, True), "green": (50, False)}

    after_delete = json_of("endpoint", "version", "delete", "-n", "cli-ep", "--version-name", "green")
    assert list(after_delete["versions"]) == ["blue"]
    shown = json_of("endpoint", "show", "-n", "cli-ep")
    assert (shown["name"], list(shown["versions"])) == ("cli-ep", ["blue"])
    assert "Calling init()" in modelport("endpoint", "logs", "-n", "cli-ep").stdout
    assert "pip install" in modelport("service", "logs", "-n", "cli-ep", "--init").stdout  # its environment's build
    assert "cli-ep" in [e["name"] for e in json_of("endpoint", "list")]
    deleted = modelport("endpoint", "delete", "-n", "cli-ep")
    assert deleted.returncode == 0, deleted.stderr
    assert "cli-ep" not in [s.name for s in Webservice.list(ws)]
