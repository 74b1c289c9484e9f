# The asyncio layer (API.md "asyncio"): channels, one-shots, event streams and requests
# awaited by tasks, with deadlines and cancellation, on CPython's asyncio and MicroPython's.
# Each test calls asyncio.run(main()); no assertion on wall-clock time (deadlines are only
# generous bounds against hangs, or small ones where nothing can arrive).
import sys

import support

from helix_ipc import (
    ChannelClosed, ChannelFull, Event, EventBus, EventTopic, MessagePriority, MessageRouter,
    ModuleNotFound, Request, Response, Timeout, channel, oneshot,
)

LONG = 10000  # ms: a bound against hangs, never reached when the code works


def _asyncio():
    import asyncio

    return asyncio


async def _settle(asyncio, n=4):
    # let the other tasks run until they block
    for _ in range(n):
        await asyncio.sleep(0)


async def _raises(exc_type, awaitable):
    try:
        await awaitable
    except exc_type as e:
        return e
    raise AssertionError("did not raise %s" % exc_type.__name__)


def _echo_router(capacity=64):
    r = MessageRouter(mailbox_capacity=capacity)
    seen = []

    def handler(req):
        seen.append(req.request_type)
        return Response.success(req.payload)

    r.register(1, "echo", handler)
    return r, seen


# -- without asyncio --------------------------------------------------------------------

def test_without_asyncio_imports_and_awaiting_raises_not_implemented():
    saved = sys.modules.get("asyncio")
    aio_saved = sys.modules.pop("helix_ipc.aio", None)
    sys.modules["asyncio"] = None  # type: ignore[assignment]  # import asyncio fails (ImportError) or gives None
    try:
        import helix_ipc.aio  # noqa: F401  # the module itself imports without asyncio

        tx, rx = channel(2)
        otx, orx = oneshot()
        bus = EventBus()
        stream = bus.stream([EventTopic.INTERRUPT])  # creating a stream works everywhere
        bus.publish(Event.Interrupt(1, 0))
        assert len(stream) == 1
        router, _ = _echo_router()
        for fn, args in ((rx.recv, ()), (tx.send_async, (1,)), (orx.recv, ()), (stream.next, ()),
                         (router.request, (1, Request(0, "t"))), (router.serve, (1,))):
            e = support.raises(NotImplementedError, fn, *args)
            assert "asyncio" in str(e), e
        assert router.mailbox_size(1) == 0  # nothing queued by the refused request
        stream.close()
        assert bus.subscription_count() == 0
    finally:
        if saved is None:
            del sys.modules["asyncio"]
        else:
            sys.modules["asyncio"] = saved
        if aio_saved is not None:
            sys.modules["helix_ipc.aio"] = aio_saved


# -- deadlines ---------------------------------------------------------------------------

def test_timeout_ms_bad_values_raise_at_the_call():
    tx, rx = channel(1)
    otx, orx = oneshot()
    stream = EventBus().stream([EventTopic.TICK])
    router, _ = _echo_router()
    calls = (
        lambda t: rx.recv(t), lambda t: tx.send_async(0, t), lambda t: orx.recv(t),
        lambda t: stream.next(t), lambda t: router.request(1, Request(0, "t"), t),
    )
    for call in calls:
        for bad in (-1, 1 << 29):  # 2**29 ms: beyond what a board's ticks_diff spans
            e = support.raises(ValueError, call, bad)
            assert "timeout_ms" in str(e), e
        call((1 << 29) - 1).close()  # the largest deadline is accepted
        for bad in (1.5, "10", True):
            e = support.raises(TypeError, call, bad)
            assert "timeout_ms" in str(e), e
    assert router.mailbox_size(1) == 0
    assert len(rx) == 0


def test_passed_deadline_raises_timeout():
    asyncio = _asyncio()

    async def main():
        tx, rx = channel(1)
        await _raises(Timeout, rx.recv(5))
        await _raises(Timeout, rx.recv(0))
        tx.send(1)
        await _raises(Timeout, tx.send_async(2, 5))  # full
        await _raises(Timeout, tx.send_async(2, 0))
        assert rx.stats().dropped == 0  # waiting for room is no refusal
        assert await rx.recv(0) == 1  # an item ready meets even a zero deadline
        otx, orx = oneshot()
        await _raises(Timeout, orx.recv(5))
        stream = EventBus().stream([EventTopic.TICK])
        await _raises(Timeout, stream.next(5))
        # after a timeout the objects still work
        await tx.send_async(3, 0)
        assert await rx.recv(LONG) == 3
        otx.send("v")
        assert await orx.recv(0) == "v"

    asyncio.run(main())


# -- channels ----------------------------------------------------------------------------

def test_recv_waits_for_the_oldest_item_sent_by_another_task():
    asyncio = _asyncio()

    async def main():
        tx, rx = channel(4)
        got = []

        async def consumer():
            got.append(await rx.recv())
            got.append(await rx.recv(LONG))

        t = asyncio.create_task(consumer())
        await _settle(asyncio)
        assert got == []  # waiting: the channel is empty and open
        tx.send("a")
        tx.send("b")
        await asyncio.wait_for(t, LONG / 1000)
        assert got == ["a", "b"]

    asyncio.run(main())


def test_recv_raises_channel_closed_once_closed_and_drained():
    asyncio = _asyncio()

    async def main():
        tx, rx = channel(4)
        tx.send(1)
        tx.close()
        assert await rx.recv() == 1  # queued items first
        await _raises(ChannelClosed, rx.recv())
        # a task already waiting is woken by the last sender's close
        tx, rx = channel(4)
        t = asyncio.create_task(_raises(ChannelClosed, rx.recv()))
        await _settle(asyncio)
        assert not t.done()
        tx.close()
        await asyncio.wait_for(t, LONG / 1000)
        # and by the receiver's own close
        tx, rx = channel(4)
        t = asyncio.create_task(_raises(ChannelClosed, rx.recv(LONG)))
        await _settle(asyncio)
        rx.close()
        await asyncio.wait_for(t, LONG / 1000)

    asyncio.run(main())


def test_async_for_receives_until_closed_and_drained():
    asyncio = _asyncio()

    async def main():
        tx, rx = channel(2)

        async def producer():
            for i in range(10):
                await tx.send_async(i)
            tx.close()

        t = asyncio.create_task(producer())
        got = []
        async for item in rx:
            got.append(item)
        assert got == list(range(10))
        await t
        got = []
        async for item in rx:  # closed and drained: ends at once
            got.append(item)
        assert got == []

    asyncio.run(main())


def test_send_async_waits_while_full():
    asyncio = _asyncio()

    async def main():
        tx, rx = channel(1)
        await tx.send_async("a")  # room: no wait
        t = asyncio.create_task(tx.send_async("b"))
        await _settle(asyncio)
        assert not t.done()  # full: waiting
        assert rx.try_recv() == "a"  # room: the sender is woken
        await asyncio.wait_for(t, LONG / 1000)
        assert rx.try_recv() == "b"
        assert rx.stats().dropped == 0
        # a waiting sender gets ChannelClosed when the receiver closes
        tx.send("c")
        t = asyncio.create_task(_raises(ChannelClosed, tx.send_async("d")))
        await _settle(asyncio)
        rx.close()
        await asyncio.wait_for(t, LONG / 1000)
        await _raises(ChannelClosed, tx.send_async("e"))

    asyncio.run(main())


def test_several_senders_wait_and_all_get_through_in_turn():
    asyncio = _asyncio()

    async def main():
        tx, rx = channel(1)
        tx.send(-1)
        clones = [tx.clone() for _ in range(3)]
        tasks = [asyncio.create_task(c.send_async(i, LONG)) for i, c in enumerate(clones)]
        await _settle(asyncio)
        got = []
        for _ in range(4):
            got.append(await rx.recv(LONG))
        for t in tasks:
            await t
        assert sorted(got) == [-1, 0, 1, 2]

    asyncio.run(main())


def test_oneshot_recv_waits_for_the_value():
    asyncio = _asyncio()

    async def main():
        otx, orx = oneshot()
        t = asyncio.create_task(orx.recv())
        await _settle(asyncio)
        assert not t.done()
        otx.send(42)
        assert await asyncio.wait_for(t, LONG / 1000) == 42
        await _raises(ChannelClosed, orx.recv())  # taken
        # the sender giving up wakes the waiting task with ChannelClosed
        otx, orx = oneshot()
        t = asyncio.create_task(_raises(ChannelClosed, orx.recv(LONG)))
        await _settle(asyncio)
        otx.close()
        await asyncio.wait_for(t, LONG / 1000)
        # sent before the await: no wait
        otx, orx = oneshot()
        otx.send("x")
        assert await orx.recv(0) == "x"

    asyncio.run(main())


# -- event streams -----------------------------------------------------------------------

def test_stream_async_for_and_next():
    asyncio = _asyncio()

    async def main():
        bus = EventBus()
        stream = bus.stream([EventTopic.INTERRUPT, EventTopic.TICK])
        assert bus.subscription_count() == 1
        got = []

        async def consumer():
            async for event in stream:
                got.append(event)

        t = asyncio.create_task(consumer())
        await _settle(asyncio)
        bus.publish(Event.Interrupt(3, 0))
        bus.publish(Event.Shutdown())  # not a topic of the stream
        bus.publish(Event.Tick(10, 1))
        await _settle(asyncio)
        assert [type(e) for e in got] == [Event.Interrupt, Event.Tick]
        assert got[0].vector == 3
        stream.close()  # the waiting `async for` ends
        await asyncio.wait_for(t, LONG / 1000)
        assert bus.subscription_count() == 0
        await _raises(ChannelClosed, stream.next())
        bus.publish(Event.Interrupt(4, 0))  # unsubscribed: nothing queues
        assert len(stream) == 0

        s2 = bus.stream([EventTopic.INTERRUPT])
        bus.publish(Event.Interrupt(5, 0))
        e = await s2.next(LONG)
        assert isinstance(e, Event.Interrupt) and e.vector == 5
        t = asyncio.create_task(s2.next(LONG))
        await _settle(asyncio)
        bus.publish(Event.Interrupt(6, 0))
        assert (await asyncio.wait_for(t, LONG / 1000)).vector == 6
        s2.close()

    asyncio.run(main())


def test_stream_full_drops_the_newest_and_counts_it():
    asyncio = _asyncio()

    async def main():
        bus = EventBus()
        stream = bus.stream([EventTopic.INTERRUPT], capacity=2)
        for i in range(5):
            r = bus.publish(Event.Interrupt(i, 0))
            assert r.errors == 0  # a full stream is no handler error
        assert stream.dropped == 3
        assert (await stream.next()).vector == 0
        assert (await stream.next()).vector == 1
        await _raises(Timeout, stream.next(1))
        bus.publish(Event.Interrupt(9, 0))
        assert (await stream.next()).vector == 9
        assert stream.dropped == 3
        stream.close()

    asyncio.run(main())


def test_stream_close_and_context_manager():
    asyncio = _asyncio()

    async def main():
        bus = EventBus()
        with bus.stream([EventTopic.TICK]) as stream:
            assert bus.subscription_count() == 1
            bus.publish(Event.Tick(1, 1))
            waiting = asyncio.create_task(_raises(ChannelClosed, stream.next(LONG)))
            assert (await stream.next()).tick_number == 1
            await _settle(asyncio)
        assert bus.subscription_count() == 0  # unsubscribed by the `with`
        await asyncio.wait_for(waiting, LONG / 1000)  # the waiting task got ChannelClosed
        await _raises(ChannelClosed, stream.next())
        stream.close()  # twice: nothing more
        got = []
        async for e in stream:
            got.append(e)
        assert got == []
        # events queued at close are not delivered after it
        s = bus.stream([EventTopic.TICK])
        bus.publish(Event.Tick(2, 2))
        s.close()
        await _raises(ChannelClosed, s.next())

    asyncio.run(main())


def test_stream_bad_arguments():
    bus = EventBus()
    support.raises(ValueError, bus.stream, [EventTopic.TICK], 0)
    support.raises(TypeError, bus.stream, [EventTopic.TICK], "16")
    support.raises(TypeError, bus.stream, ["tick"])
    support.raises(ValueError, bus.stream, [])
    assert bus.subscription_count() == 0


# -- requests ----------------------------------------------------------------------------

def test_request_waits_for_the_response():
    asyncio = _asyncio()

    async def main():
        router, seen = _echo_router()
        t = asyncio.create_task(router.request("echo", Request(0, "ping", b"p"), LONG))
        await _settle(asyncio)
        assert not t.done()
        assert router.mailbox_size(1) == 1  # in the mailbox, waiting for the module
        assert router.process_mailbox(1, 10) == 1
        r = await asyncio.wait_for(t, LONG / 1000)
        assert r.is_success and r.data == b"p"
        assert router.late_responses == 0

    asyncio.run(main())


def test_request_priority_order_as_queue():
    asyncio = _asyncio()

    async def main():
        router, seen = _echo_router()
        prios = (MessagePriority.LOW, MessagePriority.CRITICAL, MessagePriority.NORMAL,
                 MessagePriority.HIGH, MessagePriority.CRITICAL)
        tasks = [asyncio.create_task(router.request(1, Request(0, "r%d" % i).with_priority(p), LONG))
                 for i, p in enumerate(prios)]
        await _settle(asyncio)
        assert router.mailbox_size(1) == 5
        router.process_mailbox(1, 10)
        for t in tasks:
            assert (await t).is_success
        assert seen == ["r1", "r4", "r3", "r2", "r0"]

    asyncio.run(main())


def test_request_errors_at_once():
    asyncio = _asyncio()

    async def main():
        router, _ = _echo_router(capacity=1)
        await _raises(ModuleNotFound, router.request("nobody", Request(0, "t"), LONG))
        await _raises(ModuleNotFound, router.request(7, Request(0, "t")))
        router.queue(1, Request(0, "fill"))
        refused = router.messages_refused
        await _raises(ChannelFull, router.request(1, Request(0, "t"), LONG))
        assert router.messages_refused == refused + 1
        await _raises(TypeError, router.request(1, "not a request"))
        assert router.mailbox_size(1) == 1

    asyncio.run(main())


def test_request_timeout_then_late_response_dropped_and_counted():
    asyncio = _asyncio()

    async def main():
        router, seen = _echo_router()
        await _raises(Timeout, router.request(1, Request(0, "slow"), 5))
        assert router.late_responses == 0
        assert router.process_mailbox(1, 10) == 1  # the module answers later
        assert seen == ["slow"]
        assert router.late_responses == 1
        assert router.callback_errors == 0
        # a module unregistered before answering: the waiting task gets its Error response
        t = asyncio.create_task(router.request(1, Request(0, "t"), LONG))
        await _settle(asyncio)
        router.unregister(1)
        r = await asyncio.wait_for(t, LONG / 1000)
        assert not r.is_success

    asyncio.run(main())


def test_serve_answers_as_requests_arrive_until_unregistered():
    asyncio = _asyncio()

    async def main():
        router, seen = _echo_router()
        server = asyncio.create_task(router.serve(1))
        assert (await router.request(1, Request(0, "a"), LONG)).data == b""
        # queued while the server runs: answered highest priority first
        order = []
        for i, p in enumerate((MessagePriority.LOW, MessagePriority.HIGH, MessagePriority.NORMAL)):
            router.queue(1, Request(0, "q%d" % i).with_priority(p), lambda r, i=i: order.append(i))
        r = await router.request(1, Request(0, "b", b"B").with_priority(MessagePriority.CRITICAL), LONG)
        assert r.data == b"B"
        await _settle(asyncio, 8)
        assert seen == ["a", "b", "q1", "q2", "q0"]
        assert order == [1, 2, 0]
        assert not server.done()
        router.unregister(1)
        await asyncio.wait_for(server, LONG / 1000)  # ends by itself

    asyncio.run(main())


def test_serve_unknown_module_and_cancel():
    asyncio = _asyncio()

    async def main():
        router, seen = _echo_router()
        support.raises(ModuleNotFound, router.serve, 9)
        support.raises(ModuleNotFound, router.serve, "nobody")
        server = asyncio.create_task(router.serve("echo"))
        await _settle(asyncio)
        server.cancel()
        await _raises(asyncio.CancelledError, server)
        router.queue(1, Request(0, "after"))
        await _settle(asyncio)
        assert seen == [] and router.mailbox_size(1) == 1  # nobody serves any more
        server = asyncio.create_task(router.serve(1))  # a new server takes over
        await _settle(asyncio)
        assert seen == ["after"]
        server.cancel()
        await _raises(asyncio.CancelledError, server)

    asyncio.run(main())


def test_serve_a_flood_does_not_starve_other_tasks():
    asyncio = _asyncio()

    async def main():
        router, seen = _echo_router(capacity=200)
        for i in range(200):
            router.queue(1, Request(0, "f"))
        ticks = []

        async def other():
            while len(seen) < 200:
                ticks.append(len(seen))
                await asyncio.sleep(0)

        server = asyncio.create_task(router.serve(1))
        o = asyncio.create_task(other())
        await asyncio.wait_for(o, LONG / 1000)
        assert len(ticks) > 2, ticks  # the other task ran while the mailbox was served
        server.cancel()
        await _raises(asyncio.CancelledError, server)

    asyncio.run(main())


def test_stream_creation_under_memory_exhaustion_leaves_the_bus_as_it_was():
    if not support.MICROPYTHON:
        support.skip("needs a bounded heap (MicroPython)")
    from bus_helpers import atomic_under_exhaustion

    bus = EventBus()
    bus.stream([EventTopic.TICK]).close()  # the aio module and the bus's lazy parts loaded

    def state():
        return (bus.subscription_count(), len(bus.subscriptions()))

    failures, stream = atomic_under_exhaustion(lambda: bus.stream([EventTopic.INTERRUPT, EventTopic.TICK]), state)
    assert failures > 0  # the sweep met MemoryError at least once
    assert bus.subscription_count() == 1
    bus.publish(Event.Tick(1, 1))
    assert len(stream) == 1
    stream.close()
    assert state() == (0, 0)
