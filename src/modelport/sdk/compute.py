"""Compute targets as Azure ML's SDK v1 has them: ``ComputeTarget``, ``KubernetesCompute`` (alias ``AksCompute``),
``ClusterPurpose`` and the attach configuration.

``ComputeTarget(ws, name)`` returns the target as its own class (``local``, this machine, built into every workspace;
an attached cluster as ``KubernetesCompute``). ``ComputeTarget.attach(ws, name,
KubernetesCompute.attach_configuration(kubeconfig=..., context=...))`` sends the kubeconfig (read here, cut to the
context used, file references inline) and the TLS files' text to the control plane, which checks the cluster and
stores them; they never come back. After the cluster's credentials were rotated,
``KubernetesCompute.update_credentials(kubeconfig=..., context=...)`` (modelport's own; CLI: ``computetarget refresh
--kubeconfig``) sends new ones the same way. Creating or deleting a cluster belongs to the cluster's provider: those
calls are refused, pointing to attach and detach. Used by SDK users, ``Workspace.compute_targets``, ``Model.deploy``
and the ``computetarget`` CLI.
"""

from __future__ import annotations

import base64
import os
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from ..errors import InvalidInput, ModelportError, NotFound
from ..spec.compute import DEV_TEST, FAST_PROD, KUBERNETES

LOCAL = "local"
NO_CREATE = ("modelport does not create clusters: create one with your cluster's provider (AKS, EKS, GKE, kind, "
              "...) and attach it with ComputeTarget.attach(ws, name, KubernetesCompute.attach_configuration("
              "kubeconfig=..., context=...)) (CLI: modelport computetarget attach kubernetes)")


class ClusterPurpose:
    """Azure ML's cluster purposes: ``FAST_PROD`` (at least 12 vCPU, the default) and ``DEV_TEST`` (at least 2,
    not for production)."""

    FAST_PROD = FAST_PROD
    DEV_TEST = DEV_TEST


class ComputeTargetWarning(UserWarning):
    """What an attach check found that works but needs care (e.g. a DevTest cluster serving production)."""


@dataclass
class KubernetesAttachConfiguration:
    """What ``KubernetesCompute.attach_configuration`` returns (Azure ML's ``AksAttachConfiguration``): the file
    paths are read when the target is attached. See ``attach_configuration`` for the fields."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str = "default"
    cluster_purpose: str = FAST_PROD
    ingress_service_type: str = "LoadBalancer"
    ssl_cert_pem_file: str | None = None
    ssl_key_pem_file: str | None = None
    ssl_cname: str | None = None
    image_registry: str | None = None
    image_builder: str = "podman"

    def enable_ssl(self, ssl_cert_pem_file: str | None = None, ssl_key_pem_file: str | None = None,
                   ssl_cname: str | None = None, leaf_domain_label: str | None = None,
                   overwrite_existing_domain: bool = False) -> None:
        """Serve the front end over TLS with your certificate (Azure ML's ``enable_ssl``); a Microsoft-issued
        certificate (``leaf_domain_label``) is Azure's and is refused."""
        if leaf_domain_label is not None or overwrite_existing_domain:
            raise InvalidInput("leaf_domain_label asks Azure for a certificate; give your own with ssl_cert_pem_file, "
                               "ssl_key_pem_file and ssl_cname")
        self.ssl_cert_pem_file, self.ssl_key_pem_file, self.ssl_cname = ssl_cert_pem_file, ssl_key_pem_file, ssl_cname

    def validate_configuration(self) -> None:
        """Raise InvalidInput when a file this configuration names cannot be read (the cluster is checked by
        attach)."""
        self.to_body()

    def to_body(self) -> dict[str, Any]:
        """The control plane's attach body: the kubeconfig (flattened, only the context used) and TLS files' text."""
        body = {key: value for key, value in asdict(self).items() if not key.endswith("_file") and key != "kubeconfig"}
        body["kubeconfig"] = kubeconfig_text(self.kubeconfig, self.context)
        body["ssl_cert_pem"] = _read(self.ssl_cert_pem_file, "ssl_cert_pem_file")
        body["ssl_key_pem"] = _read(self.ssl_key_pem_file, "ssl_key_pem_file")
        return body


class ComputeTarget:
    """A place where services run, used like ``azureml.core.ComputeTarget``: ``ComputeTarget(ws, name)`` returns
    ``local`` (``type`` ``"Local"``) or an attached cluster as a ``KubernetesCompute`` (``type`` ``"Kubernetes"``);
    NotFound naming the attached targets otherwise. Attributes: ``name``, ``type``, ``provisioning_state``
    (``Succeeded`` or ``Failed``), ``provisioning_errors`` and ``warnings`` (of the last check)."""

    _PROPERTIES: tuple[str, ...] = ("warnings",)  # what serialize() gives as properties

    def __new__(cls, workspace, name: str):
        view = workspace._client.json("GET", f"/computes/{quote(name, safe='')}")
        kind = _class_of(view)
        made = cls if issubclass(cls, kind) and (kind is not ComputeTarget or cls is ComputeTarget) else kind
        if not issubclass(made, cls):
            raise InvalidInput(f"compute target '{name}' is {view['type']}, not {cls.__name__}: use ComputeTarget(ws, "
                               f"{name!r})")
        return _made(made, workspace, view)

    def __init__(self, workspace, name: str):
        """Loaded by ``__new__`` (the class depends on what the control plane says ``name`` is)."""

    def _load(self, workspace, view: dict[str, Any]) -> None:
        self.workspace = workspace
        self.name: str = view["name"]
        self.type: str = view["type"]
        self.provisioning_state: str = view["provisioning_state"]
        self.provisioning_errors: list[str] = view["provisioning_errors"]
        self.warnings: list[str] = view["warnings"]
        self._view = view

    @staticmethod
    def attach(workspace, name: str, attach_configuration: KubernetesAttachConfiguration) -> KubernetesCompute:
        """Attach a Kubernetes cluster as ``name`` (Azure ML's ``ComputeTarget.attach``); the control plane checks
        it and refuses with every problem listed (InvalidInput), or Conflict when an attachment is in the way.
        Each warning is issued as a ``ComputeTargetWarning``."""
        if not isinstance(attach_configuration, KubernetesAttachConfiguration):
            raise InvalidInput("attach_configuration must come from KubernetesCompute.attach_configuration(...)")
        view = workspace._client.json("PUT", f"/computes/{quote(name, safe='')}", json=attach_configuration.to_body())
        target = _made(KubernetesCompute, workspace, view)
        for warning in target.warnings:
            warnings.warn(warning, ComputeTargetWarning, stacklevel=2)
        return target

    @staticmethod
    def create(workspace, name: str, provisioning_configuration: Any) -> None:
        """Refused: modelport attaches clusters that exist (see ``attach``)."""
        raise InvalidInput(NO_CREATE)

    @staticmethod
    def list(workspace) -> list[ComputeTarget]:
        """Every compute target of the workspace: ``local``, then the attached clusters by name."""
        return [_made(_class_of(view), workspace, view) for view in workspace._client.json("GET", "/computes")]

    def refresh_state(self) -> None:
        """Run the attach checks again (Azure ML's ``refresh_state``): ``provisioning_state`` becomes ``Failed``
        with every problem in ``provisioning_errors``, or ``Succeeded``."""
        self._load(self.workspace, self.workspace._client.json("POST", f"/computes/{quote(self.name, safe='')}"
                                                                       "/refresh"))

    def get_status(self) -> str:
        """The provisioning state as last loaded (``refresh_state`` checks again)."""
        return self.provisioning_state

    def wait_for_completion(self, show_output: bool = False, is_delete_operation: bool = False) -> None:
        """Attach is finished when it returns, so this only reports: with ``show_output`` the state and each warning
        on stderr. Raises ModelportError listing the problems when the state is ``Failed``."""
        if show_output:
            print(f"{self.name}: {self.provisioning_state}", file=sys.stderr, flush=True)
            for warning in self.warnings:
                print(f"Warning: {warning}", file=sys.stderr, flush=True)
        if self.provisioning_state == "Failed":
            raise ModelportError(f"compute target '{self.name}' is Failed: {'; '.join(self.provisioning_errors)}; "
                                 "fix that and call refresh_state()")

    def detach(self, force: bool = False) -> list[str]:
        """Detach (Azure ML's ``detach``): the control plane removes the objects it made in the cluster (returned
        as ``Kind/name``) and forgets the target and its credentials. Conflict while services run on it, or when
        the cluster cannot be reached (``force=True`` forgets it anyway, leaving its objects)."""
        path = f"/computes/{quote(self.name, safe='')}"
        return self.workspace._client.json("DELETE", path, params={"force": "true"} if force else None)["removed"]

    def delete(self) -> None:
        """Refused: the cluster belongs to its provider; ``detach()`` removes it from the workspace."""
        raise InvalidInput(f"modelport does not delete clusters: detach '{self.name}' with detach() (modelport "
                           f"computetarget detach -n {self.name}) and delete the cluster with its provider")

    def serialize(self) -> dict[str, Any]:
        """``name``, ``type``, ``provisioningState``, ``provisioningErrors`` and the target's ``properties`` (its
        ``warnings`` and, for a cluster, its settings and what the last check read; never a credential)."""
        return {"name": self.name, "type": self.type, "provisioningState": self.provisioning_state,
                "provisioningErrors": self.provisioning_errors,
                "properties": {key: self._view.get(key) for key in self._PROPERTIES}}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(workspace={self.workspace.name!r}, name={self.name!r}, type={self.type!r}, "
                f"provisioning_state={self.provisioning_state!r})")


class KubernetesCompute(ComputeTarget):
    """An attached Kubernetes cluster (Azure ML's ``KubernetesCompute``; ``AksCompute`` is this with Azure's
    argument order). Attributes beyond ``ComputeTarget``'s: ``server``, ``namespace``, ``context``,
    ``cluster_purpose``, ``ingress_service_type``, ``ssl_cname``, ``has_tls``, ``image_registry``,
    ``image_builder``, ``server_version``, ``vcpus``."""

    _PROPERTIES = ("server", "namespace", "context", "cluster_purpose", "ingress_service_type", "ssl_cname",
                   "has_tls", "image_registry", "image_builder", "server_version", "vcpus", "warnings", "created_at",
                   "checked_at")

    def _load(self, workspace, view: dict[str, Any]) -> None:
        super()._load(workspace, view)
        for key in self._PROPERTIES[:11]:  # the settings and what the check read
            setattr(self, key, view.get(key))

    def update_credentials(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        """Replace the stored credentials with new ones (modelport's own, for rotated tokens or certificates; no
        Azure ML counterpart): ``kubeconfig`` a file path (None: ``$KUBECONFIG``, else ``~/.kube/config``) and
        ``context`` one of its contexts (None: its current-context), read as ``attach_configuration`` reads them.
        The control plane checks them as attach does, on the cluster this target is attached to, and only when
        everything passes stores them and reconciles with them; the state is then loaded as ``refresh_state``
        loads it. InvalidInput listing every problem (or naming both API URLs for another cluster); the stored
        credentials stay then."""
        body = {"kubeconfig": kubeconfig_text(kubeconfig, context), "context": context}
        self._load(self.workspace, self.workspace._client.json("POST", f"/computes/{quote(self.name, safe='')}"
                                                                       "/refresh", json=body))

    @staticmethod
    def attach_configuration(kubeconfig: str | None = None, context: str | None = None, namespace: str = "default",
                             cluster_purpose: str | None = None, ingress_service_type: str = "LoadBalancer",
                             ssl_cert_pem_file: str | None = None, ssl_key_pem_file: str | None = None,
                             ssl_cname: str | None = None, image_registry: str | None = None,
                             image_builder: str = "podman") -> KubernetesAttachConfiguration:
        """How to reach and use a cluster: ``kubeconfig`` a file path (None: ``$KUBECONFIG``, else
        ``~/.kube/config``), ``context`` one of its contexts (None: its current-context), ``namespace`` where
        modelport's objects go, ``cluster_purpose`` ``ClusterPurpose.FAST_PROD`` (default; at least 12 vCPU) or
        ``DEV_TEST`` (at least 2), ``ingress_service_type`` how the front end's Service is exposed
        (``LoadBalancer``, ``NodePort`` or ``ClusterIP``), the TLS certificate and key files with the host name
        they are for (all three, or none), modelport's ``image_registry`` (``host[:port]/path``; None: images
        stay with the builder) and ``image_builder`` (``podman``, ``docker`` or ``kaniko``)."""
        return KubernetesAttachConfiguration(kubeconfig, context, namespace, cluster_purpose or FAST_PROD,
                                             ingress_service_type, ssl_cert_pem_file, ssl_key_pem_file, ssl_cname,
                                             image_registry, image_builder)

    @staticmethod
    def provisioning_configuration(*args: Any, **kwargs: Any) -> None:
        """Refused: modelport attaches clusters that exist (see ``attach_configuration``)."""
        raise InvalidInput(NO_CREATE)


class AksCompute(KubernetesCompute):
    """Azure ML's ``AksCompute``: an attached cluster, reached through a kubeconfig context, not Azure."""

    @staticmethod
    def attach_configuration(resource_group: str | None = None, cluster_name: str | None = None,
                             resource_id: str | None = None, cluster_purpose: str | None = None,
                             **kubernetes: Any) -> KubernetesAttachConfiguration:
        """Azure's arguments (``resource_group``, ``cluster_name``, ``resource_id``) are refused with the way to
        attach the cluster instead; ``cluster_purpose`` and ``KubernetesCompute.attach_configuration``'s keywords
        work as there."""
        given = [n for n, v in (("resource_group", resource_group), ("cluster_name", cluster_name),
                                ("resource_id", resource_id)) if v is not None]
        if given:
            from_id = aks_names(resource_id)
            raise azure_arguments_refused(given, resource_group or from_id[0], cluster_name or from_id[1])
        return KubernetesCompute.attach_configuration(cluster_purpose=cluster_purpose, **kubernetes)


def azure_arguments_refused(given: list[str], resource_group: str | None = None,
                            cluster_name: str | None = None) -> InvalidInput:
    """The error for Azure's ways to name an AKS cluster (``given``: the arguments, as the user wrote them), with
    the ``az aks get-credentials`` command filled in with the ``resource_group`` and ``cluster_name`` given (``RG``
    and ``CLUSTER`` where not)."""
    verb = "name" if len(given) > 1 else "names"
    group, cluster = resource_group or "RG", cluster_name or "CLUSTER"
    return InvalidInput(f"{' and '.join(given)} {verb} an AKS cluster in Azure, and modelport reaches a cluster "
                        f"through its kubeconfig: run `az aks get-credentials -g {group} -n {cluster}`, then pass the "
                        f"kubeconfig (default ~/.kube/config) and context {cluster} instead")


def aks_names(resource_id: str | None) -> tuple[str | None, str | None]:
    """The resource group and cluster name in an AKS resource id (``/subscriptions/S/resourceGroups/RG/providers/
    Microsoft.ContainerService/managedClusters/CLUSTER``); None for each part it does not have."""
    parts = [part for part in (resource_id or "").split("/") if part]
    lowered = [part.lower() for part in parts]

    def after(key: str) -> str | None:
        index = lowered.index(key) if key in lowered else -1
        return parts[index + 1] if 0 <= index < len(parts) - 1 else None

    return after("resourcegroups"), after("managedclusters")


def compute_target_name(target: Any) -> str:
    """The name of a ``deployment_target`` (a compute target or its name); InvalidInput for anything else."""
    name = target if isinstance(target, str) else getattr(target, "name", None)
    if not isinstance(name, str):
        raise InvalidInput(f"deployment_target must be a compute target (or its name), not {type(target).__name__}; "
                           "leave it out to deploy on this machine")
    return name


def _class_of(view: dict[str, Any]) -> type[ComputeTarget]:
    return KubernetesCompute if view["type"] == KUBERNETES else ComputeTarget


def _made(cls: type[ComputeTarget], workspace, view: dict[str, Any]) -> Any:
    """An instance of ``cls`` loaded from a control plane view (``__new__`` and ``__init__`` fetch one by name)."""
    target = object.__new__(cls)
    target._load(workspace, view)
    return target


def _read(path: str | None, what: str) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).expanduser().read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise NotFound(f"{what} {path!r} cannot be read ({type(err).__name__}); give the path of the PEM file") \
            from None


def kubeconfig_text(path: str | None, context: str | None) -> str:
    """The kubeconfig an attach sends: of file ``path`` (None: the files ``$KUBECONFIG`` lists, merged as kubectl
    merges them, the first to name an entry winning; else ``~/.kube/config``), only ``context`` (None: the
    current-context) with its cluster and user, file references made inline (``certificate-authority``,
    ``client-certificate``, ``client-key`` as ``*-data``; ``tokenFile`` as ``token``), as ``kubectl config view
    --minify --flatten`` writes it. InvalidInput or NotFound naming the file or entry; no value from the file is
    ever repeated."""
    if path is not None:
        files = [Path(path).expanduser()]
        if not files[0].is_file():
            raise NotFound(f"kubeconfig {path!r} is not a file; give the path of your kubeconfig (kubectl's is "
                           "~/.kube/config)")
    else:
        listed = [Path(p).expanduser() for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
        files = [f for f in listed or [Path.home() / ".kube" / "config"] if f.is_file()]
        if not files:
            raise NotFound("no kubeconfig found ($KUBECONFIG, else ~/.kube/config): pass kubeconfig=PATH (CLI: "
                           "--kubeconfig)")
    entries: dict[str, dict[str, tuple[dict, Path]]] = {"clusters": {}, "users": {}, "contexts": {}}
    current = None
    for file in files:
        document = _yaml_file(file)
        current = current or document.get("current-context")
        for section, named in entries.items():
            for entry in document.get(section) or []:
                if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                    named.setdefault(entry["name"], (entry, file.parent))
    where = ", ".join(str(f) for f in files)
    wanted = context or current
    if wanted not in entries["contexts"]:
        known = ", ".join(entries["contexts"]) or "none"
        raise InvalidInput(f"kubeconfig {where} has no context {wanted!r}; its contexts are: {known}" if wanted else
                           f"kubeconfig {where} has no current-context; pass context= one of: {known}")
    chosen = entries["contexts"][wanted][0]
    refs = chosen.get("context") or {}
    if refs.get("cluster") not in entries["clusters"]:
        raise InvalidInput(f"context {wanted!r} of kubeconfig {where} names cluster {refs.get('cluster')!r}, which it "
                           "does not define; fix the kubeconfig")
    cluster = _inlined(*entries["clusters"][refs["cluster"]], "cluster", {"certificate-authority": True})
    user_entry = entries["users"].get(refs.get("user"), ({"name": refs.get("user") or "user", "user": {}}, files[0]))
    user = _inlined(*user_entry, "user", {"client-certificate": True, "client-key": True, "tokenFile": False})
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": wanted, "preferences": {},
                           "clusters": [cluster], "users": [user], "contexts": [chosen]}, sort_keys=False)


def _yaml_file(file: Path) -> dict:
    try:
        document = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:  # its message may quote the file: only the line is repeated
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        raise InvalidInput(f"kubeconfig {file} is not valid YAML{f' (line {line + 1})' if line is not None else ''}; "
                           "pass the file `kubectl config view --raw` writes") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInput(f"kubeconfig {file} cannot be read ({type(err).__name__})") from None
    if not isinstance(document, dict):
        raise InvalidInput(f"kubeconfig {file} is not a kubeconfig (a YAML mapping with clusters, users, contexts)")
    return document


def _inlined(entry: dict, folder: Path, key: str, references: dict[str, bool]) -> dict:
    """``entry`` with each file reference of ``references`` (name -> base64 ``<name>-data``, else the text as
    ``token``) replaced by the file's content; relative paths are from the kubeconfig's folder."""
    body = dict(entry.get(key) or {})
    for reference, as_data in references.items():
        if reference not in body:
            continue
        file = folder / Path(str(body.pop(reference))).expanduser()
        try:
            content = file.read_bytes()
        except OSError as err:
            raise NotFound(f"the kubeconfig's {key} {entry.get('name')!r} names {reference} {file}, which cannot be "
                           f"read ({type(err).__name__})") from None
        if as_data:
            body[f"{reference}-data"] = base64.b64encode(content).decode()
        else:
            body["token"] = content.decode().strip()
    return {**entry, key: body}
