"""Why an image pull failed and what to do, from the words the kubelet's container runtime put in its message.

``status.diagnose`` calls ``pull_advice`` for a pod waiting in ``ErrImagePull``/``ImagePullBackOff``: the
kind of error (a missing repository, the network, TLS trust, authentication, a tag that is not there) names
the registry and the fix.
"""

from __future__ import annotations

# an image pull error's kind by the words containerd/CRI-O/Docker put in it (first match wins), and what to do
PULL_ERRORS = (
    (("pull access denied", "insufficient_scope"), "{registry} says the repository does not exist or needs "
     "credentials: check the image name and give the nodes pull access to it (an imagePullSecret, or the node "
     "identity)"),
    (("i/o timeout", "dial tcp", "connection refused", "no such host", "deadline exceeded", "network is unreachable",
      "tls handshake timeout", "connection reset"), "the nodes cannot reach {registry} (network): check its address, "
     "the nodes' DNS and any firewall or egress rule between the cluster and the registry (a registry on localhost "
     "is not reachable from the nodes)"),
    (("x509", "certificate signed by unknown authority"), "the nodes do not trust {registry}'s TLS certificate: add "
     "its CA to the nodes' container runtime, or use a registry with a trusted certificate"),
    (("unauthorized", "authentication required", "401", "403", "forbidden", "denied", "no basic auth credentials",
      "authorization failed"), "{registry} refused the nodes' credentials (authentication): give the nodes pull "
     "access (an imagePullSecret on the namespace's default ServiceAccount, or the node identity, e.g. az aks update "
     "--attach-acr)"),
    (("manifest unknown", "not found", "name unknown", "does not exist"), "the image is not in {registry} (not "
     "found): its build was not pushed there or the tag is wrong; check the compute target's image_registry and the "
     "build log"),
)


def pull_advice(image: str, message: str) -> str:
    """What a failed pull of ``image`` means, from the kubelet's ``message``, and what to do."""
    first = image.split("/", 1)[0]
    registry = first if "/" in image and ("." in first or ":" in first or first == "localhost") else "docker.io"
    lowered = message.lower()
    fix = next((fix for words, fix in PULL_ERRORS if any(word in lowered for word in words)), "see the pod's events")
    return f"{fix.format(registry=registry)}, then update the service; the kubelet said: {message.strip()}"
