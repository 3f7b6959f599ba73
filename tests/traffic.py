"""Load for the tests that change something while requests flow: threads POSTing to a URL, every answer counted.

``Traffic`` is a context manager: its threads score from ``__enter__`` to ``__exit__``. Each answer is counted
under what ``outcome(response)`` names it ("ok", "200", a version's name, what went wrong); a request that
raises (connection refused, reset, timeout, an answer ``outcome`` cannot read) is counted as a failed
request under its exception's name, so a thread never ends silently. ``with traffic.change():`` around a
change puts the requests sent while it is made in a phase of their own, and those sent after it in the
next. Every wait here is bounded.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from modelport.frontend.config import REPLICA_SET_HEADER, VERSION_HEADER

OK = "ok"


def ok_if_200(response: httpx.Response) -> str:
    """``"ok"`` for a 200, else the status and the start of the body."""
    return OK if response.status_code == 200 else f"{response.status_code} {response.text[:100]}"


def status_code(response: httpx.Response) -> str:
    """The status code, as text: ``"200"``, ``"503"``, ..."""
    return str(response.status_code)


def bearer(key: str | None) -> dict[str, str]:
    """The ``Authorization`` header for ``key``; none without one."""
    return {"Authorization": f"Bearer {key}"} if key else {}


def wait_until(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05):
    """Call ``predicate`` every ``interval`` seconds until it returns something true, for ``timeout`` seconds at
    most: that value, or its last one (false) once the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


class Traffic:
    """``threads`` threads POSTing ``body`` (JSON) with ``headers`` to ``url`` until the block ends.

    ``outcome(response)`` names each answer; the name ``ok`` is a request gone right. ``phases`` holds the
    counts of each phase (a request counts in the phase current when it was sent), ``counts`` those of all
    phases together, ``failure_log`` each request whose outcome is not ``ok`` as ``(monotonic time, outcome,
    detail)``.
    """

    def __init__(self, url: str, outcome: Callable[[httpx.Response], str] = ok_if_200, *, threads: int = 4,
                 headers: dict[str, str] | None = None, body: object = None, ok: str = OK,
                 request_timeout: float = 30):
        self.url, self.outcome, self.ok = url, outcome, ok
        self.headers, self.body = headers or {}, {} if body is None else body
        self.request_timeout = request_timeout
        self.phase = 0
        self.phases: list[Counter[str]] = [Counter()]
        self.failure_log: list[tuple[float, str, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in self._threads), "a load thread did not stop"

    def _run(self) -> None:
        with httpx.Client(timeout=self.request_timeout) as client:
            while not self._stop.is_set():
                phase = self.phase
                try:
                    response = client.post(self.url, json=self.body, headers=self.headers)
                    result, detail = self.outcome(response), response.text[:200]
                except Exception as err:  # noqa: BLE001 - every failure is a counted outcome
                    result, detail = type(err).__name__, str(err)[:200]
                with self._lock:
                    self.phases[phase][result] += 1
                    if result != self.ok:
                        self.failure_log.append((time.monotonic(), result, detail))

    @contextmanager
    def change(self) -> Iterator[None]:
        """Requests sent inside the block make a phase; those sent after it, the next one."""
        self._next_phase()
        yield
        self._next_phase()

    def _next_phase(self) -> None:
        with self._lock:
            self.phases.append(Counter())
            self.phase += 1

    @property
    def counts(self) -> Counter[str]:
        """Outcomes of all phases together."""
        with self._lock:
            return sum(self.phases, Counter())

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> int:
        return sum(n for outcome, n in self.counts.items() if outcome != self.ok)

    def failures(self) -> dict[str, int]:
        """The outcomes other than ``ok``, with their counts."""
        return {outcome: n for outcome, n in self.counts.items() if outcome != self.ok}

    def wait_for_ok(self, count: int, timeout: float = 30.0) -> bool:
        """Wait (bounded) until ``count`` more requests went right than now."""
        target = self.counts[self.ok] + count
        return bool(wait_until(lambda: self.counts[self.ok] >= target, timeout))

    def wait_for_phase(self, count: int, timeout: float = 120.0) -> bool:
        """Wait (bounded) until the current phase holds ``count`` answers, whatever their outcome."""
        phase = self.phase
        return bool(wait_until(lambda: sum(self.phases[phase].values()) >= count, timeout))

    def summary(self) -> str:
        """``"N requests (200: n, ConnectError: m)"``."""
        counts = self.counts
        by_outcome = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
        return f"{sum(counts.values())} requests ({by_outcome})"


def answered_by(response: httpx.Response) -> str:
    """The version that answered a scoring request, when its header and its body agree; else what went wrong."""
    if response.status_code != 200:
        return f"{response.status_code} {response.text[:100]}"
    named, ran = response.headers.get(VERSION_HEADER), response.json().get("version")
    if named != ran or not response.headers.get(REPLICA_SET_HEADER, "").startswith(f"{named}-"):
        return f"{VERSION_HEADER} {named!r}, {REPLICA_SET_HEADER} {response.headers.get(REPLICA_SET_HEADER)!r} " \
               f"from version {ran!r}"
    return named
