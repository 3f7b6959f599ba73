"""Several processes use one workspace at once: one background server starts, versions stay unique."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from modelport import Model, Workspace
from modelport.api import server

PROCESSES = 4
REGISTRATIONS = 5


def register_many(path: str, model_file: str, queue) -> None:
    try:
        ws = Workspace.get("busy", path)
        queue.put([Model.register(ws, model_file, "shared").version for _ in range(REGISTRATIONS)])
    except Exception as err:  # reported to the test, which fails with it
        queue.put(repr(err))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request):
    if request.param == "sqlite":
        return None
    url = os.environ.get("MODELPORT_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("MODELPORT_TEST_POSTGRES_URL is not set; .ci/run starts PostgreSQL and sets it")
        pytest.skip("MODELPORT_TEST_POSTGRES_URL is not set (run .ci/postgres.sh)")
    return url


def test_concurrent_registration_from_processes(tmp_path, store_url):
    if store_url:  # a fresh database per run: drop what an earlier run left
        from sqlalchemy import create_engine, text

        engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    ws = Workspace.create("busy", tmp_path, store_url=store_url)
    model_file = tmp_path / "m.bin"
    model_file.write_bytes(b"weights")
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=register_many, args=(str(tmp_path), str(model_file), queue))
               for _ in range(PROCESSES)]
    try:
        for worker in workers:
            worker.start()
        results = [queue.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(30)
        errors = [r for r in results if isinstance(r, str)]
        assert not errors, errors
        versions = sorted(v for r in results for v in r)
        assert versions == list(range(1, PROCESSES * REGISTRATIONS + 1))
        assert server.status(ws._dir)["running"]
        assert Model(ws, "shared").version == PROCESSES * REGISTRATIONS
    finally:
        server.stop(ws._dir)
