"""The front end process: one Envoy per workspace, configured by watched files in ``state_dir/xds``.

``apply()`` validates the new configuration with ``envoy --mode validate`` before it writes
anything, writes each file atomically (temp file + rename in the watched folder), and returns
once Envoy reports the new version for every file, so the change is live when it returns.
The Envoy process outlives the Python process that started it: ``start()`` re-adopts it from
``state_dir/frontend.json`` when it is still running.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from ..errors import Conflict, ModelportError
from .config import ServiceRoute, bootstrap, cluster_name, validation_bootstrap, xds_files
from .envoy_binary import envoy_path
from .tokens import TokenSigner

STATE_FILE = "frontend.json"
START_TIMEOUT_S = 20.0
APPLY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
QUIET_LOGS = "misc:error"  # api_key_auth's "work-in-progress" warnings, once per message


class FrontEndError(ModelportError):
    """Envoy refused a configuration, did not start, or did not take a change in time."""

    status = 500
    code = "FrontEndError"


class FrontEnd:
    """The workspace's Envoy: ``start()``, ``apply(services)``, ``stats(service)``, ``stop()``."""

    def __init__(self, state_dir: Path, port: int | None = None, signer: TokenSigner | None = None):
        self.state_dir = Path(state_dir)
        self.xds_dir = self.state_dir / "xds"
        self.requested_port = port
        self.signer = signer or TokenSigner(self.state_dir / "keys")
        self.port = 0
        self.admin_url = ""
        self.pid = 0
        self._services: list[ServiceRoute] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "envoy.log"

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start Envoy with no services (or re-adopt the one still running); return once it answers."""
        if self._adopt():
            return
        self.port = self.requested_port or _free_port()
        _check_port_free(self.port)
        for stale in (self.state_dir / "admin-address", self.state_dir / STATE_FILE):
            stale.unlink(missing_ok=True)
        (self.xds_dir / "eds").mkdir(parents=True, exist_ok=True)
        self._write_files(self._render([], _new_version()))
        bootstrap_path = self.state_dir / "bootstrap.yaml"
        _write_atomic(bootstrap_path, bootstrap(self.xds_dir))
        with open(self.log_path, "ab") as log:
            process = subprocess.Popen(
                [str(envoy_path()), "-c", str(bootstrap_path), "--disable-hot-restart",
                 "--admin-address-path", str(self.state_dir / "admin-address"),
                 "--log-level", "info", "--component-log-level", QUIET_LOGS],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.pid = process.pid
        try:
            self._wait_started(process)
        except BaseException:
            self._kill()
            raise
        _write_atomic(self.state_dir / STATE_FILE, {"pid": self.pid, "port": self.port, "admin_url": self.admin_url})

    def stop(self) -> None:
        """Stop Envoy (SIGTERM, then SIGKILL) and forget it."""
        if self.pid:
            self._kill()
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)
        self.pid = 0

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while _alive(self.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _alive(self.pid):
                os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)

    def _adopt(self) -> bool:
        """Take over the Envoy a previous process started, if it still runs with this state folder."""
        try:
            state = json.loads((self.state_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return False
        pid, port = int(state["pid"]), int(state["port"])
        if not (_alive(pid) and str(self.state_dir / "bootstrap.yaml") in _cmdline(pid)):
            return False
        if self.requested_port and port != self.requested_port:
            raise Conflict(f"the front end in {self.state_dir} already runs on port {port}, not "
                           f"{self.requested_port}: stop it first or use port {port}")
        self.pid, self.port, self.admin_url = pid, port, state["admin_url"]
        try:
            httpx.get(f"{self.admin_url}/ready", timeout=2).raise_for_status()
        except httpx.HTTPError:
            return False
        return True

    def _wait_started(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        address_file = self.state_dir / "admin-address"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise FrontEndError(f"envoy exited with code {process.returncode} at start: {self._log_tail()}")
            if not self.admin_url and address_file.exists() and address_file.read_text().strip():
                self.admin_url = f"http://{address_file.read_text().strip()}"
            if self.admin_url and self._listener_answers():
                return
            time.sleep(0.05)
        raise FrontEndError(f"envoy did not start listening on port {self.port} within {START_TIMEOUT_S:.0f} s: "
                            f"{self._log_tail()}")

    def _listener_answers(self) -> bool:
        rejected = self._readouts().get("listener_manager.lds.update_rejected", 0)
        if rejected:
            raise FrontEndError(f"envoy could not open port {self.port}: {self._log_tail()}")
        try:
            response = httpx.get(f"{self.url}/", timeout=1)
        except httpx.TransportError:
            return False
        return response.headers.get("server") == "envoy"

    # --- configuration -------------------------------------------------------------------------

    def apply(self, services: list[ServiceRoute]) -> None:
        """Route exactly ``services``; returns once Envoy serves the new configuration."""
        if not self.pid:
            raise FrontEndError("the front end is not running: call start() first")
        version = _new_version()
        files = self._render(services, version)
        self._validate(services)
        before = self._readouts()
        self._write_files(files)
        self._wait_for_version(files, version, before)
        keep = {self.xds_dir / name for name in files}
        for stale in (self.xds_dir / "eds").glob("*.yaml"):
            if stale not in keep:
                stale.unlink()
        self._services = list(services)

    def _render(self, services: list[ServiceRoute], version: str) -> dict[str, dict[str, Any]]:
        jwks = self.signer.jwks() if any(s.auth == "token" for s in services) else None
        return xds_files(services, self.port, self.xds_dir, jwks, version)

    def _validate(self, services: list[ServiceRoute]) -> None:
        jwks = self.signer.jwks() if any(s.auth == "token" for s in services) else None
        config = validation_bootstrap(services, self.port, jwks)
        validate_config(config, self.state_dir / "validate.yaml")

    def _write_files(self, files: dict[str, dict[str, Any]]) -> None:
        """Endpoints first, then clusters, routes and the listener: nothing refers to what is not there yet."""
        order = sorted(files, key=lambda name: (not name.startswith("eds/"), name != "cds.yaml", name))
        for name in order:
            _write_atomic(self.xds_dir / name, files[name])

    def _wait_for_version(self, files: dict[str, dict[str, Any]], version: str, before: dict[str, Any]) -> None:
        expected = {"listener_manager.lds": "lds.yaml", "cluster_manager.cds": "cds.yaml",
                    f"http.{_rds_stat_prefix()}": "rds.yaml"}
        for name in files:
            if name.startswith("eds/"):
                expected[f"cluster.{name[4:-5]}"] = name
        deadline = time.monotonic() + APPLY_TIMEOUT_S
        while True:
            readouts = self._readouts()
            pending = [prefix for prefix in expected if readouts.get(f"{prefix}.version_text") != version]
            for prefix in expected:
                key = f"{prefix}.update_rejected"
                if readouts.get(key, 0) > before.get(key, 0):
                    raise FrontEndError(f"envoy rejected {expected[prefix]}: {self._log_tail()}")
            if not pending:
                return
            if time.monotonic() > deadline:
                raise FrontEndError(f"envoy did not load configuration {version} within {APPLY_TIMEOUT_S:.0f} s "
                                    f"(still waiting for {', '.join(expected[p] for p in pending)}): "
                                    f"{self._log_tail()}")
            time.sleep(0.02)

    # --- observing -----------------------------------------------------------------------------

    def stats(self, service: str) -> dict[str, dict[str, int]]:
        """Per version of ``service``: requests in flight upstream and requests waiting for a connection."""
        known = {v.name for s in self._services if s.name == service for v in s.versions}
        readouts = self._readouts()
        result = {}
        for version in sorted(known):
            prefix = f"cluster.{cluster_name(service, version)}"
            result[version] = {"upstream_rq_active": int(readouts.get(f"{prefix}.upstream_rq_active", 0)),
                               "upstream_rq_pending_active": int(readouts.get(f"{prefix}.upstream_rq_pending_active",
                                                                             0))}
        return result

    def _readouts(self) -> dict[str, Any]:
        """Counters, gauges and text readouts from the admin ``/stats``."""
        response = httpx.get(f"{self.admin_url}/stats", params={"format": "json"}, timeout=5)
        response.raise_for_status()
        return {item["name"]: item["value"] for item in response.json()["stats"] if "value" in item}

    def _log_tail(self, lines: int = 5) -> str:
        try:
            tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return "(no envoy log)"
        return " | ".join(line.strip() for line in tail)


def validate_config(config: dict[str, Any], path: Path) -> None:
    """Run ``envoy --mode validate`` on a bootstrap; raise with Envoy's reason if it refuses it."""
    _write_atomic(path, config)
    result = subprocess.run(
        [str(envoy_path()), "--mode", "validate", "-c", str(path), "--disable-hot-restart",
         "--log-level", "error"],
        capture_output=True, text=True, timeout=60,
    )
    if result.returncode != 0:
        reason = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise FrontEndError(f"envoy refused the configuration: {reason[-1] if reason else 'no reason given'}")


def _write_atomic(path: Path, content: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(content, sort_keys=False))
    os.replace(tmp, path)


def _rds_stat_prefix() -> str:
    from .config import ROUTE_CONFIG_NAME, STAT_PREFIX

    return f"{STAT_PREFIX}.rds.{ROUTE_CONFIG_NAME}"


def _new_version() -> str:
    return str(time.time_ns())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _check_port_free(port: int) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise Conflict(f"port {port} on 127.0.0.1 is already in use: stop what uses it or pick another port") \
                from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child that exited: reap it
            return False
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
