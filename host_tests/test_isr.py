# helix_ipc.isr.IsrQueue: the IRQ post ring on its own (the bus-level tests are in
# test_isr_bus.py): ordering, overflow counts, schedule-queue-full recovery, the drain's
# error handling, and zero allocation on the posting side.
import support
from support import raises

from helix_ipc.isr import IsrQueue, check_capacity


def pair(a, b):
    return (a, b)


class Sink:
    def __init__(self):
        self.got = []
        self.publish = self.got.append


class Sched:
    """An injected micropython.schedule that allocates nothing: remembers the last
    callback and counts calls; raises RuntimeError while `full`."""

    def __init__(self):
        self.count = 0  # calls not yet run
        self.fn = None
        self.arg = None
        self.full = False

    def __call__(self, fn, arg):
        if self.full:
            raise RuntimeError  # as on a board under a locked heap: no message
        self.fn = fn
        self.arg = arg
        self.count += 1

    def run(self):
        if self.count:
            self.count = 0
            self.fn(self.arg)


def test_capacity_checked():
    sink = Sink()
    raises(TypeError, IsrQueue, 2.0, sink.publish)
    raises(TypeError, IsrQueue, True, sink.publish)
    raises(ValueError, IsrQueue, 0, sink.publish)
    raises(ValueError, check_capacity, 1 << 20)
    assert IsrQueue(5, sink.publish, schedule=None).stats().capacity == 5


def test_posting_order_preserved_and_kind_built_in_drain():
    sink = Sink()
    q = IsrQueue(16, sink.publish, schedule=None)
    for i in range(10):
        assert q.post(pair, i, -i) is True
    assert sink.got == []  # nothing is delivered in the posting context
    assert len(q) == 10
    assert q.poll() == 10
    assert sink.got == [(i, -i) for i in range(10)]
    s = q.stats()
    assert (s.posted, s.delivered, s.dropped, s.high_water, s.errors) == (10, 10, 0, 10, 0)


def test_kind_may_be_a_function_building_the_event():
    # TickSource posts such a converter; any callable taking (a, b) is a kind
    sink = Sink()
    q = IsrQueue(4, sink.publish, schedule=None)
    assert q.post(lambda a, b: ("built", a + b), 1, 2) is True
    q.poll()
    assert sink.got == [("built", 3)]


class OrderSink:
    """Counts deliveries and checks they come oldest first (keeps no list)."""

    def __init__(self):
        self.n = 0
        self.last = -1
        self.first = []
        self.out_of_order = 0

    def publish(self, ev):
        a = ev[0]
        if a <= self.last:
            self.out_of_order += 1
        self.last = a
        if self.n < 10:
            self.first.append(a)
        self.n += 1


def test_flood_into_small_ring_exact_counts():
    sink = OrderSink()
    q = IsrQueue(8, sink.publish, schedule=None)
    accepted = 0
    for i in range(100000):
        if q.post(pair, i, 0):
            accepted += 1
        if i % 10 == 9:
            q.poll()  # every batch of 10: 8 fit, 2 are dropped
    q.poll()
    s = q.stats()
    assert accepted == 80000
    assert (s.posted, s.delivered, s.dropped, s.high_water, s.errors) == (100000, 80000, 20000, 8, 0)
    assert sink.n == 80000 and sink.out_of_order == 0
    # oldest first; the newest of each batch were the ones dropped
    assert sink.first == [0, 1, 2, 3, 4, 5, 6, 7, 10, 11]
    assert sink.last == 99997


def test_one_drain_scheduled_at_a_time():
    sink = Sink()
    sched = Sched()
    q = IsrQueue(8, sink.publish, schedule=sched)
    for i in range(5):
        q.post(pair, i, 0)
    assert sched.count == 1  # the pending flag holds back the others
    sched.run()
    assert len(sink.got) == 5
    q.post(pair, 5, 0)
    assert sched.count == 1  # the drain cleared the flag: a new one is scheduled
    sched.run()
    assert sink.got[-1] == (5, 0)
    assert q.stats().schedule_failures == 0


def test_schedule_queue_full_counted_then_recovered_by_next_post():
    sink = Sink()
    sched = Sched()
    q = IsrQueue(8, sink.publish, schedule=sched)
    sched.full = True
    assert q.post(pair, 1, 0) is True  # accepted; only the drain could not be scheduled
    assert q.post(pair, 2, 0) is True  # retried, fails again
    assert q.stats().schedule_failures == 2
    assert sched.count == 0
    sched.full = False
    q.post(pair, 3, 0)  # retried and succeeds
    assert sched.count == 1
    sched.run()
    assert sink.got == [(1, 0), (2, 0), (3, 0)]
    s = q.stats()
    assert (s.posted, s.delivered, s.dropped, s.schedule_failures) == (3, 3, 0, 2)


def test_schedule_queue_full_recovered_by_poll_and_by_a_full_ring():
    sink = Sink()
    sched = Sched()
    q = IsrQueue(2, sink.publish, schedule=sched)
    sched.full = True
    q.post(pair, 1, 0)
    q.post(pair, 2, 0)
    assert q.post(pair, 3, 0) is False  # ring full: dropped, and a drain is retried
    assert q.stats().schedule_failures == 3
    assert q.poll() == 2  # poll needs no scheduler
    assert sink.got == [(1, 0), (2, 0)]
    sched.full = False
    q.post(pair, 4, 0)
    q.post(pair, 5, 0)
    assert q.post(pair, 6, 0) is False
    sched.run()
    s = q.stats()
    assert (s.posted, s.delivered, s.dropped) == (6, 4, 2)


class Reports:
    def __init__(self):
        self.got = []

    def __call__(self, where, error):
        self.got.append((where, error))


def test_a_kind_that_is_not_callable_is_refused_at_post_and_reported():
    sink = Sink()
    rep = Reports()
    q = IsrQueue(8, sink.publish, schedule=None, report=rep)
    q.post(pair, 1, 0)
    for bad in (None, "Interrupt", 42):
        assert q.post(bad, 2, 0) is False  # refused at once
    q.post(pair, 3, 0)
    assert sink.got == [] and rep.got == []  # nothing is reported in the posting context
    assert q.poll() == 5  # the refusals are queued in posting order, and taken
    assert sink.got == [(1, 0), (3, 0)]
    s = q.stats()
    assert (s.posted, s.delivered, s.dropped, s.errors) == (5, 2, 0, 3)
    # the drain reports each refusal with a TypeError naming the kind
    assert [w for w, e in rep.got] == ["isr drain"] * 3
    for (where, error), bad in zip(rep.got, ("None", "'Interrupt'", "42")):
        assert isinstance(error, TypeError) and "kind" in str(error) and bad in str(error)
    assert q.poll() == 0 and len(rep.got) == 3  # reported once


def test_a_build_or_publish_that_raises_is_counted_and_reported_with_the_exception():
    rep = Reports()
    got = []

    def publish(ev):
        if ev == "refuse":
            raise ValueError("publish refused")
        got.append(ev)

    def broken(a, b):
        raise KeyError(a)

    q = IsrQueue(8, publish, schedule=None, report=rep)
    q.post(pair, 1, 0)
    q.post(broken, 7, 0)  # callable: accepted; the drain's build raises
    q.post(lambda a, b: "refuse", 0, 0)
    q.post(pair, 3, 0)
    assert q.poll() == 4
    assert got == [(1, 0), (3, 0)]
    s = q.stats()
    assert (s.posted, s.delivered, s.errors) == (4, 2, 2)
    assert [w for w, e in rep.got] == ["isr drain", "isr drain"]
    assert isinstance(rep.got[0][1], KeyError) and isinstance(rep.got[1][1], ValueError)


def test_a_scheduled_drain_takes_a_bounded_batch_and_schedules_the_rest():
    from helix_ipc.isr import DRAIN_BATCH

    sink = Sink()
    sched = Sched()
    q = IsrQueue(64, sink.publish, schedule=sched)
    for i in range(DRAIN_BATCH * 2 + 3):
        q.post(pair, i, 0)
    assert sched.count == 1
    sched.run()  # one scheduler slot: at most DRAIN_BATCH events, then the next drain is queued
    assert len(sink.got) == DRAIN_BATCH and sched.count == 1
    sched.run()
    assert len(sink.got) == 2 * DRAIN_BATCH and sched.count == 1
    sched.run()
    assert sink.got == [(i, 0) for i in range(DRAIN_BATCH * 2 + 3)] and sched.count == 0
    assert q.stats().high_water == DRAIN_BATCH * 2 + 3
    assert q.poll() == 0  # poll() itself is not bounded by the batch
    for i in range(DRAIN_BATCH + 5):
        q.post(pair, i, 0)
    assert q.poll() == DRAIN_BATCH + 5


class _Stop(BaseException):
    pass


def test_keyboard_interrupt_in_the_drain_propagates_and_the_next_poll_goes_on():
    got = []

    def publish(ev):
        if ev == (2, 0):
            raise _Stop()
        got.append(ev)

    q = IsrQueue(8, publish, schedule=None)
    for i in range(4):
        q.post(pair, i, 0)
    raises(_Stop, q.poll)
    assert got == [(0, 0), (1, 0)]
    assert q.poll() == 1 and got == [(0, 0), (1, 0), (3, 0)]  # the event that raised is not retried
    assert q.stats().errors == 0


def test_high_water_counts_a_ring_filled_while_the_drain_runs():
    q = [None]
    got = []

    def publish(ev):
        got.append(ev)
        if ev == (0, 0):  # the IRQ fires during delivery: 3 posts fit, the 4th is dropped
            assert [q[0].post(pair, i, 0) for i in (10, 11, 12, 13)] == [True, True, True, False]

    q[0] = IsrQueue(4, publish, schedule=None)
    q[0].post(pair, 0, 0)
    q[0].post(pair, 1, 0)
    assert q[0].poll() == 2  # the posts made during the drain are left for the next one
    s = q[0].stats()
    assert (s.high_water, s.dropped, len(q[0])) == (4, 1, 3)
    assert q[0].poll() == 3 and got == [(0, 0), (1, 0), (10, 0), (11, 0), (12, 0)]


def test_nested_poll_from_a_handler_returns_zero():
    got = []
    q = [None]

    def publish(ev):
        got.append((ev, q[0].poll()))

    q[0] = IsrQueue(8, publish, schedule=None)
    q[0].post(pair, 1, 0)
    q[0].post(pair, 2, 0)
    assert q[0].poll() == 2
    assert got == [((1, 0), 0), ((2, 0), 0)]


def test_counters_wrap_below_2_to_the_30():
    sink = Sink()
    q = IsrQueue(4, sink.publish, schedule=None)
    top = (1 << 29) - 2
    q._w = q._r = top  # as after ~2**29 posts
    for i in range(4):
        q.post(pair, i, 0)
    assert q._w < 4 and q.poll() == 4
    assert sink.got == [(i, 0) for i in range(4)]
    assert q._r == q._w and q._r < (1 << 30)


def _post_all(q):
    # q.post(...) each time: `post = q.post` would allocate a bound method
    ok = q.post(pair, 1, 2)
    ok = q.post(pair, 3, True) and ok
    ok = q.post(pair, -5, False) and ok
    ok = q.post(pair, 0, 0) and ok
    return ok


def test_post_allocates_nothing_injected_schedule():
    support.need_heap_lock()
    sink = Sink()
    sched = Sched()
    q = IsrQueue(6, sink.publish, schedule=sched)
    assert support.assert_no_alloc(_post_all, q) is True
    assert sched.count == 1
    assert support.assert_no_alloc(q.post, pair, 7, 8) is True  # pending: no schedule call
    assert support.assert_no_alloc(q.post, pair, 9, 10) is True
    assert support.assert_no_alloc(q.post, pair, 11, 12) is False  # full: dropped, counted
    sched.run()
    assert sched.count == 0 and len(sink.got) == 6
    assert sink.got[4:] == [(7, 8), (9, 10)]
    s = q.stats()
    assert (s.posted, s.delivered, s.dropped) == (7, 6, 1)


def test_post_allocates_nothing_with_micropython_schedule():
    support.need_heap_lock()
    sink = Sink()
    q = IsrQueue(8, sink.publish)  # the real micropython.schedule; the drain runs on the main thread
    assert support.assert_no_alloc(_post_all, q) is True
    for _ in range(100):
        if len(sink.got) == 4:
            break
        q.poll()
    assert sink.got == [(1, 2), (3, True), (-5, False), (0, 0)]
    assert q.stats().schedule_failures == 0


def test_schedule_failure_under_heap_lock_allocates_nothing():
    support.need_heap_lock()
    sink = Sink()
    sched = Sched()
    sched.full = True
    q = IsrQueue(4, sink.publish, schedule=sched)
    assert support.assert_no_alloc(_post_all, q) is True
    assert q.stats().schedule_failures == 4


def test_the_allocation_check_can_fail():
    support.need_heap_lock()

    def allocating(q):
        q.post(pair, [1, 2], 0)  # building a list allocates
        return True

    sink = Sink()
    q = IsrQueue(4, sink.publish, schedule=None)
    e = raises(AssertionError, support.assert_no_alloc, allocating, q)
    assert "allocation" in str(e)


def test_channel_send_from_isr_allocates_nothing():
    support.need_heap_lock()
    from helix_ipc.channels import channel

    tx, rx = channel(2)
    obj = ("preallocated",)
    assert support.assert_no_alloc(tx.send_from_isr, 5) is True
    assert support.assert_no_alloc(tx.send_from_isr, obj) is True
    assert support.assert_no_alloc(tx.send_from_isr, 6) is False  # full: counted
    assert rx.drain() == [5, obj]
    assert tx.stats().dropped == 1


def test_post_frames_allocate_nothing_counted_with_mem_total():
    # mem_total sees frames heap_lock cannot (a bytecode frame over the C-stack budget).
    # (A full schedule queue is proven under heap_lock above: outside a locked heap,
    # raising the RuntimeError itself allocates the exception.)
    sink = Sink()
    sched = Sched()
    q = IsrQueue(4096, sink.publish, schedule=sched)
    assert support.frame_alloc(q.post, pair, 1, 2) == 0  # schedules once, then pending
    assert support.frame_alloc(q.post, None, 1, 2) == 0  # refused kinds
    full = IsrQueue(1, sink.publish, schedule=sched)
    full.post(pair, 0, 0)
    assert support.frame_alloc(full.post, pair, 1, 2) == 0  # ring full: dropped
    assert full.stats().dropped > 64
