"""The replica's main process: lay out the app root, bind the port, keep N workers alive.

It binds the listening socket once (and the health socket with ``SEPERATE_HEALTH_ENDPOINT``;
a port still held by a server that is stopping is retried for a few seconds, as gunicorn
does) and forks the workers, which share them. A worker that dies after it was ready is
replaced (with a growing delay if it keeps dying); a worker whose ``init()`` fails stops the
whole replica with that exit code, as azmlinfsrv does. SIGTERM or SIGINT stops the workers
gracefully: in-flight requests finish first.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import tempfile
import time
from typing import Any

from . import logs
from .layout import AppLayout, prepare
from .settings import RuntimeSettings, SettingsError

logger = logging.getLogger("modelport.supervisor")

MAX_RESTART_DELAY_S = 10.0
STABLE_AFTER_S = 10.0
BIND_ATTEMPTS = 5  # gunicorn's: five tries, a second apart
BIND_RETRY_S = 1.0


class PortInUseError(OSError):
    """The port is taken by another process."""


def serve(settings: RuntimeSettings) -> int:
    """Run the replica in the foreground until SIGTERM/SIGINT; return the process exit code."""
    logs.configure(settings.log_level)
    try:
        logs.apply_logging_json(settings.app_root, settings.entry_script.parent)
    except ValueError as err:
        raise SettingsError(str(err)) from None
    for note in settings.notes:
        logger.warning("%s", note)
    layout = prepare(settings)
    metrics_dir = tempfile.mkdtemp(prefix="modelport-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # before any metrics import (see metrics.py)
    os.environ.update(settings.environment())
    os.environ.update(layout.environment())
    os.chdir(layout.app_root)
    sockets: list[socket.socket] = []
    try:
        sockets.append(bind(settings.host, settings.port))
        if settings.health_port is not None:
            sockets.append(bind(settings.host, settings.health_port, "--health_port"))
        # as azmlinfsrv sets them for the entry script: the ports actually bound
        os.environ["SERVER_PORT"] = str(sockets[0].getsockname()[1])
        os.environ["HEALTH_PORT"] = str(sockets[-1].getsockname()[1])
        return Supervisor(settings, layout, sockets).run()
    finally:
        for sock in sockets:
            sock.close()
        layout.cleanup()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def bind(host: str, port: int, flag: str = "--port", attempts: int = BIND_ATTEMPTS) -> socket.socket:
    """A listening socket the workers inherit. A port in use is tried ``attempts`` times, ``BIND_RETRY_S``
    apart (a server that was just stopped may still hold it), then refused (PortInUseError)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for attempt in range(1, attempts + 1):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            break
        except OSError as err:
            sock.close()
            if err.errno != errno.EADDRINUSE:
                raise
            if attempt == attempts:
                message = (f"port {port} on {host} is already in use (tried {attempts} times, "
                           f"{BIND_RETRY_S:g} s apart); stop the other server or pass {flag}")
                raise PortInUseError(message) from None
            logger.warning("Port %d on %s is in use; retrying in %g s (attempt %d of %d)",
                           port, host, BIND_RETRY_S, attempt, attempts)
            time.sleep(BIND_RETRY_S)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    """Starts, watches and stops the worker processes of one replica."""

    def __init__(self, settings: RuntimeSettings, layout: AppLayout, sockets: list[socket.socket]):
        self.settings = settings
        self.layout = layout
        self.sockets = sockets
        self.context = multiprocessing.get_context("fork")
        self.ready = self.context.RawArray("b", settings.workers)
        self.workers: dict[int, Any] = {}
        self.started_at: dict[int, float] = {}
        self.restart_delay = [0.0] * settings.workers
        self.stopping = False

    def run(self) -> int:
        from .worker import INIT_FAILED_EXIT_CODE  # imported after PROMETHEUS_MULTIPROC_DIR is set

        self._banner()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop_signal)
        for slot in range(self.settings.workers):
            self._start(slot)
        exit_code = 0
        while self.workers and not self.stopping:
            sentinels = {p.sentinel: slot for slot, p in self.workers.items()}
            for sentinel in multiprocessing.connection.wait(list(sentinels), timeout=0.5):
                slot = sentinels[sentinel]
                process = self.workers.pop(slot)
                process.join()
                self.ready[slot] = 0
                _forget_metrics(process.pid)
                if self.stopping:
                    continue
                if process.exitcode == INIT_FAILED_EXIT_CODE:
                    logger.error("Worker %d failed to start (see the traceback above); stopping.", process.pid)
                    exit_code = INIT_FAILED_EXIT_CODE
                    self.stopping = True
                    continue
                self._replace(slot, process)
        self._stop_all()
        for sock in self.sockets:
            sock.close()
        logger.info("Stopped.")
        return exit_code

    def _banner(self) -> None:
        s, layout = self.settings, self.layout
        host, port = self.sockets[0].getsockname()[:2]
        lines = [
            "modelport scoring runtime",
            f"  entry script: {layout.entry_script}",
            f"  app root:     {layout.app_root}" + (f" (source folder {layout.source_directory} on sys.path)"
                                                    if layout.source_directory else ""),
            f"  model dir:    {layout.model_dir_text or layout.model_dir or '(not set)'}",
            f"  workers:      {s.workers} (at most {s.max_concurrent_requests} concurrent run() each, "
            f"queue wait {s.max_queue_wait_ms} ms, timeout {s.scoring_timeout_ms} ms"
            + (f", worker timeout {s.worker_timeout_s} s)" if s.worker_timeout_s else ")"),
            f"  listening:    http://{host}:{port}  (POST /score, GET / and GET /-/ready when ready, "
            "GET /swagger.json, GET /metrics)",
        ]
        if len(self.sockets) > 1:
            health_host, health_port = self.sockets[1].getsockname()[:2]
            lines.append(f"  health:       http://{health_host}:{health_port}  (GET /; the same routes as the "
                         "scoring port)")
        if s.cors_origins:
            lines.append(f"  CORS:         {s.cors_origins}")
        if s.config_file:
            lines.append(f"  config file:  {s.config_file}")
        lines.append(f"  app insights: {'true' if s.app_insights_enabled else 'false'}")
        logger.info("%s", "\n".join(lines))

    def _start(self, slot: int) -> None:
        from .worker import run_worker

        process = self.context.Process(
            target=run_worker, args=(self.settings, self.layout, self.sockets, slot, self.ready),
            name=f"modelport-worker-{slot}", daemon=False,
        )
        process.start()
        self.workers[slot] = process
        self.started_at[slot] = time.monotonic()

    def _replace(self, slot: int, process: Any) -> None:
        lived = time.monotonic() - self.started_at[slot]
        delay = 0.0 if lived > STABLE_AFTER_S else min(MAX_RESTART_DELAY_S, max(0.5, self.restart_delay[slot] * 2))
        self.restart_delay[slot] = delay
        logger.warning(
            "Worker %d exited with code %s after %.1f s; starting a replacement%s.",
            process.pid, process.exitcode, lived, f" in {delay:.1f} s" if delay else "",
        )
        deadline = time.monotonic() + delay
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.05)
        if not self.stopping:
            self._start(slot)

    def _on_stop_signal(self, signum: int, _frame: Any) -> None:
        if not self.stopping:
            logger.info("Received %s: finishing in-flight requests, then stopping.", signal.Signals(signum).name)
        self.stopping = True

    def _stop_all(self) -> None:
        for process in self.workers.values():
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.graceful_timeout_s + 5
        for process in self.workers.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                logger.warning("Worker %d did not stop in time; killing it.", process.pid)
                process.kill()
                process.join()
            _forget_metrics(process.pid)
        self.workers.clear()


def _forget_metrics(pid: int) -> None:
    from .metrics import worker_exited

    worker_exited(pid)
