"""The quickstart: train a model, register it, deploy it locally with key auth, score it.

Run from the project root: ``.venv/bin/python examples/quickstart.py``. Everything runs on
this machine (no Docker): a workspace in a new folder, its control plane started in the
background, an environment built with uv, the Envoy front end and one replica. Pass
``--keep`` to leave the service running; otherwise it is deleted at the end.
"""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
from pathlib import Path

import httpx
import joblib
import numpy
import sklearn
from sklearn.datasets import load_breast_cancer

from modelport import AksWebservice, CondaDependencies, Environment, InferenceConfig, Model, Webservice, Workspace
from modelport.api import server

HERE = Path(__file__).parent / "sklearn-breast-cancer"
sys.path.insert(0, str(HERE))
from train import train  # noqa: E402

SERVICE = "breast-cancer"


def main() -> None:
    keep = "--keep" in sys.argv
    folder = Path(tempfile.mkdtemp(prefix="modelport-quickstart-"))
    print(f"1. creating a workspace in {folder}")
    ws = Workspace.create("quickstart", folder)
    print("2. training a scikit-learn model on the bundled breast-cancer data and registering it")
    model = Model.register(ws, train(folder / "model"), "breast-cancer", tags={"source": "quickstart"})
    print(f"   registered {model.id}")
    env = Environment("breast-cancer-env")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=[
        f"scikit-learn=={sklearn.__version__}", f"joblib=={joblib.__version__}", f"numpy=={numpy.__version__}",
        "inference-schema[numpy-support]"])
    print("3. deploying it as a local web service with key auth (the first run builds its environment)")
    service = Model.deploy(ws, SERVICE, [model], InferenceConfig("score.py", source_directory=HERE, environment=env),
                           AksWebservice.deploy_configuration(num_replicas=1), overwrite=True)
    try:
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
        print(f"Logs: `modelport service logs -n {SERVICE} -w {folder}` (replica logs under "
              f"{folder / '.modelport' / 'replicas' / SERVICE})")
    finally:
        if keep:
            print(f"\nThe service keeps running. Stop it: modelport service delete -n {SERVICE} -w {folder} "
                  f"&& modelport server stop -w {folder}")
        else:
            Webservice(ws, SERVICE).delete()
            server.stop(ws._dir)
            print("\nService deleted and control plane stopped. Pass --keep to leave them running.")


if __name__ == "__main__":
    main()
