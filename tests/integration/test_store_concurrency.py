"""Several processes registering the same model at once each get their own version.

Six spawned processes open one fresh database together (so they also race to create the
schema) and register five versions of one model each.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Iterator

import pytest

from modelport.store.db import Store

from .test_store import BACKENDS, SHA_A, fresh_database

PROCESSES = 6
REGISTRATIONS = 5


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path) as url:
        yield url


def register_several(url: str, start, results) -> None:
    """In a child process: wait for the others, then register REGISTRATIONS versions."""
    try:
        start.wait(timeout=60)
        with Store(url) as store:
            versions = [store.register_model("shared", SHA_A, "file", "model.pkl", 1).version
                        for _ in range(REGISTRATIONS)]
        results.put(("ok", versions))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def test_concurrent_registrations_get_distinct_versions(store_url):
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(PROCESSES), context.Queue()
    processes = [context.Process(target=register_several, args=(store_url, start, results))
                 for _ in range(PROCESSES)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=100) for _ in processes]
    for process in processes:
        process.join(timeout=30)

    errors = [detail for status, detail in outcomes if status == "error"]
    assert errors == []
    versions = [version for _, got in outcomes for version in got]
    assert sorted(versions) == list(range(1, PROCESSES * REGISTRATIONS + 1))
    assert all(got == sorted(got) for _, got in outcomes)  # each process sees its own versions increase
    with Store(store_url) as store:
        assert [model.version for model in store.list_models(name="shared")] == list(
            range(PROCESSES * REGISTRATIONS, 0, -1))
