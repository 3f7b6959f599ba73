"""The README's main job runs end to end: train, register, deploy with key auth, score; the lines it prints
(curl, logs, delete) work when pasted while the service keeps running, and ``--cleanup`` leaves nothing behind."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from modelport import processes
from modelport.api import server
from modelport.api.workspace_dir import WorkspaceDir

ROOT = Path(__file__).resolve().parents[2]


def quickstart(tmp_path: Path, *args: str) -> tuple[str, Path]:
    """Run the quickstart with its workspace under ``tmp_path``; return its stdout and workspace folder."""
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), *args], capture_output=True,
                            text=True, timeout=900, env={**os.environ, "TMPDIR": str(tmp_path)})
    folder = re.search(r"^1\. creating a workspace in (.+)$", result.stdout, re.MULTILINE)
    assert folder, result.stdout + result.stderr
    workspace = Path(folder.group(1))
    if result.returncode != 0:
        stop_everything(workspace)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, workspace


def stop_everything(folder: Path) -> None:
    """Teardown whatever the quickstart left running in its workspace."""
    from modelport import Webservice, Workspace

    workspace = Workspace.from_config(folder)
    for service in Webservice.list(workspace):
        service.delete()
    server.stop(WorkspaceDir.at(folder))


def processes_of(folder: Path) -> list[str]:
    """Command lines of the live processes started for the workspace in ``folder`` (control plane, Envoy,
    replicas: each names a path inside it)."""
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    return [processes.cmdline(pid) for pid in pids if processes.running(pid, marker=str(folder))]


def printed(output: str, label: str) -> str:
    match = re.search(rf"^{label}\s*(.+)$", output, re.MULTILINE)
    assert match, f"no line starting with {label!r} in:\n{output}"
    return match.group(1)


def shell(line: str) -> subprocess.CompletedProcess:
    return subprocess.run(line, shell=True, capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(900)  # the first run builds the example's environment (scikit-learn)
def test_quickstart_keeps_the_service_and_its_printed_lines_work(tmp_path):
    output, folder = quickstart(tmp_path)
    try:
        assert "without a key: HTTP 401" in output
        assert "with the key:  [0, 0]" in output
        assert printed(output, "Scoring URL:").startswith("http://127.0.0.1:")
        scored = shell(printed(output, "Try it:"))
        assert (scored.returncode, json.loads(scored.stdout)) == (0, [0]), scored.stderr
        logs = shell(printed(output, "Logs:"))
        assert logs.returncode == 0, logs.stderr
        assert "is ready to serve (init() finished)" in logs.stdout
        delete = shell(printed(output, "The service keeps running. Delete it and stop the control plane:"))
        assert delete.returncode == 0, delete.stderr
        assert delete.stdout.splitlines() == ["Deleted breast-cancer.", "Stopped."]
        assert processes_of(folder) == []
    finally:
        if server.status(WorkspaceDir.at(folder))["running"]:
            stop_everything(folder)


@pytest.mark.timeout(900)
def test_quickstart_cleanup_leaves_nothing_running(tmp_path):
    output, folder = quickstart(tmp_path, "--cleanup")
    assert "with the key:  [0, 0]" in output
    assert output.rstrip().endswith("Service deleted and control plane stopped.")
    assert processes_of(folder) == []
