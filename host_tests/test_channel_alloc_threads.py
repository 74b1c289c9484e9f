# Channels: zero allocation in steady state, IRQ-path send, and multi-producer stress.
import time

import support
from support import assert_no_alloc, need_threads, raises

from helix_ipc import channel, ChannelFull


def _pairs(tx, rx, n):
    send = tx.send
    recv = rx.try_recv
    total = 0
    for i in range(n):
        send(i)
        total += recv()
    return total


def test_send_try_recv_allocate_nothing():
    tx, rx = channel(16)
    _pairs(tx, rx, 10)  # warm up
    assert assert_no_alloc(_pairs, tx, rx, 1000) == sum(range(1000))


def _isr_sends(tx, n):
    ok = 0
    for i in range(n):
        if tx.send_from_isr(i):
            ok += 1
    return ok


def test_send_from_isr_allocates_nothing_and_counts_drops():
    tx, rx = channel(8)
    accepted = assert_no_alloc(_isr_sends, tx, 20)
    assert accepted == 8
    assert rx.stats().dropped == 12
    assert rx.drain() == list(range(8))


def test_locked_send_with_clones_allocates_nothing():
    tx, rx = channel(16)
    tx2 = tx.clone()
    _pairs(tx2, rx, 10)
    assert assert_no_alloc(_pairs, tx2, rx, 1000) == sum(range(1000))


def test_four_producers_one_consumer_stress():
    _thread = need_threads()
    producers, per = 4, 10000
    tx, rx = channel(8)
    senders = [tx.clone() for _ in range(producers)]
    tx.close()
    finished = [0]
    lock = _thread.allocate_lock()

    def produce(pid, sender):
        send = sender.send
        for seq in range(per):
            item = pid * per + seq
            while True:
                try:
                    send(item)
                    break
                except ChannelFull:
                    time.sleep(0)
        sender.close()
        with lock:
            finished[0] += 1

    for pid in range(producers):
        _thread.start_new_thread(produce, (pid, senders[pid]))

    last = [-1] * producers
    seen = 0
    deadline = time.time() + 120
    while seen < producers * per:
        try:
            item = rx.try_recv()
        except Exception:
            time.sleep(0)
            assert time.time() < deadline, "stress test stalled at %d items" % seen
            continue
        pid, seq = divmod(item, per)
        assert seq == last[pid] + 1, (pid, seq, last[pid])
        last[pid] = seq
        seen += 1
    while finished[0] < producers:
        time.sleep(0.001)
    assert last == [per - 1] * producers
    assert rx.is_closed()
    s = rx.stats()
    assert s.sent == producers * per and s.received == producers * per
    raises(Exception, rx.try_recv)


def _send_recv(tx, rx):
    tx.send(1)
    return rx.try_recv()


def test_send_recv_and_send_from_isr_frames_allocate_nothing():
    # micropython.mem_total deltas see heap-allocated frames too (heap_lock does not):
    # send, try_recv, send_from_isr and their refusal paths' checks cost 0 bytes per call
    from support import frame_alloc

    tx, rx = channel(4)
    assert frame_alloc(_send_recv, tx, rx) == 0
    tx2 = tx.clone()  # two senders: the same path
    assert frame_alloc(_send_recv, tx2, rx) == 0
    assert frame_alloc(tx.send_from_isr, 1) == 0  # the first 4 are queued, the rest refused
    assert rx.stats().dropped > 0
    rx.drain()
    rx.set_notify(rx.drain)  # hooked: the checked path, and the hook's own drain()
    tx.send(1)
    assert len(rx) == 0
    rx.set_notify(None)
    assert frame_alloc(_send_recv, tx, rx) == 0


def _stats_under_heap_lock(rx):
    import micropython

    micropython.heap_lock()
    try:
        rx.stats()
        raised = False
    except MemoryError:
        raised = True
    micropython.heap_unlock()
    return raised


def test_nothing_allocates_while_the_lock_is_held():
    # A MemoryError while the channel's lock is held would leave it held for good.
    # stats() builds its record only after releasing the lock; close() and set_notify()
    # allocate nothing at all.
    support.need_heap_lock()
    tx, rx = channel(2)
    tx2 = tx.clone()
    tx.send(1)
    rx.stats()  # loads _record
    assert support.run_in_thread(lambda: _stats_under_heap_lock(rx)) is True
    assert not rx._lock.locked()
    tx.send(2)  # the lock is free
    assert assert_no_alloc(rx.set_notify, None) is None
    assert assert_no_alloc(tx2.close) is None
    assert assert_no_alloc(rx.close) is None
    assert rx.drain() == [1, 2]
