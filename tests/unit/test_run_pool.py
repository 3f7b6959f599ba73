"""RunPool: queueing, the busy wait, the scoring timeout, WORKER_TIMEOUT, and that no request ends a run thread.

No processes: the pool runs in this test's event loop. Waits are bounded waits for an
observable condition (``until``), never sleeps standing in for synchronisation.
"""

import asyncio
import json
import threading
import time

import pytest
from inference_schema import schema_util

from modelport.runtime.protocol import INTERNAL_ERROR_MESSAGE, RUN_FAILED_MESSAGE, HttpRequest, Reply
from modelport.runtime.run_pool import RunPool
from modelport.runtime.scoring import Scorer
from modelport.runtime.user_script import UserScript
from tests.conftest import SCRIPTS

BOUND_S = 10  # a bound for waits, never expected to be reached


def request(value) -> HttpRequest:
    return HttpRequest({"value": value}, b"")


def scorer(log: list, release: threading.Event | None = None):
    def score(req: HttpRequest) -> Reply:
        value = req.scope["value"]
        if value == "block":
            release.wait(BOUND_S)
        if value == "spin":  # a pure-Python loop: interrupted by the timeout
            log.append(threading.current_thread())
            while True:
                pass
        if isinstance(value, BaseException):
            raise value
        log.append(value)
        return Reply(200, body=str(value).encode())

    return score


def run_pool(scenario, score, slots=1, max_wait_ms=500, timeout_ms=5000, **kwargs):
    async def main():
        pool = RunPool(score, slots, max_wait_ms, timeout_ms, asyncio.get_running_loop(), **kwargs)
        try:
            return await asyncio.wait_for(scenario(pool), BOUND_S * 2)
        finally:
            pool.close()

    return asyncio.run(main())


async def until(condition, what: str) -> None:
    """Wait, bounded, until ``condition()`` holds."""
    deadline = time.monotonic() + BOUND_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.005)


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
        await until(lambda: pool.running == 1, "the first request runs")
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
        await until(lambda: pool.running == 1, "the first request runs")
        refused = pool.submit(request("x"))
        answered_at_once = refused.done()  # resolved inside submit(), before any timer could run
        release.set()
        await blocked
        return (await refused).status, answered_at_once

    assert run_pool(scenario, scorer([], release), max_wait_ms=0) == (503, True)


def test_timeout_answers_504_interrupts_run_and_keeps_serving():
    log = []

    async def scenario(pool):
        timed_out = await pool.submit(request("spin"))  # spins for ever: only the timeout answers it
        after = await pool.submit(request("next"))
        spinning = log[0]
        await until(lambda: not spinning.is_alive(), "the interrupted run thread ends")
        return timed_out, after, pool.running

    timed_out, after, running = run_pool(scenario, scorer(log), timeout_ms=200)
    assert timed_out.status == 504 and timed_out.run_failed
    assert json.loads(timed_out.body) == {"message": "Scoring timeout after 200 ms"}
    assert after.status == 200 and log[1:] == ["next"]  # served by the replacement thread
    assert running == 0


def test_slots_run_concurrently():
    release = threading.Event()

    async def scenario(pool):
        blocked = [pool.submit(request("block")) for _ in range(2)]
        await until(lambda: pool.running == 2, "both requests run at once")
        release.set()
        return [r.status for r in await asyncio.gather(*blocked)]

    assert run_pool(scenario, scorer([], release), slots=2) == [200, 200]


# ---------------------------------------------------------------- nothing a request does ends a run thread


@pytest.mark.parametrize("error", [SystemExit(1), KeyboardInterrupt(), RecursionError(), BaseException("x"),
                                   MemoryError()], ids=lambda e: type(e).__name__)
def test_score_raising_anything_answers_500_and_the_same_thread_serves_on(error):
    log = []

    async def scenario(pool):
        failed = await pool.submit(request(error))
        after = await pool.submit(request("next"))
        return failed, after, pool.running

    failed, after, running = run_pool(scenario, scorer(log))
    assert failed.status == 500
    assert json.loads(failed.body) == {"message": INTERNAL_ERROR_MESSAGE}
    assert after.status == 200 and log == ["next"]
    assert running == 0


def json_request(payload: bytes, content_type: str = "application/json", method: str = "POST") -> HttpRequest:
    scope = {"method": method, "headers": [(b"content-type", content_type.encode())], "query_string": b""}
    return HttpRequest(scope, payload, content_type)


def hostile_scorer(name: str) -> Scorer:
    # inference-schema remembers decorated functions by module and name, and every entry script is
    # "entry_module": forget the run() of a script loaded earlier in this process (a worker loads one).
    vars(schema_util)["__functions_schema__"].pop("entry_module.run", None)
    script = UserScript.load(SCRIPTS / name, SCRIPTS)
    script.init()
    return Scorer(script)


def served_by_one_thread(scorer_: Scorer, payload: bytes):
    """A good request, the hostile one, a good one again, on one run slot."""

    async def scenario(pool):
        before = await pool.submit(json_request(b'{"kind": "ok"}' if b"kind" in payload else b'{"data": 2.5}'))
        hostile = await pool.submit(json_request(payload))
        after = await pool.submit(json_request(b'{"kind": "ok"}' if b"kind" in payload else b'{"data": 2.5}'))
        return before, hostile, after

    before, hostile, after = run_pool(scenario, scorer_)
    assert before.status == 200 and after.status == 200, (before.body, after.body)
    assert json.loads(before.body)["thread"] == json.loads(after.body)["thread"]  # the same run thread lived on
    return hostile


@pytest.mark.parametrize("kind", ["system_exit", "keyboard_interrupt", "base_exception", "recursion"])
def test_run_raising_a_base_exception_is_a_run_failure(kind):
    hostile = served_by_one_thread(hostile_scorer("score_hostile.py"), json.dumps({"kind": kind}).encode())
    assert (hostile.status, hostile.run_failed) == (500, True)
    assert json.loads(hostile.body) == {"message": RUN_FAILED_MESSAGE}


@pytest.mark.parametrize("value", ["decorator-value-error", "decorator-keyboard-interrupt", "decorator-system-exit"])
def test_an_inference_schema_decorator_raising_is_a_run_failure(value):
    hostile = served_by_one_thread(hostile_scorer("score_schema_hostile.py"), json.dumps({"data": value}).encode())
    assert (hostile.status, hostile.run_failed) == (500, True)  # as the reference's D6 (decorator error)
    assert json.loads(hostile.body) == {"message": RUN_FAILED_MESSAGE}


def test_a_body_nested_past_the_limit_is_400_naming_the_limit():
    body = b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    hostile = served_by_one_thread(hostile_scorer("score_schema_hostile.py"), body)
    assert hostile.status == 400 and not hostile.run_failed
    message = json.loads(hostile.body)["message"]
    assert message.startswith("POST body could not be decoded as JSON: ")
    assert "nesting limit of 1024 levels" in message


def test_a_result_nested_past_the_limit_is_500_with_a_message():
    hostile = served_by_one_thread(hostile_scorer("score_hostile.py"), b'{"kind": "deep_result"}')
    assert (hostile.status, hostile.run_failed) == (500, False)  # as the reference: an encoding error
    assert json.loads(hostile.body) == {"message": INTERNAL_ERROR_MESSAGE}


# ---------------------------------------------------------------- WORKER_TIMEOUT


def test_a_run_past_worker_timeout_answers_500_and_asks_the_worker_to_restart():
    release = threading.Event()
    stuck_messages = []

    async def scenario(pool):
        reply = await pool.submit(request("block"))
        after = await pool.submit(request("next"))  # a fresh thread took the stuck one's slot
        release.set()
        return reply, after

    reply, after = run_pool(scenario, scorer([], release), timeout_ms=60_000, worker_timeout_ms=100,
                            on_stuck=stuck_messages.append)
    assert (reply.status, reply.run_failed) == (500, True)
    message = "run() did not finish within WORKER_TIMEOUT=0.1 s; the worker restarts"
    assert json.loads(reply.body) == {"message": message}
    assert after.status == 200
    assert len(stuck_messages) == 1 and "WORKER_TIMEOUT" in stuck_messages[0]


def test_a_timed_out_run_still_running_at_worker_timeout_restarts_the_worker():
    release = threading.Event()

    async def scenario(pool):
        restarted = asyncio.Event()
        pool.on_stuck = lambda message: restarted.set()
        reply = await pool.submit(request("block"))  # blocked in native code: the interruption waits
        await asyncio.wait_for(restarted.wait(), BOUND_S)
        release.set()
        return reply

    reply = run_pool(scenario, scorer([], release), timeout_ms=100, worker_timeout_ms=300)
    assert reply.status == 504


def test_a_timed_out_run_that_ended_does_not_restart_the_worker():
    log = []
    stuck_messages = []

    async def scenario(pool):
        checked = []
        check = pool._check_stuck
        pool._check_stuck = lambda job: (check(job), checked.append(job))
        reply = await pool.submit(request("spin"))  # pure Python: interrupted at once
        await until(lambda: checked, "the WORKER_TIMEOUT check has run")
        assert not log[0].is_alive()
        return reply

    reply = run_pool(scenario, scorer(log), timeout_ms=100, worker_timeout_ms=200, on_stuck=stuck_messages.append)
    assert reply.status == 504
    assert stuck_messages == []
