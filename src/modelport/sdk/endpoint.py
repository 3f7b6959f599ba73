"""``AksEndpoint`` (alias ``Endpoint``): Azure ML's controlled rollout, several versions behind one scoring URI.

Each version runs its own replicas and takes its ``traffic_percentile`` of the requests; what no version claims goes
to the default version. Azure ML's rules hold (at most 6 versions, percentiles summing to at most 100, one default
and one control version, the default deleted last); the control plane refuses a change that breaks one with
``InvalidInput`` naming the rule, and changes nothing. Beyond Azure ML: ``mirror_percentile`` (a version gets a copy
of that share of the requests, its answers discarded), ``promote``, ``rollback`` and ``history``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..errors import InvalidInput, NotFound
from ..spec import TrafficAssignment
from .deploy_config import DeploymentConfig, endpoint_deploy_configuration, warn_not_applied
from .files import KeyRule
from .webservice import AksWebservice, _inference_body, _webservice_errors

# The deployment settings a version has (Azure's create_version/update_version parameters); an endpoint's own
# settings (auth, keys, CORS, description, tags) change with AksEndpoint.update.
VERSION_SETTINGS = frozenset({
    "autoscale_enabled", "autoscale_min_replicas", "autoscale_max_replicas", "autoscale_refresh_seconds",
    "autoscale_target_utilization", "collect_model_data", "cpu_cores", "memory_gb", "scoring_timeout_ms",
    "replica_max_concurrent_requests", "max_request_wait_time", "num_replicas", "tags", "properties",
    "description", "gpu_cores", "period_seconds", "initial_delay_seconds", "timeout_seconds", "success_threshold",
    "failure_threshold", "cpu_cores_limit", "memory_gb_limit"})
ENDPOINT_SETTINGS = frozenset({"auth_enabled", "token_auth_enabled", "description", "tags", "cors_origins",
                               "primary_key", "secondary_key"})


class VersionType(str, Enum):
    """Azure ML's ``AksEndpoint.VersionType``: one control version, the others treatments. A ``str`` enum, so
    ``version.version_type == "Control"`` and ``== AksEndpoint.VersionType.control`` both hold."""

    control = "Control"
    treatment = "Treatment"


@dataclass(frozen=True)
class AksEndpointVersion:
    """One version of an endpoint, as ``AksEndpoint.versions`` holds them (read-only; refreshed with the endpoint).

    ``traffic_percentile`` is its configured share (0-100); ``effective_percentile`` its share of the split now (the
    default version also gets what no version claims; a mirrored version has none). ``state`` is ``Transitioning``,
    ``Healthy``, ``Unhealthy`` or ``Failed``, with ``error`` saying why when it is not Healthy. ``replica_set``
    (``<version>-<generation>``) names the replicas it runs, as the ``x-modelport-replica-set`` response header does.
    ``deploy_config`` is its ``DeploymentConfig`` (replicas, resources, timeouts, tags, description).
    """

    name: str
    state: str
    error: str | None
    traffic_percentile: float
    effective_percentile: float
    is_default: bool
    is_control_version_type: bool
    mirror_percentile: float
    replica_set: str
    generation: int
    models: list[str]
    entry_script: str
    environment: str
    deploy_config: DeploymentConfig
    scoring_uri: str | None
    replicas: int | None
    ready_replicas: int | None

    @property
    def version_type(self) -> VersionType:
        """Azure ML's version type: ``Control`` or ``Treatment``."""
        return VersionType.control if self.is_control_version_type else VersionType.treatment

    @property
    def num_replicas(self) -> int | None:
        """The fixed replica count, None while autoscaling (Azure ML's attribute)."""
        return self.deploy_config.num_replicas

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.deploy_config.tags or {})

    @property
    def description(self) -> str | None:
        return self.deploy_config.description

    @staticmethod
    def from_view(view: dict, scoring_uri: str | None) -> AksEndpointVersion:
        """From one entry of the control plane's ``versions`` (``api.schemas.VersionView``)."""
        return AksEndpointVersion(
            name=view["name"], state=view["state"], error=view.get("reason"),
            traffic_percentile=view["traffic_percentile"], effective_percentile=view["effective_percentile"],
            is_default=view["is_default"], is_control_version_type=view["is_control"],
            mirror_percentile=view["mirror_percentile"], replica_set=view["replica_set"],
            generation=view["generation"], models=list(view["models"]), entry_script=view["entry_script"],
            environment=view["environment"], deploy_config=DeploymentConfig.from_settings(view["deploy"]),
            scoring_uri=scoring_uri, replicas=view.get("replicas"), ready_replicas=view.get("ready_replicas"))


class AksEndpoint(AksWebservice):
    """Azure ML's ``AksEndpoint``: versions behind one scoring URI, each with its share of the traffic.

    Created by ``Model.deploy`` with ``AksEndpoint.deploy_configuration(version_name=..., traffic_percentile=...)``
    (its first version is the default and control version); ``Webservice(ws, name)`` returns one for an endpoint.
    Scoring, keys, tokens, ``wait_for_deployment`` and ``delete`` work as for web services. Each change returns
    once the front end routes it; a new or changed version's replicas start after that (the default version serves
    its share meanwhile): ``wait_for_deployment`` waits until every version is Healthy. Errors are Azure ML's
    ``WebserviceException`` and stay the modelport class they are (``InvalidInput`` for a broken rule, ``NotFound``).
    """

    VersionType = VersionType
    deploy_configuration = staticmethod(endpoint_deploy_configuration)

    def _load(self, view: dict) -> None:
        super()._load(view)
        self.compute_type = "AKSENDPOINT"
        self.versions: dict[str, AksEndpointVersion] = {
            name: AksEndpointVersion.from_view(version, self.scoring_uri)
            for name, version in view.get("versions", {}).items()}

    @property
    def tags(self) -> dict:
        """The endpoint's tags (``update(tags=...)``); each version has its own (``versions[name].tags``)."""
        return dict(self._view.get("tags") or {})

    @property
    def description(self) -> str | None:
        """The endpoint's description (``update(description=...)``)."""
        return self._view.get("description")

    @property
    def default_version(self) -> AksEndpointVersion:
        """The version that gets what no version claims."""
        return next(v for v in self.versions.values() if v.is_default)

    @_webservice_errors
    def create_version(self, version_name: str, autoscale_enabled: bool | None = None,
                       autoscale_min_replicas: int | None = None, autoscale_max_replicas: int | None = None,
                       autoscale_refresh_seconds: int | None = None, autoscale_target_utilization: int | None = None,
                       collect_model_data: bool | None = None, cpu_cores: float | None = None,
                       memory_gb: float | None = None, scoring_timeout_ms: int | None = None,
                       replica_max_concurrent_requests: int | None = None, max_request_wait_time: int | None = None,
                       num_replicas: int | None = None, tags: dict | None = None, properties: dict | None = None,
                       description: str | None = None, models: list | None = None, inference_config=None,
                       gpu_cores: int | None = None, period_seconds: int | None = None,
                       initial_delay_seconds: int | None = None, timeout_seconds: int | None = None,
                       success_threshold: int | None = None, failure_threshold: int | None = None,
                       traffic_percentile: float | None = None, is_default: bool = False,
                       is_control_version_type: bool = False, cpu_cores_limit: float | None = None,
                       memory_gb_limit: float | None = None, *, mirror_percentile: float | None = None) -> None:
        """Add a version, as Azure ML's ``create_version`` (same parameters, in the same order).

        ``version_name``: 1-32 lowercase letters, digits and '-'. ``models`` (``Model`` objects) and
        ``inference_config`` default to the default version's, and so does every setting left None.
        ``traffic_percentile`` (0-100) is its share; the sum over all versions may be at most 100.
        ``is_default``/``is_control_version_type`` make it the default/control version (clearing the flag on the
        others). modelport's ``mirror_percentile`` (0-100): it gets a copy of that share of the endpoint's requests
        instead of a share (its answers are discarded; a mirrored version has ``traffic_percentile`` 0).
        Raises InvalidInput naming the rule broken (a 7th version, a sum over 100, a taken name); nothing changes then.
        """
        settings = _given(locals(), VERSION_SETTINGS)
        body = {"version_name": version_name, **self._what_it_runs(models, inference_config),
                **_traffic(traffic_percentile, is_default or None, is_control_version_type or None,
                           mirror_percentile)}
        if settings:
            body["deploy"] = self._settings(self.default_version, settings, "create_version")
        self._load(self.workspace._client.json("POST", f"/services/{self.name}/versions", json=body))

    @_webservice_errors
    def update_version(self, version_name: str, autoscale_enabled: bool | None = None,
                       autoscale_min_replicas: int | None = None, autoscale_max_replicas: int | None = None,
                       autoscale_refresh_seconds: int | None = None, autoscale_target_utilization: int | None = None,
                       collect_model_data: bool | None = None, cpu_cores: float | None = None,
                       memory_gb: float | None = None, scoring_timeout_ms: int | None = None,
                       replica_max_concurrent_requests: int | None = None, max_request_wait_time: int | None = None,
                       num_replicas: int | None = None, tags: dict | None = None, properties: dict | None = None,
                       description: str | None = None, models: list | None = None, inference_config=None,
                       gpu_cores: int | None = None, period_seconds: int | None = None,
                       initial_delay_seconds: int | None = None, timeout_seconds: int | None = None,
                       success_threshold: int | None = None, failure_threshold: int | None = None,
                       traffic_percentile: float | None = None, is_default: bool | None = None,
                       is_control_version_type: bool | None = None, cpu_cores_limit: float | None = None,
                       memory_gb_limit: float | None = None, *, mirror_percentile: float | None = None) -> None:
        """Change a version, as Azure ML's ``update_version``: what is left None stays as it is.

        Traffic (``traffic_percentile``, ``is_default``, ``is_control_version_type``, ``mirror_percentile``) applies
        at once: the new split serves every request sent after this returns. A change to what it runs (``models``,
        ``inference_config``) or how (any setting) starts a new replica set that takes over once ready (a rolling
        update, no failed request). ``is_default=False``/``is_control_version_type=False`` on the version holding
        the flag is refused: make another version the default/control instead. Raises InvalidInput naming the rule
        broken (nothing changes then), or when nothing is given; NotFound for an unknown version.
        """
        settings = _given(locals(), VERSION_SETTINGS)
        body = {**self._what_it_runs(models, inference_config),
                **_traffic(traffic_percentile, is_default, is_control_version_type, mirror_percentile)}
        if settings:
            body["deploy"] = self._settings(self._version(version_name), settings, "update_version")
        if not body:
            raise InvalidInput(f"update_version got nothing to change for version '{version_name}' of endpoint "
                               f"'{self.name}'; give traffic_percentile=, is_default=, models=, inference_config= "
                               "or a setting such as num_replicas=")
        self._load(self.workspace._client.json("PATCH", f"/services/{self.name}/versions/{version_name}",
                                               json=body))

    @_webservice_errors
    def delete_version(self, version_name: str) -> None:
        """Delete a version, as Azure ML's ``delete_version``; its replicas stop. The default version can be
        deleted only after another one is made default (InvalidInput says so); NotFound for an unknown version."""
        self._load(self.workspace._client.json("DELETE", f"/services/{self.name}/versions/{version_name}"))

    @_webservice_errors
    def update(self, auth_enabled: bool | None = None, token_auth_enabled: bool | None = None,
               enable_app_insights: bool | None = None, description: str | None = None, tags: dict | None = None,
               properties: dict | None = None, *, cors_origins: list[str] | None = None,
               primary_key: str | None = None, secondary_key: str | None = None) -> None:
        """Change the endpoint's own settings, as Azure ML's ``AksEndpoint.update``: None leaves one unchanged.

        ``auth_enabled`` (keys) and ``token_auth_enabled`` (JWTs) cannot both be true; ``tags`` replace the tags;
        modelport's ``cors_origins`` (``["https://app.example.com"]``, ``["*"]``) and the keys as at deployment.
        Returns once the front end enforces them. ``enable_app_insights`` warns (``ConfigWarning``: there is no
        Application Insights here); ``properties`` belong to versions here (``update_version(properties=...)``).
        Versions change with ``update_version``. Raises InvalidInput when nothing is given.
        """
        if properties is not None:
            raise InvalidInput(f"endpoint '{self.name}' keeps no properties of its own; give them to a version: "
                               "update_version(version_name, properties={...})")
        changes = _given(locals(), ENDPOINT_SETTINGS)
        if not changes and enable_app_insights is None:
            raise InvalidInput(f"update got nothing to change for endpoint '{self.name}'; give auth_enabled=, "
                               "token_auth_enabled=, description=, tags= or cors_origins= (versions change with "
                               "update_version)")
        warn_not_applied({"enable_app_insights": enable_app_insights}, KeyRule("AksEndpoint.update"), str)
        if changes:
            self._load(self.workspace._client.json("PATCH", f"/services/{self.name}", json={"deploy": changes}))

    @_webservice_errors
    def get_logs(self, num_lines: int = 5000, init: bool = False, version_name: str | None = None) -> str:
        """The last ``num_lines`` lines of a version's replica logs (default: the default version's); ``init=True``:
        of its environment's (local) or image's (Kubernetes) build, as Azure ML's init container logs."""
        params: dict[str, Any] = {"num_lines": num_lines, **({"init": "true"} if init else {})}
        if version_name is not None:
            params["version"] = version_name
        return self.workspace._client.json("GET", f"/services/{self.name}/logs", params=params)["logs"]

    @_webservice_errors
    def promote(self, version_name: str) -> None:
        """modelport's own: ``version_name`` takes 100 % of the traffic and becomes the default and control
        version (the others keep 0 %); returns once the front end sends it every request. Undo with ``rollback``."""
        self._load(self.workspace._client.json("POST", f"/services/{self.name}/promote",
                                               json={"version_name": version_name}))

    @_webservice_errors
    def rollback(self) -> None:
        """modelport's own: back to the traffic assignment before the last change (percentiles, default and
        control; versions deleted since get nothing); returns once routed. InvalidInput when there is none."""
        self._load(self.workspace._client.json("POST", f"/services/{self.name}/rollback"))

    @_webservice_errors
    def history(self) -> list[TrafficAssignment]:
        """modelport's own: the endpoint's traffic assignments, oldest first, the current one last (its
        ``reason`` is ``"current"``). Each has ``percentiles`` (by version name), ``default``, ``control``, ``at``
        (ISO 8601 UTC) and ``reason`` (the change that replaced it: ``"promote green"``, ``"create version red"``)."""
        answer = self.workspace._client.json("GET", f"/services/{self.name}/history")
        return [TrafficAssignment.from_dict(item) for item in [*answer["history"], answer["current"]]]

    def _version(self, name: str) -> AksEndpointVersion:
        version = self.versions.get(name)
        if version is None:
            raise NotFound(f"endpoint '{self.name}' has no version '{name}'; its versions: "
                           f"{', '.join(self.versions)}")
        return version

    def _what_it_runs(self, models: list | None, inference_config) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if models is not None:
            body["models"] = [m.id for m in models]
        if inference_config is not None:
            body.update(_inference_body(self.workspace, inference_config))
        return body

    @staticmethod
    def _settings(base: AksEndpointVersion, given: dict[str, Any], caller: str) -> dict[str, Any]:
        """``base``'s settings with ``given`` over them, checked as ``Webservice.update`` checks them
        (``num_replicas`` alone turns autoscaling off; ``properties`` are add-only)."""
        warn_not_applied(given, KeyRule(f"AksEndpoint.{caller}"), str)
        return base.deploy_config.updated(**given).to_settings()

    def __repr__(self) -> str:
        return (f"AksEndpoint(workspace={self.workspace.name!r}, name={self.name!r}, state={self.state!r}, "
                f"versions={list(self.versions)!r})")


Endpoint = AksEndpoint


def service_class(called: type, view: dict) -> type:
    """The class ``Webservice(ws, name)`` gives a service, as Azure ML's ``Webservice.__new__`` chose it by the
    service's type: ``AksEndpoint`` for an endpoint (whichever class was called); for a web service the class
    called, or ``AksWebservice`` when that was an endpoint class."""
    if view.get("kind") == "endpoint":
        return AksEndpoint
    return AksWebservice if issubclass(called, AksEndpoint) else called


def _given(arguments: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    """The arguments among ``names`` that were given (not None)."""
    return {name: value for name, value in arguments.items() if name in names and value is not None}


def _traffic(traffic_percentile, is_default, is_control, mirror_percentile) -> dict[str, Any]:
    """A version's traffic settings for the control plane, the ones given (not None)."""
    values = {"traffic_percentile": traffic_percentile, "is_default": is_default,
              "is_control_version_type": is_control, "mirror_percentile": mirror_percentile}
    return {key: value for key, value in values.items() if value is not None}
