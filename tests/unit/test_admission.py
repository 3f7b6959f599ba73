import asyncio

from modelport.runtime.admission import AdmissionGate


def run(coro):
    return asyncio.run(coro)


def test_admits_up_to_the_limit_then_times_out():
    async def scenario():
        gate = AdmissionGate(limit=2, max_wait_s=0.05)
        assert await gate.enter() and await gate.enter()
        assert await gate.enter() is False
        assert (gate.active, gate.waiting) == (2, 0)

    run(scenario())


def test_a_freed_slot_goes_to_the_longest_waiter_in_order():
    async def scenario():
        gate = AdmissionGate(limit=1, max_wait_s=5)
        await gate.enter()
        order = []

        async def wait(name):
            assert await gate.enter()
            order.append(name)

        tasks = [asyncio.create_task(wait(n)) for n in ("first", "second")]
        await asyncio.sleep(0.01)
        assert gate.waiting == 2
        gate.leave()
        await asyncio.sleep(0.01)
        gate.leave()
        await asyncio.gather(*tasks)
        assert order == ["first", "second"]
        gate.leave()
        assert (gate.active, gate.waiting) == (0, 0)

    run(scenario())


def test_zero_wait_refuses_at_once_and_cancelled_waiters_leave_no_trace():
    async def scenario():
        assert await AdmissionGate(1, 0).enter()
        gate = AdmissionGate(1, 0)
        await gate.enter()
        assert await gate.enter() is False
        patient = AdmissionGate(1, 5)
        await patient.enter()
        task = asyncio.create_task(patient.enter())
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.sleep(0.01)
        assert patient.waiting == 0
        patient.leave()
        assert patient.active == 0

    run(scenario())
