"""``modelport serve`` refuses bad input with one clear line and a non-zero exit."""

import socket
import subprocess
import sys

from tests.conftest import script


def serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelport.cli.main", "serve", *args],
                          capture_output=True, text=True, timeout=60)


def test_missing_entry_script():
    result = serve("--entry-script", "/nonexistent/score.py")
    assert result.returncode == 2
    assert "entry script /nonexistent/score.py" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve("--entry-script", script("score_plain.py"), "--port", str(port))
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr


def test_script_without_run():
    result = serve("--entry-script", script("score_no_run.py"), "--port", "0")
    assert result.returncode == 3
    assert "has no run() function" in result.stdout  # the server's log goes to stdout, as the reference's
