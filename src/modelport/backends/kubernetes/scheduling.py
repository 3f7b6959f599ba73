"""Will it fit: a pod's resource request against the cluster's nodes, by Kubernetes' own rules.

Pure functions over API objects as plain dicts (camelCase, as the API returns them). The Kubernetes
backend calls ``check_fit`` before it creates a version's Deployment (to refuse a request no node can
ever hold) and while its pods are Pending (to say why, with the free capacity per node); attach
(``preflight``) uses ``vcpus`` for Azure ML's vCPU rule and ``check_fit`` for the front end.

Units: cpu in cores, memory in bytes (shown as GB of 2**30 bytes, as ``memory_gb`` is applied), GPUs
as whole ``nvidia.com/gpu`` devices.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubernetes.utils import parse_quantity

from .manifests import GPU_RESOURCE as GPU

GB = 1 << 30
_TERMINATED_PHASES = ("Succeeded", "Failed")
_SHOWN_NODES = 5  # free capacity is listed for at most this many nodes (the roomiest)


@dataclass(frozen=True)
class Resources:
    """An amount of compute: ``cpu`` in cores, ``memory`` in bytes, ``gpus`` in ``nvidia.com/gpu`` devices."""

    cpu: float = 0.0
    memory: int = 0
    gpus: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu + other.cpu, self.memory + other.memory, self.gpus + other.gpus)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu - other.cpu, self.memory - other.memory, self.gpus - other.gpus)

    def most(self, other: Resources) -> Resources:
        """The larger of each figure (how Kubernetes combines init containers with the rest)."""
        return Resources(max(self.cpu, other.cpu), max(self.memory, other.memory), max(self.gpus, other.gpus))

    def within(self, room: Resources) -> bool:
        """Whether this request fits in ``room`` (every figure at most room's)."""
        return self.cpu <= room.cpu + 1e-9 and self.memory <= room.memory and self.gpus <= room.gpus

    def describe(self) -> str:
        """``1.5 cores, 2 GB`` (GPUs added when there are any)."""
        text = f"{_number(self.cpu)} cores, {_number(self.memory / GB)} GB"
        return f"{text}, {self.gpus} GPU" if self.gpus else text

    @classmethod
    def of(cls, quantities: dict[str, Any] | None) -> Resources:
        """A ResourceList (``{"cpu": "250m", "memory": "256Mi", "nvidia.com/gpu": "1"}``) as Resources; missing
        figures are 0. Raises ValueError on a quantity Kubernetes would not accept."""
        quantities = quantities or {}
        return cls(cpu=float(parse_quantity(quantities.get("cpu", 0))),
                   memory=int(parse_quantity(quantities.get("memory", 0))),
                   gpus=int(parse_quantity(quantities.get(GPU, 0))))


@dataclass(frozen=True)
class Fit:
    """``check_fit``'s answer. ``never_fits``: why no replica can ever be scheduled on these nodes (None when one
    can); ``fits_now``: how many of the wanted replicas fit in the free capacity now; ``message``: the request
    (sidecars included), the free capacity per node and the largest request that fits now, in words."""

    never_fits: str | None
    fits_now: int
    message: str


def container_request(container: dict[str, Any]) -> Resources:
    """One container's requests; a figure with a limit but no request is requested at its limit (the API
    server's defaulting, which is also why GPUs are usually given as limits only)."""
    resources = container.get("resources") or {}
    return Resources.of({**(resources.get("limits") or {}), **(resources.get("requests") or {})})


def pod_request(pod_spec: dict[str, Any]) -> Resources:
    """What the scheduler reserves for a pod (a PodSpec dict), by Kubernetes' rule: the sum of the containers'
    requests plus every sidecar (an init container with ``restartPolicy: Always``), or the largest init
    container's request (plus the sidecars started before it) when that is more, figure by figure; plus the
    pod's ``overhead``."""
    total = sum((container_request(c) for c in pod_spec.get("containers") or []), Resources())
    sidecars = Resources()
    init_peak = Resources()
    for container in pod_spec.get("initContainers") or []:
        request = container_request(container)
        if container.get("restartPolicy") == "Always":
            sidecars = sidecars + request
            total = total + request
            init_peak = init_peak.most(sidecars)
        else:
            init_peak = init_peak.most(request + sidecars)
    return total.most(init_peak) + Resources.of(pod_spec.get("overhead"))


def allocatable(node: dict[str, Any]) -> Resources:
    """What a Node can give to pods (its ``status.allocatable``: capacity less what the system reserves)."""
    return Resources.of((node.get("status") or {}).get("allocatable"))


def node_name(node: dict[str, Any]) -> str:
    return node["metadata"]["name"]


def tolerates(tolerations: Iterable[dict[str, Any]], taint: dict[str, Any]) -> bool:
    """Whether one of ``tolerations`` (PodSpec tolerations) matches ``taint`` (a Node's ``spec.taints`` entry), by
    Kubernetes' rule: same effect (or none), same key (or none, with ``Exists``), ``Exists`` or an equal value."""
    for toleration in tolerations:
        if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
            continue
        key = toleration.get("key")
        operator = toleration.get("operator", "Equal")
        if not key:
            if operator == "Exists":
                return True
            continue
        if key != taint.get("key"):
            continue
        if operator == "Exists" or toleration.get("value", "") == taint.get("value", ""):
            return True
    return False


def unschedulable_reason(node: dict[str, Any], tolerations: Iterable[dict[str, Any]] = ()) -> str | None:
    """Why no new pod of ours can land on ``node`` (cordoned, not Ready, a NoSchedule/NoExecute taint not
    tolerated, not a Linux node), None when one can."""
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return "cordoned"
    conditions = (node.get("status") or {}).get("conditions") or []
    if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
        return "not Ready"
    tolerations = list(tolerations)
    for taint in spec.get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return f"tainted {taint.get('key')}:{taint.get('effect')}"
    os_label = (node.get("metadata", {}).get("labels") or {}).get("kubernetes.io/os", "linux")
    if os_label != "linux":
        return f"a {os_label} node (the images are Linux)"
    return None


def schedulable_nodes(nodes: list[dict[str, Any]], tolerations: Iterable[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The Nodes a new pod can be scheduled on: not cordoned (``spec.unschedulable``), Ready, without a
    NoSchedule/NoExecute taint that ``tolerations`` do not tolerate, running Linux."""
    tolerations = list(tolerations)
    return [node for node in nodes if unschedulable_reason(node, tolerations) is None]


def vcpus(nodes: list[dict[str, Any]]) -> float:
    """The vCPUs of the schedulable nodes together (each node's ``status.capacity`` cpu, its VM's cores): what
    Azure ML's attach rule counts (at least 12 for FastProd, 2 for DevTest; three 4-core nodes pass, as
    Azure's smallest FastProd cluster does, though their allocatable cpu is a little under 12)."""
    return sum(float(parse_quantity(((n.get("status") or {}).get("capacity") or {}).get("cpu", 0)))
               for n in schedulable_nodes(nodes))


def free_per_node(nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> dict[str, Resources]:
    """Free capacity of each schedulable node: its allocatable less the requests of the pods bound to it
    (``spec.nodeName``) that have not terminated. ``pods`` should be every namespace's; given one namespace's,
    the result is an upper bound."""
    used: dict[str, Resources] = {}
    for pod in pods:
        bound = (pod.get("spec") or {}).get("nodeName")
        if bound and (pod.get("status") or {}).get("phase") not in _TERMINATED_PHASES:
            used[bound] = used.get(bound, Resources()) + pod_request(pod["spec"])
    return {node_name(node): allocatable(node) - used.get(node_name(node), Resources())
            for node in schedulable_nodes(nodes)}


def check_fit(request: Resources, replicas: int, nodes: list[dict[str, Any]], pods: list[dict[str, Any]]) -> Fit:
    """Whether ``replicas`` pods each asking for ``request`` (``pod_request`` of their spec) can be scheduled on
    ``nodes`` (Node dicts), given the running ``pods`` (Pod dicts, every namespace's).

    ``never_fits`` when no schedulable node could hold one even empty (naming the most any node allocates), when
    GPUs are asked for and no node exposes ``nvidia.com/gpu``, or when there is no schedulable node at all;
    ``fits_now`` counts the replicas the free capacity holds now (identical pods: each node's share summed)."""
    usable = schedulable_nodes(nodes)
    asked = f"each replica requests {request.describe()} (sidecars included)"
    if not usable:
        excluded = "; ".join(f"{node_name(n)}: {unschedulable_reason(n)}" for n in nodes) or "the cluster has none"
        reason = f"no node can take new pods ({excluded}): uncordon or add a Ready Linux node"
        return Fit(reason, 0, f"{asked}; {reason}")
    never = _never_fits(request, usable)
    if never:
        return Fit(never, 0, f"{asked}; {never}")
    free = free_per_node(usable, pods)
    fits_now = min(replicas, sum(_copies(request, room) for room in free.values()))
    return Fit(None, fits_now, f"{asked}; {fits_now} of {replicas} fit now; {_free_text(free)}")


def _never_fits(request: Resources, nodes: list[dict[str, Any]]) -> str | None:
    sizes = {node_name(node): allocatable(node) for node in nodes}
    if any(request.within(size) for size in sizes.values()):
        return None
    if request.gpus and not any(size.gpus for size in sizes.values()):
        return (f"{request.gpus} {GPU} asked for but no schedulable node exposes {GPU}: the NVIDIA device plugin "
                "looks missing (install it, or the NVIDIA GPU Operator, on the GPU nodes) or the cluster has no GPU "
                "node; set gpu_cores to 0 or add a GPU node pool")
    largest = max(sizes.items(), key=lambda item: (item[1].cpu, item[1].memory))
    most = Resources(max(s.cpu for s in sizes.values()), max(s.memory for s in sizes.values()),
                     max(s.gpus for s in sizes.values()))
    over = [label for label, wanted, have in (("cpu", request.cpu, most.cpu), ("memory", request.memory, most.memory),
                                               ("GPUs", request.gpus, most.gpus)) if wanted > have]
    limit = (f"the most one node allocates is {_number(most.cpu)} cores, {_number(most.memory / GB)} GB, {most.gpus} "
             f"GPU (largest: {largest[0]} with {largest[1].describe()})")
    what = " and ".join(over) if over else "the combination of cpu, memory and GPUs"
    return (f"no schedulable node can ever hold one replica ({what} too large): {limit}; lower cpu_cores/memory_gb/"
            "gpu_cores or add larger nodes")


def _copies(request: Resources, room: Resources) -> int:
    """How many pods asking for ``request`` fit in ``room`` (0 when one does not)."""
    if not request.within(room):
        return 0
    counts = [int(have // wanted) for wanted, have in ((request.cpu, room.cpu), (request.memory, room.memory),
                                                        (request.gpus, room.gpus)) if wanted > 0]
    return min(counts) if counts else 1 << 30


def _free_text(free: dict[str, Resources]) -> str:
    roomiest = sorted(free.items(), key=lambda item: (-item[1].cpu, -item[1].memory, item[0]))
    shown = ", ".join(f"{name} {_floor(room).describe()}" for name, room in roomiest[:_SHOWN_NODES])
    more = f" and {len(roomiest) - _SHOWN_NODES} more" if len(roomiest) > _SHOWN_NODES else ""
    best_cpu = max(free.items(), key=lambda item: (item[1].cpu, item[1].memory))
    best_memory = max(free.items(), key=lambda item: (item[1].memory, item[1].cpu))
    largest = f"{_floor(best_cpu[1]).describe()} (on {best_cpu[0]})"
    if best_memory[0] != best_cpu[0]:
        largest += f" or {_floor(best_memory[1]).describe()} (on {best_memory[0]})"
    return f"free now: {shown}{more}; the largest request that fits now is {largest}"


def _floor(room: Resources) -> Resources:
    """Free capacity shown never below zero (a node can be overcommitted by pods bound before a resize)."""
    return Resources(max(room.cpu, 0.0), max(room.memory, 0), max(room.gpus, 0))


def _number(value: float) -> str:
    """``1.5``, ``0.25``, ``12``: at most 2 decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
