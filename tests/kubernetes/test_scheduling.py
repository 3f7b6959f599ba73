"""Will-it-fit checks over Node and Pod dicts shaped as the Kubernetes API returns them."""

from __future__ import annotations

from typing import Any

import pytest

from modelport.backends.kubernetes.scheduling import (
    GB,
    Resources,
    check_fit,
    free_per_node,
    pod_request,
    schedulable_nodes,
    tolerates,
    vcpus,
)


def node(name: str, cpu: str = "3860m", memory: str = "12000Mi", gpus: str | None = None, ready: bool = True,
         cordoned: bool = False, taints: list[dict[str, str]] | None = None, os: str = "linux",
         vcpus: str = "4") -> dict[str, Any]:
    """A Node with ``cpu``/``memory`` allocatable and ``vcpus`` of capacity (allocatable is less: the kubelet's
    reservation)."""
    allocatable = {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "119703055367"}
    if gpus is not None:
        allocatable["nvidia.com/gpu"] = gpus
    spec: dict[str, Any] = {"podCIDR": "10.244.0.0/24"}
    if cordoned:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = taints
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/os": os, "kubernetes.io/hostname": name}},
            "spec": spec,
            "status": {"allocatable": allocatable, "capacity": {**allocatable, "cpu": vcpus},
                       "conditions": [{"type": "MemoryPressure", "status": "False",
                                       "reason": "KubeletHasSufficientMemory"},
                                      {"type": "Ready", "status": "True" if ready else "Unknown",
                                       "reason": "KubeletReady" if ready else "NodeStatusUnknown"}]}}


def container(name: str, cpu: str | None = None, memory: str | None = None, limits: dict[str, str] | None = None,
              **extra: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return {"name": name, "image": f"registry.example/{name}:1", "resources": {"requests": requests,
                                                                               "limits": limits or {}}, **extra}


def pod(name: str, node_name: str | None, cpu: str, memory: str, phase: str = "Running") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [container("app", cpu, memory)]}
    if node_name:
        spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "kube-system"},
            "spec": spec, "status": {"phase": phase}}


def test_pod_request_sums_containers_and_takes_the_larger_of_init_containers():
    spec = {"containers": [container("scoring", "1", "1Gi"), container("log", "100m", "64Mi")],
            "initContainers": [container("fetch-model", "2", "512Mi")]}
    assert pod_request(spec) == Resources(cpu=2.0, memory=(1 << 30) + (64 << 20), gpus=0)


def test_pod_request_adds_sidecars_as_kubernetes_does():
    # a sidecar (restartPolicy Always) runs beside the containers and beside every later init container
    spec = {"initContainers": [container("proxy", "500m", "128Mi", restartPolicy="Always"),
                               container("warm", "1", "256Mi")],
            "containers": [container("scoring", "1", "1Gi")],
            "overhead": {"cpu": "100m", "memory": "10Mi"}}
    request = pod_request(spec)
    assert request.cpu == pytest.approx(1.6)  # max(1 + 0.5, 1 + 0.5) + overhead
    assert request.memory == (1 << 30) + (128 << 20) + (10 << 20)


def test_a_limit_without_a_request_is_requested_at_the_limit():
    spec = {"containers": [container("scoring", "1", "1Gi", limits={"nvidia.com/gpu": "1", "memory": "2Gi"})]}
    assert pod_request(spec) == Resources(cpu=1.0, memory=1 << 30, gpus=1)


def test_cordoned_not_ready_tainted_and_windows_nodes_are_not_schedulable():
    nodes = [node("ok"), node("cordoned", cordoned=True), node("down", ready=False), node("win", os="windows"),
             node("gpu-only", taints=[{"key": "sku", "value": "gpu", "effect": "NoSchedule"}]),
             node("prefers", taints=[{"key": "spot", "value": "true", "effect": "PreferNoSchedule"}])]
    assert [n["metadata"]["name"] for n in schedulable_nodes(nodes)] == ["ok", "prefers"]
    tolerated = schedulable_nodes(nodes, [{"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}])
    assert "gpu-only" in [n["metadata"]["name"] for n in tolerated]
    assert vcpus(nodes) == 8.0  # the VMs' cores of "ok" and "prefers", as Azure counts them


def test_toleration_matching_follows_kubernetes():
    taint = {"key": "sku", "value": "gpu", "effect": "NoSchedule"}
    assert tolerates([{"operator": "Exists"}], taint)
    assert tolerates([{"key": "sku", "operator": "Exists"}], taint)
    assert not tolerates([{"key": "sku", "value": "cpu"}], taint)
    assert not tolerates([{"key": "sku", "operator": "Exists", "effect": "NoExecute"}], taint)


def test_free_capacity_subtracts_running_pods_on_each_node():
    nodes = [node("a", cpu="4", memory="8Gi"), node("b", cpu="4", memory="8Gi")]
    pods = [pod("x", "a", "1500m", "2Gi"), pod("done", "a", "2", "2Gi", phase="Succeeded"),
            pod("pending", None, "4", "1Gi")]
    assert free_per_node(nodes, pods) == {"a": Resources(2.5, 6 * GB, 0), "b": Resources(4.0, 8 * GB, 0)}


def test_fit_counts_replicas_that_fit_now_and_names_the_free_capacity():
    nodes = [node("a", cpu="4", memory="8Gi"), node("b", cpu="2", memory="16Gi")]
    pods = [pod("x", "a", "1", "1Gi")]
    fit = check_fit(Resources(1.0, 2 * GB), 6, nodes, pods)
    assert fit.never_fits is None
    assert fit.fits_now == 5  # a: 3 cpu left -> 3; b: 2 cpu -> 2
    assert "each replica requests 1 cores, 2 GB" in fit.message
    assert "5 of 6 fit now" in fit.message
    assert "a 3 cores, 7 GB" in fit.message and "b 2 cores, 16 GB" in fit.message
    assert "largest request that fits now is 3 cores, 7 GB (on a) or 2 cores, 16 GB (on b)" in fit.message


def test_a_request_bigger_than_every_node_never_fits_naming_the_largest():
    nodes = [node("small", cpu="1900m", memory="5Gi"), node("big", cpu="3860m", memory="12Gi"),
             node("cordoned-huge", cpu="64", memory="256Gi", cordoned=True)]
    fit = check_fit(Resources(8.0, 4 * GB), 1, nodes, [])
    assert fit.never_fits is not None and fit.fits_now == 0
    assert "cpu too large" in fit.never_fits
    assert "3.86 cores" in fit.never_fits and "big" in fit.never_fits
    assert fit.never_fits in fit.message


def test_gpus_where_no_node_exposes_them_blame_the_device_plugin():
    fit = check_fit(Resources(1.0, GB, gpus=1), 1, [node("a"), node("b")], [])
    assert fit.never_fits is not None and "NVIDIA device plugin looks missing" in fit.never_fits


def test_gpus_fit_on_the_gpu_node():
    fit = check_fit(Resources(1.0, GB, gpus=1), 2, [node("a"), node("gpu", gpus="1")], [])
    assert fit.never_fits is None and fit.fits_now == 1


def test_no_schedulable_node_never_fits_and_says_why_each_is_excluded():
    fit = check_fit(Resources(0.1, GB), 1, [node("a", cordoned=True), node("b", ready=False)], [])
    assert fit.never_fits is not None
    assert "a: cordoned" in fit.never_fits and "b: not Ready" in fit.never_fits
