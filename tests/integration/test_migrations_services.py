"""A deployed service survives every schema revision: a ``services`` row (with the models it uses)
written at the oldest revision that has the table is carried, intact, through each later revision
to head, and the store (and what the reconciler reads of it) can use it there.

SQLite always; PostgreSQL with ``MODELPORT_TEST_POSTGRES_URL``, as ``test_store.py``.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from modelport.environments.spec import EnvironmentSpec
from modelport.errors import Conflict
from modelport.sdk.deploy_config import DeploymentConfig
from modelport.spec import Endpoint, EndpointVersion, ModelRef
from modelport.store.db import Store
from modelport.store.engine import alembic_config

from .test_store import SHA_A, SHA_B, fresh_database, sql_engine

SCRIPT = ScriptDirectory.from_config(alembic_config())
REVISIONS = [r.revision for r in reversed(list(SCRIPT.walk_revisions()))]  # oldest first
HEAD = SCRIPT.get_current_head()
ENDPOINTS = "0004_endpoints"  # from here on a service's config is an endpoint (spec.Endpoint)
CREATED = datetime(2024, 5, 1, 12, 0, 0)
UPDATED = datetime(2024, 5, 2, 8, 30, 0)

MODELS = sa.table("models", sa.column("name"), sa.column("version"), sa.column("description"),
                  sa.column("tags", sa.JSON), sa.column("properties", sa.JSON), sa.column("artifact_sha256"),
                  sa.column("artifact_kind"), sa.column("artifact_name"), sa.column("size_bytes"),
                  sa.column("created_at", sa.DateTime(timezone=True)))
SNAPSHOTS = sa.table("snapshots", sa.column("sha256"), sa.column("file_count"), sa.column("size_bytes"),
                     sa.column("created_at", sa.DateTime(timezone=True)))
SERVICES = sa.table("services", sa.column("name"), sa.column("state"), sa.column("config", sa.JSON),
                    sa.column("created_at", sa.DateTime(timezone=True)),
                    sa.column("updated_at", sa.DateTime(timezone=True)))
SERVICE_MODELS = sa.table("service_models", sa.column("service_name"), sa.column("model_name"),
                          sa.column("model_version"))


def service_config() -> dict:
    """A service's stored config, as the services API writes it: key auth, 2 replicas, one model."""
    deploy = DeploymentConfig.from_settings({"num_replicas": 2, "auth_enabled": True, "cpu_cores": 0.5,
                                             "memory_gb": 1.0, "scoring_timeout_ms": 60000}).to_settings()
    environment = EnvironmentSpec.from_dict({"name": "sklearn-env", "python": {"condaDependencies": {
        "dependencies": ["python=3.11", {"pip": ["scikit-learn==1.5.0"]}]}},
        "environmentVariables": {"MODEL_MODE": "fast"}}).to_dict()
    return {"generation": 3, "entry_script": "score.py", "snapshot": SHA_B, "environment": environment,
            "deploy": deploy, "keys": {"primary": "primary-key-0001", "secondary": "secondary-key-0002"},
            "models": [{"name": "sklearn-mnist", "version": 1, "artifact_sha256": SHA_A, "artifact_kind": "file",
                        "artifact_name": "model.pkl"}], "gpus": []}


def as_endpoint(config: dict) -> dict:
    """The same service as revision 0004 stores it: a web service, its one version named ``default``."""
    model = config["models"][0]
    version = EndpointVersion("default", (ModelRef(**model),), config["entry_script"], config["snapshot"],
                              config["environment"], config["deploy"], generation=config["generation"],
                              is_default=True, is_control=True)
    return Endpoint("mnist-svc", (version,), kind="webservice", auth="key", keys=config["keys"]).to_dict()


def oldest_revision_with_services(engine) -> str:
    """Upgrade an empty database one revision at a time until the services table exists."""
    for revision in REVISIONS:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), revision)
            if "services" in sa.inspect(connection).get_table_names():
                return revision
    raise AssertionError(f"no revision of {REVISIONS} creates the services table")


def write_deployed_service(engine, config: dict) -> None:
    """What a deploy left behind: the model, the snapshot, the service and the model it uses."""
    with engine.begin() as connection:
        connection.execute(sa.insert(MODELS).values(
            name="sklearn-mnist", version=1, description="digits", tags={"stage": "prod"}, properties={},
            artifact_sha256=SHA_A, artifact_kind="file", artifact_name="model.pkl", size_bytes=1234,
            created_at=CREATED))
        connection.execute(sa.insert(SNAPSHOTS).values(sha256=SHA_B, file_count=2, size_bytes=800,
                                                       created_at=CREATED))
        connection.execute(sa.insert(SERVICES).values(name="mnist-svc", state="Healthy", config=config,
                                                      created_at=CREATED, updated_at=UPDATED))
        connection.execute(sa.insert(SERVICE_MODELS).values(service_name="mnist-svc", model_name="sklearn-mnist",
                                                            model_version=1))


def stored_service(engine) -> tuple:
    """The service row and its model links, read under the store."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(SERVICES.c.name, SERVICES.c.state, SERVICES.c.config)).all()
        links = connection.execute(sa.select(SERVICE_MODELS)).all()
    return [tuple(row) for row in rows], [tuple(link) for link in links]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_services_row_is_carried_through_every_revision_and_usable_at_head(backend, tmp_path):
    config = service_config()
    with fresh_database(backend, tmp_path) as url:
        engine = sql_engine(url)
        oldest = oldest_revision_with_services(engine)
        write_deployed_service(engine, config)
        expected = ([("mnist-svc", "Healthy", config)], [("mnist-svc", "sklearn-mnist", 1)])
        later = REVISIONS[REVISIONS.index(oldest) + 1:]
        assert later, "only one revision: nothing to carry the row through"
        for revision in later:
            with engine.begin() as connection:
                command.upgrade(alembic_config(connection), revision)
            if revision == ENDPOINTS:
                expected = ([("mnist-svc", "Healthy", as_endpoint(config))], expected[1])
            assert stored_service(engine) == expected, f"after upgrading to {revision}"
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_heads() == (HEAD,)
        engine.dispose()
        check_usable_at_head(url, config)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_store_opened_on_the_oldest_services_revision_migrates_the_row_on_open(backend, tmp_path):
    config = service_config()
    with fresh_database(backend, tmp_path) as url:
        engine = sql_engine(url)
        oldest_revision_with_services(engine)
        write_deployed_service(engine, config)
        engine.dispose()
        check_usable_at_head(url, config)  # Store() upgrades to head as it opens


def check_usable_at_head(url: str, config: dict) -> None:
    with Store(url) as store:
        [record] = store.list_services()
        assert (record.name, record.state, record.config, record.status) == (
            "mnist-svc", "Healthy", as_endpoint(config), {})
        assert (record.created_at, record.updated_at) == (CREATED.replace(tzinfo=timezone.utc),
                                                          UPDATED.replace(tzinfo=timezone.utc))
        # what the reconciler and the API read of it
        endpoint = record.endpoint
        version = endpoint.default_version
        assert (DeploymentConfig.from_settings(version.deploy).num_replicas, endpoint.auth) == (2, "key")
        assert EnvironmentSpec.from_dict(version.environment).environment_variables == {"MODEL_MODE": "fast"}
        assert (version.replica_set, [m.id for m in version.models]) == ("default-3", ["sklearn-mnist:1"])
        # the model link survived: the model cannot be deleted under the service
        with pytest.raises(Conflict, match="used by service\\(s\\) 'mnist-svc'"):
            store.delete_model("sklearn-mnist", 1)
        # the columns added since (status) work on the carried row
        store.set_service_status("mnist-svc", "Healthy", {"ready_replicas": 2, "reason": ""})
        assert store.get_service("mnist-svc").status == {"ready_replicas": 2, "reason": ""}
        newer = endpoint.with_versions([EndpointVersion(**{**vars(version), "generation": 4})])
        updated = store.put_service("mnist-svc", newer.to_dict(), [("sklearn-mnist", 1)], create=False)
        assert (updated.state, updated.endpoint.default_version.generation, updated.created_at) == (
            "Transitioning", 4, CREATED.replace(tzinfo=timezone.utc))
        store.delete_service("mnist-svc")
        assert store.list_services() == []
        assert store.delete_model("sklearn-mnist", 1).id == "sklearn-mnist:1"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_endpoint_revision_goes_back_to_the_web_service_config(backend, tmp_path):
    config = service_config()
    with fresh_database(backend, tmp_path) as url:
        engine = sql_engine(url)
        oldest_revision_with_services(engine)
        write_deployed_service(engine, config)
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), ENDPOINTS)
            command.downgrade(alembic_config(connection), REVISIONS[REVISIONS.index(ENDPOINTS) - 1])
        assert stored_service(engine)[0] == [("mnist-svc", "Healthy", {**config, "source_directory": None})]
        engine.dispose()
