"""Deployment configuration: Azure ML's ``AksWebservice``/``AksEndpoint`` ``.deploy_configuration``.

``DeploymentConfig`` holds every parameter with Azure ML's defaults and validation; the factories take Azure's
keyword names (``None`` means "not given", as in Azure); ``from_file``/``from_json_dict`` read
``deploymentconfig.json`` as Azure ML writes it (under the key rule of ``files``; ``deploy_config_files`` has
the reader and the ACI and LocalWebservice shapes) and ``to_json_dict`` writes the same shape back.
Every bad value raises ``InvalidInput`` naming the parameter (a file's errors: its key) and the fix.
Settings modelport keeps but does not apply locally (App Insights, data collection, probe timings, namespace, a
local service's port) and ACI's Azure-only settings are accepted with a ``ConfigWarning``; ACI itself deploys as a
one-replica local service. AKSENDPOINT (files and ``AksEndpoint.deploy_configuration``) deploys an endpoint whose
first version is ``version_name`` (``versionName``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from ..frontend.routes import ORIGIN_RULE
from ..reconcile.autoscale import AutoscaleSettings
from .deploy_config_keys import FIELDS, KEY, NOT_APPLIED
from .files import KeyRule, read_json_object, suggest

AKS = "aks"
LOCAL = "local"
ENDPOINT = "AKSENDPOINT"
ACI = "ACI"  # read from files and AciWebservice.deploy_configuration; deployed as an aks-type local service
COMPUTE_TYPES = {"aks": AKS, "kubernetes": AKS, "local": LOCAL, "aksendpoint": ENDPOINT}
_FILE_COMPUTE_TYPES = {**COMPUTE_TYPES, "aci": ACI}

SERVICE_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
NAMESPACE = re.compile(r"^[a-z0-9]([a-z0-9-]{,61}[a-z0-9])?$")

_AUTOSCALE_VALUES = ("autoscale_min_replicas", "autoscale_max_replicas", "autoscale_refresh_seconds",
                     "autoscale_target_utilization")
_ENDPOINT_ONLY = frozenset({"version_name", "traffic_percentile"})
_FIELD_NAMES = frozenset(param for param, _, _ in FIELDS)
AKS_PARAMETERS = _FIELD_NAMES - _ENDPOINT_ONLY - {"port"}
ENDPOINT_PARAMETERS = AKS_PARAMETERS | _ENDPOINT_ONLY
LOCAL_PARAMETERS = frozenset({"port"})
ACI_PARAMETERS = frozenset({"cpu_cores", "memory_gb", "auth_enabled", "enable_app_insights", "collect_model_data",
                            "primary_key", "secondary_key", "tags", "properties", "description"})
_PARAMETERS = {AKS: AKS_PARAMETERS, ENDPOINT: ENDPOINT_PARAMETERS, LOCAL: LOCAL_PARAMETERS}
_IDENTITY = frozenset({"compute_target_name", "version_name"})  # fixed once deployed: update() refuses a new value
_COMPUTE_TYPE_HINT = "use aks (or kubernetes), ACI, local or AKSENDPOINT"


def _name(param: str) -> str:
    """How a message names a parameter: its keyword and its deploymentconfig.json key (``in_file_terms`` keeps
    only the key for messages about a file)."""
    key = KEY.get(param)
    return f"{param} ({key})" if key and key != param else param


def check_service_name(name: object, what: str = "service name", shortest: int = 3) -> str:
    """Return ``name`` if it is a valid service name; raise InvalidInput stating the rule otherwise.

    Endpoint version names follow the same rule but may be as short as one character (``shortest=1``).
    """
    if not isinstance(name, str) or not (shortest <= len(name) <= 32 and SERVICE_NAME.match(name)):
        raise InvalidInput(f"{what} {name!r} is not valid; use {shortest}-32 lowercase letters, digits and '-', "
                           "starting with a letter and ending with a letter or digit")
    return name


@dataclass(frozen=True)
class DeploymentConfig:
    """Every ``deploy_configuration`` parameter, with Azure ML's defaults; validated on creation.

    ``autoscale_enabled`` left ``None`` becomes ``num_replicas is None``. ``version_name`` and
    ``traffic_percentile`` apply to ``AKSENDPOINT`` only, ``port`` to ``local`` only.
    """

    compute_type: str = AKS
    autoscale_enabled: bool | None = None
    autoscale_min_replicas: int = 1
    autoscale_max_replicas: int = 10
    autoscale_refresh_seconds: int = 1
    autoscale_target_utilization: int = 70
    collect_model_data: bool = False
    auth_enabled: bool = True
    token_auth_enabled: bool = False
    cpu_cores: float = 0.1
    memory_gb: float = 0.5
    cpu_cores_limit: float | None = None
    memory_gb_limit: float | None = None
    gpu_cores: int = 0
    enable_app_insights: bool = False
    scoring_timeout_ms: int = 60000
    replica_max_concurrent_requests: int = 1
    max_request_wait_time: int = 500
    num_replicas: int | None = None
    primary_key: str | None = None
    secondary_key: str | None = None
    period_seconds: int = 10
    initial_delay_seconds: int = 310
    timeout_seconds: int = 2
    success_threshold: int = 1
    failure_threshold: int = 3
    namespace: str | None = None
    compute_target_name: str | None = None
    tags: dict[str, str] | None = None
    properties: dict[str, str] | None = None
    description: str | None = None
    version_name: str | None = None
    traffic_percentile: float = 0
    port: int | None = None
    cors_origins: list[str] | None = None  # not Azure's: origins whose browsers may call the service ("*": any)

    def __post_init__(self) -> None:
        kind = self.compute_type
        if not isinstance(kind, str) or kind.lower() not in COMPUTE_TYPES:
            raise InvalidInput(f"compute_type (computeType) {kind!r} is not supported; {_COMPUTE_TYPE_HINT}")
        object.__setattr__(self, "compute_type", COMPUTE_TYPES[kind.lower()])
        if self.autoscale_enabled is None:
            object.__setattr__(self, "autoscale_enabled", self.num_replicas is None)
        for param, _, (types, label) in FIELDS:
            value = getattr(self, param)
            if value is not None and ((isinstance(value, bool) and bool not in types) or not isinstance(value, types)):
                raise InvalidInput(f"{_name(param)} must be {label}; got {value!r}")
        for param in ("tags", "properties"):
            value = getattr(self, param)
            if value is not None:
                if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
                    raise InvalidInput(f"{param} must map strings to strings; got {value!r}")
                object.__setattr__(self, param, dict(value))
        self._check_scaling()
        self._check_resources()
        self._check_probe_and_requests()
        self._check_auth_and_names()

    def _check_scaling(self) -> None:
        replicas, autoscale = _name("num_replicas"), _name("autoscale_enabled")
        if self.num_replicas is not None and self.num_replicas < 1:
            raise InvalidInput(f"{replicas} must be greater than 0; got {self.num_replicas}")
        if not self.autoscale_enabled:
            if self.num_replicas is None:
                raise InvalidInput(f"{autoscale} is false but {replicas} is not given; give the number of replicas, "
                                   "or turn autoscaling on")
            return
        if self.num_replicas is not None:
            raise InvalidInput(f"{autoscale} is true and {replicas} is given; turn autoscaling off for a fixed "
                               "number of replicas, or leave the number out to autoscale")
        low, high = self.autoscale_min_replicas, self.autoscale_max_replicas
        if low < 1:
            raise InvalidInput(f"{_name('autoscale_min_replicas')} must be greater than 0; got {low}")
        if low > high:
            raise InvalidInput(f"{_name('autoscale_min_replicas')} {low} cannot be greater than "
                               f"{_name('autoscale_max_replicas')} {high}; raise the maximum or lower the minimum")
        if self.autoscale_refresh_seconds < 1:
            raise InvalidInput(f"{_name('autoscale_refresh_seconds')} must be at least 1; "
                               f"got {self.autoscale_refresh_seconds}")
        if not 1 <= self.autoscale_target_utilization <= 100:
            raise InvalidInput(f"{_name('autoscale_target_utilization')} must be a percentage from 1 to 100; "
                               f"got {self.autoscale_target_utilization}")

    def _check_resources(self) -> None:
        for request, limit in (("cpu_cores", "cpu_cores_limit"), ("memory_gb", "memory_gb_limit")):
            wanted, cap = getattr(self, request), getattr(self, limit)
            if wanted <= 0:
                raise InvalidInput(f"{_name(request)} must be greater than 0; got {wanted}")
            if cap is not None and cap < wanted:
                raise InvalidInput(f"{_name(limit)} {cap} must be greater than or equal to {_name(request)} {wanted}")
        if self.gpu_cores < 0:
            raise InvalidInput(f"{_name('gpu_cores')} must be a whole number of 0 or more; got {self.gpu_cores}")

    def _check_probe_and_requests(self) -> None:
        for param in ("scoring_timeout_ms", "replica_max_concurrent_requests", "max_request_wait_time",
                      "period_seconds", "timeout_seconds", "success_threshold", "failure_threshold"):
            if getattr(self, param) < 1:
                raise InvalidInput(f"{_name(param)} must be at least 1; got {getattr(self, param)}")
        if self.initial_delay_seconds < 0:
            raise InvalidInput(f"{_name('initial_delay_seconds')} must be 0 or more; got {self.initial_delay_seconds}")

    def _check_auth_and_names(self) -> None:
        if self.auth_enabled and self.token_auth_enabled:
            raise InvalidInput(f"{_name('auth_enabled')} and {_name('token_auth_enabled')} cannot both be true; "
                               "turn key auth off to use token auth")
        for param in ("primary_key", "secondary_key", "compute_target_name"):
            if getattr(self, param) == "":
                raise InvalidInput(f"{_name(param)} must not be empty; leave it out instead")
        if self.namespace is not None and not NAMESPACE.match(self.namespace):
            raise InvalidInput(f"namespace {self.namespace!r} is not a valid Kubernetes namespace; use up to 63 "
                               f"lowercase letters, digits and '-', not starting or ending with '-' "
                               f"(regex {NAMESPACE.pattern})")
        if self.compute_type != ENDPOINT:
            for param, default in (("version_name", None), ("traffic_percentile", 0)):
                if getattr(self, param) != default:
                    raise InvalidInput(f"{_name(param)} applies only to AksEndpoint deployments "
                                       "(computeType AKSENDPOINT); remove it")
        if self.version_name is not None:
            check_service_name(self.version_name, "version_name (versionName)", shortest=1)
        if not 0 <= self.traffic_percentile <= 100:
            raise InvalidInput(f"{_name('traffic_percentile')} must be from 0 to 100; got {self.traffic_percentile}")
        if self.compute_type == LOCAL:
            if self.auth_enabled or self.token_auth_enabled or self.num_replicas != 1:
                raise InvalidInput("a local deployment runs one replica without auth; "
                                   "create it with LocalWebservice.deploy_configuration(port=...)")
        elif self.port is not None:
            raise InvalidInput("port applies only to local deployments (computeType local); remove it")
        if self.port is not None and not 1 <= self.port <= 65535:
            raise InvalidInput(f"port {self.port} must be from 1 to 65535, or left out to pick a free port")
        if self.cors_origins is not None:
            for origin in self.cors_origins:
                if not (origin == "*" or (isinstance(origin, str) and ORIGIN_RULE.match(origin))):
                    raise InvalidInput(f"{_name('cors_origins')} entry {origin!r} is not an origin; use "
                                       "'scheme://host[:port]' (e.g. 'https://app.example.com') or '*' for any")
            object.__setattr__(self, "cors_origins", list(self.cors_origins))

    def autoscaler_settings(self) -> AutoscaleSettings:
        """The autoscaler's inputs; with a fixed ``num_replicas`` the minimum and maximum are that count."""
        return AutoscaleSettings.of(self.to_settings())[1]

    def updated(self, **changes: Any) -> DeploymentConfig:
        """A validated copy with ``changes`` applied, as ``service.update(...)`` does.

        ``None`` means unchanged (Azure's update). ``compute_type``, ``compute_target_name``, ``version_name`` and
        parameters that do not apply to this compute type may be passed only with their current value, so
        ``updated(**config.to_settings())`` works. ``num_replicas=N`` alone turns autoscaling off and
        ``autoscale_enabled=True`` alone drops ``num_replicas``. ``tags`` replace the tags; ``properties`` are
        add-only: new keys are added, an existing key cannot change.
        """
        _reject_unknown(changes, _FIELD_NAMES | {"compute_type"}, "update")
        given = self._changes(changes)
        if isinstance(given.get("properties"), dict) and self.properties:
            for key, value in given["properties"].items():
                if key in self.properties and self.properties[key] != value:
                    raise InvalidInput(f"property {key!r} is already {self.properties[key]!r} and properties are "
                                       "add-only; use a new key, or tags for values that change")
            given["properties"] = {**self.properties, **given["properties"]}
        return self._with(given)

    def overridden(self, **flags: Any) -> DeploymentConfig:
        """A validated copy with deploy-time ``flags`` over this (file's) config, as ``az ml model deploy --dc``
        with setting flags: ``None`` means not given; ``tags`` and ``properties`` are merged key by key, the flag
        winning; ``num_replicas`` alone turns autoscaling off and ``autoscale_enabled=True`` alone drops
        ``num_replicas``. Raises InvalidInput as ``updated`` does for unknown or inapplicable parameters."""
        _reject_unknown(flags, _FIELD_NAMES, "deploy")
        given = self._changes(flags)
        for param in ("tags", "properties"):
            if isinstance(given.get(param), dict):
                given[param] = {**(getattr(self, param) or {}), **given[param]}
        return self._with(given)

    def _changes(self, changes: dict[str, Any]) -> dict[str, Any]:
        """The given (non-None) changes that apply here, with num_replicas/autoscale_enabled made consistent."""
        changeable = _PARAMETERS[self.compute_type] - _IDENTITY
        for param, value in changes.items():
            if param in changeable or value is None or self._is_current(param, value):
                continue
            if param in _IDENTITY or param == "compute_type":
                raise InvalidInput(f"{_name(param)} cannot change after deployment; deploy a new service instead")
            raise InvalidInput(f"{_name(param)} does not apply to {self.compute_type} deployments; remove it")
        given = {param: value for param, value in changes.items() if value is not None and param in changeable}
        if "num_replicas" in given and "autoscale_enabled" not in given:
            given["autoscale_enabled"] = False
        if given.get("autoscale_enabled") is True and "num_replicas" not in given:
            given["num_replicas"] = None
        return given

    def _with(self, given: dict[str, Any]) -> DeploymentConfig:
        config = dataclasses.replace(self, **given)
        _reject_autoscale_values_without_autoscaling(config, {p: v for p, v in given.items() if v != getattr(self, p)})
        return config

    def _is_current(self, param: str, value: Any) -> bool:
        if param == "compute_type":
            return isinstance(value, str) and COMPUTE_TYPES.get(value.lower()) == self.compute_type
        return value == getattr(self, param)

    def to_settings(self) -> dict[str, Any]:
        """All parameters by keyword name, JSON-able: the form the control plane stores."""
        return dataclasses.asdict(self)

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> DeploymentConfig:
        """Rebuild (and validate) a config from ``to_settings()`` output."""
        _reject_unknown(settings, _FIELD_NAMES | {"compute_type"}, "stored deployment settings")
        return cls(**settings)

    @classmethod
    def from_file(cls, path: str | Path, strict: bool = False) -> DeploymentConfig:
        """Read a ``deploymentconfig.json`` as Azure ML writes it (see ``from_json_dict``)."""
        return cls.from_json_dict(read_json_object(path, "deployment config"), source=str(path), strict=strict)

    @classmethod
    def from_json_dict(cls, data: object, source: str = "deploymentconfig.json", strict: bool = False
                       ) -> DeploymentConfig:
        """Build from the parsed ``deploymentconfig.json`` as Azure ML's reader did (``deploy_config_files``)."""
        from .deploy_config_files import read_deploymentconfig  # it builds on this module

        return read_deploymentconfig(data, source, strict)

    def to_json_dict(self) -> dict[str, Any]:
        """The ``deploymentconfig.json`` form; ``from_json_dict`` reads it back to an equal config."""
        out: dict[str, Any] = {"computeType": self.compute_type}
        skip = _FIELD_NAMES - _PARAMETERS[self.compute_type]
        if not self.autoscale_enabled:
            skip |= set(_AUTOSCALE_VALUES)
        for param, key, _ in FIELDS:
            value = getattr(self, param)
            if param in skip or value is None:
                continue
            *sections, leaf = key.split(".")
            node = out
            for section in sections:
                node = node.setdefault(section, {})
            node[leaf] = dict(value) if isinstance(value, dict) else value
        return out


_DEFAULTS = {field.name: field.default for field in dataclasses.fields(DeploymentConfig)}


def _reject_unknown(given: dict[str, Any], allowed: frozenset[str], caller: str) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise InvalidInput(f"{caller} got an unknown parameter {unknown[0]!r}{suggest(unknown[0], allowed)}; "
                           f"valid parameters: {', '.join(sorted(allowed))}")


def _reject_autoscale_values_without_autoscaling(config: DeploymentConfig, given: dict[str, Any]) -> None:
    if config.autoscale_enabled:
        return
    for param in _AUTOSCALE_VALUES:
        if param in given:
            raise InvalidInput(f"{_name(param)} is given but autoscaling is off; remove it, or turn autoscaling on "
                               "and leave the number of replicas out")


def warn_not_applied(given: dict[str, Any], rule: KeyRule, name) -> None:
    """One ConfigWarning (from ``rule``) per setting of ``given`` (by parameter) that local deployments keep but do
    not apply (App Insights, data collection, probe timings, namespace), unless it asks for nothing; each is named
    ``name(param)`` (its file key, keyword or flag)."""
    for param, instead in NOT_APPLIED.items():
        rule.unsupported(name(param), given.get(param), instead, _DEFAULTS[param])


def _build(kind: str, kwargs: dict[str, Any], caller: str) -> DeploymentConfig:
    _reject_unknown(kwargs, _PARAMETERS[kind], caller)
    given = {param: value for param, value in kwargs.items() if value is not None}
    config = DeploymentConfig(compute_type=kind, **given)
    _reject_autoscale_values_without_autoscaling(config, given)
    return config


def aks_deploy_configuration(**kwargs: Any) -> DeploymentConfig:
    """``AksWebservice.deploy_configuration(...)``: Azure ML's keyword names; ``None`` means the default.

    ``blobfuse_enabled`` (Azure's model download switch) is accepted and has no effect: replicas always get their
    models from the workspace's artifact store. Settings kept but not applied locally warn (``ConfigWarning``).
    """
    kwargs.pop("blobfuse_enabled", None)
    config = _build(AKS, kwargs, "AksWebservice.deploy_configuration")
    warn_not_applied(kwargs, KeyRule("AksWebservice.deploy_configuration"), str)
    return config


def endpoint_deploy_configuration(**kwargs: Any) -> DeploymentConfig:
    """``AksEndpoint.deploy_configuration(...)``: the AKS parameters plus ``version_name`` (the first version's
    name, default ``default``) and ``traffic_percentile`` (0-100, default 0). Settings kept but not applied locally
    warn (``ConfigWarning``)."""
    config = _build(ENDPOINT, kwargs, "AksEndpoint.deploy_configuration")
    warn_not_applied(kwargs, KeyRule("AksEndpoint.deploy_configuration"), str)
    return config
