# Channels under threads: clone/close churn while another thread sends (issue 11 #1),
# exact counters with concurrent senders (#2), send_from_isr racing task sends, the
# notify hook, the no-threads lock, and MemoryError at every allocation of channel(),
# clone() and oneshot(). Every count here is exact: zero loss, zero duplication.
import gc
import sys
import time

import support
from support import need_threads, raises

from helix_ipc import channel, oneshot, ChannelFull, ChannelEmpty, ChannelClosed


def _racy(body):
    # CPython switches threads only every 5 ms: switch as often as it can while body()
    # runs, so that a race shows as on the unix port (no GIL) and the boards.
    set_interval = getattr(sys, "setswitchinterval", None)
    if set_interval is None:
        return body()
    old = sys.getswitchinterval()
    set_interval(1e-6)
    try:
        return body()
    finally:
        set_interval(old)


def _wait(flag, n, what, timeout_s=120):
    t0 = time.time()
    while flag[0] < n:
        time.sleep(0.001)
        assert time.time() - t0 < timeout_s, "timed out waiting for " + what


def test_clone_and_close_while_another_thread_sends_loses_nothing():
    _racy(_clone_and_close_while_another_thread_sends_loses_nothing)


def _clone_and_close_while_another_thread_sends_loses_nothing():
    # The repro: a thread sends 0..n-1 on tx (retrying on ChannelFull) while this
    # thread clones, sends -1 on the clone and closes it, over and over, and receives.
    _thread = need_threads()
    n = 200000
    tx, rx = channel(1024)
    done = [0]

    def produce():
        send = tx.send
        i = 0
        while i < n:
            try:
                send(i)
                i += 1
            except ChannelFull:
                pass
        done[0] = 1

    _thread.start_new_thread(produce, ())
    expect = 0
    minus = 0  # -1 items received
    clone_sends = 0  # clone sends that succeeded
    clone_full = 0
    while True:
        c = tx.clone()
        try:
            c.send(-1)
            clone_sends += 1
        except ChannelFull:
            clone_full += 1
        c.close()
        finished = done[0]
        while True:
            try:
                item = rx.try_recv()
            except ChannelEmpty:
                break
            if item == -1:
                minus += 1
            else:
                assert item == expect, "producer item %d arrived, expected %d" % (item, expect)
                expect += 1
        if finished and not len(rx):
            break
    assert expect == n, (expect, n)
    assert minus == clone_sends, (minus, clone_sends)
    s = rx.stats()
    assert s.sent == n + clone_sends and s.received == s.sent, (s, n, clone_sends)
    assert s.queue_length == 0
    tx.close()
    assert rx.is_closed()
    raises(ChannelClosed, rx.try_recv)


def test_dropped_is_exact_with_concurrent_senders():
    _racy(_dropped_is_exact_with_concurrent_senders)


def _dropped_is_exact_with_concurrent_senders():
    _thread = need_threads()
    threads, per = 4, 20000
    tx, rx = channel(1)
    senders = [tx.clone() for _ in range(threads)]
    full = [0] * threads
    ok = [0] * threads
    done = [0]
    lock = _thread.allocate_lock()

    def produce(k):
        send = senders[k].send
        for i in range(per):
            try:
                send(i)
                ok[k] += 1
            except ChannelFull:
                full[k] += 1
        with lock:
            done[0] += 1

    for k in range(threads):
        _thread.start_new_thread(produce, (k,))
    got = 0
    while done[0] < threads or len(rx):
        try:
            rx.try_recv()
            got += 1
        except ChannelEmpty:
            pass
    s = rx.stats()
    assert sum(ok) + sum(full) == threads * per
    assert s.dropped == sum(full), (s.dropped, sum(full))
    assert s.sent == sum(ok) == got == s.received, (s, sum(ok), got)
    assert sum(full) > 0  # capacity 1 with four senders: refusals happened


def test_send_from_isr_racing_task_sends_counts_every_refusal():
    _racy(_send_from_isr_racing_task_sends_counts_every_refusal)


def _send_from_isr_racing_task_sends_counts_every_refusal():
    _thread = need_threads()
    per = 20000
    tx, rx = channel(8)
    isr_tx = tx.clone()
    res = {"task_ok": 0, "task_full": 0, "isr_ok": 0, "isr_refused": 0}
    done = [0]
    lock = _thread.allocate_lock()

    def task():
        send = tx.send
        for i in range(per):
            try:
                send(i)
                res["task_ok"] += 1
            except ChannelFull:
                res["task_full"] += 1
        with lock:
            done[0] += 1

    def isr():
        post = isr_tx.send_from_isr
        for i in range(per):
            if post(-1 - i):
                res["isr_ok"] += 1
            else:
                res["isr_refused"] += 1
        with lock:
            done[0] += 1

    _thread.start_new_thread(task, ())
    _thread.start_new_thread(isr, ())
    last_task, last_isr = -1, 0
    got = 0
    while done[0] < 2 or len(rx):
        try:
            item = rx.try_recv()
        except ChannelEmpty:
            continue
        got += 1
        if item >= 0:
            assert item > last_task
            last_task = item
        else:
            assert item < last_isr  # each producer's items stay in order
            last_isr = item
    s = rx.stats()
    assert got == res["task_ok"] + res["isr_ok"] == s.sent == s.received, (got, res, s)
    assert s.dropped == res["task_full"] + res["isr_refused"], (s, res)
    # the refusals of send_from_isr because the lock was busy are kept on its Sender
    # until it closes, then folded into the channel's count
    isr_tx.close()
    assert rx.stats().dropped == s.dropped


def test_clone_close_from_many_threads_keeps_the_sender_count():
    _racy(_clone_close_from_many_threads_keeps_the_sender_count)


def _clone_close_from_many_threads_keeps_the_sender_count():
    _thread = need_threads()
    threads, rounds = 4, 3000
    tx, rx = channel(4)
    done = [0]
    lock = _thread.allocate_lock()

    def churn():
        for _ in range(rounds):
            c = tx.clone()
            c2 = c.clone()
            c.close()
            c2.close()
            c2.close()
        with lock:
            done[0] += 1

    for _ in range(threads):
        _thread.start_new_thread(churn, ())
    _wait(done, threads, "clone/close threads")
    assert not rx.is_closed()
    tx.send(1)
    tx.close()
    assert rx.is_closed()
    assert rx.try_recv() == 1
    raises(ChannelClosed, rx.try_recv)


def test_notify_hook_runs_after_each_item_queued_or_taken():
    tx, rx = channel(2)
    calls = []
    rx.set_notify(lambda: calls.append(len(rx)))
    tx.send("a")
    assert tx.send_from_isr("b") is True
    assert calls == [1, 2]
    raises(ChannelFull, tx.send, "c")  # refused: no call
    assert tx.send_from_isr("d") is False
    assert calls == [1, 2]
    assert rx.try_recv() == "a"  # room for a waiting sender
    assert calls == [1, 2, 1]
    tx2 = tx.clone()
    tx2.send("e")
    assert calls == [1, 2, 1, 2]
    raises(ChannelFull, tx2.try_send, "e2")
    rx.set_notify(None)
    rx.try_recv()
    tx.send("f")
    assert calls == [1, 2, 1, 2]  # hook removed
    s = rx.stats()
    assert (s.sent, s.received, s.dropped) == (4, 2, 3), s
    rx.set_notify(lambda: calls.append("hook"))
    rx.close()
    assert calls[-1] == "hook"  # a close runs the hook too (a waiting task sees it)
    raises(ChannelClosed, tx.send, 1)  # a closed channel stays closed with a hook
    rx.set_notify(None)
    raises(ChannelClosed, tx.send, 1)
    assert rx.drain() == ["e", "f"]
    raises(ChannelClosed, rx.try_recv)  # closed by the receiver and drained


def test_send_bound_before_the_last_close_is_refused():
    tx, rx = channel(4)
    send = tx.send
    tx.close()
    raises(ChannelClosed, send, 1)
    raises(ChannelClosed, tx.send, 1)
    assert tx.send_from_isr(1) is False
    assert rx.stats().dropped == 1
    raises(ChannelClosed, rx.try_recv)


def test_no_threads_lock_is_the_irq_mask():
    # Where _thread is missing the channel locks with the IRQ mask (_IrqLock).
    from helix_ipc import channels

    tx, rx = channel(2)
    rx._lock = channels._IrqLock()
    tx.send(1)
    assert tx.send_from_isr(2) is True
    raises(ChannelFull, tx.send, 3)
    c = tx.clone()
    c.close()
    assert rx.stats().dropped == 1
    assert rx.drain() == [1, 2]


# -- MemoryError leaves nothing half-made ----------------------------------------------

def _each_allocation_point(call, check):
    """Run call() with only `room` bytes of the heap free (one contiguous block freed
    just before the call, everything else full), for room = 0, 16, 32, ... until it
    succeeds; after every MemoryError run check() with the heap free again. Returns
    (number of attempts that raised MemoryError, the successful result).
    The heap is filled inline, here: a helper's own frame (heap-allocated when large)
    would be freed on its return and leave room."""
    support.need_heap_lock()  # MicroPython: a heap that can be exhausted
    failures = 0
    room = 0
    x = 0.5
    while room < 8192:
        gc.collect()
        box = [None, None]
        slots = [None] * (gc.mem_free() // 48 + 64)  # made first: a growing list fails early
        reserve = bytearray(room) if room else None
        n = 0
        for _ in range(2):  # again after collecting what the MemoryErrors left behind
            size = 1 << 16
            while n < len(slots):
                try:  # blocks largest first, then floats (one GC block each)
                    if size >= 64:
                        slots[n] = bytearray(size - 16)
                    else:
                        slots[n] = x + n
                    n += 1
                except MemoryError:
                    if size < 64:
                        break
                    size >>= 1
            gc.collect()
        reserve = None  # noqa: F841 - freed: the allocator collects it when it runs short
        try:
            box[0] = call()
        except MemoryError:
            box[1] = MemoryError
        slots = None
        gc.collect()
        if box[1] is None:
            return failures, box[0]
        failures += 1
        check()
        room += 16
    raise AssertionError("call never succeeded")


def test_channel_memory_error_leaves_nothing():
    before = [None]

    def check():
        gc.collect()
        # nothing half-made survives: a working channel afterwards, no heap kept
        tx, rx = channel(4)
        tx.send(1)
        assert rx.try_recv() == 1

    failures, pair = _each_allocation_point(lambda: channel(4), check)
    assert failures > 0
    tx, rx = pair
    tx.send(2)
    assert rx.drain() == [2] and rx.stats().sent == 1
    del before


def test_clone_memory_error_leaves_the_sender_count():
    tx, rx = channel(4)
    for _ in range(6):
        tx.clone().close()  # room in the senders list for the test's clone is not a given

    def check():
        s = rx.stats()
        assert len(rx._senders) == 1 and s.sent == 0

    failures, c = _each_allocation_point(tx.clone, check)
    assert failures > 0
    c.send(1)
    tx.close()
    assert not rx.is_closed()
    c.close()
    assert rx.is_closed() and rx.drain() == [1]


def test_oneshot_memory_error_leaves_nothing():
    def check():
        t, r = oneshot()
        t.send(1)
        assert r.try_recv() == 1

    failures, pair = _each_allocation_point(oneshot, check)
    assert failures > 0
    t, r = pair
    t.send("x")
    assert r.try_recv() == "x"
