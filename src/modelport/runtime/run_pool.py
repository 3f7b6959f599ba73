"""Where ``run()`` executes: dedicated threads fed from one queue, watched from the event loop.

The event loop thread only does HTTP. Admitted requests go into a queue that
``MODELPORT_MAX_CONCURRENT_REQUESTS`` run threads drain back to back, so under load a run
thread goes from one request to the next without waiting for the loop (a hand-off per
request through an executor cost more CPU than the whole HTTP handling). The loop enforces
the two limits with timers:

- a request still queued after ``max_wait_s`` is answered 503 (the replica is busy);
- a ``run()`` still running after ``timeout_s`` is answered 504, ``RunTimedOut`` is raised
  inside it (at its next Python instruction: pure-Python loops stop at once, a blocking
  call when it returns) and a fresh thread takes its place, so the worker keeps serving.
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
from .protocol import HttpRequest, Reply, error_reply

logger = logging.getLogger("modelport.run_pool")


class RunTimedOut(BaseException):
    """Raised inside a run() that outlived SCORING_TIMEOUT_MS (BaseException: ``except Exception`` won't eat it)."""


class State(enum.Enum):
    QUEUED = 1
    RUNNING = 2
    DONE = 3
    EXPIRED = 4  # waited too long in the queue: answered 503
    TIMED_OUT = 5  # ran too long: answered 504


class Job:
    __slots__ = ("request", "future", "state", "enqueued", "started", "thread_id", "timer")

    def __init__(self, request: HttpRequest, future: asyncio.Future[Reply]):
        self.request = request
        self.future = future
        self.state = State.QUEUED
        self.enqueued = time.monotonic()
        self.started = 0.0
        self.thread_id = 0
        self.timer: asyncio.TimerHandle | None = None


class RunPool:
    """``slots`` threads calling ``score(request)``; ``submit`` returns the reply to send."""

    def __init__(self, score: Callable[[HttpRequest], Reply], slots: int, max_wait_ms: int, timeout_ms: int,
                 loop: asyncio.AbstractEventLoop):
        self.score = score
        self.slots = slots
        self.max_wait_ms = max_wait_ms
        self.timeout_ms = timeout_ms
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
        job.timer = self.loop.call_later(min(self.max_wait_ms, self.timeout_ms) / 1000.0, self._watch, job)
        self._jobs.put(job)
        return future

    def _start_thread(self) -> None:
        threading.Thread(target=self._serve, name="run", daemon=True).start()

    def _serve(self) -> None:
        try:
            while self._run_next():
                pass
        except RunTimedOut:  # delivered after the timed-out run() had already returned
            pass

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
            job.thread_id = threading.get_ident()
            self.queued -= 1
            self.running += 1
        metrics.QUEUED.dec()
        metrics.IN_FLIGHT.inc()
        try:
            reply = self.score(job.request)
        except RunTimedOut:
            reply = None
        with self._lock:
            self.running -= 1
            finished_in_time = job.state is State.RUNNING
            if finished_in_time:
                job.state = State.DONE
        metrics.IN_FLIGHT.dec()
        if not finished_in_time:
            return False  # the loop answered 504 and started a replacement thread
        self.loop.call_soon_threadsafe(self._resolve, job, reply)
        return True

    def _resolve(self, job: Job, reply: Reply) -> None:
        if job.timer is not None:
            job.timer.cancel()
        if not job.future.done():
            job.future.set_result(reply)

    def _watch(self, job: Job) -> None:
        """Loop-side check of one job: queued past the wait → 503; running past the timeout → 504."""
        now = time.monotonic()
        again = None
        with self._lock:
            state = job.state
            if state is State.QUEUED:
                again = self.max_wait_ms / 1000.0 - (now - job.enqueued)
                if again <= 0:
                    job.state = State.EXPIRED
                    self.queued -= 1
            elif state is State.RUNNING:
                again = self.timeout_ms / 1000.0 - (now - job.started)
                if again <= 0:
                    job.state = State.TIMED_OUT
        if job.state is State.EXPIRED and state is State.QUEUED:
            metrics.QUEUED.dec()
            job.future.set_result(self._busy_reply())
        elif job.state is State.TIMED_OUT and state is State.RUNNING:
            self._time_out(job)
        elif again is not None:
            job.timer = self.loop.call_later(again, self._watch, job)

    def _time_out(self, job: Job) -> None:
        logger.error(
            "run() did not finish within SCORING_TIMEOUT_MS=%d; answered 504, interrupting it and "
            "starting a fresh run thread", self.timeout_ms,
        )
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(job.thread_id), ctypes.py_object(RunTimedOut))
        self._start_thread()
        job.future.set_result(timeout_reply(self.timeout_ms))

    def _busy_reply(self) -> Reply:
        return error_reply(
            503,
            f"The replica is busy: no run() slot freed up within {self.max_wait_ms} ms "
            f"({self.slots} concurrent per worker). Retry, or add replicas or workers.",
        )

    def close(self) -> None:
        for _ in range(self.slots):
            self._jobs.put(None)


def timeout_reply(timeout_ms: int) -> Reply:
    return error_reply(504, f"Scoring timeout after {timeout_ms} ms", run_failed=True)
