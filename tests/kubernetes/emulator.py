"""An EMULATOR of the Kubernetes API server, for tests: in memory, over real HTTP on 127.0.0.1.

It answers only the requests modelport makes, in the API's wire format, so the official ``kubernetes`` client (and
``modelport.backends.kubernetes.cluster.Cluster`` on it) talks to it unmodified. It is not Kubernetes, and a test
that passes against it says only that modelport asks the API the right things and reads its answers right.

What it checks, like the API server does:
  paths (``/version``, core ``/api/v1`` and ``/apis/<group>/<version>`` resources, namespaced or not, the ``scale``
  and ``log`` subresources, SelfSubjectAccessReview); the bearer token (401 when wrong or missing); authorization
  against ``deny(group, resource, verb)`` (403 with the API's message; server-side apply that creates also needs
  ``create``; SelfSubjectAccessReviews answer the same rules); server-side apply's content type
  (``application/apply-patch+yaml``; merge patches are JSON merge patches; others 415) and its required
  ``fieldManager`` (422); kind, apiVersion, name and namespace of a body against its path (400); object names
  (DNS-1123, Services DNS-1035) and label keys and values (422); writes into namespaces that do not exist (404);
  label and field selectors (equality-based: =, ==, !=; fields by any dotted path);
  ``resourceVersion`` bumps on every change (none for a no-op apply) and 409 for a stale one in a patch; 404 for
  a missing object; a Deployment's immutable ``spec.selector`` (422); ``generation`` bumps on spec changes.

What it does not do: schema validation, defaulting beyond a few fields (Deployment ``spec.replicas``, Service
``clusterIP``/``nodePort``, Secret ``stringData``), admission, managed-fields bookkeeping (an apply replaces the
fields it gives; a Deployment's ``spec.replicas`` left out of an apply keeps its value, as when another manager
owns it), watches, real scheduling or containers. ``settle()`` stands in for the controller-manager: it makes
ReplicaSets and Pods for Deployments (instant rollouts), Deployment status, one EndpointSlice per Service, and a
LoadBalancer ingress address. ``ApiEmulator(tls=True)`` serves HTTPS with a self-signed certificate its kubeconfig
trusts.

Files: this one holds the state and the emulated controllers; ``emulator_http.py`` the HTTP side (routing, reads,
TLS); ``emulated_writes.py`` apply, merge patch and scale; ``emulated_objects.py`` Node and pod-status builders for
tests, selector and name rules, and the API's error shape. Fixtures: ``api_emulator`` and ``emulated_cluster`` in
``conftest.py``.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import socket
import threading
import uuid
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any

import yaml

from .emulated_objects import (
    VALID_TOKEN,
    Seen,
    crash_looping_status,
    is_ready,
    matches_labels,
    node,
    now,
    owner_reference,
    ready_status,
    target_port,
    unschedulable_status,
    without_version,
)
from .emulator_http import handler_for, self_signed_certificate, tls_context

__all__ = ["ApiEmulator", "Seen", "crash_looping_status", "node", "ready_status", "unschedulable_status"]


class ApiEmulator:
    """The emulated API server. ``with ApiEmulator() as api:`` starts it; ``api.url`` is its address.

    Attributes tests set or read: ``version`` (``/version``), ``nodes`` (Node dicts; three 4-core nodes at
    first), ``namespaces`` (that exist), ``pod_logs[(pod, container, previous)] = text``, ``requests`` (every
    ``Seen`` request), ``pod_status`` (default ``settle`` status function), ``load_balancer_ip`` (given to
    LoadBalancer Services by ``settle``; None leaves them pending), ``auto_settle`` (settle after every write)."""

    def __init__(self, token: str = VALID_TOKEN, auto_settle: bool = False, tls: bool = False):
        self.token = token
        # tls: serve HTTPS with a self-signed certificate for 127.0.0.1, which kubeconfig() names as the authority
        self.certificate, self._key = self_signed_certificate("127.0.0.1") if tls else (None, None)
        self.auto_settle = auto_settle
        self.version: dict[str, str] = {"major": "1", "minor": "30", "gitVersion": "v1.30.4", "platform": "linux/amd64"}
        self.nodes: list[dict[str, Any]] = [node(f"aks-nodepool1-0000{i}") for i in range(3)]
        self.namespaces: set[str] = {"default", "kube-system"}
        self.pod_logs: dict[tuple[str, str, bool], str] = {}
        self.requests: list[Seen] = []
        self.pod_status: Callable[[str, int], dict[str, Any] | None] | None = None
        self.load_balancer_ip: str | None = "203.0.113.10"
        self._denied: set[tuple[str, str, str]] = set()
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (kind, namespace, name) -> object
        self._revision = 0
        self._addresses = 0
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.connections: set[socket.socket] = set()  # open client connections, cut by stop()

    # lifecycle

    def start(self) -> ApiEmulator:
        """Listen on a free 127.0.0.1 port, serving from a daemon thread."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(self))
        if self.certificate and self._key:
            self._server.socket = tls_context(self.certificate, self._key).wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False)  # handshake in the handler
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="api-emulator", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening and cut the open connections (a client's keep-alive connection must not outlive the API
        server, or a test of an unreachable cluster would still be answered)."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections, self.connections = list(self.connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> ApiEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https`` with ``tls``)."""
        assert self._server, "the emulator is not started"
        return f"{'https' if self.certificate else 'http'}://127.0.0.1:{self._server.server_address[1]}"

    def kubeconfig(self, token: str | None = None, context: str = "emulated", namespace: str = "default") -> str:
        """A kubeconfig (YAML text) whose current context reaches this emulator with ``token`` (None: the valid
        one) in ``namespace``, trusting its certificate when it serves TLS."""
        cluster = {"server": self.url}
        if self.certificate:
            cluster["certificate-authority-data"] = base64.b64encode(self.certificate).decode()
        return yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": context, "cluster": cluster}],
            "users": [{"name": f"{context}-user", "user": {"token": self.token if token is None else token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": f"{context}-user",
                                                       "namespace": namespace}}]})

    # what tests set and inspect

    def deny(self, group: str, resource: str, verb: str) -> None:
        """Refuse ``verb`` on ``resource`` (``pods/log`` for a subresource) of API ``group`` from now on (403)."""
        self._denied.add((group, resource, verb))

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace any object as is (pods, events, statuses), filling uid, timestamps, resourceVersion
        and namespace (``default``) when missing; returns the stored copy."""
        with self._lock:
            obj = copy.deepcopy(obj)
            if obj["kind"] == "Node":
                self.nodes = [n for n in self.nodes if n["metadata"]["name"] != obj["metadata"]["name"]] + [obj]
                return obj
            meta = obj.setdefault("metadata", {})
            meta.setdefault("namespace", "default")
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now())
            self._objects[(obj["kind"], meta["namespace"], meta["name"])] = obj
            meta["resourceVersion"] = self._next_revision()
            self._written()
            return copy.deepcopy(obj)

    def get_object(self, kind: str, name: str, namespace: str = "default") -> dict[str, Any] | None:
        """A copy of the stored object, or None."""
        with self._lock:
            found = self._objects.get((kind, namespace, name))
            return copy.deepcopy(found) if found else None

    def list_objects(self, kind: str, namespace: str = "default") -> list[dict[str, Any]]:
        """Copies of every stored ``kind`` in ``namespace``."""
        with self._lock:
            return [copy.deepcopy(o) for (k, ns, _), o in sorted(self._objects.items())
                    if k == kind and ns == namespace]

    def remove(self, kind: str, name: str, namespace: str = "default") -> bool:
        """Delete an object directly (e.g. a pod evicted), with what it owns; False when absent."""
        with self._lock:
            found = self._delete(kind, namespace, name)
            self._written()
            return found

    def settle(self, pod_status: Callable[[str, int], dict[str, Any] | None] | None = None) -> None:
        """Do what the controller-manager, scheduler and kubelets would: each Deployment gets one ReplicaSet
        ``<deployment>-<template hash>`` (older ones removed) with ``spec.replicas`` Pods ``<replica set>-<n>``
        (template labels and spec, a node, a 10.244.x.y address); each Pod's status is ``pod_status(deployment,
        index)`` (or this emulator's ``pod_status``), else running and ready; Deployment and ReplicaSet status follow
        the pods; each Service with a selector has one EndpointSlice of the matching pods; LoadBalancer Services get
        ``load_balancer_ip``."""
        with self._lock:
            status_of = pod_status or self.pod_status
            for (kind, namespace, name), deployment in list(self._objects.items()):
                if kind == "Deployment":
                    self._settle_deployment(namespace, name, deployment, status_of)
            for (kind, namespace, name), service in list(self._objects.items()):
                if kind == "Service":
                    self._settle_service(namespace, name, service)

    # the emulated controllers

    def _settle_deployment(self, namespace: str, name: str, deployment: dict[str, Any],
                           status_of: Callable[[str, int], dict[str, Any] | None] | None) -> None:
        template = deployment["spec"].get("template", {})
        template_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        rs_name = f"{name}-{template_hash}"
        for old in self._owned("ReplicaSet", namespace, deployment):
            if old["metadata"]["name"] != rs_name:
                self._delete("ReplicaSet", namespace, old["metadata"]["name"])
        wanted = deployment["spec"].get("replicas", 1)
        labels = {**template.get("metadata", {}).get("labels", {}), "pod-template-hash": template_hash}
        revision = deployment["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", "0")
        replica_set = self._objects.get(("ReplicaSet", namespace, rs_name))
        if replica_set is None:
            revision = str(int(revision) + 1)
            replica_set = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
                "name": rs_name, "namespace": namespace, "labels": labels, "uid": str(uuid.uuid4()),
                "creationTimestamp": now(), "annotations": {"deployment.kubernetes.io/revision": revision},
                "ownerReferences": [owner_reference(deployment)]},
                "spec": {"selector": {"matchLabels": labels}, "template": {**template, "metadata": {
                    **template.get("metadata", {}), "labels": labels}}}}
        replica_set = copy.deepcopy(replica_set)
        replica_set["spec"]["replicas"] = wanted
        pods = {p["metadata"]["name"]: p for p in self._owned("Pod", namespace, replica_set)}
        for pod_name in pods:
            if int(pod_name.rsplit("-", 1)[1]) >= wanted:
                self._delete("Pod", namespace, pod_name)
        ready = 0
        for index in range(wanted):
            pod = self._settle_pod(namespace, f"{rs_name}-{index}", replica_set, pods.get(f"{rs_name}-{index}"),
                                   (status_of(name, index) if status_of else None))
            ready += is_ready(pod)
        generation = deployment["metadata"].get("generation", 1)
        self._store(replica_set | {"status": {"replicas": wanted, "fullyLabeledReplicas": wanted,
                                              "readyReplicas": ready, "availableReplicas": ready,
                                              "observedGeneration": replica_set["metadata"].get("generation", 1)}})
        available = ready >= wanted - wanted * 25 // 100
        status: dict[str, Any] = {"observedGeneration": generation, "replicas": wanted, "updatedReplicas": wanted,
                                  "readyReplicas": ready, "availableReplicas": ready, "conditions": [
                                      {"type": "Available", "status": str(available),
                                       "reason": "MinimumReplicasAvailable" if available
                                       else "MinimumReplicasUnavailable"},
                                      {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"
                                       if ready == wanted else "ReplicaSetUpdated"}]}
        if wanted > ready:
            status["unavailableReplicas"] = wanted - ready
        updated = copy.deepcopy(deployment)
        updated["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = revision
        updated["status"] = status
        self._store(updated)

    def _settle_pod(self, namespace: str, name: str, replica_set: dict[str, Any], existing: dict[str, Any] | None,
                    status: dict[str, Any] | None) -> dict[str, Any]:
        template = replica_set["spec"]["template"]
        pod = copy.deepcopy(existing) if existing else {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": template["metadata"]["labels"],
                         "annotations": template["metadata"].get("annotations", {}), "uid": str(uuid.uuid4()),
                         "creationTimestamp": now(), "generateName": f"{replica_set['metadata']['name']}-",
                         "ownerReferences": [owner_reference(replica_set)]},
            "spec": copy.deepcopy(template.get("spec", {}))}
        status = copy.deepcopy(status) if status else (existing["status"] if existing and is_ready(existing)
                                                       else ready_status(pod))
        scheduled = not any(c["type"] == "PodScheduled" and c["status"] == "False"
                            for c in status.get("conditions", []))
        if scheduled and "nodeName" not in pod["spec"]:
            schedulable = [n for n in self.nodes if not n["spec"].get("unschedulable")] or self.nodes
            index = int(name.rsplit("-", 1)[1])
            pod["spec"]["nodeName"] = schedulable[index % len(schedulable)]["metadata"]["name"] if schedulable \
                else "emulated-node"
        if scheduled:
            host = next((n for n in self.nodes if n["metadata"]["name"] == pod["spec"]["nodeName"]), None)
            status.setdefault("hostIP", host["status"]["addresses"][0]["address"] if host else "10.224.0.4")
            status.setdefault("podIP", (existing or {}).get("status", {}).get("podIP") or self._next_pod_ip())
            status.setdefault("podIPs", [{"ip": status["podIP"]}])
        pod["status"] = status
        return self._store(pod)

    def _settle_service(self, namespace: str, name: str, service: dict[str, Any]) -> None:
        if service["spec"].get("type") == "LoadBalancer" and self.load_balancer_ip:
            self._store(copy.deepcopy(service) | {"status": {"loadBalancer": {"ingress": [
                {"ip": self.load_balancer_ip}]}}})
        chosen = service["spec"].get("selector")
        if not chosen:
            return
        pods = [p for (k, ns, _), p in sorted(self._objects.items()) if k == "Pod" and ns == namespace
                and matches_labels(p["metadata"].get("labels", {}), chosen) and p.get("status", {}).get("podIP")]
        ports = [{"name": port.get("name", ""), "protocol": port.get("protocol", "TCP"),
                  "port": target_port(port, pods)} for port in service["spec"].get("ports", [])]
        endpoints = [{"addresses": [p["status"]["podIP"]], "nodeName": p["spec"].get("nodeName"),
                      "conditions": {"ready": is_ready(p), "serving": is_ready(p), "terminating": False},
                      "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": namespace,
                                    "uid": p["metadata"]["uid"]}} for p in pods]
        slice_name = f"{name}-{hashlib.sha256(name.encode()).hexdigest()[:5]}"
        existing = self._objects.get(("EndpointSlice", namespace, slice_name))
        labels = {**service["metadata"].get("labels", {}), "kubernetes.io/service-name": name,
                  "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
        self._store({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                     "metadata": {**(existing or {}).get("metadata", {"uid": str(uuid.uuid4()),
                                                                      "creationTimestamp": now()}),
                                  "name": slice_name, "namespace": namespace, "labels": labels,
                                  "ownerReferences": [owner_reference(service)]},
                     "endpoints": endpoints, "ports": ports})

    # storage

    def _next_revision(self) -> str:
        self._revision += 1
        return str(self._revision)

    def _next_pod_ip(self) -> str:
        self._addresses += 1
        return f"10.244.{self._addresses // 250}.{self._addresses % 250 + 2}"

    def _store(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Keep ``obj``, bumping resourceVersion only when it differs from what is stored."""
        meta = obj["metadata"]
        key = (obj["kind"], meta["namespace"], meta["name"])
        old = self._objects.get(key)
        if old is not None and without_version(old) == without_version(obj):
            return old
        meta["resourceVersion"] = self._next_revision()
        self._objects[key] = obj
        return obj

    def _owned(self, kind: str, namespace: str, owner: dict[str, Any]) -> list[dict[str, Any]]:
        uid = owner["metadata"].get("uid")
        return [o for (k, ns, _), o in list(self._objects.items()) if k == kind and ns == namespace
                and any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences", []))]

    def _delete(self, kind: str, namespace: str, name: str) -> bool:
        """Remove an object and, like the garbage collector, everything it owns."""
        gone = self._objects.pop((kind, namespace, name), None)
        if gone is None:
            return False
        uid = gone["metadata"].get("uid")
        for (k, ns, n), o in list(self._objects.items()):
            if ns == namespace and any(ref.get("uid") == uid for ref in o["metadata"].get("ownerReferences", [])):
                self._delete(k, ns, n)
        return True

    def _written(self) -> None:
        if self.auto_settle:
            self.settle()
