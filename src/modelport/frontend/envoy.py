"""The front end process: one Envoy per workspace, configured by watched files in ``state_dir/xds``.

``apply()`` checks the services, has ``envoy --mode validate`` accept the same configuration,
then writes each file atomically (temp file + rename in the watched folder) and returns once
Envoy reports every file's new version, so a change is live when ``apply()`` returns and a bad
configuration is never written. Envoy outlives the Python process that started it: ``start()``
re-adopts it from ``state_dir/frontend.json`` while it runs.

Envoy's admin interface (stats, and endpoints that stop or reconfigure it) listens only on a
unix socket of mode 0600 in a 0700 folder: no other user of the machine can reach it, and
nothing on the network.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from .. import processes
from ..errors import Conflict, ModelportError
from .addresses import admin_socket_path, free_port, port_free, private_folder
from .changes import (
    new_version,
    resources,
    routing,
    stat_prefix,
    steps,
    to_json,
    without_endpoints,
    write_atomic,
)
from .config import bootstrap, validation_bootstrap, xds_files
from .envoy_binary import envoy_path
from .routes import DEFAULT_LIMITS, ClientLimits, ServiceRoute, cluster_name
from .tokens import TokenSigner

STATE_FILE = "frontend.json"
CONFIG_STATS = r"(version_text|update_rejected|total_listeners_warming|warming_clusters)$"
CLUSTER_STATS = r"^cluster\.[^.]+\.upstream_rq_([1-5]xx|time|active|pending_active)$"  # what prometheus_stats gives
START_TIMEOUT_S = 20.0
APPLY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
QUIET_LOGS = "misc:error"  # api_key_auth's "work-in-progress" warnings, one per message


class FrontEndError(ModelportError):
    """Envoy refused a configuration, did not start, or did not take a change in time."""

    status = 500
    code = "FrontEndError"


class FrontEnd:
    """The workspace's Envoy: ``start()``, ``apply(services)``, ``stats(service)``, ``stop()``."""

    def __init__(self, state_dir: Path, port: int | None = None, signer: TokenSigner | None = None,
                 limits: ClientLimits = DEFAULT_LIMITS):
        self.state_dir = Path(state_dir)
        self.limits = limits
        self.xds_dir = self.state_dir / "xds"
        self.requested_port = port
        self.signer = signer or TokenSigner(self.state_dir / "keys")
        self.port = 0
        self.admin_socket = admin_socket_path(self.state_dir)
        self.pid = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._admin: httpx.Client | None = None
        self._files: dict[str, dict[str, Any]] | None = None  # what the xds files hold (None: read them)
        self._applied: dict[str, ServiceRoute] | None = None  # what apply() gave Envoy, replicas left out
        self._lock = threading.Lock()  # one apply() at a time

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "envoy.log"

    # --- life cycle ----------------------------------------------------------------------------

    def start(self, services: list[ServiceRoute] | None = None) -> None:
        """Start Envoy routing ``services`` (or re-adopt the one still running); return once it answers.

        Raises FrontEndError when Envoy does not start, Conflict when the port is taken."""
        state = self._read_state()
        self._applied = None  # what an adopted Envoy serves is not known here: validate all on the next change
        if state and self._adopt(state):
            return
        self.port = self._pick_port(state)
        if self._admin is not None:  # a connection to an earlier Envoy's socket
            self._admin.close()
            self._admin = None
        private_folder(self.admin_socket.parent)
        self.admin_socket.unlink(missing_ok=True)
        eds_dir = self.xds_dir / "eds"
        eds_dir.mkdir(parents=True, exist_ok=True)
        for stale in eds_dir.glob("*.json"):
            stale.unlink()
        if services:
            self._validate(services)
        self._files = None
        self._write_files(self._render(services or [], new_version()))
        bootstrap_path = self.state_dir / "bootstrap.json"
        write_atomic(bootstrap_path, to_json(bootstrap(self.xds_dir, self.admin_socket)))
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [str(envoy_path()), "-c", str(bootstrap_path), "--disable-hot-restart",
                 "--log-level", "info", "--component-log-level", QUIET_LOGS],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.pid = self._process.pid
        try:
            self._wait_started()
        except BaseException:
            self.stop()
            raise
        write_atomic(self.state_dir / STATE_FILE, json.dumps({"pid": self.pid, "port": self.port}))
        self._applied = {service.name: routing(service) for service in services or []}

    def stop_left_running(self) -> bool:
        """Stop an Envoy an earlier control plane started and left running (it has nothing to route);
        True if there was one."""
        state = self._read_state() or {}
        pid = int(state.get("pid", 0))
        if not pid or str(self.state_dir / "bootstrap.json") not in processes.cmdline(pid):
            return False
        self.pid, self.port = pid, int(state["port"])
        self.stop()
        return True

    def running(self) -> bool:
        """Envoy's process still runs (cheap: no request)."""
        if not self.pid:
            return False
        if self._process is not None:
            return self._process.poll() is None
        return processes.running(self.pid, marker=str(self.state_dir / "bootstrap.json"))

    def _pick_port(self, state: dict[str, Any] | None) -> int:
        """The requested port (it must be free), else the last one used (if still free), else a free one."""
        if self.requested_port:
            if not port_free(self.requested_port):
                raise Conflict(f"port {self.requested_port} on 127.0.0.1 is already in use: stop what uses it or "
                               "pick another port")
            return self.requested_port
        last = int((state or {}).get("port", 0))
        return last if last and port_free(last) else free_port()

    def stop(self) -> None:
        """Stop Envoy (SIGTERM, then SIGKILL after a while); its port is remembered for the next start."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        elif self.pid:
            processes.terminate(self.pid, STOP_TIMEOUT_S)
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self.port:
            write_atomic(self.state_dir / STATE_FILE, json.dumps({"port": self.port}))
        self._process, self.pid = None, 0

    def _read_state(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.state_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None

    def _adopt(self, state: dict[str, Any]) -> bool:
        """Take over the Envoy an earlier process started, if it still runs with this state folder."""
        if "pid" not in state:
            return False
        pid, port = int(state["pid"]), int(state["port"])
        if str(self.state_dir / "bootstrap.yaml") in processes.cmdline(pid):  # an earlier modelport's YAML files
            processes.terminate(pid, STOP_TIMEOUT_S)  # replaced by one reading JSON files, on the same port
            return False
        if str(self.state_dir / "bootstrap.json") not in processes.cmdline(pid):
            return False
        if self.requested_port and port != self.requested_port:
            raise Conflict(f"the front end in {self.state_dir} already runs on port {port}, not "
                           f"{self.requested_port}: stop it first or use port {port}")
        try:
            self._admin_get("/ready").raise_for_status()
        except httpx.HTTPError:
            raise FrontEndError(f"envoy (pid {pid}) runs for {self.state_dir} but does not answer: "
                                f"kill {pid} and start again") from None
        self.pid, self.port = pid, port
        return True

    def _wait_started(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise FrontEndError(f"envoy exited with code {self._process.returncode} at start: {self._log_tail()}")
            if self.admin_socket.exists() and self._listener_answers():
                return
            time.sleep(0.05)
        raise FrontEndError(f"envoy did not start listening on port {self.port} within {START_TIMEOUT_S:.0f} s: "
                            f"{self._log_tail()}")

    def _listener_answers(self) -> bool:
        try:
            readouts = self._readouts()
        except FrontEndError:
            return False
        if readouts.get("listener_manager.lds.update_rejected", 0):
            raise FrontEndError(f"envoy could not listen on port {self.port}: {self._log_tail()}")
        try:
            response = httpx.get(f"{self.url}/", timeout=1)
        except httpx.TransportError:
            return False
        return response.headers.get("server") == "envoy"

    # --- configuration -------------------------------------------------------------------------

    def apply(self, services: list[ServiceRoute]) -> None:
        """Route exactly ``services``; returns once Envoy serves them (at once if nothing changed).

        The change goes in three steps, each live before the next: new endpoints, clusters (old
        ones kept) and JWT providers; then the routes; then what no route uses any more is removed.
        So no request meets a route whose cluster or token check is not there yet or any more.
        """
        if not self.pid:
            raise FrontEndError("the front end is not running: call start() first")
        with self._lock:
            version = new_version()
            files = self._render(services, version)
            current = dict(self._read_files())
            if resources(files) == resources(current) and not self._not_live(current, self._readouts()):
                return
            if resources(without_endpoints(files)) != resources(without_endpoints(current)):
                self._validate(self._changed(services))  # endpoints alone (replicas coming, going) need none
            before = self._readouts()
            for step, step_files in enumerate(steps(current, files), start=1):
                changed = {name: {**content, "version_info": f"{version}.{step}"}
                           for name, content in step_files.items()
                           if resources({name: content}) != resources({name: current.get(name, {})})
                           or self._not_live({name: current[name]}, before)}
                self._write_files(changed)
                self._wait_live(changed, before)
                current.update(changed)
            for stale in set(current) - set(files):
                (self.xds_dir / stale).unlink()
                self._forget_file(stale)
            self._applied = {service.name: routing(service) for service in services}

    def _changed(self, services: list[ServiceRoute]) -> list[ServiceRoute]:
        """The services whose routing (anything but their replicas' addresses) differs from what Envoy took
        last: the ones a change has to be validated for (all of them after a start)."""
        if self._applied is None:
            return services
        return [s for s in services if self._applied.get(s.name) != routing(s)]

    def _validate(self, services: list[ServiceRoute]) -> None:
        """``envoy --mode validate`` on these routes (none: nothing to do); FrontEndError with Envoy's reason if
        it refuses them."""
        if not services:
            return
        jwks = self.signer.jwks() if any(s.auth == "token" for s in services) else None
        validate_config(validation_bootstrap(services, self.port, jwks, self.limits), self.state_dir / "validate.json")

    def _render(self, services: list[ServiceRoute], version: str) -> dict[str, dict[str, Any]]:
        jwks = self.signer.jwks() if any(s.auth == "token" for s in services) else None
        return xds_files(services, self.port, self.xds_dir, jwks, version, self.limits)

    def _read_files(self) -> dict[str, dict[str, Any]]:
        """The xds files' contents: kept in memory once read (this process is their only writer)."""
        if self._files is None:
            names = ["lds.json", "cds.json", "rds.json"] + [
                f"eds/{p.name}" for p in (self.xds_dir / "eds").glob("*.json")]
            self._files = {name: json.loads((self.xds_dir / name).read_bytes()) for name in names
                           if (self.xds_dir / name).exists()}
        return self._files

    def _forget_file(self, name: str) -> None:
        if self._files is not None:
            self._files.pop(name, None)

    def _write_files(self, files: dict[str, dict[str, Any]]) -> None:
        """Endpoints, clusters, the listener, then routes: nothing refers to what Envoy does not have yet."""
        order = sorted(files, key=lambda name: ["eds", "cds", "lds", "rds"].index(name[:3]))
        current = self._read_files()
        for name in order:
            write_atomic(self.xds_dir / name, to_json(files[name]))
            current[name] = files[name]

    def _wait_live(self, files: dict[str, dict[str, Any]], before: dict[str, Any]) -> None:
        deadline = time.monotonic() + APPLY_TIMEOUT_S
        while True:
            readouts = self._readouts()
            for name in files:
                rejected = f"{stat_prefix(name)}.update_rejected"
                if readouts.get(rejected, 0) > before.get(rejected, 0):
                    raise FrontEndError(f"envoy rejected {name}: {self._log_tail()}")
            pending = self._not_live(files, readouts)
            if not pending:
                return
            if time.monotonic() > deadline:
                raise FrontEndError(f"envoy did not load {', '.join(pending)} within {APPLY_TIMEOUT_S:.0f} s: "
                                    f"{self._log_tail()}")
            time.sleep(0.02)

    @staticmethod
    def _not_live(files: dict[str, dict[str, Any]], readouts: dict[str, Any]) -> list[str]:
        """The files whose version Envoy has not loaded, or ``warming`` while listeners or clusters warm."""
        pending = [name for name, content in files.items()
                   if readouts.get(f"{stat_prefix(name)}.version_text") != content["version_info"]]
        if readouts.get("listener_manager.total_listeners_warming") or readouts.get("cluster_manager.warming_clusters"):
            pending.append("warming")
        return pending

    # --- observing -----------------------------------------------------------------------------

    def load(self, service: str, version: str) -> tuple[int, int]:
        """Requests of one version now: sent to its replicas and not answered yet (running or queued in a
        replica), and waiting in Envoy for a connection. What the autoscaler decides on. Raises FrontEndError
        when Envoy does not answer."""
        cluster = cluster_name(service, version)
        try:
            response = self._admin_get("/stats", params={
                "format": "json", "filter": f"^cluster\\.{cluster}\\.upstream_rq_(pending_)?active$"})
            response.raise_for_status()
        except httpx.HTTPError as err:
            raise FrontEndError(f"envoy (pid {self.pid}) does not answer on {self.admin_socket} ({err})") from None
        readouts = {item["name"]: item["value"] for item in response.json()["stats"] if "value" in item}
        return (int(readouts.get(f"cluster.{cluster}.upstream_rq_active", 0)),
                int(readouts.get(f"cluster.{cluster}.upstream_rq_pending_active", 0)))

    def _readouts(self) -> dict[str, Any]:
        """The admin ``/stats`` readouts that say whether configuration is live: each subscription's
        ``version_text`` and ``update_rejected``, and the warming gauges (filtered in Envoy: the full stats
        grow with every cluster and were read many times per change)."""
        try:
            response = self._admin_get("/stats", params={"format": "json", "filter": CONFIG_STATS})
            response.raise_for_status()
        except httpx.HTTPError as err:
            raise FrontEndError(f"envoy (pid {self.pid}) does not answer on {self.admin_socket} ({err}): call "
                                f"start() again; its log is {self.log_path}") from None
        return {item["name"]: item["value"] for item in response.json()["stats"] if "value" in item}

    def prometheus_stats(self) -> str:
        """The per-cluster stats ``/metrics`` and Studio's plots read, in Prometheus text: requests by status class,
        latency histograms, requests in flight and waiting (filtered in Envoy: parsing every cluster stat tripled
        the cost of each scrape)."""
        try:
            response = self._admin_get("/stats/prometheus", params={"usedonly": "", "filter": CLUSTER_STATS})
            response.raise_for_status()
        except httpx.HTTPError as err:
            raise FrontEndError(f"envoy (pid {self.pid}) does not answer on {self.admin_socket} ({err})") from None
        return response.text

    def _admin_get(self, path: str, **kwargs: Any) -> httpx.Response:
        """A GET on Envoy's admin interface, over its unix socket (kept-alive connection)."""
        if self._admin is None:
            self._admin = httpx.Client(transport=httpx.HTTPTransport(uds=str(self.admin_socket)), timeout=5,
                                       base_url="http://envoy-admin")
        return self._admin.get(path, **kwargs)

    def _log_tail(self, lines: int = 5) -> str:
        try:
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return "(no envoy log)"
        return " | ".join(line.strip() for line in tail if line.strip())


def validate_config(config: dict[str, Any], path: Path) -> None:
    """Run ``envoy --mode validate`` on a bootstrap; raise with Envoy's reason if it refuses it."""
    write_atomic(path, to_json(config))
    result = subprocess.run(
        [str(envoy_path()), "--mode", "validate", "-c", str(path), "--disable-hot-restart", "--log-level", "error"],
        capture_output=True, text=True, timeout=60,
    )
    if result.returncode != 0:
        reason = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise FrontEndError(f"envoy refused the configuration: {reason[-1] if reason else 'no reason given'}")


