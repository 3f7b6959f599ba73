"""RunPool: queueing, the busy wait, the scoring timeout, and recovery after it (no processes)."""

import asyncio
import threading
import time

from modelport.runtime.protocol import HttpRequest, Reply
from modelport.runtime.run_pool import RunPool


def request(value) -> HttpRequest:
    return HttpRequest({"value": value}, b"")


def scorer(log: list, release: threading.Event | None = None):
    def score(req: HttpRequest) -> Reply:
        value = req.scope["value"]
        if value == "block":
            release.wait(5)
        if value == "spin":  # a pure-Python loop: interrupted by the timeout
            log.append(threading.current_thread())
            while True:
                pass
        log.append(value)
        return Reply(200, body=str(value).encode())

    return score


def run_pool(scenario, score, slots=1, max_wait_ms=500, timeout_ms=5000):
    async def main():
        pool = RunPool(score, slots, max_wait_ms, timeout_ms, asyncio.get_running_loop())
        try:
            return await scenario(pool)
        finally:
            pool.close()

    return asyncio.run(main())


def test_requests_run_in_arrival_order_on_one_slot():
    log = []

    async def scenario(pool):
        replies = await asyncio.gather(*(pool.submit(request(i)) for i in range(20)))
        return [r.body for r in replies]

    assert run_pool(scenario, scorer(log)) == [str(i).encode() for i in range(20)]
    assert log == list(range(20))


def test_a_request_waiting_longer_than_the_queue_wait_gets_503():
    release = threading.Event()

    async def scenario(pool):
        blocked = pool.submit(request("block"))
        await asyncio.sleep(0.05)
        waiting = await pool.submit(request("late"))
        release.set()
        return (await blocked).status, waiting

    first, waiting = run_pool(scenario, scorer([], release), max_wait_ms=100)
    assert first == 200
    assert waiting.status == 503
    assert b"busy" in waiting.body


def test_zero_wait_refuses_at_once_when_all_slots_are_taken():
    release = threading.Event()

    async def scenario(pool):
        blocked = pool.submit(request("block"))
        started = time.monotonic()
        refused = await pool.submit(request("x"))
        waited = time.monotonic() - started
        release.set()
        await blocked
        return refused.status, waited

    status, waited = run_pool(scenario, scorer([], release), max_wait_ms=0)
    assert status == 503 and waited < 0.05


def test_timeout_answers_504_interrupts_run_and_keeps_serving():
    log = []

    async def scenario(pool):
        started = time.monotonic()
        timed_out = await pool.submit(request("spin"))
        elapsed = time.monotonic() - started
        after = await pool.submit(request("next"))
        spinning = log[0]
        spinning.join(2)
        return timed_out, elapsed, after, spinning.is_alive()

    timed_out, elapsed, after, still_spinning = run_pool(scenario, scorer(log), timeout_ms=200)
    assert timed_out.status == 504 and timed_out.run_failed
    assert 0.15 < elapsed < 2
    assert after.status == 200 and log[1:] == ["next"]  # served by the replacement thread
    assert not still_spinning  # the overlong run() was interrupted and its thread ended


def test_slots_run_concurrently():
    release = threading.Event()

    async def scenario(pool):
        blocked = [pool.submit(request("block")) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert pool.running == 2
        release.set()
        return [r.status for r in await asyncio.gather(*blocked)]

    assert run_pool(scenario, scorer([], release), slots=2) == [200, 200]
