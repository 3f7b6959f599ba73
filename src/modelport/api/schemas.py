"""The JSON bodies the control plane answers with, as models for its OpenAPI document (``response_model=``).

The routes build these bodies as dicts (the records' ``to_dict()``); FastAPI checks each against its model.
Request patterns that a route checks itself, with its own message, are documented here too (``documented``)
rather than enforced a second time by validation.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, Field


def documented(**rules: Any) -> dict[str, Any]:
    """``json_schema_extra`` declaring JSON Schema rules (``pattern=``, ``minimum=``, ``minItems=``...) that the
    route checks itself, with a clearer message than validation's; a value that breaks one is refused all the
    same (400, or 404 where it names something that cannot exist)."""
    return rules


def any_case(*words: str) -> str:
    """A JSON Schema pattern matching any of ``words`` in any mix of upper and lower case."""
    return "^(" + "|".join("".join(f"[{c.upper()}{c.lower()}]" for c in word) for word in words) + ")$"


SHA256 = documented(pattern="^[0-9a-f]{64}$")
Sha256 = Annotated[str, Field(description="64 lowercase hex digits", json_schema_extra=SHA256)]
"""A blob's or tree's sha256 in a request body."""
Sha256InPath = Annotated[str, Path(description="64 lowercase hex digits", json_schema_extra=SHA256)]
"""A blob's or snapshot's sha256 in the URL."""
Timestamp = Annotated[str, Field(description="ISO 8601 date and time, UTC", json_schema_extra={"format": "date-time"})]


class Health(BaseModel):
    """The control plane is up, for this workspace."""

    status: Literal["ok"]
    workspace: str


class WorkspaceView(BaseModel):
    """The workspace this control plane serves."""

    name: str
    path: str
    created: str | None
    store: str = Field(description="the database URL, without its password")


class StudioLink(BaseModel):
    """A one-time Studio sign-in link."""

    url: str


class BlobStored(BaseModel):
    """An uploaded blob; ``stored`` is False when the workspace held it already."""

    sha256: str
    stored: bool


class TreeStored(BaseModel):
    """A stored folder manifest: its sha256 and what it lists."""

    sha256: str
    file_count: int
    size_bytes: int


class ModelView(BaseModel):
    """One registered model version."""

    id: str = Field(description="name:version")
    name: str
    version: int
    description: str | None
    tags: dict[str, str]
    properties: dict[str, str]
    framework: str | None
    framework_version: str | None
    artifact_sha256: str
    artifact_kind: Literal["file", "folder"]
    artifact_name: str
    size_bytes: int
    created_at: Timestamp


class EnvironmentView(BaseModel):
    """One environment version: Azure ML's Environment JSON and the hash of what it installs."""

    name: str
    version: str
    spec: dict[str, Any]
    spec_hash: str
    created_at: Timestamp


class SnapshotView(BaseModel):
    """A packaged source folder."""

    sha256: str
    file_count: int
    size_bytes: int
    created_at: Timestamp


class VersionView(BaseModel):
    """One version of an endpoint (a web service has one, ``default``): what it runs, its traffic and state."""

    name: str
    state: str = Field(description="Transitioning, Healthy, Unhealthy or Failed")
    reason: str | None = Field(description="why it is not Healthy (or what is missing)")
    traffic_percentile: float = Field(description="its configured share, 0-100")
    effective_percentile: float = Field(description="its share of the split now (the default also gets what no "
                                                    "version claims)")
    is_default: bool
    is_control: bool
    type: Literal["control", "treatment"]
    mirror_percentile: float
    replica_set: str = Field(description="<version>-<generation>: the replicas this version runs")
    generation: int
    models: list[str]
    entry_script: str
    environment: str
    deploy: dict[str, Any]
    replicas: int | None = None
    ready_replicas: int | None = None


class ServiceView(BaseModel):
    """A web service or endpoint as the SDK shows it (its keys are not included). The top-level ``models``,
    ``deploy``, ``entry_script``, ``generation`` and ``environment`` are the default version's."""

    name: str
    kind: Literal["webservice", "endpoint"]
    compute_target: str
    state: str = Field(description="Transitioning, Healthy, Unhealthy or Failed")
    error: str | None = Field(description="why it is Failed or Unhealthy")
    status: dict[str, Any]
    scoring_uri: str | None
    auth: Literal["key", "token", "none"]
    cors_origins: list[str]
    swagger_uri: str | None
    models: list[str] = Field(description="name:version of each model")
    deploy: dict[str, Any]
    entry_script: str
    generation: int
    environment: str
    versions: dict[str, VersionView]
    description: str | None = None
    tags: dict[str, str]
    created_at: Timestamp
    updated_at: Timestamp


class TrafficHistoryView(BaseModel):
    """An endpoint's traffic assignments, oldest first, and the current one last."""

    history: list[dict[str, Any]]
    current: dict[str, Any]


class Deleted(BaseModel):
    """What was deleted."""

    deleted: str


class ServiceLogs(BaseModel):
    """The last lines of the logs of one version's serving replicas (``version``: its replica set)."""

    version: str
    logs: str


class ServiceKeys(BaseModel):
    """A key-auth service's keys, as Azure ML names them."""

    primaryKey: str
    secondaryKey: str


class ServiceToken(BaseModel):
    """A token-auth service's JWT, as Azure ML's token payload."""

    accessToken: str
    tokenType: Literal["Bearer"]
    refreshAfter: int = Field(description="epoch second")
    expiryOn: int = Field(description="epoch second")
