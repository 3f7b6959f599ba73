"""Fixtures for Kubernetes tests: the API emulator (``emulator.py``), started per test, and a ``Cluster`` on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelport.backends.kubernetes.cluster import Cluster

from .emulator import ApiEmulator


@pytest.fixture
def api_emulator() -> Iterator[ApiEmulator]:
    """A started Kubernetes API emulator with three 4-core nodes and the ``default`` namespace; stopped after."""
    with ApiEmulator() as emulator:
        yield emulator


@pytest.fixture
def emulated_cluster(api_emulator: ApiEmulator) -> Iterator[Cluster]:
    """A ``Cluster`` connected to ``api_emulator`` with its valid token, in namespace ``default``."""
    cluster = Cluster.connect(api_emulator.kubeconfig(), context=None, namespace="default")
    yield cluster
    cluster.close()
