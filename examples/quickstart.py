"""The quickstart: train a small model, serve its Azure ML score.py with modelport, score it.

Run from the project root: ``.venv/bin/python examples/quickstart.py``. It starts the scoring
runtime (``modelport serve``) in the background, waits until it is ready, scores two rows,
prints a curl line you can paste, and stops the server (pass --keep to leave it running).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).parent / "sklearn-breast-cancer"
sys.path.insert(0, str(HERE))
from train import train  # noqa: E402


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited with {process.returncode}; its log:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    sys.exit(f"the server did not become ready in {timeout} s; its log:\n{log.read_text()}")


def main() -> None:
    keep = "--keep" in sys.argv
    port = int(os.environ.get("QUICKSTART_PORT", "5001"))
    work = Path(tempfile.mkdtemp(prefix="modelport-quickstart-"))
    print("1. training a scikit-learn model on the bundled breast-cancer data ...")
    model_file = train(work / "model")
    log = work / "server.log"
    print(f"2. serving score.py with modelport on port {port} (log: {log}) ...")
    command = [sys.executable, "-m", "modelport.runtime", "--entry-script", str(HERE / "score.py"),
               "--model", f"breast-cancer:1={model_file}", "--port", str(port)]
    with open(log, "wb") as log_file:
        server = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=keep)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, server, log)
        from sklearn.datasets import load_breast_cancer

        rows = load_breast_cancer().data[:2].tolist()
        body = json.dumps({"data": rows}).encode()
        request = urllib.request.Request(f"{url}/score", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            print(f"3. scored 2 rows: {json.loads(response.read())}  (HTTP {response.status})")
        with urllib.request.urlopen(f"{url}/swagger.json", timeout=10) as response:
            swagger = json.loads(response.read())
        print(f"   swagger input schema: {json.dumps(swagger['definitions']['ServiceInput'])[:80]}...")
        print("\nScoring URL:", f"{url}/score")
        print("Try it:", f"curl -X POST {url}/score -H 'Content-Type: application/json' "
              f"-d '{json.dumps({'data': rows[:1]})}'")
        print("Server log:", log)
    finally:
        if keep:
            print(f"\nThe server keeps running (pid {server.pid}); stop it with: kill {server.pid}")
        else:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
            print("\nServer stopped. Pass --keep to leave it running.")


if __name__ == "__main__":
    main()
