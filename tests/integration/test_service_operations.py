"""One operation per service at a time: a second concurrent one is refused with 409 (Conflict)."""

import threading

import pytest

from modelport.api.deployments import Deployments
from modelport.api.workspace_dir import WorkspaceDir
from modelport.errors import Conflict
from modelport.operations.compute import ComputeOperations
from modelport.store.artifacts import LocalArtifactStore
from modelport.store.db import Store


def test_a_second_operation_on_the_same_service_is_a_conflict(tmp_path):
    workspace = WorkspaceDir.create("ops", tmp_path)
    store = Store(workspace.store_url)
    compute = ComputeOperations(store, workspace)
    deployments = Deployments(workspace, store, LocalArtifactStore(workspace.artifacts), compute)
    inside, release = threading.Event(), threading.Event()

    def first() -> None:
        with deployments.operation("svc"):
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(5)
    with pytest.raises(Conflict, match="another operation on service 'svc' is in progress"), \
            deployments.operation("svc"):
        pass
    with deployments.operation("other-svc"):  # other services are not blocked
        pass
    release.set()
    thread.join()
    with deployments.operation("svc"):  # free again once the first one ended
        pass
