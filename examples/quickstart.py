"""The quickstart: train a model, register it, deploy it locally with key auth, score it.

Run from the project root: ``.venv/bin/python examples/quickstart.py``. Everything runs on
this machine (no Docker): a workspace in a new folder, its control plane started in the
background, an environment built with uv, the Envoy front end and one replica. The service
keeps running so that the printed curl line and logs command work when pasted; the last
lines say how to delete it. ``--cleanup`` deletes it (and stops the control plane) at the end.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

import httpx
import joblib
import numpy
import sklearn
from sklearn.datasets import load_breast_cancer

from modelport import AksWebservice, CondaDependencies, Environment, InferenceConfig, Model, Workspace
from modelport.api import server

HERE = Path(__file__).parent / "sklearn-breast-cancer"
sys.path.insert(0, str(HERE))
from train import train  # noqa: E402

SERVICE = "breast-cancer"


def cli_line(folder: Path, *args: str) -> str:
    """A ``modelport`` command line for this workspace that works when pasted into a shell.

    ``modelport`` when that is this environment's command on PATH, else the command's full path (a venv
    that is not activated), else ``python -m modelport.cli.main``.
    """
    beside = Path(sys.executable).parent / "modelport"
    if shutil.which("modelport") == str(beside):
        program = "modelport"
    elif beside.exists():
        program = shlex.quote(str(beside))
    else:
        program = f"{shlex.quote(sys.executable)} -m modelport.cli.main"
    return f"{program} {shlex.join([*args, '-w', str(folder)])}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cleanup", action="store_true",
                        help="delete the service and stop the control plane at the end")
    cleanup = parser.parse_args().cleanup
    folder = Path(tempfile.mkdtemp(prefix="modelport-quickstart-"))
    print(f"1. creating a workspace in {folder}")
    ws = Workspace.create("quickstart", folder)
    try:
        print("2. training a scikit-learn model on the bundled breast-cancer data and registering it")
        model = Model.register(ws, train(folder / "model"), "breast-cancer", tags={"source": "quickstart"})
        print(f"   registered {model.id}")
        env = Environment("breast-cancer-env")
        env.python.conda_dependencies = CondaDependencies.create(pip_packages=[
            f"scikit-learn=={sklearn.__version__}", f"joblib=={joblib.__version__}", f"numpy=={numpy.__version__}",
            "inference-schema[numpy-support]"])
        print("3. deploying it as a local web service with key auth (the first run builds its environment)")
        service = Model.deploy(ws, SERVICE, [model],
                               InferenceConfig("score.py", source_directory=HERE, environment=env),
                               AksWebservice.deploy_configuration(num_replicas=1), overwrite=True)
        service.wait_for_deployment(show_output=True, timeout_sec=900)
        rows = load_breast_cancer().data[:2].tolist()
        body = json.dumps({"data": rows})
        anonymous = httpx.post(service.scoring_uri, content=body, headers={"Content-Type": "application/json"})
        print(f"4. without a key: HTTP {anonymous.status_code} {anonymous.json()}")
        print(f"   with the key:  {service.run(body)}")
        key = service.get_keys()[0]
        print(f"\nScoring URL: {service.scoring_uri}")
        print("Try it:", f"curl -X POST {service.scoring_uri} -H 'Content-Type: application/json' "
              f"-H 'Authorization: Bearer {key}' -d {shlex.quote(json.dumps({'data': rows[:1]}))}")
        print(f"Logs: {cli_line(folder, 'service', 'logs', '-n', SERVICE)}")
        print(f"      (replica logs under {folder / '.modelport' / 'replicas' / SERVICE})")
    finally:
        service = ws.webservices.get(SERVICE)
        if cleanup:
            if service is not None:
                service.delete()
            server.stop(ws._dir)
            print("\nService deleted and control plane stopped.")
        elif service is not None:
            print(f"\nThe service keeps running. Delete it and stop the control plane: "
                  f"{cli_line(folder, 'service', 'delete', '-n', SERVICE)} && {cli_line(folder, 'server', 'stop')}")
        else:
            print(f"\nThe control plane keeps running. Stop it: {cli_line(folder, 'server', 'stop')}")

if __name__ == "__main__":
    main()
