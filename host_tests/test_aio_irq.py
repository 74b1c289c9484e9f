# Tasks woken by hard IRQs of the host machine (tools/hostmachine, rp2 flavour: the timer
# callback runs under heap_lock with the IRQ mask held, in its own thread): a channel fed
# by send_from_isr, and an event stream fed by publish_from_isr through the scheduled
# drain. Nothing allocates in the IRQ (an allocation would raise there and be recorded in
# irq_errors), every accepted item reaches the awaiting task once and in order.
import time

from test_hostmachine import hostmachine, need_schedule  # puts the host machine on sys.path first

import support

from helix_ipc import Event, EventBus, EventTopic, channel

LONG = 10000  # ms: a bound against hangs only


class IrqProducer:
    """A hard timer callback that sends its count with send_from_isr (or posts it)."""

    def __init__(self, post):
        self.post = post
        self.n = 0
        self.accepted = 0
        self.cb = self.fire  # bound once: taking it in the IRQ would allocate

    def fire(self, _timer):
        n = self.n + 1
        self.n = n
        if self.post(n):
            self.accepted += 1


def _stop(timer):
    timer.deinit()
    time.sleep(0.05)  # a callback already running finishes


def test_hard_irq_send_from_isr_wakes_an_awaiting_task():
    support.need_threads()
    import asyncio

    m = hostmachine("rp2")
    errors_before = len(m.irq_errors)
    tx, rx = channel(4)
    prod = IrqProducer(tx.clone().send_from_isr)

    async def main():
        timer = m.Timer(-1)
        timer.init(mode=m.Timer.PERIODIC, freq=2000, callback=prod.cb, hard=True)
        last = 0
        got = 0
        try:
            while got < 300:
                item = await rx.recv(LONG)
                assert item > last, (item, last)  # in order (refusals leave gaps)
                last = item
                got += 1
        finally:
            _stop(timer)
        for item in rx.drain():
            assert item > last
            last = item
            got += 1
        return got

    got = asyncio.run(main())
    assert timer_errors(m, errors_before) == []
    assert got == prod.accepted  # every accepted item once
    assert rx.stats().dropped == prod.n - prod.accepted


def timer_errors(m, before):
    return m.irq_errors[before:]


def test_hard_irq_publish_from_isr_drained_to_an_awaiting_stream():
    support.need_threads()
    need_schedule()  # the drain runs through micropython.schedule (MicroPython only)
    import asyncio

    m = hostmachine("rp2")
    errors_before = len(m.irq_errors)
    bus = EventBus(isr_capacity=16)
    stream = bus.stream([EventTopic.INTERRUPT], capacity=16)
    post = bus.publish_from_isr
    kind = Event.Interrupt

    def post_n(n):
        return post(kind, n, 0)

    prod = IrqProducer(post_n)

    async def main():
        timer = m.Timer(-1)
        timer.init(mode=m.Timer.PERIODIC, freq=1000, callback=prod.cb, hard=True)
        last = 0
        got = 0
        try:
            while got < 200:
                e = await stream.next(LONG)
                assert e.vector > last, (e.vector, last)
                last = e.vector
                got += 1
        finally:
            _stop(timer)
        bus.poll()
        while len(stream):
            e = await stream.next(0)
            assert e.vector > last
            last = e.vector
            got += 1
        return got

    got = asyncio.run(main())
    stream.close()
    assert timer_errors(m, errors_before) == []
    s = bus.isr_stats()
    assert s.posted == prod.accepted and s.delivered == prod.accepted
    assert got + stream.dropped == prod.accepted
