"""Compute targets: attach, detach, list, show and refresh, apart from how users ask (HTTP routes, SDK, CLI).

``api/routes_compute.py`` calls ``ComputeOperations`` for the user's operations; ``operations/endpoints.py`` calls
``deploy_target`` when a deploy names a target; the Kubernetes backend calls ``kubernetes_target``, ``cluster_for``
and ``tls_pair``. ``local`` (this machine) is built into every workspace and never stored. An attached cluster is a
``spec.compute.KubernetesTarget`` in the store's ``compute_targets`` table (its ``to_dict()`` plus the outcome of the
last check) with its credentials (the kubeconfig text, the front end's TLS certificate and key) in
``.modelport/compute/<name>/`` (folder 0700, files 0600); no answer, error or log line repeats them.

Attach works like Azure ML's ``ComputeTarget.attach`` with ``KubernetesCompute.attach_configuration``: every check
runs in one pass (the target's fields, the TLS pair, this workspace's other attachments, the cluster checks of
``backends.kubernetes.preflight.check_attachment`` and the namespace's other owners) and every problem is reported
at once; nothing is stored or made when one fails. An attachment claims its namespace with a labelled ConfigMap, so
another workspace attaching there later is refused naming it; detach removes every object carrying the target's
labels (``backends.kubernetes.objects.target_labels``) and nothing else, so attach -> detach -> attach needs no
manual step.

Refresh runs the checks again with the stored credentials, or, given a new kubeconfig (rotated credentials), checks
those as attach does and, when they pass on the same cluster, stores them in place of the old ones and restarts
the target's reconciler with them. A 401 says that way out: ``refresh_fix``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends.kubernetes.cluster import Cluster, ClusterUnauthorized
from ..backends.kubernetes.objects import target_labels
from ..backends.kubernetes.preflight import unauthorized
from ..errors import Conflict, InvalidInput, ModelportError, NotFound
from ..spec.compute import FAST_PROD, KUBERNETES, KubernetesTarget
from ..spec.endpoint import LOCAL_TARGET as LOCAL
from ..store.checks import listing
from ..store.db import Store
from ..store.records import ComputeTargetRecord
from .compute_checks import (
    CLAIM_CONFIGMAP,
    STAND_IN,
    Checked,
    check_cluster,
    claim,
    field_problems,
    missing_namespace,
    problem_list,
    tls_problems,
)
from .compute_views import SUCCEEDED, local_view, not_attached, view

if TYPE_CHECKING:
    from ..api.workspace_dir import WorkspaceDir

FAILED = "Failed"  # Azure ML's provisioning state of an attached compute whose last check failed
# what modelport makes in a namespace, in the order detach removes it: workloads first, then what they use (their
# ReplicaSets, Pods and EndpointSlices go with them, by Kubernetes' garbage collection)
OWNED_KINDS = ("Deployment", "Job", "Service", "ConfigMap", "Secret", "RoleBinding", "Role", "ServiceAccount")
KUBECONFIG_FILE, TLS_CERT_FILE, TLS_KEY_FILE = "kubeconfig", "tls.crt", "tls.key"


@dataclass(frozen=True)
class AttachRequest:
    """What ``KubernetesCompute.attach_configuration`` gives: ``kubeconfig`` is the file's YAML text (flattened:
    no file references), ``context`` one of its contexts (None: its current-context), ``ssl_cert_pem`` /
    ``ssl_key_pem`` the front end's TLS certificate and unencrypted key (PEM text) for host ``ssl_cname``; the
    other fields are ``KubernetesTarget``'s. Secrets are left out of ``repr``."""

    kubeconfig: str = field(repr=False)
    context: str | None = None
    namespace: str = "default"
    cluster_purpose: str = FAST_PROD
    ingress_service_type: str = "LoadBalancer"
    ssl_cert_pem: str | None = field(default=None, repr=False)
    ssl_key_pem: str | None = field(default=None, repr=False)
    ssl_cname: str | None = None
    image_registry: str | None = None
    image_builder: str = "podman"


class ComputeOperations:
    """The compute targets of one workspace (``store``: its ``Store``; ``workspace``: its ``WorkspaceDir``, whose
    ``compute`` folder holds the credentials). One per control plane: it serialises attach, refresh and detach
    and keeps one ``Cluster`` connection per attached target. ``on_attached(name)`` is called once a target is
    stored, or its credentials replaced (to start reconciling it, again), ``on_detaching(name)`` before its
    objects are removed or its old connection is closed (to stop first what would use it)."""

    def __init__(self, store: Store, workspace: WorkspaceDir, on_attached: Callable[[str], None] | None = None,
                 on_detaching: Callable[[str], None] | None = None):
        self.store = store
        self.workspace = workspace
        self.on_attached = on_attached
        self.on_detaching = on_detaching
        self._lock = threading.Lock()  # attach, refresh and detach change rows and files together
        self._clusters: dict[str, Cluster] = {}
        self._clusters_lock = threading.Lock()

    # --- reads --------------------------------------------------------------------------------------------------

    def list(self) -> list[dict[str, Any]]:
        """Every compute target's view (see ``show``): ``local`` first, then the attached ones by name."""
        return [local_view(), *(view(record) for record in self.store.list_compute_targets())]

    def show(self, name: str) -> dict[str, Any]:
        """A target's view: its settings (``KubernetesTarget`` fields), ``type`` (``Local`` or ``Kubernetes``),
        Azure ML's ``provisioning_state`` and ``provisioning_errors``, ``warnings``, ``server_version``, ``vcpus``,
        ``created_at`` and ``checked_at`` (ISO 8601). No credential. NotFound naming the attached targets."""
        return local_view() if name == LOCAL else view(self._record(name))

    def kubernetes_target(self, name: str) -> KubernetesTarget:
        """The attached cluster ``name``; NotFound naming the attached targets, InvalidInput for ``local``."""
        if name == LOCAL:
            raise InvalidInput(f"'{LOCAL}' is this machine, not a Kubernetes cluster")
        return KubernetesTarget.from_dict(self._record(name).config)

    def cluster_for(self, name: str) -> Cluster:
        """A connection to the attached cluster ``name``, in its namespace, with its stored kubeconfig (one per
        target, kept until it is detached or attached again). Raises what ``kubernetes_target`` and
        ``Cluster.connect`` raise; nothing is sent to the cluster here."""
        with self._clusters_lock:
            if name in self._clusters:
                return self._clusters[name]
        target = self.kubernetes_target(name)
        cluster = Cluster.connect(self._secret(name, KUBECONFIG_FILE), target.context, target.namespace)
        with self._clusters_lock:
            return self._clusters.setdefault(name, cluster)

    def tls_pair(self, name: str) -> tuple[str, str] | None:
        """The front end's TLS certificate and key (PEM text) of the attached cluster ``name``, None without TLS."""
        if not self.kubernetes_target(name).has_tls:
            return None
        return self._secret(name, TLS_CERT_FILE), self._secret(name, TLS_KEY_FILE)

    # --- changes ------------------------------------------------------------------------------------------------

    def attach(self, name: str, request: AttachRequest) -> dict[str, Any]:
        """Check everything, then claim the namespace, store the credentials and the target; its view (with the
        check's ``warnings``, e.g. a DevTest cluster's). Raises InvalidInput listing every problem, one per line,
        or Conflict (every problem is an existing attachment in the way: this name, this cluster and namespace
        under another name, another owner's objects in the namespace), naming it; nothing is stored then."""
        fields = {"name": name, "namespace": request.namespace, "cluster_purpose": request.cluster_purpose,
                  "ingress_service_type": request.ingress_service_type, "image_builder": request.image_builder}
        wrong = {key: field_problems({key: value}) for key, value in fields.items()}
        problems = [problem for found in wrong.values() for problem in found]
        problems += tls_problems(request.ssl_cert_pem, request.ssl_key_pem, request.ssl_cname)
        conflicts = self._name_conflicts(name)
        try:
            cluster = Cluster.connect(request.kubeconfig, request.context, request.namespace)
        except ModelportError as err:
            raise _refused(name, [*problems, str(err)], conflicts) from None
        try:
            if wrong["namespace"] or wrong["cluster_purpose"]:  # they shape the cluster checks; the others do not
                raise _refused(name, problems, conflicts)
            target = KubernetesTarget(**{"name": STAND_IN, **{k: v for k, v in fields.items() if not wrong[k]}},
                                      server=cluster.server, context=cluster.context, ssl_cname=request.ssl_cname,
                                      has_tls=bool(request.ssl_cert_pem), image_registry=request.image_registry)
            checked = check_cluster(cluster, self.workspace.name, target)
            conflicts += self._place_conflicts(target) or checked.conflicts  # ours, under another name: once
            if problems or conflicts or checked.problems:
                raise _refused(name, problems + checked.problems, conflicts)
            with self._lock:
                again = self._name_conflicts(name) + self._place_conflicts(target)
                if again:
                    raise _refused(name, [], again)
                _claim(cluster, self.workspace.name, target, name, "attach")
                folder = self._save_credentials(name, request)
                try:
                    record = self.store.put_compute_target(name, KUBERNETES, _config(target, checked))
                except BaseException:
                    shutil.rmtree(folder, ignore_errors=True)
                    with contextlib.suppress(ModelportError):  # a claim left behind is named by the next attach
                        cluster.delete("ConfigMap", CLAIM_CONFIGMAP)
                    raise
                self._forget_cluster(name)
        finally:
            cluster.close()
        if self.on_attached is not None:
            self.on_attached(name)
        return view(record)

    def refresh(self, name: str, kubeconfig: str | None = None, context: str | None = None) -> dict[str, Any]:
        """Run the checks again (Azure ML's ``refresh_state``): the view, whose ``provisioning_state`` is
        ``Failed`` with every problem in ``provisioning_errors`` when one is found, ``Succeeded`` otherwise.

        With ``kubeconfig`` (its YAML text; ``context`` one of its contexts, None: its current-context) the new
        credentials are checked as attach checks them and, when everything passes, replace the stored ones and
        the target's reconciler restarts with them (``context`` is stored too); InvalidInput listing every problem,
        or naming both API URLs when the kubeconfig reaches another cluster: the stored credentials and state stay
        then. NotFound naming the attached targets; Conflict for ``local`` with credentials (it has none)."""
        if kubeconfig is not None:
            return self._replace_credentials(name, kubeconfig, context)
        if context is not None:
            raise InvalidInput(f"context {context!r} was given without a kubeconfig; give the kubeconfig it is in "
                               f"(modelport computetarget refresh -n {name} --kubeconfig FILE --context {context})")
        if name == LOCAL:
            return local_view()
        target = self.kubernetes_target(name)
        try:
            checked = check_cluster(self.cluster_for(name), self.workspace.name, target, refresh_fix(name))
        except ModelportError as err:  # the stored kubeconfig no longer connects
            checked = Checked([str(err)], [])
        with self._lock:
            self._record(name)  # NotFound if it was detached meanwhile: a refresh never brings one back
            record = self.store.put_compute_target(name, KUBERNETES, _config(target, checked))
        return view(record)

    def _replace_credentials(self, name: str, kubeconfig: str, context: str | None) -> dict[str, Any]:
        """``refresh`` with a new kubeconfig: check it on the same cluster, then store it and restart the
        reconciler (which connects anew)."""
        if name == LOCAL:
            raise Conflict(f"'{LOCAL}' is this machine: it has no credentials to replace; give a kubeconfig only to "
                           "refresh an attached cluster")
        stored = self.kubernetes_target(name)
        try:
            cluster = Cluster.connect(kubeconfig, context, stored.namespace)
        except ModelportError as err:
            raise InvalidInput(problem_list(name, [str(err)], "refresh")) from None
        try:
            if cluster.server != stored.server:
                raise InvalidInput(f"compute target '{name}' is attached to the cluster at {stored.server}, and the "
                                   f"new kubeconfig's context {cluster.context!r} reaches {cluster.server}: give a "
                                   f"kubeconfig for {stored.server}, or attach the other cluster under another name")
            target = replace(stored, context=cluster.context)
            checked = check_cluster(cluster, self.workspace.name, target, refresh_fix(name))
            if checked.errors:
                raise InvalidInput(problem_list(name, checked.errors, "refresh"))
            with self._lock:
                self._record(name)  # NotFound if it was detached meanwhile
                _claim(cluster, self.workspace.name, target, name, "refresh")  # made again if it went missing
                _write_private(self._folder(name) / KUBECONFIG_FILE, kubeconfig)
                record = self.store.put_compute_target(name, KUBERNETES, _config(target, checked))
        finally:
            cluster.close()
        if self.on_detaching is not None:
            self.on_detaching(name)  # stop the reconciler before its connection is closed
        self._forget_cluster(name)
        if self.on_attached is not None:
            self.on_attached(name)  # reconcile again, connecting with the new credentials
        return view(record)

    def detach(self, name: str, force: bool = False) -> list[str]:
        """Remove every object labelled with this target from its namespace, then forget the target and its
        credentials; the removed objects as ``Kind/name``. Conflict naming the services still deployed on it,
        or (unless ``force``) when the cluster cannot be reached or refuses; with ``force`` the target is
        forgotten all the same and its objects stay; Conflict for ``local`` (built in). NotFound for an unknown
        name."""
        if name == LOCAL:
            raise Conflict(f"'{LOCAL}' is this machine, built into every workspace: it cannot be detached")
        target = self.kubernetes_target(name)
        using = sorted(record.name for record in self.store.list_services()
                       if record.config.get("compute_target") == name)
        if using:
            which = f"services {listing(using)}: delete them" if len(using) > 1 else f"service {using[0]}: delete it"
            raise Conflict(f"compute target '{name}' still runs {which} first (modelport service delete -n "
                           f"{using[0]}), then detach")
        if self.on_detaching is not None:
            self.on_detaching(name)
        removed: list[str] = []
        try:
            removed = self._remove_objects(name)
        except ModelportError as err:
            if not force:
                if self.on_attached is not None:
                    self.on_attached(name)  # still attached: reconcile it again
                fix = unauthorized(err, refresh_fix(name)) if isinstance(err, ClusterUnauthorized) else \
                    f"{err}; fix that"
                raise Conflict(f"compute target '{name}' was not detached: {fix}, then detach again, or detach with "
                               f"force=True (modelport computetarget detach --force) to forget it and leave its "
                               f"objects in namespace '{target.namespace}'") from None
        with self._lock:
            self.store.delete_compute_target(name)
            shutil.rmtree(self._folder(name), ignore_errors=True)
            self._forget_cluster(name)
        return removed

    # --- helpers ------------------------------------------------------------------------------------------------

    def _record(self, name: str) -> ComputeTargetRecord:
        try:
            return self.store.get_compute_target(name)
        except NotFound:
            raise not_attached(self.store, self.workspace.name, name) from None

    def _name_conflicts(self, name: str) -> list[str]:
        try:
            existing = KubernetesTarget.from_dict(self.store.get_compute_target(name).config)
        except NotFound:
            return []
        return [f"compute target '{name}' is attached already (namespace '{existing.namespace}' on "
                f"{existing.server}): detach it first (modelport computetarget detach -n {name}), or choose "
                "another name"]

    def _place_conflicts(self, target: KubernetesTarget) -> list[str]:
        """The attachment already holding ``target``'s cluster and namespace in this workspace, under another name."""
        for record in self.store.list_compute_targets():
            config = record.config
            if record.name != target.name and (config.get("server"), config.get("namespace")) == \
                    (target.server, target.namespace):
                return [f"namespace '{target.namespace}' on {target.server} is attached already as compute target "
                        f"'{record.name}': deploy to it (--ct {record.name}), or detach it first"]
        return []

    def _remove_objects(self, name: str) -> list[str]:
        cluster = self.cluster_for(name)
        labels = target_labels(self.workspace.name, name)
        removed = []
        for kind in OWNED_KINDS:
            for obj in cluster.list(kind, labels):
                if cluster.delete(kind, obj["metadata"]["name"]):
                    removed.append(f"{kind}/{obj['metadata']['name']}")
        return removed

    def _folder(self, name: str) -> Path:
        return self.workspace.compute / name

    def _secret(self, name: str, file: str) -> str:
        try:
            return (self._folder(name) / file).read_text()
        except FileNotFoundError:
            raise NotFound(f"the credentials of compute target '{name}' are missing from {self._folder(name)}; "
                           f"detach it (modelport computetarget detach -n {name} --force) and attach it "
                           "again") from None

    def _save_credentials(self, name: str, request: AttachRequest) -> Path:
        """Write the kubeconfig and TLS pair readable by the owner only; the folder they are in."""
        folder = self._folder(name)
        for path in (folder.parent, folder):
            path.mkdir(mode=0o700, exist_ok=True)
            path.chmod(0o700)
        for file, text in ((KUBECONFIG_FILE, request.kubeconfig), (TLS_CERT_FILE, request.ssl_cert_pem),
                           (TLS_KEY_FILE, request.ssl_key_pem)):
            if text is None:
                (folder / file).unlink(missing_ok=True)
            else:
                _write_private(folder / file, text)
        return folder

    def _forget_cluster(self, name: str) -> None:
        with self._clusters_lock:
            cluster = self._clusters.pop(name, None)
        if cluster is not None:
            cluster.close()


def refresh_fix(name: str) -> str:
    """What to do when the API refuses an attached target's credentials (401)."""
    return f"refresh it with a fresh kubeconfig: modelport computetarget refresh -n {name} --kubeconfig FILE"


def _config(target: KubernetesTarget, checked: Checked) -> dict[str, Any]:
    """What the store keeps: the target and the outcome of its last check."""
    return {**target.to_dict(), "provisioning_state": FAILED if checked.errors else SUCCEEDED,
            "provisioning_errors": checked.errors, "warnings": checked.warnings,
            "server_version": checked.server_version, "vcpus": checked.vcpus,
            "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _claim(cluster: Cluster, workspace: str, target: KubernetesTarget, name: str, action: str) -> None:
    """Apply the claim ConfigMap: the first write, so a namespace that does not exist shows here, refused as one of
    ``action``'s problems (InvalidInput); other errors are raised as they are."""
    try:
        cluster.apply(claim(workspace, target))
    except ModelportError as err:
        missing = missing_namespace(err, target)
        if missing is None:
            raise
        raise InvalidInput(problem_list(name, [missing], action)) from None


def _refused(name: str, problems: list[str], conflicts: list[str]) -> ModelportError:
    """A refused attach: InvalidInput listing every problem, or Conflict when each is an attachment in the way."""
    return (InvalidInput if problems else Conflict)(problem_list(name, problems + conflicts))


def _write_private(path: Path, text: str) -> None:
    """``text`` to ``path``, mode 0600 from its first byte, replacing any earlier file at once."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(text)
    os.replace(temporary, path)
