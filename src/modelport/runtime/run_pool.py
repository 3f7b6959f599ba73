"""Where ``run()`` executes: dedicated threads fed from one queue, watched from the event loop.

The event loop thread only does HTTP. Admitted requests go into a queue that
``MODELPORT_MAX_CONCURRENT_REQUESTS`` run threads drain back to back, so under load a run
thread goes from one request to the next without waiting for the loop (a hand-off per
request through an executor cost more CPU than the whole HTTP handling). The loop enforces
the two limits with timers:

- a request still queued after ``max_wait_ms`` is answered 503 (the replica is busy), naming both limits,
  with ``Retry-After``;
- a ``run()`` still running after ``timeout_s`` is answered 504, ``RunTimedOut`` is raised
  inside it (at its next Python instruction: pure-Python loops stop at once, a blocking
  call when it returns) and a fresh thread takes its place, so the worker keeps serving;
- with ``WORKER_TIMEOUT`` set, a ``run()`` still running that long (answered or not) makes
  the worker restart, the only way to reclaim a thread stuck in native code.
"""

from __future__ import annotations

import asyncio
import ctypes
import enum
import logging
import queue
import threading
import time
from collections.abc import Callable

from . import metrics
from .protocol import INTERNAL_ERROR_MESSAGE, HttpRequest, Reply, error_reply

logger = logging.getLogger("modelport.run_pool")
BUSY_RETRY_AFTER_S = 1  # Retry-After of the busy 503: a run() slot frees up as soon as one request ends


class RunTimedOut(BaseException):
    """Raised inside a run() that outlived SCORING_TIMEOUT_MS (BaseException: ``except Exception`` won't eat it)."""


class State(enum.Enum):
    QUEUED = 1
    RUNNING = 2
    DONE = 3
    EXPIRED = 4  # waited too long in the queue: answered 503
    TIMED_OUT = 5  # ran too long: answered 504 (or 500 past WORKER_TIMEOUT); its slot has a fresh thread


class Job:
    __slots__ = ("request", "future", "state", "enqueued", "started", "thread", "timer")

    def __init__(self, request: HttpRequest, future: asyncio.Future[Reply]):
        self.request = request
        self.future = future
        self.state = State.QUEUED
        self.enqueued = time.monotonic()
        self.started = 0.0
        self.thread: threading.Thread | None = None
        self.timer: asyncio.TimerHandle | None = None


class RunPool:
    """``slots`` threads calling ``score(request)``; ``submit`` returns the reply to send.

    A run thread survives anything ``score`` raises (it answers 500), except ``RunTimedOut``
    aimed at it after a timeout, when a fresh thread has already taken its place.

    ``worker_timeout_ms`` (``WORKER_TIMEOUT``, 0 = off): a run() still running that long after it
    started is past saving: its request is answered 500 (when not answered yet) and
    ``on_stuck(message)`` is called once, for the worker to restart as gunicorn restarts a worker.
    """

    def __init__(self, score: Callable[[HttpRequest], Reply], slots: int, max_wait_ms: int, timeout_ms: int,
                 loop: asyncio.AbstractEventLoop, worker_timeout_ms: int = 0,
                 on_stuck: Callable[[str], None] | None = None):
        self.score = score
        self.slots = slots
        self.max_wait_ms = max_wait_ms
        self.timeout_ms = timeout_ms
        self.worker_timeout_ms = worker_timeout_ms
        self.on_stuck = on_stuck
        self.loop = loop
        self.running = 0
        self.queued = 0
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        for _ in range(slots):
            self._start_thread()

    def submit(self, request: HttpRequest) -> asyncio.Future[Reply]:
        """Queue a request; the future resolves with run()'s reply, or a 503/504 from the limits."""
        future = self.loop.create_future()
        with self._lock:
            if self.max_wait_ms <= 0 and self.running + self.queued >= self.slots:
                future.set_result(self._busy_reply())
                return future
            self.queued += 1
        metrics.QUEUED.inc()
        job = Job(request, future)
        wait_ms = self.max_wait_ms if self.max_wait_ms > 0 else self.timeout_ms
        first_check_ms = min(wait_ms, self.timeout_ms, self.worker_timeout_ms or self.timeout_ms)
        job.timer = self.loop.call_later(first_check_ms / 1000.0, self._watch, job)
        self._jobs.put(job)
        return future

    def _start_thread(self) -> None:
        threading.Thread(target=self._serve, name="run", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                if not self._run_next():
                    return
            except RunTimedOut:  # delivered after the timed-out run() had already returned
                return  # a fresh thread has taken this one's place
            except BaseException:  # never let one request end a run thread
                logger.exception("The run thread failed between requests; it keeps serving")

    def _run_next(self) -> bool:
        """Run one queued job; False when this thread should end (it was replaced after a timeout)."""
        job = self._jobs.get()
        if job is None:
            return False
        with self._lock:
            if job.state is not State.QUEUED:
                return True
            job.state = State.RUNNING
            job.started = time.monotonic()
            job.thread = threading.current_thread()
            self.queued -= 1
            self.running += 1
        metrics.QUEUED.dec()
        metrics.IN_FLIGHT.inc()
        reply = None
        try:
            reply = self.score(job.request)
        except RunTimedOut:
            pass
        except BaseException:
            logger.exception("Handling a request raised outside run(); answered 500")
        with self._lock:
            finished_in_time = job.state is State.RUNNING
            if finished_in_time:
                job.state = State.DONE
                self.running -= 1
        if not finished_in_time:
            return False  # the loop answered it, took it off the counts and started a replacement thread
        metrics.IN_FLIGHT.dec()
        if reply is None:
            reply = error_reply(500, INTERNAL_ERROR_MESSAGE)
        self.loop.call_soon_threadsafe(self._resolve, job, reply)
        return True

    def _resolve(self, job: Job, reply: Reply) -> None:
        if job.timer is not None:
            job.timer.cancel()
        if not job.future.done():
            job.future.set_result(reply)

    def _watch(self, job: Job) -> None:
        """Loop-side check of one job: queued past the wait → 503; running past the timeout → 504;
        running past WORKER_TIMEOUT → 500 and the worker restarts."""
        now = time.monotonic()
        again = None
        outcome = None
        with self._lock:
            if job.state is State.QUEUED and self.max_wait_ms <= 0:
                again = self.timeout_ms / 1000.0  # admitted to a free slot: it waits only for its thread
            elif job.state is State.QUEUED:
                again = self.max_wait_ms / 1000.0 - (now - job.enqueued)
                if again <= 0:
                    job.state = State.EXPIRED
                    self.queued -= 1
                    outcome = "expired"
            elif job.state is State.RUNNING:
                elapsed_ms = (now - job.started) * 1000.0
                limit_ms, outcome = self.timeout_ms, "timed_out"
                if 0 < self.worker_timeout_ms <= self.timeout_ms:
                    limit_ms, outcome = self.worker_timeout_ms, "stuck"
                if elapsed_ms >= limit_ms:
                    job.state = State.TIMED_OUT
                    self.running -= 1
                else:
                    again, outcome = (limit_ms - elapsed_ms) / 1000.0, None
        if outcome == "expired":
            metrics.QUEUED.dec()
            job.future.set_result(self._busy_reply())
        elif outcome == "timed_out":
            self._time_out(job)
        elif outcome == "stuck":
            self._replace_thread(job, worker_timeout_reply(self.worker_timeout_ms))
            self._stuck(job)
        elif again is not None:
            job.timer = self.loop.call_later(again, self._watch, job)

    def _time_out(self, job: Job) -> None:
        logger.error(
            "run() did not finish within SCORING_TIMEOUT_MS=%d; answered 504, interrupting it and "
            "starting a fresh run thread", self.timeout_ms,
        )
        thread = job.thread
        if thread is not None and thread.ident is not None and thread.is_alive():
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(RunTimedOut))
        self._replace_thread(job, timeout_reply(self.timeout_ms))
        if self.worker_timeout_ms > self.timeout_ms:
            remaining = self.worker_timeout_ms / 1000.0 - (time.monotonic() - job.started)
            self.loop.call_later(max(0.0, remaining), self._check_stuck, job)

    def _replace_thread(self, job: Job, reply: Reply) -> None:
        metrics.IN_FLIGHT.dec()
        self._start_thread()
        if not job.future.done():
            job.future.set_result(reply)

    def _check_stuck(self, job: Job) -> None:
        """A timed-out run() that was interrupted should have ended by WORKER_TIMEOUT; if not, it is stuck."""
        if job.thread is not None and job.thread.is_alive():
            self._stuck(job)

    def _stuck(self, job: Job) -> None:
        message = (f"run() has not returned {self.worker_timeout_ms / 1000.0:g} s after it started "
                   f"(WORKER_TIMEOUT); restarting this worker")
        logger.error(message)
        if self.on_stuck is not None:
            self.on_stuck(message)

    def _busy_reply(self) -> Reply:
        return busy_reply(self.max_wait_ms, self.slots)

    def close(self) -> None:
        for _ in range(self.slots):
            self._jobs.put(None)


def busy_reply(max_wait_ms: int, slots: int) -> Reply:
    """The 503 for a request no run() slot took within ``max_wait_ms`` (``max_request_wait_time``,
    ``MODELPORT_MAX_QUEUE_WAIT_MS``) while ``slots`` (``replica_max_concurrent_requests``,
    ``MODELPORT_MAX_CONCURRENT_REQUESTS``, per worker) were running: both numbers and what to change, with
    ``Retry-After`` (issue 10, failure mode 7; the reference server has no such limit, so no reply to match)."""
    waited = (f"no run() slot freed up within max_request_wait_time={max_wait_ms} ms" if max_wait_ms > 0 else
              "no run() slot was free and max_request_wait_time is 0 ms (no waiting)")
    reply = error_reply(
        503,
        f"The replica is busy: {waited} (MODELPORT_MAX_QUEUE_WAIT_MS); each worker runs at most "
        f"replica_max_concurrent_requests={slots} request(s) at once (MODELPORT_MAX_CONCURRENT_REQUESTS). Retry "
        f"after {BUSY_RETRY_AFTER_S} s, or raise max_request_wait_time, replica_max_concurrent_requests or the "
        "number of replicas.",
    )
    reply.headers.append((b"retry-after", str(BUSY_RETRY_AFTER_S).encode()))
    return reply


def timeout_reply(timeout_ms: int) -> Reply:
    return error_reply(504, f"Scoring timeout after {timeout_ms} ms", run_failed=True)


def worker_timeout_reply(worker_timeout_ms: int) -> Reply:
    return error_reply(
        500, f"run() did not finish within WORKER_TIMEOUT={worker_timeout_ms / 1000.0:g} s; the worker restarts",
        run_failed=True,
    )
