"""Plain, frozen copies of store rows handed to callers, detached from any database session."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import models


def _json(record: Any) -> dict[str, Any]:
    """A record's fields as JSON-friendly values: datetimes become ISO 8601 strings in UTC."""
    return {key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in dataclasses.asdict(record).items()}


@dataclass(frozen=True)
class ModelRecord:
    """One registered model version."""

    name: str
    version: int
    description: str | None
    tags: dict[str, str]
    properties: dict[str, str]
    framework: str | None
    framework_version: str | None
    artifact_sha256: str
    artifact_kind: str
    artifact_name: str
    size_bytes: int
    created_at: datetime

    @property
    def id(self) -> str:
        """``name:version``, the way Azure ML names a model version."""
        return f"{self.name}:{self.version}"

    @classmethod
    def of(cls, row: models.Model) -> ModelRecord:
        return cls(name=row.name, version=row.version, description=row.description, tags=dict(row.tags),
                   properties=dict(row.properties), framework=row.framework, framework_version=row.framework_version,
                   artifact_sha256=row.artifact_sha256, artifact_kind=row.artifact_kind,
                   artifact_name=row.artifact_name, size_bytes=row.size_bytes, created_at=row.created_at)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **_json(self)}


@dataclass(frozen=True)
class EnvironmentRecord:
    """One environment version: the Azure ML Environment JSON object and its content hash."""

    name: str
    version: str
    spec: dict[str, Any]
    spec_hash: str
    created_at: datetime

    @classmethod
    def of(cls, row: models.Environment) -> EnvironmentRecord:
        return cls(name=row.name, version=row.version, spec=copy.deepcopy(row.spec), spec_hash=row.spec_hash,
                   created_at=row.created_at)

    def to_dict(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True)
class SnapshotRecord:
    """A packaged source folder, named by its manifest's sha256."""

    sha256: str
    file_count: int
    size_bytes: int
    created_at: datetime

    @classmethod
    def of(cls, row: models.Snapshot) -> SnapshotRecord:
        return cls(sha256=row.sha256, file_count=row.file_count, size_bytes=row.size_bytes, created_at=row.created_at)

    def to_dict(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True)
class ComputeTargetRecord:
    """A named compute target and its settings."""

    name: str
    type: str
    config: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, row: models.ComputeTarget) -> ComputeTargetRecord:
        return cls(name=row.name, type=row.type, config=copy.deepcopy(row.config), created_at=row.created_at)

    def to_dict(self) -> dict[str, Any]:
        return _json(self)


@dataclass(frozen=True)
class ServiceRecord:
    """A web service: its desired ``config`` and its observed ``state`` and ``status``."""

    name: str
    state: str
    config: dict[str, Any]
    status: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @property
    def endpoint(self):
        """The desired state as a typed ``spec.Endpoint``."""
        from ..spec import Endpoint

        return Endpoint.from_dict(self.config)

    @classmethod
    def of(cls, row: models.Service) -> ServiceRecord:
        return cls(name=row.name, state=row.state, config=dict(row.config), status=dict(row.status or {}),
                   created_at=row.created_at, updated_at=row.updated_at)

    def to_dict(self) -> dict[str, Any]:
        return _json(self)
