"""The ``deploymentconfig.json`` format: each parameter's key and JSON type, and reading nested sections."""

from __future__ import annotations

import difflib
from typing import Any

from ..errors import InvalidInput

# Expected JSON types: (Python types, how a message names them). bool is never accepted as a number.
BOOL = ((bool,), "true or false")
INT = ((int,), "a whole number")
NUMBER = ((int, float), "a number")
STR = ((str,), "a string")
TEXT_MAP = ((dict,), "an object mapping strings to strings")

# parameter, deploymentconfig.json key (dotted = nested), expected type
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
)
KEY = {param: key for param, key, _ in FIELDS}


def _tree() -> dict:
    """The deploymentconfig.json keys as nested dicts whose leaves are parameter names."""
    tree: dict = {"computeType": "compute_type"}
    for param, key, _ in FIELDS:
        *sections, leaf = key.split(".")
        node = tree
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = param
    return tree


FILE_TREE = _tree()


def suggest(word: str, options, prefix: str = "") -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {prefix + close[0]!r}?)" if close else ""


def read_section(data: dict, tree: dict, prefix: str, values: dict[str, Any], source: str) -> None:
    """Collect leaf values of ``data`` into ``values`` by parameter name; refuse keys the tree lacks."""
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in tree:
            where = f"under {prefix[:-1]}" if prefix else "at the top level"
            raise InvalidInput(f"{source}: unknown key {path!r}{suggest(key, tree, prefix)}; "
                               f"known keys {where}: {', '.join(sorted(tree))}")
        node = tree[key]
        if isinstance(node, dict):
            if value is None:
                continue
            if not isinstance(value, dict):
                raise InvalidInput(f"{source}: {path} must be a JSON object with keys {', '.join(sorted(node))}; "
                                   f"got {value!r}")
            read_section(value, node, f"{path}.", values, source)
        elif value is not None:
            values[node] = value
