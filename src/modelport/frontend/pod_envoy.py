"""The front-end pod's Envoy as its controller sees it: configured through a shared folder, never started here.

On a cluster the front end is one pod (``backends.kubernetes.frontend_manifests``) with two containers
sharing a folder: ``controller`` (``frontend.controller``) writes a configuration with no service there
first (``write_initial``: Envoy refuses to start without its listener and cluster files), then ``envoy``
starts from its bootstrap (``frontend.config.bootstrap``). The controller reconfigures that Envoy through
``PodEnvoy``: the local front end's ``FrontEnd.apply`` (validate, write the watched files atomically in
steps, wait until Envoy reports each one live) and ``FrontEnd.load``, for an Envoy this process neither
starts nor stops. Both containers run as the same user: the admin socket is mode 0600.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from ..backends.kubernetes.objects import FRONT_END_PORT, FRONT_END_TLS_PORT
from .changes import new_version
from .config import LISTENER_NAME
from .envoy import FrontEnd, FrontEndError
from .routes import DEFAULT_LIMITS, ClientLimits, ServiceRoute

ALL_ADDRESSES = "0.0.0.0"  # in a pod Envoy listens on the pod IP, where the front end's Service sends clients
ANSWER_TIMEOUT_S = 60.0  # Envoy starts only once the controller wrote its first files
OTHER_CONTAINER = -1  # FrontEnd's pid of an Envoy in another container (its pid is not visible from here)
TLS_LISTENER = f"{LISTENER_NAME}-tls"
TLS_FILES = ("tls.crt", "tls.key")  # a kubernetes.io/tls Secret's keys, mounted as files


class PublishedJwks:
    """The token public key set the control plane published (in the auth Secret), where ``FrontEnd`` asks its
    signer for one: the controller sets ``value`` from each revision it applies."""

    def __init__(self) -> None:
        self.value: dict[str, Any] | None = None

    def jwks(self) -> dict[str, Any] | None:
        return self.value


class PodEnvoy(FrontEnd):
    """Envoy in the front-end pod's ``envoy`` container, reached through the shared folder.

    ``xds_dir``: the folder of watched files; ``admin_socket``: Envoy's admin unix socket; ``port``: the HTTP
    listener's port (``objects.FRONT_END_PORT``); ``listen_address``: ``0.0.0.0`` in a pod, ``127.0.0.1`` in
    tests; ``tls_dir``: a folder holding ``tls.crt`` (PEM chain) and ``tls.key`` (PEM key) to serve HTTPS from on
    ``tls_port`` as well (None: HTTP only; Envoy reads them when the listener is created, so a new certificate
    takes a new pod). ``attach()`` waits for Envoy to answer; then ``apply(services)`` and
    ``load(service, version)`` work as the local front end's (``frontend.envoy.FrontEnd``). Raises FrontEndError
    when Envoy does not answer or refuses a configuration."""

    def __init__(self, xds_dir: Path, admin_socket: Path, port: int = FRONT_END_PORT,
                 listen_address: str = ALL_ADDRESSES, tls_dir: Path | None = None, tls_port: int = FRONT_END_TLS_PORT,
                 limits: ClientLimits = DEFAULT_LIMITS):
        self.published = PublishedJwks()
        super().__init__(Path(xds_dir).parent, port=port, signer=self.published, limits=limits)  # type: ignore[arg-type]
        self.xds_dir = Path(xds_dir)
        self.admin_socket = Path(admin_socket)
        self.port = port
        self.listen_address = listen_address
        self.tls_dir = tls_dir
        self.tls_port = tls_port

    def write_initial(self) -> None:
        """Write a configuration with no service when the folder has none yet (Envoy does not start without its
        listener and cluster files); keep the one there (this container restarted, Envoy serves it)."""
        (self.xds_dir / "eds").mkdir(parents=True, exist_ok=True)
        if not (self.xds_dir / "lds.json").exists():
            self._files = {}
            self._write_files(self._render([], new_version()))

    def attach(self, timeout_s: float = ANSWER_TIMEOUT_S) -> None:
        """Wait (up to ``timeout_s`` seconds) until Envoy answers on its admin socket; from then on ``apply``
        compares with the files in ``xds_dir`` (what an earlier controller left) and validates every service
        once. Raises FrontEndError naming the socket when Envoy does not answer in time."""
        deadline = time.monotonic() + timeout_s
        while not self.running():
            if time.monotonic() > deadline:
                raise FrontEndError(f"envoy does not answer on {self.admin_socket} after {timeout_s:.0f} s: see the "
                                    "envoy container's log")
            time.sleep(0.1)
        self.pid = OTHER_CONTAINER
        self._files = None
        self._applied = None

    def running(self) -> bool:
        """Envoy answers on its admin socket."""
        try:
            self._readouts()
        except FrontEndError:
            return False
        return True

    def _render(self, services: list[ServiceRoute], version: str) -> dict[str, dict[str, Any]]:
        """The local front end's files, with the listener on ``listen_address`` and, with ``tls_dir``, the same
        listener again with TLS on ``tls_port``."""
        files = super()._render(services, version)
        listeners = files["lds.json"]["resources"]
        listener = next(item for item in listeners if item["name"] == LISTENER_NAME)
        listener["address"]["socket_address"]["address"] = self.listen_address
        if self.tls_dir is not None:
            listeners.append(self._tls_listener(listener, self.tls_dir))
        return files

    def _tls_listener(self, listener: dict[str, Any], tls_dir: Path) -> dict[str, Any]:
        """``listener`` on ``tls_port``, terminating TLS with the certificate and key in ``tls_dir``."""
        chain, key = (str(tls_dir / name) for name in TLS_FILES)
        tls = copy.deepcopy(listener)
        tls["name"] = TLS_LISTENER
        tls["address"]["socket_address"]["port_value"] = self.tls_port
        tls["filter_chains"][0]["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {"tls_certificates": [{"certificate_chain": {"filename": chain},
                                                         "private_key": {"filename": key}}]}}}
        return tls

    def _log_tail(self, lines: int = 5) -> str:
        return "see the envoy container's log"
