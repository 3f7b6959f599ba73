"""What users do to web services and endpoints, apart from how they ask (HTTP routes, CLI, SDK, Studio).

Each operation checks its input, writes the new desired ``Endpoint`` to the store (one more
``revision``) and, where the front end must change (auth, keys, CORS, traffic), returns only once
the front end serves that revision. A web service is an endpoint of kind ``webservice`` with one
version, ``default``; Azure ML's endpoint rules are in ``spec.traffic``. Errors are
``ModelportError``s naming the rule and the fix; nothing changes when one is raised.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from ..backends.local.limits import gpu_ids
from ..environments.spec import EnvironmentSpec
from ..errors import InvalidInput, NotFound
from ..reconcile import app_root
from ..sdk.deploy_config import ENDPOINT, DeploymentConfig, check_service_name
from ..spec import DEFAULT_VERSION, WEBSERVICE, Endpoint, EndpointVersion, ModelRef, traffic
from ..spec import ENDPOINT as ENDPOINT_KIND
from ..spec.endpoint import KEY_SETTINGS
from ..store.records import ServiceRecord
from .compute_views import deploy_target

DEFAULT_ENVIRONMENT = {"name": "modelport-default", "python": {"condaDependencies": {"dependencies": []}}}
_AUTH_WORDS = {"key": "uses key auth", "token": "uses token auth", "none": "has auth disabled (auth_enabled=False)"}
_VERSION_ONLY = ("version_name", "traffic_percentile")  # endpoint settings kept on the version, not in ``deploy``


@dataclass(frozen=True)
class VersionInput:
    """What a version runs, as a client sends it: model ids (``name:version``), the entry script, the source
    snapshot (sha256) and its folder's name, the environment (Azure Environment dict) and the deployment
    settings (``DeploymentConfig.to_settings()``). On an update, None keeps the current value."""

    models: list[str] | None = None
    entry_script: str | None = None
    snapshot: str | None = None
    source_directory: str | None = None
    environment: dict[str, Any] | None = None
    deploy: dict[str, Any] | None = None


@dataclass(frozen=True)
class TrafficInput:
    """A version's traffic settings (Azure ML's ``traffic_percentile``, ``is_default``,
    ``is_control_version_type``; modelport's ``mirror_percentile``). None keeps the current value."""

    traffic_percentile: float | None = None
    is_default: bool | None = None
    is_control: bool | None = None
    mirror_percentile: float | None = None


class EndpointOperations:
    """The operations on one workspace's services and endpoints (``store``: the workspace ``Store``,
    ``artifacts``: its artifact store, ``deployments``: the running part, for locks, routing and logs)."""

    def __init__(self, store, artifacts, deployments):
        self.store = store
        self.artifacts = artifacts
        self.deployments = deployments

    # --- services and endpoints ---------------------------------------------------------------

    def deploy(self, name: str, inputs: VersionInput, overwrite: bool = False) -> ServiceRecord:
        """``Model.deploy``: a web service, or an endpoint when the settings are ``AksEndpoint``'s (its first
        version, named by ``version_name``, is the default and control version), on the compute target the
        settings' ``compute_target_name`` names (default ``local``; NotFound naming the attached ones)."""
        check_service_name(name)
        settings = self._settings(inputs.deploy or {})
        is_endpoint = settings.compute_type == ENDPOINT
        target = deploy_target(self.store, self.deployments.workspace.name, settings.compute_target_name)
        with self.deployments.operation(name):
            current = self._existing(name) if overwrite else None
            version_name = (settings.version_name or DEFAULT_VERSION) if is_endpoint else DEFAULT_VERSION
            check_service_name(version_name, "version name", shortest=1)
            generation = _next_generation(current, version_name)
            version = replace(self._version(version_name, inputs, settings, generation),
                              traffic_percentile=settings.traffic_percentile if is_endpoint else 0,
                              is_default=True, is_control=True)
            endpoint = Endpoint(name=name, versions=(version,), kind=ENDPOINT_KIND if is_endpoint else WEBSERVICE,
                                compute_target=target, auth=_auth(settings),
                                keys=_keys(settings, current.keys if current else None),
                                cors_origins=tuple(settings.cors_origins or ()), description=settings.description,
                                tags=dict(settings.tags or {}), revision=current.revision + 1 if current else 1)
            return self._save(traffic.check(endpoint), create=not overwrite)

    def update(self, name: str, inputs: VersionInput) -> ServiceRecord:
        """``Webservice.update``: a rolling update of a web service's version (a new replica set takes over
        when ready). For an endpoint, only its own settings (auth, CORS, description, tags) change here;
        its versions change with ``update_version``."""
        with self.deployments.operation(name):
            current = self._current(name)
            changes = dict(inputs.deploy or {})
            if current.kind == WEBSERVICE:
                version = current.versions[0]
                settings = self._settings({**version.deploy, **changes})
                if settings.compute_type == ENDPOINT:
                    raise InvalidInput(f"'{name}' is a web service and stays one: deploy an endpoint under another "
                                       "name with AksEndpoint.deploy_configuration, or delete this service first")
                updated = replace(self._version(version.name, self._merged(version, inputs), settings,
                                                version.generation + 1), is_default=True, is_control=True)
                endpoint = replace(current, versions=(updated,), auth=_auth(settings),
                                   keys=_keys(settings, current.keys), cors_origins=tuple(settings.cors_origins or ()))
            else:
                if any(getattr(inputs, f) is not None for f in ("models", "entry_script", "snapshot", "environment")):
                    raise InvalidInput(f"'{name}' is an endpoint: change what a version runs with update_version "
                                       "(modelport endpoint version update)")
                endpoint = self._endpoint_settings(current, changes)
            record = self._save(replace(endpoint, revision=current.revision + 1))
        self.deployments.wait_routed(name, record.endpoint.revision)
        return record

    def delete(self, name: str) -> None:
        """Delete a service or endpoint; its replicas are stopped before this returns."""
        with self.deployments.operation(name):
            target = self.store.get_service(name).endpoint.compute_target
            self.store.delete_service(name)
            self.deployments.remove(name, target)

    # --- endpoint versions --------------------------------------------------------------------

    def create_version(self, name: str, version_name: str, inputs: VersionInput,
                       traffic_in: TrafficInput) -> ServiceRecord:
        """``AksEndpoint.create_version``: a new version with its own replicas (models, code and environment
        default to the default version's), its traffic share set as given."""
        check_service_name(version_name, "version name", shortest=1)
        with self.deployments.operation(name):
            current = self._endpoint(name)
            if any(v.name == version_name for v in current.versions):
                raise InvalidInput(f"endpoint '{name}' already has a version '{version_name}': update it with "
                                   "update_version, or choose another name")
            base = current.default_version
            settings = self._settings({**base.deploy, **(inputs.deploy or {})})
            version = self._version(version_name, self._merged(base, inputs), settings, 1)
            endpoint = _with_traffic(current.with_versions([*current.versions, version]), version_name, traffic_in)
            return self._save_traffic(current, endpoint, f"create version {version_name}")

    def update_version(self, name: str, version_name: str, inputs: VersionInput,
                       traffic_in: TrafficInput) -> ServiceRecord:
        """``AksEndpoint.update_version``: traffic settings apply at once; a change to what it runs or how
        (models, code, environment, settings) starts a new replica set that takes over when ready."""
        with self.deployments.operation(name):
            current = self._endpoint(name)
            version = _version_of(current, version_name)
            if any(getattr(inputs, f) is not None for f in vars(inputs)):
                settings = self._settings({**version.deploy, **(inputs.deploy or {})})
                new = self._version(version_name, self._merged(version, inputs), settings, version.generation + 1)
                version = replace(new, traffic_percentile=version.traffic_percentile, is_default=version.is_default,
                                  is_control=version.is_control, mirror_percentile=version.mirror_percentile)
            versions = [version if v.name == version_name else v for v in current.versions]
            endpoint = _with_traffic(current.with_versions(versions), version_name, traffic_in)
            return self._save_traffic(current, endpoint, f"update version {version_name}")

    def set_traffic(self, name: str, changes: dict[str, TrafficInput]) -> ServiceRecord:
        """Change the traffic settings of several versions at once (``changes``: version name -> its new
        settings; None fields stay): checked and saved together, so a rule violation changes nothing and no
        split between two changes is ever routed (Studio's traffic form; one history entry to roll back)."""
        if not changes:
            raise InvalidInput(f"name at least one version of endpoint '{name}' whose traffic to change")
        with self.deployments.operation(name):
            current = self._endpoint(name)
            endpoint = current
            for version_name, given in changes.items():
                _version_of(current, version_name)  # NotFound naming the versions there are
                endpoint = _with_traffic(endpoint, version_name, given)
            return self._save_traffic(current, endpoint, f"set traffic of {', '.join(changes)}")

    def delete_version(self, name: str, version_name: str) -> ServiceRecord:
        """``AksEndpoint.delete_version``; the default version goes only once another one is the default."""
        with self.deployments.operation(name):
            current = self._endpoint(name)
            version = _version_of(current, version_name)
            if len(current.versions) == 1:
                raise InvalidInput(f"'{version_name}' is the last version of endpoint '{name}': delete the endpoint "
                                   "instead")
            if version.is_default:
                raise InvalidInput(f"'{version_name}' is the default version of endpoint '{name}': make another "
                                   "version the default first (SDK: update_version(..., is_default=True); CLI: "
                                   "modelport endpoint version update --is-default; Studio: its Default column)")
            versions = [v for v in current.versions if v.name != version_name]
            if version.is_control:
                versions = traffic.flagged(versions, current.default_version.name, "is_control")
            return self._save_traffic(current, current.with_versions(versions), f"delete version {version_name}")

    def promote(self, name: str, version_name: str) -> ServiceRecord:
        """``version_name`` takes all the traffic and becomes default and control (modelport's own)."""
        with self.deployments.operation(name):
            current = self._endpoint(name)
            _version_of(current, version_name)  # NotFound naming the versions there are
            return self._save_traffic(current, traffic.promote(current, version_name, _now()), "")

    def rollback(self, name: str) -> ServiceRecord:
        """Back to the traffic assignment before the last change (modelport's own)."""
        with self.deployments.operation(name):
            current = self._endpoint(name)
            return self._save_traffic(current, traffic.rollback(current), "")

    # --- keys, tokens, logs -------------------------------------------------------------------

    def keys(self, name: str) -> dict[str, str]:
        """The primary and secondary key; refused for token auth or no auth (Azure ML's rule)."""
        return self._keyed(name).keys

    def regenerate_key(self, name: str, which: str, set_key: str | None = None) -> dict[str, str]:
        """Replace the ``primary`` or ``secondary`` key; returns once the old one is refused."""
        if which not in ("primary", "secondary"):
            raise InvalidInput(f"key_type {which!r} must be 'Primary' or 'Secondary'")
        with self.deployments.operation(name):
            current = self._keyed(name)
            keys = {**current.keys, which: set_key or secrets.token_urlsafe(32)}
            record = self._save(replace(current, keys=keys, revision=current.revision + 1))
        self.deployments.wait_routed(name, record.endpoint.revision)
        return keys

    def token(self, name: str) -> tuple[str, int]:
        """A JWT for a token-auth service and the epoch second to refresh it by; refused otherwise."""
        mode = self._current(name).auth
        if mode != "token":
            raise InvalidInput(f"tokens are not enabled for service '{name}': it {_AUTH_WORDS[mode]}; "
                               + ("use its keys (get_keys(), or modelport service keys), or update it with "
                                  "token_auth_enabled=True, auth_enabled=False" if mode == "key" else
                                  "update it with token_auth_enabled=True to require tokens"))
        return self.deployments.token(name)

    def logs(self, name: str, version_name: str | None = None, num_lines: int = 5000,
             init: bool = False) -> tuple[str, str]:
        """The replica logs of a version (default: the default version), as ``(replica set, text)``; with
        ``init`` (Azure ML's ``get_logs(init=True)``), the log of what ran before its replicas started: its
        environment's build (local) or its image's build (Kubernetes)."""
        current = self._current(name)
        version = _version_of(current, version_name) if version_name else current.default_version
        record = self.store.get_service(name)
        replica_set = record.status.get("versions", {}).get(version.name, {}).get("serving_replica_set") \
            or version.replica_set
        backend = self.deployments.backend_for(name)
        if init:
            return replica_set, backend.preparation_log(name, replica_set, version.environment, num_lines)
        return replica_set, backend.logs(name, replica_set, num_lines)

    # --- helpers -------------------------------------------------------------------------------

    def _current(self, name: str) -> Endpoint:
        return self.store.get_service(name).endpoint

    def _existing(self, name: str) -> Endpoint | None:
        try:
            return self._current(name)
        except NotFound:
            return None

    def _endpoint(self, name: str) -> Endpoint:
        current = self._current(name)
        if current.kind != ENDPOINT_KIND:
            raise InvalidInput(f"'{name}' is a web service, not an endpoint: versions and traffic belong to endpoints "
                               "(deploy with AksEndpoint.deploy_configuration)")
        return current

    def _keyed(self, name: str) -> Endpoint:
        current = self._current(name)
        if current.auth != "key":
            raise InvalidInput(f"keys are not enabled for service '{name}': it {_AUTH_WORDS[current.auth]}; "
                               + (f"get a token with get_access_token() (or modelport service get-access-token -n "
                                  f"{name}), or update it with auth_enabled=True, token_auth_enabled=False"
                                  if current.auth == "token" else "update it with auth_enabled=True to require keys"))
        return current

    @staticmethod
    def _settings(deploy: dict[str, Any]) -> DeploymentConfig:
        return DeploymentConfig.from_settings(deploy)  # the API checks what any client sends

    @staticmethod
    def _merged(version: EndpointVersion, inputs: VersionInput) -> VersionInput:
        """``inputs`` with what they leave out taken from ``version``."""
        return VersionInput(
            models=inputs.models if inputs.models is not None else [m.id for m in version.models],
            entry_script=inputs.entry_script or version.entry_script,
            snapshot=inputs.snapshot or version.snapshot,
            source_directory=inputs.source_directory if inputs.snapshot else version.source_directory,
            environment=inputs.environment or version.environment, deploy=inputs.deploy)

    def _version(self, name: str, inputs: VersionInput, settings: DeploymentConfig,
                 generation: int) -> EndpointVersion:
        """A version from client input: models and snapshot looked up and their layout checked."""
        if not inputs.models:
            raise InvalidInput("deploy at least one model: models=[Model(ws, 'name')]")
        if not inputs.entry_script or not inputs.snapshot:
            raise InvalidInput("a version needs an entry script and a source snapshot: give an InferenceConfig")
        models = []
        for model_id in inputs.models:
            model_name, _, number = model_id.partition(":")
            record = self.store.get_model(model_name, int(number) if number.isdigit() else None)
            models.append(ModelRef(record.name, record.version, record.artifact_sha256, record.artifact_kind,
                                   record.artifact_name))
        snapshot = self.store.get_snapshot(inputs.snapshot).sha256
        app_root.layout(self.artifacts, snapshot, [vars(m) for m in models], inputs.source_directory)
        environment = EnvironmentSpec.from_dict(inputs.environment or DEFAULT_ENVIRONMENT).to_dict()
        deploy = {k: v for k, v in settings.to_settings().items() if k not in (*_VERSION_ONLY, *KEY_SETTINGS)}
        deploy["compute_type"] = "aks"
        return EndpointVersion(name=name, generation=generation, models=tuple(models), entry_script=inputs.entry_script,
                               source_directory=inputs.source_directory, snapshot=snapshot, environment=environment,
                               deploy=deploy, gpus=gpu_ids(int(deploy.get("gpu_cores") or 0)))

    def _endpoint_settings(self, current: Endpoint, changes: dict[str, Any]) -> Endpoint:
        """An endpoint's own settings changed: auth, CORS, description, tags (AksEndpoint.update)."""
        allowed = {"auth_enabled", "token_auth_enabled", "cors_origins", "description", "tags", "primary_key",
                   "secondary_key"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise InvalidInput(f"endpoint '{current.name}': {', '.join(unknown)} belong to a version: change them "
                               "with update_version")
        auth = {"key": (True, False), "token": (False, True), "none": (False, False)}[current.auth]
        settings = DeploymentConfig(auth_enabled=changes.get("auth_enabled", auth[0]),
                                    token_auth_enabled=changes.get("token_auth_enabled", auth[1]), num_replicas=1,
                                    cors_origins=changes.get("cors_origins", list(current.cors_origins)))
        return replace(current, auth=_auth(settings), keys=_keys(settings, current.keys),
                       cors_origins=tuple(settings.cors_origins or ()),
                       description=changes.get("description", current.description),
                       tags=dict(changes.get("tags", current.tags)))

    def _save(self, endpoint: Endpoint, create: bool = False) -> ServiceRecord:
        models = sorted({(m.name, m.version) for v in endpoint.versions for m in v.models})
        return self.store.put_service(endpoint.name, endpoint.to_dict(), models, create=create)

    def _save_traffic(self, before: Endpoint, after: Endpoint, reason: str) -> ServiceRecord:
        """Save a change of versions or traffic (remembering the traffic before it) and wait until routed."""
        endpoint = traffic.check(traffic.with_history(before, after, reason, _now()) if reason else after)
        record = self._save(replace(endpoint, revision=before.revision + 1))
        self.deployments.wait_routed(before.name, record.endpoint.revision)
        return record


def _with_traffic(endpoint: Endpoint, name: str, given: TrafficInput) -> Endpoint:
    """``endpoint`` with ``name``'s traffic settings changed as given (a new default or control clears the
    flag on the others; clearing a version's default or control flag is refused: set it on another one)."""
    versions = list(endpoint.versions)
    for flag, value in (("is_default", given.is_default), ("is_control", given.is_control)):
        if value:
            versions = traffic.flagged(versions, name, flag)
        elif value is False and getattr(endpoint.version(name), flag):
            what = "default" if flag == "is_default" else "control"
            raise InvalidInput(f"'{name}' is the {what} version of endpoint '{endpoint.name}': make another version "
                               f"the {what} instead of clearing it")
    updates = {k: v for k, v in (("traffic_percentile", given.traffic_percentile),
                                 ("mirror_percentile", given.mirror_percentile)) if v is not None}
    versions = [replace(v, **updates) if v.name == name else v for v in versions]
    return endpoint.with_versions(versions)


def _version_of(endpoint: Endpoint, name: str) -> EndpointVersion:
    try:
        return endpoint.version(name)
    except KeyError as err:
        raise NotFound(str(err.args[0])) from None


def _next_generation(current: Endpoint | None, version_name: str) -> int:
    """A redeployed (overwritten) version starts a new replica set."""
    if current is None:
        return 1
    return max((v.generation for v in current.versions if v.name == version_name), default=0) + 1


def _auth(settings: DeploymentConfig) -> str:
    if settings.token_auth_enabled:
        return "token"
    return "key" if settings.auth_enabled else "none"


def _keys(settings: DeploymentConfig, current: dict[str, str] | None) -> dict[str, str]:
    current = current or {}
    return {"primary": settings.primary_key or current.get("primary") or secrets.token_urlsafe(32),
            "secondary": settings.secondary_key or current.get("secondary") or secrets.token_urlsafe(32)}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
