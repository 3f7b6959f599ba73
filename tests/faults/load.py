"""Load for the fault tests: threads scoring through the real front end, every outcome counted.

A request that fails at the transport (connection refused, reset, timeout) counts as a failed
request under its exception's name, never silently ends a thread.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx


class Load:
    """``concurrency`` threads POSTing ``body`` to ``url`` until ``stop()``; outcomes in ``counts``."""

    def __init__(self, url: str, key: str | None, concurrency: int = 4, body: dict | None = None):
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.body = body or {}
        self.counts: Counter[str] = Counter()  # "200", "503", "ConnectError", ...
        self.failures: list[tuple[float, str, str]] = []  # (monotonic time, outcome, body excerpt)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(concurrency)]
        self.started = 0.0

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(self.url, json=self.body, headers=self.headers)
                    outcome, detail = str(response.status_code), response.text[:200]
                except httpx.HTTPError as err:
                    outcome, detail = type(err).__name__, str(err)[:200]
                with self._lock:
                    self.counts[outcome] += 1
                    if outcome != "200":
                        self.failures.append((time.monotonic(), outcome, detail))

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    @property
    def failed(self) -> int:
        with self._lock:
            return sum(n for outcome, n in self.counts.items() if outcome != "200")

    def wait_for_successes(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until ``count`` more requests have succeeded than now (bounded)."""
        target = self.counts["200"] + count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.counts["200"] >= target:
                return True
            time.sleep(0.05)
        return False

    def summary(self) -> str:
        with self._lock:
            by_outcome = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()))
        return f"{self.total} requests ({by_outcome})"


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; its last truth value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def process_group(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid`` (zombies excluded)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members
