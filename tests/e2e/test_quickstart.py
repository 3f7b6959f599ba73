"""The README's main job runs end to end: train, serve, score, stop."""

import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_quickstart_scores_the_example_model():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")],
                            capture_output=True, text=True, timeout=120,
                            env={"QUICKSTART_PORT": str(free_port()), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3. scored 2 rows: [0, 0]  (HTTP 200)" in result.stdout
    assert "curl -X POST http://127.0.0.1:" in result.stdout
    assert "Server stopped." in result.stdout
