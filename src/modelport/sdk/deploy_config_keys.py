"""The ``deploymentconfig.json`` format: each key Azure ML's reader knew, its parameter, JSON type, and what
modelport does with it; and reading the nested sections under the key rule (``files.KeyRule``)."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from .files import KeyRule

# Expected JSON types: (Python types, how a message names them). bool is never accepted as a number.
BOOL = ((bool,), "true or false")
INT = ((int,), "a whole number")
NUMBER = ((int, float), "a number")
STR = ((str,), "a string")
TEXT_MAP = ((dict,), "an object mapping strings to strings")
TEXT_LIST = ((list, tuple), "a list of strings")

# parameter, deploymentconfig.json key (dotted = nested), expected type: the DeploymentConfig fields
FIELDS: tuple[tuple[str, str, tuple], ...] = (
    ("autoscale_enabled", "autoScaler.autoscaleEnabled", BOOL),
    ("autoscale_min_replicas", "autoScaler.minReplicas", INT),
    ("autoscale_max_replicas", "autoScaler.maxReplicas", INT),
    ("autoscale_refresh_seconds", "autoScaler.refreshPeriodInSeconds", INT),
    ("autoscale_target_utilization", "autoScaler.targetUtilization", INT),
    ("collect_model_data", "dataCollection.storageEnabled", BOOL),
    ("auth_enabled", "authEnabled", BOOL),
    ("token_auth_enabled", "tokenAuthEnabled", BOOL),
    ("cpu_cores", "containerResourceRequirements.cpu", NUMBER),
    ("memory_gb", "containerResourceRequirements.memoryInGB", NUMBER),
    ("cpu_cores_limit", "containerResourceRequirements.cpuLimit", NUMBER),
    ("memory_gb_limit", "containerResourceRequirements.memoryInGBLimit", NUMBER),
    ("gpu_cores", "gpuCores", INT),
    ("enable_app_insights", "appInsightsEnabled", BOOL),
    ("scoring_timeout_ms", "scoringTimeoutMs", INT),
    ("replica_max_concurrent_requests", "maxConcurrentRequestsPerContainer", INT),
    ("max_request_wait_time", "maxQueueWaitMs", INT),
    ("num_replicas", "numReplicas", INT),
    ("primary_key", "keys.primaryKey", STR),
    ("secondary_key", "keys.secondaryKey", STR),
    ("period_seconds", "livenessProbeRequirements.periodSeconds", INT),
    ("initial_delay_seconds", "livenessProbeRequirements.initialDelaySeconds", INT),
    ("timeout_seconds", "livenessProbeRequirements.timeoutSeconds", INT),
    ("success_threshold", "livenessProbeRequirements.successThreshold", INT),
    ("failure_threshold", "livenessProbeRequirements.failureThreshold", INT),
    ("namespace", "namespace", STR),
    ("compute_target_name", "computeTargetName", STR),
    ("tags", "tags", TEXT_MAP),
    ("properties", "properties", TEXT_MAP),
    ("description", "description", STR),
    ("version_name", "versionName", STR),
    ("traffic_percentile", "trafficPercentile", NUMBER),
    ("port", "port", INT),
    ("cors_origins", "corsOrigins", TEXT_LIST),  # modelport's own: browser origins the front end allows
)

_TLS = "the front end serves plain HTTP on this machine; put a TLS-terminating proxy in front of it for HTTPS"
_CMK = "nothing is stored in Azure, so customer-managed encryption keys do not apply"
_VNET = "the front end listens on this machine; there is no virtual network to join"

# AciWebservice.deploy_configuration's parameters that have no meaning here: parameter, file key, what modelport
# does instead. Azure's reader read these keys for computeType ACI only.
ACI_ONLY: tuple[tuple[str, str, str], ...] = (
    ("location", "location", "the service runs on this machine, not in an Azure region"),
    ("ssl_enabled", "sslEnabled", _TLS),
    ("ssl_cert_pem_file", "sslCertificate", _TLS),
    ("ssl_key_pem_file", "sslKey", _TLS),
    ("ssl_cname", "cname", _TLS),
    ("dns_name_label", "dnsNameLabel", "the service is reached at its scoring URI on the front end "
                                       "(service.scoring_uri), not at a DNS name"),
    ("cmk_vault_base_url", "vaultBaseUrl", _CMK),
    ("cmk_key_name", "keyName", _CMK),
    ("cmk_key_version", "keyVersion", _CMK),
    ("vnet_name", "vnetName", _VNET),
    ("subnet_name", "subnetName", _VNET),
)

_PROBES = ("it is applied on Kubernetes compute targets (the pods' probes); local replicas are probed at /-/ready "
           "every period_seconds and leave rotation after 3 failed probes")

# Parameters modelport keeps but does not act on (everywhere, or locally): parameter -> what it does instead.
NOT_APPLIED: dict[str, str] = {
    "enable_app_insights": "there is no Application Insights; replicas export Prometheus metrics at /metrics and "
                           "their logs are read with `modelport service logs`",
    "collect_model_data": "model data is not collected to storage; log inputs and outputs in run() if you need them",
    "period_seconds": _PROBES,
    "initial_delay_seconds": _PROBES,
    "timeout_seconds": _PROBES,
    "success_threshold": _PROBES,
    "failure_threshold": _PROBES,
    "namespace": "a service runs in its compute target's namespace (set when the cluster is attached), or in none "
                 "locally; this value is kept but not used",
}

KEY = {param: key for param, key, _ in FIELDS} | {param: key for param, key, _ in ACI_ONLY}


def in_file_terms(message: str) -> str:
    """``message`` with every ``parameter (fileKey)`` named by its file key alone, for errors about a file."""
    for param, key in KEY.items():
        message = message.replace(f"{param} ({key})", key)
    return message


def _tree() -> dict:
    """The deploymentconfig.json keys as nested dicts whose leaves are parameter names."""
    tree: dict = {"computeType": "compute_type"}
    for param, key in KEY.items():
        *sections, leaf = key.split(".")
        node = tree
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = param
    return tree


FILE_TREE = _tree()


def read_section(data: dict, tree: dict, prefix: str, values: dict[str, Any], rule: KeyRule) -> None:
    """Collect the non-null leaf values of ``data`` into ``values`` by parameter name; unknown keys go to ``rule``."""
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in tree:
            rule.unknown(path, tree, prefix)
            continue
        node = tree[key]
        if isinstance(node, dict):
            if value is None:
                continue
            if not isinstance(value, dict):
                raise InvalidInput(f"{rule.source}: {path} must be a JSON object with keys "
                                   f"{', '.join(sorted(node))}; got {value!r}")
            read_section(value, node, f"{path}.", values, rule)
        elif value is not None:
            values[node] = value
