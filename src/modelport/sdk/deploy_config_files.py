"""Azure ML's deploymentconfig.json read as its reader did, and the shapes that exist only there and in
their own factories: ACI (a one-replica local service here) and LocalWebservice.

``DeploymentConfig.from_file``/``from_json_dict`` come here; ``DeploymentConfig`` itself, its checks and
the AKS and endpoint factories are in ``deploy_config``.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from .deploy_config import (
    _COMPUTE_TYPE_HINT,
    _FILE_COMPUTE_TYPES,
    _PARAMETERS,
    ACI,
    ACI_PARAMETERS,
    AKS,
    ENDPOINT,
    LOCAL,
    DeploymentConfig,
    _build,
    warn_not_applied,
)
from .deploy_config_keys import ACI_ONLY, FILE_TREE, KEY, in_file_terms, read_section
from .files import KeyRule


def read_deploymentconfig(data: object, source: str = "deploymentconfig.json", strict: bool = False
                          ) -> DeploymentConfig:
    """Build from the parsed ``deploymentconfig.json`` as Azure ML's reader did, keys judged by the key rule.

    ``computeType`` aks/kubernetes, local and ACI (a one-replica local service, see
    ``aci_deploy_configuration``) and AKSENDPOINT (an endpoint: ``versionName``, ``trafficPercentile``) are
    read. Keys of another compute type are ignored, with a warning when they ask for something; unknown keys
    warn (InvalidInput with ``strict``). Errors name ``source`` and the file's keys.
    """
    if not isinstance(data, dict):
        raise InvalidInput(f"{source} must hold a JSON object with computeType; got {type(data).__name__}")
    kind = _file_compute_type(data.get("computeType"), source)
    with KeyRule(source, strict) as rule:
        if kind == ACI:
            rule.note(f"computeType ACI: {_aci_mapping(KEY.__getitem__, 'deploy with computeType aks')}")
        values: dict[str, Any] = {}
        read_section(data, FILE_TREE, "", values, rule)
        del values["compute_type"]
        try:
            if kind == ACI:
                return _aci(values, rule, KEY.__getitem__)
            _ignore_inapplicable(values, _PARAMETERS[kind], kind, rule, KEY.__getitem__)
            if kind == LOCAL:
                return _local(values, rule, KEY.__getitem__)
            config = _build(kind, values, "deploymentconfig.json")
        except InvalidInput as err:
            raise InvalidInput(in_file_terms(f"{source}: {err}")) from None
        warn_not_applied(values, rule, KEY.__getitem__)
        return config



def _ignore_inapplicable(values: dict[str, Any], applicable: frozenset[str], kind: str, rule: KeyRule, name) -> None:
    """Drop the settings of ``values`` that ``kind`` does not have, as Azure's reader ignored them; each that asks
    for something (not its default for ``kind``) warns."""
    for param in [param for param in values if param not in applicable]:
        rule.unsupported(name(param), values.pop(param), f"does not apply to computeType {kind}; ignored, as "
                         "Azure ML's reader did", getattr(_KIND_DEFAULTS[kind], param, None))


def _file_compute_type(kind: object, source: str) -> str:
    if kind is None:
        raise InvalidInput(f"{source}: computeType is required; {_COMPUTE_TYPE_HINT}")
    if not isinstance(kind, str) or kind.lower() not in _FILE_COMPUTE_TYPES:
        raise InvalidInput(f"{source}: computeType {kind!r} is not supported; {_COMPUTE_TYPE_HINT}")
    return _FILE_COMPUTE_TYPES[kind.lower()]


def local_deploy_configuration(port: int | None = None) -> DeploymentConfig:
    """``LocalWebservice.deploy_configuration(port=None)``: one replica, no auth, no autoscaling.

    ``port`` is kept, and warns (``ConfigWarning``): Azure's local service listened on it; here every service is
    served by the front end, on its port, at the service's scoring URI.
    """
    return _local({"port": port}, KeyRule("LocalWebservice.deploy_configuration"), str)


_LOCAL_PORT = ("local services are served by the front end on its port (MODELPORT_FRONTEND_PORT) at their scoring "
               "URI (service.scoring_uri), not on a port of their own")


def _local(values: dict[str, Any], rule: KeyRule, name) -> DeploymentConfig:
    """A local deployment's settings (by parameter: ``port``), read under ``rule``; a given port warns."""
    config = DeploymentConfig(compute_type=LOCAL, port=values.get("port"), auth_enabled=False,
                              autoscale_enabled=False, num_replicas=1)
    rule.unsupported(name("port"), config.port, _LOCAL_PORT)
    return config


# What a setting is when not given, by the compute type a file declares: what asks for nothing there.
_KIND_DEFAULTS = {AKS: DeploymentConfig(), ENDPOINT: DeploymentConfig(compute_type=ENDPOINT),
                  LOCAL: local_deploy_configuration(), ACI: local_deploy_configuration()}


def aci_deploy_configuration(cpu_cores: float | None = None, memory_gb: float | None = None,
                             tags: dict[str, str] | None = None, properties: dict[str, str] | None = None,
                             description: str | None = None, location: str | None = None,
                             auth_enabled: bool | None = None, ssl_enabled: bool | None = None,
                             enable_app_insights: bool | None = None, ssl_cert_pem_file: str | None = None,
                             ssl_key_pem_file: str | None = None, ssl_cname: str | None = None,
                             dns_name_label: str | None = None, primary_key: str | None = None,
                             secondary_key: str | None = None, collect_model_data: bool | None = None,
                             cmk_vault_base_url: str | None = None, cmk_key_name: str | None = None,
                             cmk_key_version: str | None = None, vnet_name: str | None = None,
                             subnet_name: str | None = None) -> DeploymentConfig:
    """``AciWebservice.deploy_configuration(...)`` with Azure ML's parameters: a one-replica local service.

    ACI ran one container of ``cpu_cores`` (default 0.1) and ``memory_gb`` (default 0.5); here the service runs one
    replica on this machine with those values, when given, as its CPU and memory limits, and key auth only when
    ``auth_enabled`` (ACI's default is off). The first ``ConfigWarning`` says so; ``location``, the SSL, DNS, CMK and
    virtual network settings have no meaning here and each given one warns. Returns an ``aks`` config.
    """
    given = {param: value for param, value in locals().items() if value is not None}
    rule = KeyRule("AciWebservice.deploy_configuration")
    rule.note(_aci_mapping(str, "use AksWebservice.deploy_configuration"))
    return _aci(given, rule, str)


def _aci_mapping(name, instead: str) -> str:
    """What an ACI deployment becomes here, its settings named by ``name(param)`` (the first ACI warning)."""
    return (f"ACI deploys as a local service here: one replica on this machine, with {name('cpu_cores')} and "
            f"{name('memory_gb')} as its CPU and memory limits and {name('auth_enabled')} as key auth (off by "
            f"default, as on ACI); for more replicas or Kubernetes, {instead}")


def _aci(values: dict[str, Any], rule: KeyRule, name) -> DeploymentConfig:
    """An ACI deployment's settings (by parameter) as a one-replica aks config; warns about the ones that have no
    meaning here."""
    for param, _, instead in ACI_ONLY:
        rule.unsupported(name(param), values.pop(param, None), instead)
    _ignore_inapplicable(values, ACI_PARAMETERS, ACI, rule, name)
    cpu, memory = values.get("cpu_cores"), values.get("memory_gb")
    config = _build(AKS, {**values, "num_replicas": 1, "auth_enabled": values.get("auth_enabled", False),
                          "cpu_cores_limit": cpu, "memory_gb_limit": memory}, "AciWebservice.deploy_configuration")
    warn_not_applied(values, rule, name)
    return config
