# Ticks under asyncio: a TickSource whose ticks go through the bus's IRQ ring (the host
# machine's hard timer, or the host thread with deliver=False), started inside a task,
# delivers while the event loop waits: its bus.pump() task drains each post as it arrives.
# Without it, CPython (no scheduler) never drains, and the unix port runs no scheduled
# drain inside the loop's blocking poll: a 0.5 s asyncio.sleep at 100 Hz would overflow a
# 32-slot ring. Also: the pump's wake-up in a hard IRQ allocates nothing; stop() cancels
# the pump and delivers what is left; outside asyncio no pump is started.
import time

from test_hostmachine import hostmachine  # puts the host machine on sys.path first

import support

from helix_ipc import Event, EventBus, EventSubscription, EventTopic, TickSource
from test_board import load_profile

HZ = 100  # with a 32-slot ring: 0.32 s of ticks, fewer than a 0.5 s sleep brings


class Counter:
    def __init__(self, bus):
        self.n = 0
        bus.subscribe(EventSubscription("count", [EventTopic.TICK], self.on_tick))

    def on_tick(self, event):
        self.n += 1


def _sleep_in_loop(src, seconds):
    import asyncio

    async def main():
        src.start()
        assert src._pump is not None, "start() in a task started no pump"
        pump = src._pump[0]  # (task, alive)
        await asyncio.sleep(seconds)  # nobody polls: only the pump delivers
        fired = src.stats().fired
        delivered = src.stats().delivered
        src.stop()
        await asyncio.sleep(0)
        return pump, fired, delivered

    return asyncio.run(main())


def _check(src, bus, counter, fired, delivered, seconds):
    s = src.stats()
    isr = bus.isr_stats()
    # the ring (32 slots, 0.32 s of ticks at 100 Hz) never overflowed while the loop slept
    # 0.5 s: its posts were drained meanwhile. (A late host thread's skipped periods count
    # in s.lost too; they are not ring overflows.)
    assert isr.dropped == 0, (isr, s)
    assert fired >= HZ * seconds // 4, (fired, s)  # it ran (no claim on precision)
    assert delivered >= fired - 16, (delivered, fired)  # delivered while the loop slept
    assert counter.n == s.delivered == isr.delivered, (counter.n, s, isr)  # stop() delivered the rest


def test_hard_timer_ticks_arrive_while_the_loop_sleeps():
    support.need_threads()
    m = hostmachine("rp2")
    bus = EventBus(isr_capacity=32)
    counter = Counter(bus)
    src = TickSource(HZ, bus, machine=m, profile=load_profile("rp2040"))
    errors_before = len(m.irq_errors)
    pump, fired, delivered = _sleep_in_loop(src, 0.5)
    assert len(m.irq_errors) == errors_before, m.irq_errors[errors_before:]  # nothing allocated in the IRQ
    _check(src, bus, counter, fired, delivered, 0.5)
    assert src._pump is None and pump.done()  # stop() cancelled it


def test_thread_posting_through_the_ring_arrives_while_the_loop_sleeps():
    support.need_threads()
    bus = EventBus(isr_capacity=32)
    counter = Counter(bus)
    src = TickSource(HZ, bus, machine=None, deliver=False, profile=load_profile("unix"))
    pump, fired, delivered = _sleep_in_loop(src, 0.5)
    _check(src, bus, counter, fired, delivered, 0.5)
    assert pump.done()


def test_ticks_into_an_awaited_stream():
    support.need_threads()
    import asyncio

    m = hostmachine("rp2")
    bus = EventBus(isr_capacity=32)
    src = TickSource(HZ, bus, machine=m, profile=load_profile("rp2040"))

    async def main():
        numbers = []
        with bus.stream([EventTopic.TICK], 32) as ticks:
            src.start()
            try:
                while len(numbers) < 40:
                    event = await ticks.next(10000)  # a bound against hangs only
                    numbers.append(event.tick_number)
            finally:
                src.stop()
        return numbers, ticks.dropped

    numbers, dropped = asyncio.run(main())
    assert numbers == list(range(1, 41)), numbers  # each once, in order, none lost
    assert dropped == 0


def test_no_pump_outside_asyncio():
    support.need_threads()
    bus = EventBus(isr_capacity=32)
    src = TickSource(HZ, bus, machine=None, deliver=False, profile=load_profile("unix"))
    src.start()
    try:
        assert src._pump is None  # no running loop: bus.poll() (or the scheduler) delivers
    finally:
        src.stop()
    bus.poll()


def test_delivering_tick_thread_needs_no_pump():
    support.need_threads()
    import asyncio

    bus = EventBus(isr_capacity=32)
    counter = Counter(bus)
    src = TickSource(HZ, bus, machine=None, profile=load_profile("unix"))  # deliver=True

    async def main():
        src.start()
        assert src._pump is None  # the tick thread publishes itself
        await asyncio.sleep(0.3)
        src.stop()

    asyncio.run(main())
    assert counter.n == src.stats().delivered > 0


def test_pump_wake_in_a_hard_irq_allocates_nothing():
    support.need_heap_lock()
    import asyncio

    bus = EventBus(isr_capacity=8)
    got = []
    bus.subscribe(EventSubscription("got", [EventTopic.ALL], lambda e: got.append(e.tick_number)))
    post = bus.publish_from_isr
    tick = Event.Tick

    async def main():
        pump = asyncio.create_task(bus.pump())
        await asyncio.sleep(0)  # the pump waits: the ring's notify hook is installed
        assert bus._isr._schedule is bus._isr._pumps.schedule
        ok = support.assert_no_alloc(post, tick, 1000, 7)  # the post and the pump's wake-up
        assert ok is True
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.01)
        pump.cancel()
        return got

    assert asyncio.run(main()) == [7]


def test_pump_delivers_posts_from_another_thread():
    _thread = support.need_threads()
    import asyncio

    bus = EventBus(isr_capacity=64)
    got = []
    bus.subscribe(EventSubscription("got", [EventTopic.TICK], lambda e: got.append(e.tick_number)))

    def producer():
        for n in range(1, 51):
            while not bus.publish_from_isr(Event.Tick, 0, n):
                time.sleep(0.001)
            time.sleep(0.001)

    async def main():
        pump = asyncio.create_task(bus.pump())
        _thread.start_new_thread(producer, ())  # posts while the loop waits
        for _ in range(1000):
            if len(got) == 50:
                break
            await asyncio.sleep(0.005)
        pump.cancel()
        await asyncio.sleep(0)

    asyncio.run(main())
    assert got == list(range(1, 51))


def test_the_last_pump_gives_the_ring_its_scheduler_back():
    import asyncio

    bus = EventBus(isr_capacity=64)
    q = bus._isr
    own = q._schedule  # micropython.schedule, or None on CPython
    got = []
    bus.subscribe(EventSubscription("got", [EventTopic.TICK], lambda e: got.append(e.tick_number)))

    async def main():
        a = asyncio.create_task(bus.pump())
        b = asyncio.create_task(bus.pump())
        await asyncio.sleep(0)
        assert q._schedule is not own
        a.cancel()
        await asyncio.sleep(0)
        assert q._schedule is not own  # one pump still runs
        for n in range(1, 41):  # a burst: the pump takes 16 per turn, then asks again
            bus.publish_from_isr(Event.Tick, 0, n)
        for _ in range(10):
            await asyncio.sleep(0)
        b.cancel()
        await asyncio.sleep(0)

    asyncio.run(main())
    assert got == list(range(1, 41)), got
    assert q._schedule is own and q._pending == (own is None)
    bus.publish_from_isr(Event.Tick, 0, 41)  # the ring's own drain again
    bus.poll()
    assert got[-1] == 41


def test_a_tick_handler_that_stops_the_source_ends_its_pump():
    # The handler runs inside the pump's drain, and asyncio cannot cancel the running
    # task: stop() still ends the pump, and the ring gets its own scheduler back.
    support.need_threads()
    import asyncio

    m = hostmachine("rp2")
    bus = EventBus(isr_capacity=32)
    q = bus._isr
    own = q._schedule
    src = TickSource(HZ, bus, machine=m, profile=load_profile("rp2040"))
    seen = []

    def on_tick(event):
        seen.append(event.tick_number)
        if len(seen) == 3:
            src.stop()

    bus.subscribe(EventSubscription("stopper", [EventTopic.TICK], on_tick))

    async def main():
        src.start()
        pump = src._pump[0]
        for _ in range(500):  # a bound against hangs only
            if pump.done():
                break
            await asyncio.sleep(0.01)
        return pump.done()

    assert asyncio.run(main()) is True
    assert not src.stats().running and src._pump is None
    assert q._schedule is own and len(seen) >= 3


def test_a_ctrl_c_out_of_the_loop_leaves_the_ring_its_own_scheduler():
    # A KeyboardInterrupt leaves asyncio.run() with the pump task still queued: MicroPython's
    # asyncio never runs its finally (a fresh loop drops it, as helix_app.run does). stop()
    # gives the ring its scheduler back itself, so the source started again outside asyncio
    # (hx.start() after a Ctrl-C) delivers through it.
    support.need_threads()
    import asyncio
    import sys

    m = hostmachine("rp2")
    bus = EventBus(isr_capacity=32)
    counter = Counter(bus)
    q = bus._isr
    own = q._schedule
    src = TickSource(HZ, bus, machine=m, profile=load_profile("rp2040"))

    async def main():
        src.start()
        assert src._pump is not None
        await asyncio.sleep(0.1)
        raise KeyboardInterrupt  # what Ctrl-C raises in the running code

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    src.stop()
    if sys.implementation.name == "micropython":
        asyncio.new_event_loop()
    assert q._schedule is own  # (a drain of what was left may be pending on it)
    before = counter.n
    # no loop running: the scheduler (or bus.poll()) delivers. (MicroPython's asyncio still
    # names the interrupted task current: start() makes a pump task no loop runs, which
    # never takes the ring's drain.)
    src.start()
    try:
        for _ in range(50):
            time.sleep(0.01)
            if own is None:
                bus.poll()
    finally:
        src.stop()
    bus.poll()
    assert counter.n - before >= 10 and bus.isr_stats().dropped == 0, (counter.n, before, bus.isr_stats())
