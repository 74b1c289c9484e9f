# Channels fed from a hard timer IRQ of the host machine (tools/hostmachine, rp2 flavour:
# the callback runs under heap_lock with the IRQ mask held) while the main thread sends
# on the same channel and receives: no allocation in the IRQ (an allocation would raise
# MemoryError there and disable the timer), every item accepted arrives once and in
# order, and the counters are exact, including the IRQ's refusals because a task send
# held the lock (the host machine's disable_irq is Python code, so its window between
# taking the lock and masking is far wider than a board's).
import time

from test_hostmachine import hostmachine  # puts the host machine on sys.path first

import support

from helix_ipc import channel, ChannelEmpty, ChannelFull


class IrqProducer:
    """A hard timer callback that sends its count with send_from_isr."""

    def __init__(self, tx):
        self.tx = tx
        self.n = 0
        self.accepted = 0
        self.refused = 0
        self.cb = self.fire  # bound once: taking it in the IRQ would allocate

    def fire(self, _timer):
        n = self.n + 1
        self.n = n
        if self.tx.send_from_isr(-n):
            self.accepted += 1
        else:
            self.refused += 1


def test_hard_irq_sends_beside_task_sends_exact_counts():
    support.need_threads()
    m = hostmachine("rp2")
    tx, rx = channel(4)
    prod = IrqProducer(tx.clone())
    errors_before = len(m.irq_errors)
    timer = m.Timer(-1)
    timer.init(mode=m.Timer.PERIODIC, freq=2000, callback=prod.cb, hard=True)
    sent = full = 0
    task_got = 0  # task items arrive as 0, 1, 2, ...
    last_irq = 0
    irq_got = 0
    t0 = time.time()
    while prod.n < 400 and time.time() - t0 < 60:
        try:
            tx.send(sent)
            sent += 1
        except ChannelFull:
            full += 1
        for _ in range(3):
            try:
                item = rx.try_recv()
            except ChannelEmpty:
                break
            if item >= 0:
                assert item == task_got, (item, task_got)  # once each, in order
                task_got += 1
            else:
                assert item < last_irq, (item, last_irq)  # in order
                last_irq = item
                irq_got += 1
    timer.deinit()
    time.sleep(0.05)  # a callback already running finishes
    for item in rx.drain():
        if item >= 0:
            assert item == task_got
            task_got += 1
        else:
            irq_got += 1
    assert timer.error is None and len(m.irq_errors) == errors_before  # nothing allocated
    assert prod.n >= 400
    assert task_got == sent  # every task item once, in order
    assert irq_got == prod.accepted and prod.accepted + prod.refused == prod.n
    s = rx.stats()
    assert s.sent == sent + prod.accepted == s.received
    assert s.dropped == full + prod.refused, (s, full, prod.refused)


def _send_recv(tx, rx):
    tx.send(1)
    return rx.try_recv()


def test_masked_send_allocates_nothing():
    # With the host machine's disable_irq (MicroPython: it is `machine` here) task sends
    # take the IRQ-masking path; it allocates nothing either.
    hostmachine("rp2")
    from helix_ipc import channels

    tx, rx = channel(2)
    if support.MICROPYTHON:
        assert channels._MASK_IRQ and tx.send == rx._push_masked
    _send_recv(tx, rx)
    assert support.assert_no_alloc(_send_recv, tx, rx) == 1
    assert support.frame_alloc(_send_recv, tx, rx) == 0
