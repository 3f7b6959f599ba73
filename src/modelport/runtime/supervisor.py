"""The replica's main process: lay out the app root, bind the port, keep N workers alive.

It binds the listening socket once and forks the workers, which share it. A worker that
dies after it was ready is replaced (with a growing delay if it keeps dying); a worker
whose ``init()`` fails stops the whole replica with that exit code, as azmlinfsrv does.
SIGTERM or SIGINT stops the workers gracefully: in-flight requests finish first.
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
from .settings import RuntimeSettings

logger = logging.getLogger("modelport.supervisor")

MAX_RESTART_DELAY_S = 10.0
STABLE_AFTER_S = 10.0


class PortInUseError(OSError):
    """The port is taken by another process."""


def serve(settings: RuntimeSettings) -> int:
    """Run the replica in the foreground until SIGTERM/SIGINT; return the process exit code."""
    logs.configure(settings.log_level)
    layout = prepare(settings)
    metrics_dir = tempfile.mkdtemp(prefix="modelport-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # before any metrics import (see metrics.py)
    os.environ.update(layout.environment())
    os.chdir(layout.app_root)
    try:
        sock = bind(settings.host, settings.port)
        return Supervisor(settings, layout, sock).run()
    finally:
        layout.cleanup()
        shutil.rmtree(metrics_dir, ignore_errors=True)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            message = f"port {port} on {host} is already in use; stop the other server or pass --port"
            raise PortInUseError(message) from None
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    """Starts, watches and stops the worker processes of one replica."""

    def __init__(self, settings: RuntimeSettings, layout: AppLayout, sock: socket.socket):
        self.settings = settings
        self.layout = layout
        self.sock = sock
        self.context = multiprocessing.get_context("fork")
        self.ready = self.context.RawArray("b", settings.workers)
        self.workers: dict[int, Any] = {}
        self.started_at: dict[int, float] = {}
        self.restart_delay = [0.0] * settings.workers
        self.stopping = False

    def run(self) -> int:
        from .worker import INIT_FAILED_EXIT_CODE  # imported after PROMETHEUS_MULTIPROC_DIR is set

        host, port = self.sock.getsockname()[:2]
        self._banner(host, port)
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
        self.sock.close()
        logger.info("Stopped.")
        return exit_code

    def _banner(self, host: str, port: int) -> None:
        s, layout = self.settings, self.layout
        logger.info(
            "modelport scoring runtime\n  entry script: %s\n  app root:     %s\n  model dir:    %s\n"
            "  workers:      %d (at most %d concurrent run() each, queue wait %d ms, timeout %d ms)\n"
            "  listening:    http://%s:%d  (POST /score, GET /swagger.json, GET /-/ready, GET /metrics)",
            layout.entry_script, layout.app_root, layout.model_dir or "(not set)", s.workers,
            s.max_concurrent_requests, s.max_queue_wait_ms, s.scoring_timeout_ms, host, port,
        )

    def _start(self, slot: int) -> None:
        from .worker import run_worker

        process = self.context.Process(
            target=run_worker, args=(self.settings, self.layout, self.sock, slot, self.ready),
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
