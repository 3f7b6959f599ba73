"""A workspace made before endpoints opens and keeps serving: its web service's running replicas (an earlier
modelport named their replica set ``v<generation>``) take the traffic until the new ``default-<generation>``
replica set is ready, with no failed request, and are retired after."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import sqlalchemy
from alembic import command

from modelport import AksWebservice, Environment, InferenceConfig, Model, Webservice
from modelport.api import server
from modelport.store.engine import alembic_config
from tests.processes import replica_states
from tests.traffic import Traffic, wait_until

APP = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_app"


def test_a_web_service_of_the_earlier_schema_keeps_serving_through_the_upgrade(new_workspace, tmp_path):
    ws = new_workspace("upgradews")
    weights = tmp_path / "weights.txt"
    weights.write_text("w-old")
    model = Model.register(ws, weights, "echo-model")
    env = Environment("upgrade-env")
    env.environment_variables = {"INIT_DELAY_S": "1"}
    service = Model.deploy(ws, "old-svc", [model], InferenceConfig("score.py", source_directory=APP, environment=env),
                           AksWebservice.deploy_configuration(num_replicas=1, auth_enabled=False))
    service.wait_for_deployment(timeout_sec=120)
    running = replica_states(ws, "old-svc")["default-1/replica-0"]

    # make it what an earlier modelport left: the services row in the web-service schema (revision 0003)
    # and the replica set folders named v<generation>; the replica process itself keeps running
    os.kill(server.read_info(ws._dir)["pid"], signal.SIGKILL)
    engine = sqlalchemy.create_engine(ws._dir.store_url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0003_service_status")
    engine.dispose()
    root = ws._dir.root
    (root / "replicas" / "old-svc" / "default-1").rename(root / "replicas" / "old-svc" / "v1")
    (root / "services" / "old-svc" / "default-1").rename(root / "services" / "old-svc" / "v1")

    with Traffic(service.scoring_uri) as traffic:
        assert traffic.wait_for_ok(20)
        assert Webservice(ws, "old-svc").state in ("Healthy", "Transitioning")  # starts the new control plane
        assert wait_until(lambda: set(replica_states(ws, "old-svc")) == {"default-1/replica-0"}, timeout=60), \
            replica_states(ws, "old-svc")
        assert traffic.wait_for_ok(20)
    assert traffic.failed == 0, traffic.summary()
    assert Webservice(ws, "old-svc").state == "Healthy"
    assert replica_states(ws, "old-svc")["default-1/replica-0"]["pid"] != running["pid"]  # v1 retired, replaced
