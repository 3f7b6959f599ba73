"""Semantic checks of rendered Kubernetes objects: what the API's schemas (``kubernetes-validate``) do not catch.

Used by ``test_manifests.py`` and ``test_render_cli.py``, and by anyone who renders objects (the backend's tests).
``problems(objects, workspace, compute_target)`` returns one line per broken rule (empty: all kept); each rule is
a ``_check_*`` function below, named by what the cluster (or a user) would suffer if it were broken.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from kubernetes.utils import parse_quantity

from modelport.backends.kubernetes import objects, rbac

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label: most object names
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # Service names must start with a letter
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def problems(items: list[dict[str, Any]], workspace: str, compute_target: str) -> list[str]:
    """Every broken rule in ``items`` (rendered objects of one attachment), as ``kind/name: what`` lines."""
    found: list[str] = []
    for check in (_check_names, _check_labels, _check_owner_labels, _check_no_autoscaler, _check_selectors,
                  _check_services_reach_pods, _check_quantities, _check_scoring_probes, _check_scoring_pods,
                  _check_front_end_pod, _check_role, _check_volumes, _check_env):
        found += list(check(items, workspace, compute_target))
    return found


def kinds(items: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The objects of ``kind`` in ``items``."""
    return [item for item in items if item["kind"] == kind]


def scoring_deployments(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The scoring Deployments (component ``scoring``) in ``items``."""
    return [item for item in kinds(items, "Deployment")
            if item["metadata"]["labels"].get(objects.COMPONENT) == objects.SCORING]


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """A pod spec's init containers and containers."""
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def _where(item: dict[str, Any]) -> str:
    return f"{item['kind']}/{item['metadata']['name']}"


def _pods(items: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for deployment in kinds(items, "Deployment"):
        yield deployment, deployment["spec"]["template"]


def _check_names(items, workspace, compute_target) -> Iterator[str]:
    """Names the API accepts (and that stay DNS labels, as Service and pod host names must)."""
    for item in items:
        name = item["metadata"]["name"]
        rule = DNS_1035_LABEL if item["kind"] == "Service" else DNS_LABEL
        if len(name) > 63 or not rule.match(name):
            yield f"{_where(item)}: name {name!r} is not a DNS label of at most 63 characters"
        for container in containers(item["spec"]["template"]["spec"]) if item["kind"] == "Deployment" else []:
            if not DNS_LABEL.match(container["name"]):
                yield f"{_where(item)}: container name {container['name']!r} is not a DNS label"


def _label_problem(key: str, value: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if (prefix and (len(prefix) > 253 or not LABEL_PREFIX.match(prefix))) or len(name) > 63 \
            or not LABEL_NAME.match(name):
        return f"label key {key!r} is invalid"
    if len(value) > 63 or (value and not LABEL_NAME.match(value)):
        return f"label {key}={value!r}: value is not at most 63 of [A-Za-z0-9_.-], alphanumeric at both ends"
    return None


def _check_labels(items, workspace, compute_target) -> Iterator[str]:
    for item in items:
        label_sets = [item["metadata"].get("labels", {})]
        if item["kind"] == "Deployment":
            label_sets += [item["spec"]["template"]["metadata"].get("labels", {}),
                           item["spec"]["selector"]["matchLabels"]]
        if item["kind"] == "Service":
            label_sets.append(item["spec"].get("selector", {}))
        for labels in label_sets:
            for key, value in labels.items():
                if (problem := _label_problem(key, value)) is not None:
                    yield f"{_where(item)}: {problem}"


def _check_owner_labels(items, workspace, compute_target) -> Iterator[str]:
    """Detach removes what carries the attachment's labels: every object (and pod) must carry them."""
    wanted = objects.target_labels(workspace, compute_target)
    for item in items:
        label_sets = [item["metadata"].get("labels", {})]
        if item["kind"] == "Deployment":
            label_sets.append(item["spec"]["template"]["metadata"].get("labels", {}))
        for labels in label_sets:
            missing = {key: value for key, value in wanted.items() if labels.get(key) != value}
            if missing:
                yield f"{_where(item)}: lacks the attachment's labels {missing}"


def _check_no_autoscaler(items, workspace, compute_target) -> Iterator[str]:
    """The front end's controller scales (azureml-fe's autoscaler); an HPA would fight it over the count."""
    for item in kinds(items, "HorizontalPodAutoscaler"):
        yield f"{_where(item)}: the controller autoscales; a HorizontalPodAutoscaler would fight it"


def _check_selectors(items, workspace, compute_target) -> Iterator[str]:
    for deployment, template in _pods(items):
        selector = deployment["spec"]["selector"]
        labels = template["metadata"].get("labels", {})
        if set(selector) != {"matchLabels"} or not selector["matchLabels"]:
            yield f"{_where(deployment)}: selector must be non-empty matchLabels"
        elif any(labels.get(key) != value for key, value in selector["matchLabels"].items()):
            yield f"{_where(deployment)}: selector {selector['matchLabels']} does not match its pod labels {labels}"


def _check_services_reach_pods(items, workspace, compute_target) -> Iterator[str]:
    """Each Service selects the pods of exactly one Deployment here, on a port those pods' containers open."""
    for service in kinds(items, "Service"):
        selector = service["spec"].get("selector", {})
        chosen = [(deployment, template) for deployment, template in _pods(items)
                  if selector and all(template["metadata"]["labels"].get(k) == v for k, v in selector.items())]
        if len(chosen) != 1:
            yield f"{_where(service)}: selector {selector} picks {len(chosen)} Deployments' pods, not 1"
            continue
        open_ports = {port["containerPort"] for container in chosen[0][1]["spec"]["containers"]
                      for port in container.get("ports", [])}
        open_ports |= {port["name"] for container in chosen[0][1]["spec"]["containers"]
                       for port in container.get("ports", []) if "name" in port}
        for port in service["spec"]["ports"]:
            if port["targetPort"] not in open_ports:
                yield f"{_where(service)}: targetPort {port['targetPort']} is not a port of its pods {open_ports}"


def _check_quantities(items, workspace, compute_target) -> Iterator[str]:
    """Requests and limits parse as quantities, and no request exceeds its limit."""
    for deployment, template in _pods(items):
        for container in containers(template["spec"]):
            resources = container.get("resources", {})
            parsed: dict[str, dict[str, Any]] = {}
            for part in ("requests", "limits"):
                for resource, quantity in resources.get(part, {}).items():
                    try:
                        parsed.setdefault(part, {})[resource] = parse_quantity(quantity)
                    except ValueError:
                        yield f"{_where(deployment)}/{container['name']}: {part}.{resource} {quantity!r} is no quantity"
            for resource, limit in parsed.get("limits", {}).items():
                if parsed.get("requests", {}).get(resource, 0) > limit:
                    yield f"{_where(deployment)}/{container['name']}: {resource} request exceeds its limit"
            if not parsed.get("requests"):
                yield f"{_where(deployment)}/{container['name']}: requests nothing (the scheduler cannot place it)"


def _check_scoring_probes(items, workspace, compute_target) -> Iterator[str]:
    """Probes reach the runtime: readiness and startup ``/-/ready``, liveness ``/-/live``, on ``SCORING_PORT``."""
    paths = {"startupProbe": "/-/ready", "readinessProbe": "/-/ready", "livenessProbe": "/-/live"}
    for deployment in scoring_deployments(items):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            if objects.SCORING_PORT not in {port["containerPort"] for port in container.get("ports", [])}:
                yield f"{_where(deployment)}/{container['name']}: does not open the scoring port"
            for probe, path in paths.items():
                get = container.get(probe, {}).get("httpGet")
                if get is None or get["path"] != path or get["port"] != objects.SCORING_PORT:
                    yield f"{_where(deployment)}/{container['name']}: {probe} is not GET {path} on the scoring port"
            if container.get("livenessProbe", {}).get("successThreshold", 1) != 1:
                yield f"{_where(deployment)}/{container['name']}: liveness successThreshold must be 1"


def _restricted(where: str, pod_spec: dict[str, Any]) -> Iterator[str]:
    """Kubernetes' restricted pod security standard, plus a read-only root file system."""
    pod_context = pod_spec.get("securityContext", {})
    for container in containers(pod_spec):
        context = {**pod_context, **container.get("securityContext", {})}
        if context.get("runAsNonRoot") is not True or context.get("runAsUser", 1) == 0:
            yield f"{where}/{container['name']}: may run as root"
        if context.get("allowPrivilegeEscalation") is not False:
            yield f"{where}/{container['name']}: allows privilege escalation"
        if context.get("capabilities", {}).get("drop") != ["ALL"] or context.get("capabilities", {}).get("add"):
            yield f"{where}/{container['name']}: keeps Linux capabilities"
        if context.get("readOnlyRootFilesystem") is not True:
            yield f"{where}/{container['name']}: root file system is writable"
        if context.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
            yield f"{where}/{container['name']}: no seccomp profile"


def _check_scoring_pods(items, workspace, compute_target) -> Iterator[str]:
    """Scoring code (the user's) runs restricted, with no credentials to the cluster's API."""
    for deployment in scoring_deployments(items):
        pod_spec = deployment["spec"]["template"]["spec"]
        yield from _restricted(_where(deployment), pod_spec)
        if pod_spec.get("automountServiceAccountToken") is not False or "serviceAccountName" in pod_spec:
            yield f"{_where(deployment)}: scoring pods must get no service account token"
        if any("serviceAccountToken" in str(volume) for volume in pod_spec.get("volumes", [])):
            yield f"{_where(deployment)}: scoring pods must mount no service account token"


def _check_front_end_pod(items, workspace, compute_target) -> Iterator[str]:
    """The front end runs restricted; only its controller holds the API token (Envoy faces clients)."""
    for deployment in kinds(items, "Deployment"):
        if deployment["metadata"]["name"] != objects.FRONT_END_NAME:
            continue
        pod_spec = deployment["spec"]["template"]["spec"]
        yield from _restricted(_where(deployment), pod_spec)
        if pod_spec.get("serviceAccountName") != objects.FRONT_END_NAME:
            yield f"{_where(deployment)}: does not run as the front end's ServiceAccount"
        token_volumes = {volume["name"] for volume in pod_spec.get("volumes", [])
                         if "serviceAccountToken" in str(volume)}
        for container in pod_spec["containers"]:
            holds = any(mount["name"] in token_volumes for mount in container.get("volumeMounts", []))
            holds |= pod_spec.get("automountServiceAccountToken", True) is not False
            if holds != (container["name"] == "controller"):
                yield f"{_where(deployment)}/{container['name']}: API token {'held' if holds else 'missing'}"


def _check_role(items, workspace, compute_target) -> Iterator[str]:
    """The controller's Role grants exactly ``rbac.CONTROLLER_RULES``: no more (least privilege), no less (it
    would fail at run time), and is bound to the front end's ServiceAccount only."""
    for role in kinds(items, "Role") + kinds(items, "ClusterRole"):
        if role["kind"] == "ClusterRole" or role["rules"] != rbac.CONTROLLER_RULES:
            yield f"{_where(role)}: rules are not exactly rbac.CONTROLLER_RULES"
    for binding in kinds(items, "RoleBinding") + kinds(items, "ClusterRoleBinding"):
        subjects = [(s["kind"], s["name"], s.get("namespace")) for s in binding["subjects"]]
        wanted = [("ServiceAccount", objects.FRONT_END_NAME, binding["metadata"]["namespace"])]
        if binding["kind"] != "RoleBinding" or subjects != wanted or binding["roleRef"]["kind"] != "Role":
            yield f"{_where(binding)}: must bind the front end's Role to its ServiceAccount only"


def _check_volumes(items, workspace, compute_target) -> Iterator[str]:
    """Every mount names a volume of its pod, and ConfigMaps mounted are among the objects."""
    config_maps = {item["metadata"]["name"] for item in kinds(items, "ConfigMap")} | {"kube-root-ca.crt"}
    for deployment, template in _pods(items):
        volumes = {volume["name"]: volume for volume in template["spec"].get("volumes", [])}
        for container in containers(template["spec"]):
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in volumes:
                    yield f"{_where(deployment)}/{container['name']}: mounts unknown volume {mount['name']!r}"
        for volume in volumes.values():
            if "configMap" in volume and volume["configMap"]["name"] not in config_maps:
                yield f"{_where(deployment)}: volume {volume['name']!r} names a ConfigMap not rendered"


def _check_env(items, workspace, compute_target) -> Iterator[str]:
    """Environment variables have valid, unique names and string values."""
    for deployment, template in _pods(items):
        for container in containers(template["spec"]):
            names = [variable["name"] for variable in container.get("env", [])]
            if len(names) != len(set(names)):
                yield f"{_where(deployment)}/{container['name']}: an environment variable is set twice"
            for variable in container.get("env", []):
                if not ENV_NAME.match(variable["name"]) or not isinstance(variable.get("value", ""), str):
                    yield f"{_where(deployment)}/{container['name']}: environment variable {variable} is invalid"
