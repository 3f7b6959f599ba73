"""Compute targets as users see them, and the target a deploy runs on.

``ComputeOperations`` (``operations.compute``) answers ``list``/``show`` with these views; the endpoint
operations call ``deploy_target`` to check the target a deploy names.
"""

from __future__ import annotations

from typing import Any

from ..errors import NotFound
from ..spec.compute import KubernetesTarget
from ..spec.endpoint import LOCAL_TARGET as LOCAL
from ..store.db import Store
from ..store.records import ComputeTargetRecord

SUCCEEDED = "Succeeded"  # Azure ML's provisioning state of a usable compute target


def deploy_target(store: Store, workspace: str, name: str | None) -> str:
    """The compute target a deploy runs on: ``local`` for None; ``name`` when it is attached to ``workspace``
    (its name); NotFound naming the attached targets otherwise (``not_attached``)."""
    if name is None or name == LOCAL:
        return LOCAL
    if name not in {record.name for record in store.list_compute_targets()}:
        raise not_attached(store, workspace, name)
    return name


def not_attached(store: Store, workspace: str, name: str) -> NotFound:
    """The error for a compute target name that is not attached, naming those that are."""
    attached = [f"'{record.name}'" for record in store.list_compute_targets()]
    return NotFound(f"compute target '{name}' is not attached to workspace '{workspace}'; its targets are "
                    f"'{LOCAL}' (this machine){''.join(f', {a}' for a in attached)}: deploy to one of them "
                    f"(--ct NAME, SDK: deployment_target=), or attach the cluster first (modelport computetarget "
                    "attach kubernetes, SDK: ComputeTarget.attach)")


def local_view() -> dict[str, Any]:
    """The built-in ``local`` target's view."""
    return {"name": LOCAL, "type": "Local", "provisioning_state": SUCCEEDED, "provisioning_errors": [],
            "warnings": []}


def view(record: ComputeTargetRecord) -> dict[str, Any]:
    """An attached target as users see it: its settings, state, problems, warnings and check figures (no
    credential)."""
    config = record.config
    settings = {key: config.get(key) for key in KubernetesTarget.__dataclass_fields__}
    return {**settings, "name": record.name, "type": record.type,
            "provisioning_state": config.get("provisioning_state", SUCCEEDED),
            "provisioning_errors": config.get("provisioning_errors", []), "warnings": config.get("warnings", []),
            "server_version": config.get("server_version"), "vcpus": config.get("vcpus"),
            "created_at": record.created_at.isoformat(timespec="seconds"), "checked_at": config.get("checked_at")}
