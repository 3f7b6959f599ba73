"""The checks of an attachment that are modelport's own, around the cluster checks of
``backends.kubernetes.preflight.check_attachment``; called by ``operations/compute.py`` (attach and refresh).

Each check returns one line per problem, so attach can report every problem at once: the target's fields
(``spec.compute``'s rules, each field on its own), the TLS certificate and key (they parse and belong together,
with the host name Azure ML asks for), other attachments' objects in the namespace (what a live attachment
carries: ``backends.kubernetes.objects.target_labels``, and the claim ConfigMap every attachment makes), a
namespace that does not exist (the API's 404 when the claim is applied: reading a namespace would need a
cluster-wide permission, and a namespaced read answers the same for a missing namespace as for an empty one), and
a warning for Kubernetes' own namespaces. No line repeats a credential.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..backends.kubernetes.cluster import Cluster, ClusterApiError, ClusterForbidden
from ..backends.kubernetes.objects import COMPUTE_TARGET, MANAGED_BY, MANAGER, WORKSPACE, target_labels
from ..backends.kubernetes.preflight import ATTACH_AGAIN, check_attachment
from ..errors import InvalidInput, ModelportError
from ..spec.compute import KubernetesTarget
from ..spec.endpoint import LOCAL_TARGET as LOCAL
from ..store.checks import listing

CLAIM_CONFIGMAP = "modelport-attachment"  # the labelled ConfigMap by which an attachment claims its namespace
CLAIM_KINDS = ("ConfigMap", "Deployment", "Service", "Secret")  # where another attachment's objects show
STAND_IN = "attaching"  # a valid name to check the other fields (and the cluster) with when the given one is not
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")  # Kubernetes' own


@dataclass(frozen=True)
class Checked:
    """One pass of the cluster checks: ``problems`` (what must be fixed), ``warnings`` (works, needs care),
    ``conflicts`` (other attachments' objects in the namespace), and what was read: ``server_version`` (e.g.
    ``v1.31.2``, None when the cluster did not answer) and ``vcpus`` (of schedulable nodes)."""

    problems: list[str]
    warnings: list[str]
    conflicts: list[str] = field(default_factory=list)
    server_version: str | None = None
    vcpus: float | None = None

    @property
    def errors(self) -> list[str]:
        """Every problem and conflict: Azure ML's ``provisioning_errors``."""
        return self.problems + self.conflicts


def check_cluster(cluster: Cluster, workspace: str, target: KubernetesTarget,
                  unauthorized_fix: str = ATTACH_AGAIN) -> Checked:
    """``check_attachment``'s findings (a 401 saying ``unauthorized_fix``), the warning for a system namespace
    and, once the cluster answers, the other attachments in the namespace (``workspace``: this workspace's name).
    Cluster errors become problem lines; nothing is raised."""
    report = check_attachment(cluster, target, unauthorized_fix=unauthorized_fix)
    problems, conflicts = list(report.problems), []
    if report.server_version:
        try:
            conflicts = other_owners(cluster, workspace, target)
        except ModelportError as err:
            problems.append(str(err))
    warnings = [*system_namespace_warnings(target.namespace), *report.warnings]
    return Checked(problems, warnings, conflicts, report.server_version, report.vcpus)


def system_namespace_warnings(namespace: str) -> list[str]:
    """A warning when ``namespace`` is one of Kubernetes' own (``SYSTEM_NAMESPACES``): it works, but modelport's
    objects would sit among the cluster's components."""
    if namespace not in SYSTEM_NAMESPACES:
        return []
    return [f"namespace '{namespace}' is for the cluster's own components, and modelport's objects would sit among "
            "them: attach a namespace of your own (kubectl create namespace models; --namespace models) unless you "
            "mean it"]


def missing_namespace(err: ModelportError, target: KubernetesTarget) -> str | None:
    """The problem line when ``err`` (from a write into ``target.namespace``) is the API's 404 for a namespace that
    does not exist; None for any other error."""
    if not (isinstance(err, ClusterApiError) and err.api_status == 404 and
            f'namespaces "{target.namespace}" not found' in str(err)):
        return None
    return (f"namespace '{target.namespace}' does not exist on {target.server}: create it (kubectl create namespace "
            f"{target.namespace}) or attach another")


def other_owners(cluster: Cluster, workspace: str, target: KubernetesTarget) -> list[str]:
    """One line per other attachment (another workspace, or another target name of this one) whose objects are in
    ``target``'s namespace. A refused list gives none: ``check_attachment`` names the missing permission. Raises
    the cluster's other errors (``ClusterError``)."""
    ours = target_labels(workspace, target.name)
    owners: dict[tuple[str | None, str | None], list[str]] = {}
    try:
        for kind in CLAIM_KINDS:
            for obj in cluster.list(kind, {MANAGED_BY: MANAGER}):
                labels = obj["metadata"].get("labels") or {}
                owner = (labels.get(WORKSPACE), labels.get(COMPUTE_TARGET))
                if owner != (ours[WORKSPACE], ours[COMPUTE_TARGET]):
                    owners.setdefault(owner, []).append(f"{kind}/{obj['metadata']['name']}")
    except ClusterForbidden:
        return []
    return [f"namespace '{target.namespace}' on {target.server} is used by compute target '{name}' of workspace "
            f"'{owner}' ({listing(objects, 3)}): detach it there first, or attach another namespace"
            for (owner, name), objects in owners.items()]


def field_problems(fields: dict[str, Any]) -> list[str]:
    """What ``KubernetesTarget`` refuses in ``fields`` (its keyword arguments), each field checked on its own so
    every problem is named: Azure ML's compute name rule (and ``local``, the built-in target), the namespace
    rule, the allowed cluster purposes, ingress Service types and image builders."""
    problems = []
    for key, value in fields.items():
        if key == "name" and value == LOCAL:
            problems.append(f"'{LOCAL}' is the name of this machine's built-in target; choose another name")
            continue
        try:
            KubernetesTarget(**{"name": STAND_IN, "server": "", key: value})
        except InvalidInput as err:
            problems.append(str(err))
    return problems


def tls_problems(cert_pem: str | None, key_pem: str | None, cname: str | None) -> list[str]:
    """What is wrong with the front end's TLS settings (PEM text): Azure ML's rule that a certificate, its key
    and the host name (``ssl_cname``) come together; the certificate must parse, the key must be an unencrypted
    private key whose public key is the certificate's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    given = {"ssl_cert_pem_file": cert_pem, "ssl_key_pem_file": key_pem, "ssl_cname": cname}
    missing = [name for name, value in given.items() if not value]
    if len(missing) == len(given):
        return []
    if missing:
        return [f"TLS needs ssl_cert_pem_file, ssl_key_pem_file and ssl_cname together; {', '.join(missing)} "
                "missing: give all three, or none to serve plain HTTP"]
    problems = []
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError:
        certificate = None
        problems.append("ssl_cert_pem_file is not a PEM certificate: give the file with the "
                        "'-----BEGIN CERTIFICATE-----' block")
    try:
        key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        key = None
        problems.append("ssl_key_pem_file is not an unencrypted PEM private key: give the key without a passphrase "
                        "(e.g. `openssl pkey -in key.pem -out plain.pem`)")
    if certificate is not None and key is not None:
        raw = serialization.PublicFormat.SubjectPublicKeyInfo
        if key.public_key().public_bytes(serialization.Encoding.DER, raw) != \
                certificate.public_key().public_bytes(serialization.Encoding.DER, raw):
            problems.append("ssl_key_pem_file is not the key of ssl_cert_pem_file: give the key the certificate "
                            "was issued for")
    return problems


def problem_list(name: str, problems: list[str], action: str = "attach") -> str:
    """The message of a refused ``action`` (``attach``, or ``refresh`` with new credentials): a first line, then
    one ``- problem`` line per problem (what follows a problem's first line, such as a proposed Role's YAML,
    indented by two spaces)."""
    count = f"{len(problems)} problems" if len(problems) > 1 else "a problem"
    done = {"attach": "attached", "refresh": "refreshed"}.get(action, f"{action}ed")
    return "\n".join([f"compute target '{name}' was not {done}: {count} (fix and {action} again):",
                      *("- " + problem.rstrip("\n").replace("\n", "\n  ") for problem in problems)])


def claim(workspace: str, target: KubernetesTarget) -> dict[str, Any]:
    """The ConfigMap by which an attachment claims its namespace (detach removes it: it carries the target's
    labels)."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CLAIM_CONFIGMAP, "labels": target_labels(workspace, target.name)},
            "data": {"workspace": workspace, "computeTarget": target.name}}
