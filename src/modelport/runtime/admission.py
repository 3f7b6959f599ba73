"""A per-worker concurrency limit with a bounded, first-come-first-served wait."""

from __future__ import annotations

import asyncio
from collections import deque


class AdmissionGate:
    """Admit at most ``limit`` requests at once; others wait up to ``max_wait_s`` in arrival order."""

    def __init__(self, limit: int, max_wait_s: float):
        self.limit = limit
        self.max_wait_s = max_wait_s
        self.active = 0
        self.waiting = 0
        self._waiters: deque[asyncio.Future[bool]] = deque()

    async def enter(self) -> bool:
        """Take a slot; False when none freed up within ``max_wait_s`` (the caller answers 503)."""
        if self.active < self.limit and not self.waiting:
            self.active += 1
            return True
        if self.max_wait_s <= 0:
            return False
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        self.waiting += 1
        timer = loop.call_later(self.max_wait_s, _expire, waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.leave()  # the slot was handed to us just as we were cancelled
            raise
        finally:
            timer.cancel()
            if not waiter.done() or waiter.cancelled() or not waiter.result():
                self._discard(waiter)

    def leave(self) -> None:
        """Free a slot, handing it straight to the longest waiter if there is one."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.waiting -= 1
                waiter.set_result(True)
                return
        self.active -= 1

    def _discard(self, waiter: asyncio.Future[bool]) -> None:
        try:
            self._waiters.remove(waiter)
        except ValueError:
            return
        self.waiting -= 1


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)
