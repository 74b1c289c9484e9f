# The asyncio layer's wake-ups and cancellation (API.md "asyncio"): a waiting task is woken
# by a send from another thread, a scheduled IRQ drain (CPython: a worker thread's poll())
# and send_from_isr (allocation-free under heap_lock); a cancelled or timed-out waiter
# leaves nothing behind; the wake-up allocates nothing beyond asyncio's own wait.
import time

import support

from helix_ipc import (
    ChannelFull, Event, EventBus, EventTopic, MessageRouter, Request, Response, channel, oneshot,
)

LONG = 10000  # ms: a bound against hangs only


def _asyncio():
    import asyncio

    return asyncio


async def _settle(asyncio, n=4):
    for _ in range(n):
        await asyncio.sleep(0)


def _waiting(obj):
    # how many tasks wait on obj (the aio layer's list of waiters)
    ws = getattr(obj, "_aio", None)
    n = 0
    node = None if ws is None else ws.head
    while node is not None:
        n += 1
        node = node.next
    return n


def _start(fn):
    # run fn() in a new thread; returns a box whose [0] turns True when fn returned
    _thread = support.need_threads()
    box = [False, None]

    def body():
        try:
            fn()
        except BaseException as e:  # noqa: B036 - handed back to the test
            box[1] = e
        box[0] = True

    _thread.start_new_thread(body, ())
    return box


def _until(cond, what):
    # a thread's spin-wait (the library never polls; the test's helper thread may)
    t0 = time.time()
    while not cond():
        if time.time() - t0 > LONG / 1000:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.001)


async def _joined(asyncio, box):
    while not box[0]:
        await asyncio.sleep(0.001)
    if box[1] is not None:
        raise box[1]


# -- another thread ----------------------------------------------------------------------

def test_thread_send_wakes_a_task_waiting_in_recv():
    support.need_threads()
    asyncio = _asyncio()

    async def main():
        tx, rx = channel(4)
        t = tx.clone()

        def sender():
            _until(lambda: _waiting(rx) == 1, "the task to wait")
            t.send("from thread")

        box = _start(sender)
        assert await rx.recv(LONG) == "from thread"
        await _joined(asyncio, box)

    asyncio.run(main())


def test_thread_recv_wakes_a_task_waiting_in_send_async():
    support.need_threads()
    asyncio = _asyncio()

    async def main():
        tx, rx = channel(1)
        tx.send(1)
        got = []

        def receiver():
            _until(lambda: _waiting(rx) == 1, "the sender to wait")
            got.append(rx.try_recv())

        box = _start(receiver)
        await tx.send_async(2, LONG)
        await _joined(asyncio, box)
        assert got == [1]
        assert rx.try_recv() == 2

    asyncio.run(main())


def test_thread_oneshot_send_and_thread_answer_wake_tasks():
    support.need_threads()
    asyncio = _asyncio()

    async def main():
        otx, orx = oneshot()

        def sender():
            _until(lambda: _waiting(orx) == 1, "the task to wait")
            otx.send("v")

        box = _start(sender)
        assert await orx.recv(LONG) == "v"
        await _joined(asyncio, box)

        router = MessageRouter()
        router.register(1, "m", lambda req: Response.success(b"t"))

        def worker():  # the module's mailbox is processed by a thread
            _until(lambda: router.mailbox_size(1) == 1, "the request")
            router.process_mailbox(1, 1)

        box = _start(worker)
        r = await router.request(1, Request(0, "q"), LONG)
        assert r.data == b"t"
        await _joined(asyncio, box)

    asyncio.run(main())


def test_thread_publish_wakes_a_task_waiting_on_a_stream():
    support.need_threads()
    asyncio = _asyncio()

    async def main():
        bus = EventBus()
        stream = bus.stream([EventTopic.INTERRUPT])

        def publisher():
            _until(lambda: _waiting(stream._rx) == 1, "the task to wait")
            bus.publish(Event.Interrupt(7, 0))

        box = _start(publisher)
        assert (await stream.next(LONG)).vector == 7
        await _joined(asyncio, box)
        stream.close()

    asyncio.run(main())


def test_threads_stream_items_to_a_task_through_a_small_channel():
    # Two producer threads, one consumer task with `async for`, channel(8): every item
    # arrives once, each thread's in order (the issue: polling this under a GIL starved).
    support.need_threads()
    asyncio = _asyncio()
    n = 2000

    async def main():
        tx, rx = channel(8)
        boxes = []
        for k in range(2):
            t = tx.clone()

            def producer(t=t, k=k):
                for i in range(n):
                    while True:
                        try:
                            t.send((k, i))
                            break
                        except ChannelFull:
                            time.sleep(0)
                t.close()

            boxes.append(_start(producer))
        tx.close()
        last = [-1, -1]
        count = 0
        async for k, i in rx:
            assert i == last[k] + 1
            last[k] = i
            count += 1
        assert count == 2 * n
        for b in boxes:
            await _joined(asyncio, b)

    asyncio.run(main())


# -- IRQ paths ---------------------------------------------------------------------------

def test_scheduled_irq_drain_wakes_a_task_waiting_on_a_stream():
    asyncio = _asyncio()

    async def main():
        bus = EventBus()
        stream = bus.stream([EventTopic.INTERRUPT])
        if support.MICROPYTHON:
            # posted from the task, delivered by the drain micropython.schedule runs; no poll()
            t = asyncio.create_task(stream.next(LONG))
            await _settle(asyncio)
            assert bus.publish_from_isr(Event.Interrupt, 5, 1)
            e = await asyncio.wait_for(t, LONG / 1000)
        else:
            # CPython has no scheduler: a worker thread polls (API.md)
            support.need_threads()

            def worker():
                _until(lambda: _waiting(stream._rx) == 1, "the task to wait")
                bus.publish_from_isr(Event.Interrupt, 5, 1)
                bus.poll()

            box = _start(worker)
            e = await stream.next(LONG)
            await _joined(asyncio, box)
        assert (e.vector, e.cpu_id) == (5, 1)
        assert bus.isr_stats().delivered == 1
        stream.close()

    asyncio.run(main())


def test_send_from_isr_wakes_a_waiting_task_without_allocating():
    # The IRQ side of a wake-up (send_from_isr, the notify hook, the flag's set()) runs
    # under heap_lock in a thread on MicroPython: any allocation would raise there.
    asyncio = _asyncio()

    async def main():
        tx, rx = channel(4)
        isr_tx = tx.clone()
        t = asyncio.create_task(rx.recv(LONG))
        await _settle(asyncio)
        assert _waiting(rx) == 1
        if support.MICROPYTHON:
            support.need_heap_lock()
            ok = support.assert_no_alloc(isr_tx.send_from_isr, "irq")
        else:
            ok = support.run_in_thread(lambda: isr_tx.send_from_isr("irq"))
        assert ok is True
        assert await asyncio.wait_for(t, LONG / 1000) == "irq"
        assert _waiting(rx) == 0

    asyncio.run(main())


def test_wake_hook_allocates_nothing():
    # The hook each awaited object calls (from an IRQ, a thread, a task): no allocation,
    # heap frames included (mem_total), with waiters on its list.
    asyncio = _asyncio()
    support.need_heap_lock()

    async def main():
        tx, rx = channel(1)
        tasks = [asyncio.create_task(rx.recv(LONG))]
        await _settle(asyncio)
        wake = rx._aio.wake
        support.assert_no_alloc(wake)
        assert support.frame_alloc(wake) == 0
        tx.send(1)
        assert await tasks[0] == 1

    asyncio.run(main())


def test_wake_up_cycle_allocates_only_what_asyncio_and_the_call_do():
    # Per item: a task awaits rx.recv(), another sends. Bytes per cycle, less the same
    # cycle on asyncio's own ThreadSafeFlag (wait/set), less the cost of making the
    # rx.recv() call's coroutine: nothing remains for the wake-up itself.
    asyncio = _asyncio()
    support.need_heap_lock()
    import micropython

    mem_total = getattr(micropython, "mem_total", None)
    if mem_total is None:
        support.skip("needs micropython.mem_total")
    n = 100

    async def cycle(wake, wait):
        async def consumer():
            for _ in range(n + 1):
                await wait()

        t = asyncio.create_task(consumer())
        await _settle(asyncio, 2)
        wake()  # warm-up: the first wait made the node
        await _settle(asyncio, 2)
        m0 = mem_total()
        for _ in range(n):
            wake()
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        m1 = mem_total()
        await t
        return (m1 - m0) / n

    tx, rx = channel(4)

    def call():
        c = rx.recv()
        c.close()

    call()
    m0 = mem_total()
    for _ in range(n):
        call()
    call_cost = (mem_total() - m0) / n
    flag = asyncio.ThreadSafeFlag()
    base = asyncio.run(cycle(flag.set, flag.wait))
    ours = asyncio.run(cycle(lambda: tx.send(0), rx.recv))
    assert ours - base - call_cost <= 8, (ours, base, call_cost)


# -- cancellation ------------------------------------------------------------------------

def test_cancelled_recv_leaves_no_waiter_and_loses_no_item():
    asyncio = _asyncio()

    async def main():
        tx, rx = channel(4)
        t = asyncio.create_task(rx.recv())
        await _settle(asyncio)
        assert _waiting(rx) == 1
        t.cancel()
        try:
            await t
            raise AssertionError("not cancelled")
        except asyncio.CancelledError:
            pass
        assert _waiting(rx) == 0
        tx.send("next")
        assert await rx.recv(LONG) == "next"  # not lost to the dead waiter
        # cancelled from outside through wait_for
        try:
            await asyncio.wait_for(rx.recv(), 0.005)
            raise AssertionError("no timeout")
        except asyncio.TimeoutError:
            pass
        assert _waiting(rx) == 0
        tx.send("again")
        assert await rx.recv(LONG) == "again"

    asyncio.run(main())


def test_cancelled_send_async_does_not_send_later():
    asyncio = _asyncio()

    async def main():
        tx, rx = channel(1)
        tx.send(1)
        t = asyncio.create_task(tx.send_async(2))
        await _settle(asyncio)
        assert _waiting(rx) == 1
        t.cancel()
        try:
            await t
        except asyncio.CancelledError:
            pass
        assert _waiting(rx) == 0
        assert rx.try_recv() == 1
        await _settle(asyncio)
        assert len(rx) == 0  # the cancelled item never went in
        await tx.send_async(3, LONG)
        assert rx.try_recv() == 3

    asyncio.run(main())


def test_cancelled_next_and_oneshot_recv_leave_no_waiter():
    asyncio = _asyncio()

    async def main():
        bus = EventBus()
        stream = bus.stream([EventTopic.TICK])
        t = asyncio.create_task(stream.next())
        await _settle(asyncio)
        t.cancel()
        try:
            await t
        except asyncio.CancelledError:
            pass
        assert _waiting(stream._rx) == 0
        bus.publish(Event.Tick(1, 1))
        assert (await stream.next(LONG)).tick_number == 1  # the event went to the live call
        stream.close()

        otx, orx = oneshot()
        t = asyncio.create_task(orx.recv())
        await _settle(asyncio)
        t.cancel()
        try:
            await t
        except asyncio.CancelledError:
            pass
        assert _waiting(orx) == 0
        otx.send(9)
        assert await orx.recv(LONG) == 9

    asyncio.run(main())


def test_cancelled_request_late_answer_dropped_and_counted():
    asyncio = _asyncio()

    async def main():
        router = MessageRouter()
        router.register(1, "m", lambda req: Response.success(req.payload))
        t = asyncio.create_task(router.request(1, Request(0, "q", b"x")))
        await _settle(asyncio)
        assert router.mailbox_size(1) == 1
        t.cancel()
        try:
            await t
        except asyncio.CancelledError:
            pass
        assert router.process_mailbox(1, 5) == 1  # answered after the task gave up
        assert router.late_responses == 1
        assert router.callback_errors == 0
        # the router goes on: a new request is answered normally
        server = asyncio.create_task(router.serve(1))
        assert (await router.request(1, Request(0, "q", b"y"), LONG)).data == b"y"
        assert router.late_responses == 1
        server.cancel()
        try:
            await server
        except asyncio.CancelledError:
            pass

    asyncio.run(main())


def test_waiters_reused_after_timeout_and_cancel():
    # the same object awaited again after a timed-out and a cancelled wait: woken as before
    asyncio = _asyncio()

    async def main():
        tx, rx = channel(2)
        for k in range(3):
            try:
                await rx.recv(2)
                raise AssertionError("no timeout")
            except Exception as e:
                assert type(e).__name__ == "Timeout", e
            t = asyncio.create_task(rx.recv(LONG))
            await _settle(asyncio)
            tx.send(k)
            assert await asyncio.wait_for(t, LONG / 1000) == k
            t = asyncio.create_task(rx.recv())
            await _settle(asyncio)
            t.cancel()
            try:
                await t
            except asyncio.CancelledError:
                pass
            t = asyncio.create_task(rx.recv())
            await _settle(asyncio)
            assert _waiting(rx) == 1
            tx.send(10 + k)
            assert await asyncio.wait_for(t, LONG / 1000) == 10 + k
            assert _waiting(rx) == 0

    asyncio.run(main())


def test_request_answered_by_a_thread_while_timing_out_counts_once():
    # a worker thread answers requests whose tasks time out around the same moment: each
    # answer is either returned or counted in late_responses, never both, never lost
    support.need_threads()
    asyncio = _asyncio()

    async def main():
        router = MessageRouter()
        router.register(1, "m", lambda req: Response.success(req.payload))
        n = 60
        stop = [False]

        def worker():
            while not stop[0]:
                if not router.process_mailbox(1, 4):
                    time.sleep(0.0005)

        box = _start(worker)
        answered = timed_out = 0
        for i in range(n):
            try:
                await router.request(1, Request(0, "q"), i % 3)
                answered += 1
            except Exception as e:
                assert type(e).__name__ == "Timeout", e
                timed_out += 1
        _until(lambda: router.mailbox_size(1) == 0, "the mailbox to empty")
        stop[0] = True
        await _joined(asyncio, box)
        assert answered + timed_out == n
        assert router.late_responses == timed_out, (router.late_responses, timed_out)

    asyncio.run(main())
