"""Desired state of an endpoint: its versions with models, code, environment, settings and traffic.

A web service is an endpoint of kind ``webservice`` with one version (named ``default``);
an ``AksEndpoint`` has up to ``MAX_VERSIONS`` named versions. Each version runs as its own
*replica set*, named by ``EndpointVersion.replica_set`` (``<version>-<generation>``): updating
a version starts a new replica set that takes over once ready, as a rolling update.

Objects here are frozen and plain: the store keeps ``Endpoint.to_dict()`` and reads it back
with ``Endpoint.from_dict``; the traffic rules are in ``spec.traffic``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

WEBSERVICE = "webservice"
ENDPOINT = "endpoint"
LOCAL_TARGET = "local"
DEFAULT_VERSION = "default"  # the one version of a web service
Kind = Literal["webservice", "endpoint"]
Auth = Literal["key", "token", "none"]


@dataclass(frozen=True)
class ModelRef:
    """One registered model version a version serves, with where its files are in the artifact store."""

    name: str
    version: int
    artifact_sha256: str
    artifact_kind: str  # "file" or "folder" (a manifest)
    artifact_name: str

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"


# Keys a deploy may choose (``primary_key=``) belong to the endpoint (``Endpoint.keys``), never to a version's
# ``deploy`` settings: those are shown, and merged into later updates, where a chosen key would come back.
KEY_SETTINGS = ("primary_key", "secondary_key")


@dataclass(frozen=True)
class EndpointVersion:
    """One version of an endpoint: what it runs, how (``deploy``: ``DeploymentConfig`` settings), and its
    share of the traffic (``traffic_percentile``, 0-100; what no version claims goes to the default one).

    ``mirror_percentile`` (0-100): this version also receives a copy of that share of the endpoint's
    requests, whose answers are discarded; a mirrored version takes no share of the split itself.
    ``generation`` counts this version's updates (1 when created)."""

    name: str
    models: tuple[ModelRef, ...]
    entry_script: str
    snapshot: str
    environment: dict[str, Any]
    deploy: dict[str, Any]
    generation: int = 1
    source_directory: str | None = None
    gpus: tuple[str, ...] = ()
    traffic_percentile: float = 0
    is_default: bool = False
    is_control: bool = False
    mirror_percentile: float = 0

    @property
    def replica_set(self) -> str:
        """The identity a backend runs and the front end routes: ``<version>-<generation>``."""
        return f"{self.name}-{self.generation}"

    @property
    def role(self) -> str:
        """Azure ML's version type: ``control`` or ``treatment``."""
        return "control" if self.is_control else "treatment"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "generation": self.generation,
                "models": [vars(m) for m in self.models], "entry_script": self.entry_script,
                "source_directory": self.source_directory, "snapshot": self.snapshot,
                "environment": self.environment, "deploy": self.deploy, "gpus": list(self.gpus),
                "traffic_percentile": self.traffic_percentile, "is_default": self.is_default,
                "is_control": self.is_control, "mirror_percentile": self.mirror_percentile}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EndpointVersion:
        return cls(name=data["name"], generation=int(data["generation"]),
                   models=tuple(ModelRef(**m) for m in data["models"]), entry_script=data["entry_script"],
                   source_directory=data.get("source_directory"), snapshot=data["snapshot"],
                   environment=data["environment"], gpus=tuple(data.get("gpus", ())),
                   deploy={k: v for k, v in data["deploy"].items() if k not in KEY_SETTINGS},  # (older records)
                   traffic_percentile=data.get("traffic_percentile", 0), is_default=bool(data.get("is_default")),
                   is_control=bool(data.get("is_control")), mirror_percentile=data.get("mirror_percentile", 0))


def replica_set_owner(replica_set: str) -> tuple[str, int]:
    """The version a replica set belongs to and its generation (``blue-3`` → ``("blue", 3)``); a name without a
    generation (an earlier modelport's ``v3``) belongs to no version (``("", -1)``)."""
    owner, _, generation = replica_set.rpartition("-")
    return (owner, int(generation)) if owner and generation.isdigit() else ("", -1)


@dataclass(frozen=True)
class TrafficAssignment:
    """Who got which share at one moment (kept so ``rollback`` can return to it): percentile, default and
    control by version name, and when (ISO 8601 UTC) and why (``reason``) it was set."""

    percentiles: dict[str, float]
    default: str
    control: str | None
    at: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"percentiles": dict(self.percentiles), "default": self.default, "control": self.control,
                "at": self.at, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrafficAssignment:
        return cls(dict(data["percentiles"]), data["default"], data.get("control"), data["at"], data["reason"])


@dataclass(frozen=True)
class Endpoint:
    """An endpoint (or web service) as desired: its versions, how clients authenticate (``auth``, ``keys``,
    ``cors_origins``) and the compute target it runs on (``local`` by default).

    ``history`` holds earlier traffic assignments, oldest first, for ``rollback``; ``revision`` counts the
    changes made to it (each operation adds one), so an operation can wait until the front end serves it."""

    name: str
    versions: tuple[EndpointVersion, ...]
    kind: Kind = WEBSERVICE
    compute_target: str = LOCAL_TARGET
    auth: Auth = "key"
    keys: dict[str, str] = field(default_factory=dict)
    cors_origins: tuple[str, ...] = ()
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    history: tuple[TrafficAssignment, ...] = ()
    revision: int = 1

    def version(self, name: str) -> EndpointVersion:
        """The version called ``name``; KeyError naming the known ones otherwise."""
        for version in self.versions:
            if version.name == name:
                return version
        raise KeyError(f"endpoint '{self.name}' has no version '{name}'; its versions: "
                       f"{', '.join(v.name for v in self.versions)}")

    @property
    def default_version(self) -> EndpointVersion:
        return next(v for v in self.versions if v.is_default)

    def with_versions(self, versions: tuple[EndpointVersion, ...] | list[EndpointVersion]) -> Endpoint:
        return replace(self, versions=tuple(versions))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "compute_target": self.compute_target, "auth": self.auth,
                "keys": dict(self.keys), "cors_origins": list(self.cors_origins), "description": self.description,
                "tags": dict(self.tags), "versions": [v.to_dict() for v in self.versions],
                "history": [h.to_dict() for h in self.history], "revision": self.revision}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Endpoint:
        return cls(name=data["name"], kind=data.get("kind", WEBSERVICE),
                   compute_target=data.get("compute_target", LOCAL_TARGET), auth=data.get("auth", "key"),
                   keys=dict(data.get("keys") or {}), cors_origins=tuple(data.get("cors_origins") or ()),
                   description=data.get("description"), tags=dict(data.get("tags") or {}),
                   versions=tuple(EndpointVersion.from_dict(v) for v in data["versions"]),
                   history=tuple(TrafficAssignment.from_dict(h) for h in data.get("history", ())),
                   revision=int(data.get("revision", 1)))
