"""The workspace store against real databases: a SQLite file and a PostgreSQL server.

PostgreSQL comes from ``MODELPORT_TEST_POSTGRES_URL`` (``.ci/postgres.sh`` starts one and
prints it); each test gets a database of its own. Without the variable the PostgreSQL
cases skip locally and fail in CI.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from modelport.errors import Conflict, InvalidInput, NotFound, ServerUnavailable
from modelport.store.db import Store
from modelport.store.engine import alembic_config
from modelport.store.models import Base, Snapshot

POSTGRES_ENV = "MODELPORT_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgresql"]
SHA_A, SHA_B, SHA_C = "a" * 64, "b" * 64, "c" * 64
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def postgres_server_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        reason = f'{POSTGRES_ENV} is not set; run eval "$(.ci/postgres.sh | tail -n 1)" first'
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return url


@contextmanager
def fresh_database(backend: str, tmp_path) -> Iterator[str]:
    """The URL of an empty database: a new SQLite file, or a new database on the PostgreSQL server."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'modelport.db'}"
        return
    server = make_url(postgres_server_url())
    name = f"modelport_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def store(store_url) -> Iterator[Store]:
    with Store(store_url) as opened:
        yield opened


def sql_engine(url: str):
    """A plain engine on the same database, for looking under the store."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed)


def register(store: Store, name: str = "mnist", sha: str = SHA_A, **extra):
    return store.register_model(name, sha, "file", "model.pkl", 1234, **extra)


# opening, schema and migrations


def test_opening_an_empty_database_creates_the_schema_at_head(store, store_url):
    engine = sql_engine(store_url)
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_heads() == (HEAD,)
        assert {"models", "environments", "snapshots", "compute_targets", "services", "service_models"} <= set(
            inspect(connection).get_table_names())
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


def test_a_database_at_revision_0001_is_migrated_on_open_and_keeps_its_data(store_url):
    engine = sql_engine(store_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001_initial")
        assert "compute_targets" not in inspect(connection).get_table_names()
        connection.execute(text(
            "INSERT INTO models (name, version, description, tags, properties, artifact_sha256, artifact_kind,"
            " artifact_name, size_bytes, created_at) VALUES ('old', 1, 'from 0001', '{\"stage\": \"prod\"}', '{}',"
            " :sha, 'folder', 'weights', 42, :created)"), {"sha": SHA_A, "created": datetime(2024, 5, 1, 12, 0)})
    engine.dispose()

    with Store(store_url) as store:
        model = store.get_model("old")
        assert (model.id, model.description, model.tags, model.artifact_kind, model.size_bytes) == (
            "old:1", "from 0001", {"stage": "prod"}, "folder", 42)
        assert model.created_at == datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
        assert store.register_model("old", SHA_B, "file", "w.pkl", 1).version == 2
        assert store.put_compute_target("local-1", "local", {}).name == "local-1"
    engine = sql_engine(store_url)
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_heads() == (HEAD,)
    engine.dispose()


def test_the_revisions_downgrade_and_upgrade_again(store, store_url):
    engine = sql_engine(store_url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0001_initial")
    with engine.connect() as connection:
        assert "compute_targets" not in inspect(connection).get_table_names()
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    with engine.connect() as connection:
        assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    with Store(store_url) as reopened:
        assert reopened.list_compute_targets() == []


def test_a_database_from_a_newer_modelport_is_refused(store, store_url):
    engine = sql_engine(store_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    engine.dispose()
    with pytest.raises(InvalidInput, match=r"revision '0099_future', newer than this modelport .*upgrade modelport"):
        Store(store_url)


def test_a_failed_transaction_changes_nothing(store):
    with pytest.raises(RuntimeError), store.session() as session:
        session.add(Snapshot(sha256=SHA_A, file_count=1, size_bytes=1))
        session.flush()
        raise RuntimeError("boom")
    with pytest.raises(NotFound):
        store.get_snapshot(SHA_A)


@pytest.mark.parametrize("url", ["mysql://u@localhost/db", "not a url"])
def test_unsupported_or_malformed_urls_are_refused(url):
    with pytest.raises(InvalidInput, match="sqlite:///<path>"):
        Store(url)


def test_an_unreachable_postgresql_server_is_named():
    with pytest.raises(ServerUnavailable, match=r"^cannot use the workspace database .*127\.0\.0\.1:1/nowhere: "
                                                r".*check the URL") as raised:
        Store("postgresql://someone:secret@127.0.0.1:1/nowhere")
    assert "secret" not in str(raised.value)


def test_sqlite_is_opened_for_several_writers(tmp_path):
    path = tmp_path / "ws.db"
    with Store(f"sqlite:///{path}") as store:
        with store.session() as session:
            pragma = {name: session.execute(text(f"PRAGMA {name}")).scalar()
                      for name in ("journal_mode", "busy_timeout", "foreign_keys")}
        assert pragma == {"journal_mode": "wal", "busy_timeout": 30_000, "foreign_keys": 1}

        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        # a write transaction holds the write lock from its start...
        with store.session(), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # ...and releases it at its end
        register_store_reads_while_locked = store.list_models()  # reads do not wait for the write lock
        other.execute("ROLLBACK")
        other.close()
        assert register_store_reads_while_locked == []


def test_a_sqlite_database_locked_too_long_is_a_conflict(tmp_path, monkeypatch):
    monkeypatch.setattr("modelport.store.engine.BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "ws.db"
    with Store(f"sqlite:///{path}") as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(Conflict, match=r"ws\.db stayed locked by another process for 0\.2 s; try again"):
            register(store)
        other.execute("ROLLBACK")
        other.close()
        assert register(store).version == 1


def test_plain_postgresql_urls_use_psycopg_and_hide_the_password(tmp_path):
    with fresh_database("postgresql", tmp_path) as url:
        assert url.startswith("postgresql://")
        with Store(url) as store:
            assert store.url.startswith("postgresql+psycopg://")
            assert make_url(url).password not in store.url


# models


def test_versions_count_from_one_per_name(store):
    assert [register(store).version for _ in range(3)] == [1, 2, 3]
    assert register(store, "other").version == 1
    assert store.get_model("mnist").version == 3


def test_a_registered_model_keeps_every_field(store):
    before = datetime.now(timezone.utc)
    model = store.register_model("mnist", SHA_A, "folder", "weights", 5_000_000_000, description="digits",
                                 tags={"stage": "dev"}, properties={"accuracy": "0.99"}, framework="ScikitLearn",
                                 framework_version="1.3")
    assert model == store.get_model("mnist", 1)
    assert (model.name, model.version, model.description, model.tags, model.properties) == (
        "mnist", 1, "digits", {"stage": "dev"}, {"accuracy": "0.99"})
    assert (model.framework, model.framework_version, model.artifact_sha256, model.artifact_kind,
            model.artifact_name, model.size_bytes) == ("ScikitLearn", "1.3", SHA_A, "folder", "weights", 5_000_000_000)
    assert before - timedelta(seconds=5) <= model.created_at <= datetime.now(timezone.utc) + timedelta(seconds=5)

    data = json.loads(json.dumps(model.to_dict()))
    assert data["id"] == "mnist:1"
    assert data["tags"] == {"stage": "dev"}
    assert datetime.fromisoformat(data["created_at"]) == model.created_at
    assert datetime.fromisoformat(data["created_at"]).utcoffset() == timedelta(0)


def test_records_are_frozen_copies(store):
    model = register(store, tags={"stage": "dev"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.version = 9
    model.tags["stage"] = "changed here only"
    assert store.get_model("mnist", 1).tags == {"stage": "dev"}


@pytest.mark.parametrize(("arguments", "message"), [
    (("bad/name", SHA_A, "file", "m.pkl", 1), "model name 'bad/name' is not valid"),
    (("", SHA_A, "file", "m.pkl", 1), "model name '' is not valid"),
    (("mnist", "abc", "file", "m.pkl", 1), "digest 'abc' is not a sha256"),
    (("mnist", SHA_A, "zip", "m.pkl", 1), "artifact kind 'zip' is not one of file, folder"),
    (("mnist", SHA_A, "file", "../m.pkl", 1), "artifact name '../m.pkl'"),
    (("mnist", SHA_A, "file", "m.pkl", -1), "artifact size -1"),
])
def test_bad_registrations_are_refused_and_change_nothing(store, arguments, message):
    with pytest.raises(InvalidInput, match=message):
        store.register_model(*arguments)
    assert store.list_models() == []


@pytest.mark.parametrize(("tags", "message"), [
    ({"stage": 3}, "tag 'stage' has value 3; values are text"),
    ({"": "x"}, "tag key '' is not valid"),
    (["stage"], "tags must be a mapping"),
])
def test_tags_must_map_text_to_text(store, tags, message):
    with pytest.raises(InvalidInput, match=message):
        register(store, tags=tags)
    assert store.list_models() == []


def test_unknown_models_and_versions_are_named(store):
    with pytest.raises(NotFound, match="model 'mnist' is not registered; register it first"):
        store.get_model("mnist")
    for _ in range(3):
        register(store)
    with pytest.raises(NotFound, match=r"^model 'mnist' has no version 7; versions: 1, 2, 3$"):
        store.get_model("mnist", 7)
    for beyond in (2**63, 10**20):  # past what a database column holds (the driver's OverflowError before)
        with pytest.raises(NotFound, match=rf"^model 'mnist' has no version {beyond}; versions: 1, 2, 3$"):
            store.get_model("mnist", beyond)
    with pytest.raises(InvalidInput, match="model version 0 is not a positive whole number"):
        store.get_model("mnist", 0)


def test_long_version_lists_are_shortened(store):
    for _ in range(12):
        register(store)
    with pytest.raises(NotFound, match=r"versions: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, … \(2 more\)$"):
        store.get_model("mnist", 99)


def test_list_models_filters_like_azure_ml(store):
    register(store, "mnist", tags={"stage": "dev", "team": "vision"}, properties={"accuracy": "0.9"})
    register(store, "mnist", tags={"stage": "prod"})
    register(store, "bert", tags={"stage": "prod", "team": "nlp"}, properties={"accuracy": "0.8"})

    def ids(**filters) -> list[str]:
        return [model.id for model in store.list_models(**filters)]

    assert ids() == ["bert:1", "mnist:2", "mnist:1"]
    assert ids(name="mnist") == ["mnist:2", "mnist:1"]
    assert ids(name="nothing") == []
    assert ids(latest=True) == ["bert:1", "mnist:2"]
    assert ids(tags=["team"]) == ["bert:1", "mnist:1"]
    assert ids(tags=[["stage", "prod"]]) == ["bert:1", "mnist:2"]
    assert ids(tags=["team", ("stage", "prod")]) == ["bert:1"]
    assert ids(tags=[["stage", "dev"]], latest=True) == []
    assert ids(properties=["accuracy"]) == ["bert:1", "mnist:1"]
    assert ids(properties=[["accuracy", "0.9"]]) == ["mnist:1"]
    assert ids(name="mnist", tags=["stage"], properties=["accuracy"]) == ["mnist:1"]


@pytest.mark.parametrize("tags", ["stage", [["a", "b", "c"]], [3], {"stage": "prod"}])
def test_malformed_list_filters_are_refused(store, tags):
    with pytest.raises(InvalidInput, match="tag filter"):
        store.list_models(tags=tags)


def test_tags_can_be_added_replaced_and_removed(store):
    register(store, tags={"stage": "dev", "team": "vision"})
    register(store)
    model = store.add_model_tags("mnist", 1, {"stage": "prod", "owner": "ana"})
    assert model.tags == {"stage": "prod", "team": "vision", "owner": "ana"}
    assert store.remove_model_tags("mnist", 1, ["team", "not-there"]).tags == {"stage": "prod", "owner": "ana"}
    assert store.remove_model_tags("mnist", 1, "owner").tags == {"stage": "prod"}
    store.add_model_tags("mnist", 1, {"owner": "ana"})
    assert store.get_model("mnist", 1).tags == {"stage": "prod", "owner": "ana"}
    assert store.get_model("mnist", 2).tags == {}
    with pytest.raises(NotFound, match="has no version 3"):
        store.add_model_tags("mnist", 3, {"a": "b"})
    with pytest.raises(InvalidInput, match="values are text"):
        store.add_model_tags("mnist", 1, {"a": None})


def test_properties_are_add_only(store):
    register(store, properties={"accuracy": "0.9"})
    assert store.add_model_properties("mnist", 1, {"dataset": "v2", "accuracy": "0.9"}).properties == {
        "accuracy": "0.9", "dataset": "v2"}
    with pytest.raises(InvalidInput, match=r"property 'accuracy' of model 'mnist' version 1 is already '0.9'.*tag"):
        store.add_model_properties("mnist", 1, {"owner": "ana", "accuracy": "0.95"})
    assert store.get_model("mnist", 1).properties == {"accuracy": "0.9", "dataset": "v2"}


def test_a_model_in_use_cannot_be_deleted(store):
    register(store, sha=SHA_A)
    register(store, sha=SHA_A)
    register(store, "bert", sha=SHA_B)
    store.attach_service_models("svc-b", [("mnist", 1)])
    store.attach_service_models("svc-a", [("mnist", 1), ("bert", 1)])
    with pytest.raises(Conflict, match=r"^model 'mnist' version 1 is used by service\(s\) 'svc-a', 'svc-b'; delete"):
        store.delete_model("mnist", 1)
    assert store.get_model("mnist", 1).version == 1

    store.attach_service_models("svc-a", [("bert", 1)])  # the service's model set is replaced
    with pytest.raises(Conflict, match=r"used by service\(s\) 'svc-b';"):
        store.delete_model("mnist", 1)
    store.detach_service("svc-b")
    assert store.models_sharing_artifact(SHA_A) == 2
    deleted = store.delete_model("mnist", 1)
    assert (deleted.id, deleted.artifact_sha256) == ("mnist:1", SHA_A)
    assert store.models_sharing_artifact(SHA_A) == 1
    assert store.models_sharing_artifact(SHA_C) == 0
    with pytest.raises(NotFound, match=r"model 'mnist' has no version 1; versions: 2$"):
        store.delete_model("mnist", 1)
    with pytest.raises(Conflict, match="'svc-a'"):
        store.delete_model("bert", 1)


def test_services_can_only_use_registered_models(store):
    register(store)
    with pytest.raises(NotFound, match="model 'mnist' has no version 2"):
        store.attach_service_models("svc-a", [("mnist", 1), ("mnist", 2)])
    store.delete_model("mnist", 1)  # nothing was recorded for svc-a


def test_the_next_version_follows_the_highest_remaining_one(store):
    for _ in range(3):
        register(store)
    store.delete_model("mnist", 1)
    assert register(store).version == 4
    store.delete_model("mnist", 4)
    assert register(store).version == 4  # a deleted latest number is given again, as max + 1
    assert [model.version for model in store.list_models(name="mnist")] == [4, 3, 2]


# environments


def test_environment_versions_follow_content(store):
    first = store.register_environment("sklearn", {"name": "sklearn", "python": {"deps": ["a"]}}, "h1")
    assert (first.name, first.version, first.spec_hash) == ("sklearn", "1", "h1")
    assert first.spec == {"name": "sklearn", "python": {"deps": ["a"]}}
    assert store.register_environment("sklearn", {"changed": "but same hash"}, "h1") == first
    second = store.register_environment("sklearn", {"python": {"deps": ["b"]}}, "h2")
    assert second.version == "2"
    assert store.register_environment("sklearn", {"python": {"deps": ["a"]}}, "h1").version == "3"
    assert store.get_environment("sklearn").version == "3"
    assert store.get_environment("sklearn", "2") == second
    data = json.loads(json.dumps(second.to_dict()))
    assert (data["name"], data["version"], data["spec"]) == ("sklearn", "2", {"python": {"deps": ["b"]}})
    assert datetime.fromisoformat(data["created_at"]) == second.created_at


def test_environments_with_an_explicit_version(store):
    store.register_environment("torch", {"v": 1}, "h1")
    store.register_environment("torch", {"v": 2}, "h2")
    assert store.register_environment("torch", {"v": 2}, "h2", version="2").version == "2"
    with pytest.raises(Conflict, match=r"^environment 'torch' version 2 exists with different content; register "
                                       r"without a version to get a new one$"):
        store.register_environment("torch", {"v": 3}, "h3", version="2")
    assert store.register_environment("torch", {"v": 9}, "h9", version="9").version == "9"
    assert store.register_environment("torch", {"v": 10}, "h10").version == "10"
    assert [env.version for env in store.list_environments()] == ["10"]


@pytest.mark.parametrize("version", ["latest", "0", "1.0", 2])
def test_environment_versions_are_whole_numbers(store, version):
    with pytest.raises(InvalidInput, match="is not a whole number"):
        store.register_environment("torch", {}, "h1", version=version)


def test_bad_environments_are_refused(store):
    with pytest.raises(InvalidInput, match="environment name 'a b' is not valid"):
        store.register_environment("a b", {}, "h")
    with pytest.raises(InvalidInput, match="must be a JSON object"):
        store.register_environment("torch", ["not", "a", "dict"], "h")
    with pytest.raises(InvalidInput, match="no content hash"):
        store.register_environment("torch", {}, "")
    assert store.list_environments() == []


def test_unknown_environments_are_named(store):
    with pytest.raises(NotFound, match="environment 'torch' is not registered"):
        store.get_environment("torch")
    with pytest.raises(NotFound, match="environment 'torch' is not registered"):
        store.get_environment("torch", "1")
    store.register_environment("torch", {}, "h1")
    store.register_environment("torch", {"x": 1}, "h2")
    with pytest.raises(NotFound, match=r"^environment 'torch' has no version 5; versions: 1, 2$"):
        store.get_environment("torch", "5")


def test_list_environments_gives_the_latest_of_each_name(store):
    for name, content in [("b-env", "1"), ("a-env", "1"), ("b-env", "2"), ("a-env", "2"), ("a-env", "3")]:
        store.register_environment(name, {"content": content}, f"hash-{content}")
    store.register_environment("a-env", {"content": "11"}, "hash-11", version="11")
    assert [(env.name, env.version) for env in store.list_environments()] == [("a-env", "11"), ("b-env", "2")]


# snapshots


def test_snapshots_are_added_once(store):
    first = store.add_snapshot(SHA_A, 3, 1024)
    assert (first.sha256, first.file_count, first.size_bytes) == (SHA_A, 3, 1024)
    assert store.add_snapshot(SHA_A, 3, 1024) == first
    assert store.get_snapshot(SHA_A) == first
    data = json.loads(json.dumps(first.to_dict()))
    assert data == {"sha256": SHA_A, "file_count": 3, "size_bytes": 1024, "created_at": first.created_at.isoformat()}
    with pytest.raises(NotFound, match=f"snapshot {SHA_B} is not in this workspace"):
        store.get_snapshot(SHA_B)
    with pytest.raises(InvalidInput, match="snapshot digest 'abc'"):
        store.add_snapshot("abc", 1, 1)
    with pytest.raises(InvalidInput, match="snapshot file count -1"):
        store.add_snapshot(SHA_B, -1, 1)


# compute targets


def test_compute_targets_can_be_put_read_listed_and_deleted(store):
    with pytest.raises(NotFound, match="^compute target 'aks-1' not found; none is attached yet$"):
        store.get_compute_target("aks-1")
    store.put_compute_target("local-1", "local", {})
    created = store.put_compute_target("aks-1", "kubernetes", {"namespace": "ml", "context": "kind-dev"})
    assert (created.name, created.type, created.config) == ("aks-1", "kubernetes", {"namespace": "ml",
                                                                                    "context": "kind-dev"})
    replaced = store.put_compute_target("aks-1", "kubernetes", {"namespace": "prod"})
    assert (replaced.config, replaced.created_at) == ({"namespace": "prod"}, created.created_at)
    assert store.get_compute_target("aks-1") == replaced
    assert [target.name for target in store.list_compute_targets()] == ["aks-1", "local-1"]
    assert json.loads(json.dumps(replaced.to_dict()))["config"] == {"namespace": "prod"}

    store.delete_compute_target("aks-1")
    with pytest.raises(NotFound, match="^compute target 'aks-1' not found; compute targets: local-1$"):
        store.delete_compute_target("aks-1")
    with pytest.raises(InvalidInput, match="must be a JSON object"):
        store.put_compute_target("aks-2", "kubernetes", "namespace=ml")
    assert [target.name for target in store.list_compute_targets()] == ["local-1"]
