"""One worker process: load the entry script, run ``init()``, serve HTTP on the shared socket."""

from __future__ import annotations

import ctypes
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import traceback
from typing import Any

import uvicorn

from . import logs
from .app import ScoringApp
from .layout import AppLayout, describe_tree
from .scoring import Scorer
from .settings import RuntimeSettings
from .swagger import SwaggerDocuments
from .user_script import UserScript

logger = logging.getLogger("modelport.worker")

INIT_FAILED_EXIT_CODE = 3
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STUCK_EXIT_CODE = 4  # a run() outlived WORKER_TIMEOUT; the supervisor replaces the worker


def run_worker(settings: RuntimeSettings, layout: AppLayout, sockets: list[socket.socket], slot: int,
               ready: Any) -> None:
    """Serve until told to stop. Exits with ``INIT_FAILED_EXIT_CODE`` when loading or ``init()`` fails.

    The first workers of a replica listen at once and run ``init()`` in a thread, so probes
    answer (``/-/ready`` 503) while it runs; a replacement worker runs ``init()`` before it
    accepts connections, so it never takes a request from the workers already serving.
    """
    _die_with_supervisor()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    logs.capture_prints()
    stuck = threading.Event()

    def restart_when_stuck(message: str) -> None:
        """A run() outlived WORKER_TIMEOUT: stop taking requests, let the others finish, exit; the
        supervisor starts a replacement (gunicorn kills such a worker outright)."""
        if not stuck.is_set():
            stuck.set()
            server.should_exit = True

    app = ScoringApp(settings, lambda: all(ready), restart_when_stuck)
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", lifespan="off", access_log=False, log_config=None,
        server_header=False, proxy_headers=False, timeout_graceful_shutdown=settings.graceful_timeout_s,
    )
    server = uvicorn.Server(config)
    failed = threading.Event()

    def initialize() -> None:
        try:
            script = UserScript.load(layout.entry_script, layout.app_root, layout.source_dir)
            logger.info("Calling init() of %s", layout.entry_script)
            script.init()
            app.attach(Scorer(script), SwaggerDocuments(
                script.run, layout.app_root, settings.service_name, settings.service_version,
                settings.service_path_prefix,
            ))
        except BaseException:
            logger.error(
                "The entry script failed to start (import or init() raised):\n%s\nModel directory:\n%s",
                traceback.format_exc().rstrip(), describe_tree(layout.model_dir),
            )
            failed.set()
            server.should_exit = True
            return
        # Objects made by imports and init() live as long as the worker: keep them out of every
        # garbage collection, so collections only scan what requests allocate.
        gc.collect()
        gc.freeze()
        ready[slot] = 1
        logger.info("Worker %d is ready to serve (init() finished)", os.getpid())

    if any(ready):
        initialize()
    else:
        threading.Thread(target=initialize, name="init", daemon=True).start()
    if not failed.is_set():
        server.run(sockets=sockets)
    ready[slot] = 0
    logs.flush()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    # Threads of run() calls that timed out may still be running; do not wait for them.
    os._exit(INIT_FAILED_EXIT_CODE if failed.is_set() else STUCK_EXIT_CODE if stuck.is_set() else 0)


def _die_with_supervisor() -> None:
    """Have the kernel SIGKILL this worker when the supervisor that forked it dies, however it dies
    (``kill -9`` included), so no worker keeps serving on a replica's port without its supervisor.
    Linux only (``PR_SET_PDEATHSIG``); elsewhere the local backend kills the replica's process group."""
    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the line above took effect
        os._exit(1)
