"""The CLI's output where stdout and stderr are pipes (CI logs, scripts), and its request bodies.

Off a terminal: progress lines as the deploy goes (one per change, with seconds), never wrapped, no
escape codes; tables tab-separated and whole; a Failed service's reason on one line in tables and whole
in ``service show``; ``service run -d -`` reads standard input and ``-d @file`` a file, as curl does.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path

import click
import pytest

from modelport import Environment, Model, Webservice, Workspace
from modelport.api import server
from modelport.sdk.progress import BUILD_LOG_PREFIX

SERVICE = "a-long-service-name-for-tables"
FAILING = "failing-svc"
SCORE_PY = '''
import json, os, time

def init():
    release = os.environ.get("RELEASE_FILE")
    deadline = time.monotonic() + 120
    while release and not os.path.exists(release) and time.monotonic() < deadline:
        time.sleep(0.05)
    if os.environ.get("FAIL_INIT"):
        print("\\x1b[33mloading the weights\\x1b[0m", flush=True)
        raise RuntimeError("\\x1b[1mthe weights are corrupt\\x1b[0m")

def run(raw_data):
    return json.loads(raw_data)
'''
pytestmark = pytest.mark.timeout(600)  # the first deploy builds the test environment
PROGRESS = re.compile(r"^[a-z-]+: (Transitioning|Healthy|Failed|Unhealthy)( - .+)? \(\d+ s\)$")


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ws")
    workspace = Workspace.create("outputws", folder)
    (folder / "app").mkdir()
    (folder / "app" / "score.py").write_text(SCORE_PY)
    (folder / "weights.txt").write_text("w")
    Model.register(workspace, folder / "weights.txt", "weights")
    yield workspace
    for service in Webservice.list(workspace):
        service.delete()
    server.stop(workspace._dir)


def inference_config(folder: Path, **variables: str) -> Path:
    env = Environment("output-test-env")
    env.environment_variables = variables
    path = folder / f"inferenceconfig-{len(variables)}.json"
    path.write_text(json.dumps({"entryScript": "score.py", "sourceDirectory": str(folder / "app"),
                                "environment": env._to_dict()}))
    return path


def modelport(ws, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelport.cli.main", *args], cwd=ws.path, input=stdin,
                          capture_output=True, text=True, timeout=300)


def lines_of(stream) -> queue.Queue:
    """The lines of a pipe as they arrive (None at its end), read by a thread."""
    arrived: queue.Queue = queue.Queue()

    def read() -> None:
        for line in stream:
            arrived.put(line.rstrip("\n"))
        arrived.put(None)

    threading.Thread(target=read, daemon=True).start()
    return arrived


@pytest.fixture(scope="module")
def deployed(ws):
    """``model deploy`` with pipes for stdout and stderr, its replica held in init() until the test sees
    a progress line: returns the progress lines, the table it printed, and the line seen while it ran."""
    release = ws.path / "release"
    process = subprocess.Popen(
        [sys.executable, "-m", "modelport.cli.main", "model", "deploy", "-n", SERVICE, "-m", "weights:1",
         "--ic", str(inference_config(ws.path, RELEASE_FILE=str(release))), "--dc", str(_deploy_config(ws.path))],
        cwd=ws.path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    progress = lines_of(process.stderr)
    seen = []
    try:
        while not (seen and "init() running" in seen[-1]):
            line = progress.get(timeout=240)
            assert line is not None, f"deploy ended before init() ran: {seen} {process.stdout.read()}"
            seen.append(line)
        running_while_seen = process.poll() is None
    finally:
        release.write_text("go")
    try:
        process.wait(timeout=240)  # stdout holds one small table: it cannot fill the pipe meanwhile
    finally:
        process.kill()
        while (line := progress.get(timeout=30)) is not None:
            seen.append(line)
    table = process.stdout.read()
    assert process.returncode == 0, seen
    return {"progress": seen, "table": table, "running_while_seen": running_while_seen}


def _deploy_config(folder: Path) -> Path:
    path = folder / "deploymentconfig.json"
    path.write_text(json.dumps({"computeType": "aks", "authEnabled": False, "numReplicas": 1,
                                "autoScaler": {"autoscaleEnabled": False}}))
    return path


def test_deploy_reports_progress_while_it_runs_as_plain_lines(deployed):
    assert deployed["running_while_seen"]  # the line came while init() was still held: not at the end
    build = [line for line in deployed["progress"] if line.startswith(BUILD_LOG_PREFIX)]
    progress = [line for line in deployed["progress"] if not line.startswith(BUILD_LOG_PREFIX)]
    assert any("pip install" in line for line in build), deployed["progress"]  # the environment's build, streamed
    assert all(PROGRESS.match(line) for line in progress), progress
    assert len(progress) == len(set(line.rsplit(" (", 1)[0] for line in progress))  # one line per change
    assert progress[-1].startswith(f"{SERVICE}: Healthy - http://127.0.0.1:")
    assert not any("\x1b" in line for line in progress)


def test_deploy_table_is_tab_separated_and_whole(ws, deployed):
    service = Webservice(ws, SERVICE)
    header, row = deployed["table"].splitlines()
    assert header.split("\t") == ["name", "state", "scoring_uri", "models", "error"]
    assert row.split("\t") == [SERVICE, "Healthy", service.scoring_uri, "weights:1", ""]
    assert len(row) > 80  # longer than the width a non-terminal table used to be cut at


def test_service_run_reads_stdin_for_dash_and_a_file_after_at(ws, deployed):
    piped = modelport(ws, "service", "run", "-n", SERVICE, "-d", "-", stdin='{"from": "stdin"}')
    assert (piped.returncode, json.loads(piped.stdout)) == (0, {"from": "stdin"}), piped.stderr
    (ws.path / "body.json").write_text('{"from": "file"}')
    from_file = modelport(ws, "service", "run", "-n", SERVICE, "-d", "@body.json")
    assert (from_file.returncode, json.loads(from_file.stdout)) == (0, {"from": "file"}), from_file.stderr


def test_service_run_with_a_missing_file_is_one_line(ws, deployed):
    result = modelport(ws, "service", "run", "-n", SERVICE, "-d", "@missing.json")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == ("Error: cannot read the input file 'missing.json': No such file or directory; give an "
                             "existing file after @, - for standard input, or the JSON text itself\n")


@pytest.fixture(scope="module")
def failed(ws):
    """A service whose init() prints a coloured line and raises with escape codes in its message."""
    result = modelport(ws, "model", "deploy", "-n", FAILING, "-m", "weights:1",
                       "--ic", str(inference_config(ws.path, FAIL_INIT="1", RELEASE_FILE="")),
                       "--dc", str(_deploy_config(ws.path)))
    assert result.returncode == 1
    return result


CAUSE = "RuntimeError: the weights are corrupt"


def headline(failed: subprocess.CompletedProcess) -> str:
    """The first line of the reason (the control plane's summary, introducing the log tail)."""
    error = failed.stderr.split(f"Error: service {FAILING} is Failed: ", 1)[1]
    assert error.splitlines()[0].startswith("init() of the entry script failed in 1 replica(s)")
    return error.splitlines()[0]


def test_a_failed_deploy_ends_with_a_one_line_reason(failed):
    output, error = failed.stderr.split(f"Error: service {FAILING} is Failed: ", 1)
    progress = [line for line in output.splitlines() if not line.startswith(BUILD_LOG_PREFIX)]
    assert all(PROGRESS.match(line) for line in progress), output
    assert re.fullmatch(rf"{FAILING}: Failed - {re.escape(headline(failed))} {CAUSE} \(\d+ s\)", progress[-1])
    assert CAUSE in error  # the error itself carries the whole tail


def test_service_list_shows_a_one_line_reason_without_escapes(ws, deployed, failed):
    table = modelport(ws, "service", "list").stdout
    rows = {row.split("\t")[0]: row.split("\t") for row in table.splitlines()[1:]}
    assert sorted(rows) == [SERVICE, FAILING]
    assert rows[FAILING][1] == "Failed"
    assert rows[FAILING][4] == f"{headline(failed)} {CAUSE}"
    assert "\x1b" not in table


def test_service_show_and_json_carry_the_whole_tail(ws, failed):
    whole = json.loads(modelport(ws, "service", "show", "-n", FAILING, "-o", "json").stdout)["error"]
    assert "loading the weights" in whole and "Traceback" in whole
    shown = modelport(ws, "service", "show", "-n", FAILING).stdout
    assert shown.split("\nerror:\n", 1)[1].rstrip("\n") == click.unstyle(whole).rstrip("\n")  # no escapes in a pipe
    assert "\x1b" in whole and "\x1b" not in shown
    assert "Traceback" in Webservice(ws, FAILING).get_logs()
