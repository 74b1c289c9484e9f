# Event bus: publishing allocates nothing (unix port, under heap_lock), on the fast path,
# the counting slow path, nested publishes and a paused bus; and the fast path's frame
# stays on the C stack (MicroPython heap-allocates, then frees, frames above 11 words,
# which neither heap_lock nor a gc.mem_alloc delta around the loop can see).
import gc

from support import assert_no_alloc, need_heap_lock, skip, MICROPYTHON

from helix_ipc import Event, EventBus, EventResponse, EventSubscription, EventTopic


def _none(event):
    return None


def _handled(event):
    return EventResponse.HANDLED


def _ignored(event):
    return EventResponse.IGNORED


def _deferred(event):
    return EventResponse.DEFERRED


def _publish_n(bus, event, n):
    # bus.publish(...) in the loop: `p = bus.publish` would allocate a bound method
    total = 0
    for i in range(n):
        r = bus.publish(event)
        total += r.handled + r.ignored + r.deferred
    return total


def _bus(*handlers):
    bus = EventBus()
    for h in handlers:
        bus.subscribe(EventSubscription("h", [EventTopic.INTERRUPT], h))
    return bus


def test_publish_to_one_subscriber_allocates_nothing():
    need_heap_lock()
    bus = _bus(_none)
    event = Event.Interrupt(3, 0)
    _publish_n(bus, event, 2)  # the first publish after a change builds the index
    assert assert_no_alloc(_publish_n, bus, event, 500) == 500
    assert bus.events_dispatched == 502


def test_publish_with_every_response_kind_allocates_nothing():
    need_heap_lock()
    bus = _bus(_none, _handled, _ignored, _deferred, _none)
    bus.subscribe(EventSubscription("all", [EventTopic.ALL], _ignored))
    event = Event.Interrupt(3, 0)
    _publish_n(bus, event, 2)
    assert assert_no_alloc(_publish_n, bus, event, 300) == 300 * 6
    r = bus.publish(event)
    assert (r.handled, r.ignored, r.deferred, r.errors) == (3, 2, 1, 0)


def test_publish_among_many_topics_allocates_nothing():
    need_heap_lock()
    bus = _bus(_none)
    for i in range(50):
        bus.subscribe(EventSubscription("o", [EventTopic.Custom("o%d" % i)], _none))
    bus.subscribe(EventSubscription("t", [EventTopic.TICK], _none))
    custom = Event.Custom("o7")
    unknown = Event.Custom("nobody")
    _publish_n(bus, custom, 2)
    assert assert_no_alloc(_publish_n, bus, custom, 200) == 200
    assert assert_no_alloc(_publish_n, bus, unknown, 200) == 0


class _Relay:
    # republishes a prebuilt event; allocates nothing itself
    def __init__(self, bus, event):
        self.bus = bus
        self.event = event

    def __call__(self, event):
        self.bus.publish(self.event)


def test_nested_publish_allocates_nothing():
    need_heap_lock()
    bus = EventBus()
    inner = Event.Custom("inner")
    relay = _Relay(bus, inner)
    bus.subscribe(EventSubscription("relay", [EventTopic.TICK], relay))
    bus.subscribe(EventSubscription("in", [EventTopic.Custom("inner")], _ignored))
    event = Event.Tick(0, 0)
    _publish_n(bus, event, 2)
    assert assert_no_alloc(_publish_n, bus, event, 200) == 200
    assert bus.events_dispatched == 2 * 202


def test_paused_bus_allocates_nothing_and_counts():
    need_heap_lock()
    bus = _bus(_none)
    event = Event.Interrupt(3, 0)
    _publish_n(bus, event, 1)
    bus.pause()
    _publish_n(bus, event, 1)
    assert assert_no_alloc(_publish_n, bus, event, 200) == 0
    assert bus.events_dropped == 201


_probe = [0]


def _probe_handler(event):
    _probe[0] = gc.mem_alloc()


def _measure_frames(bus, event):
    # bytes the publish frames hold on the heap while the handler runs
    gc.collect()
    gc.disable()
    try:
        _probe_handler(event)
        direct = _probe[0]
        bus.publish(event)
        return _probe[0] - direct
    finally:
        gc.enable()


def test_fast_path_frame_is_not_heap_allocated():
    if not MICROPYTHON:
        skip("MicroPython frame allocation: CPython frames are not on the gc heap")
    bus = _bus(_probe_handler)
    event = Event.Interrupt(3, 0)
    bus.publish(event)
    assert _measure_frames(bus, event) == 0
    # the probe itself can see a heap frame: a function with a big frame shows up
    assert _measure_frames(_BigFrameBus(), event) > 0


class _BigFrameBus:
    def publish(self, event):
        a = b = c = d = f = g = h = i = j = k = 0
        _probe_handler(event)
        return a + b + c + d + f + g + h + i + j + k


# -- MemoryError atomicity and flat memory (MicroPython: a bounded heap) -----------------

def _need_bounded_heap():
    if not MICROPYTHON:
        skip("MemoryError atomicity needs a heap that can be exhausted (MicroPython)")


def _bus_state(bus, subs):
    # what a failed call must not change: subscriptions, index entries (by identity), and
    # which handlers a publish of every topic reaches
    reach = []
    for key in sorted(bus._index, key=repr):
        reach.append((key, id(bus._index[key]), [x.name for x in bus._index[key][2]]))
    return (bus.subscription_count(), [s.id for s in bus.subscriptions()], reach,
            id(bus._alls), [s._bus is bus for s in subs])


def _prepare_bus(n=20):
    bus = EventBus()
    subs = [EventSubscription("t%d" % i, [EventTopic.Custom("c%d" % i), EventTopic.TICK], _none)
            for i in range(n)]
    for s in subs:
        bus.subscribe(s)
    return bus


def _subscribe_atomically(bus, sub):
    # the sweep of bus_helpers.atomic_under_exhaustion over bus.subscribe(sub)
    from bus_helpers import atomic_under_exhaustion

    def state():
        return (_bus_state(bus, []), sub._bus is None)

    failures, sid = atomic_under_exhaustion(lambda: bus.subscribe(sub), state)
    assert sid == sub.id and sub._bus is bus
    return failures


def test_subscribe_that_raises_memory_error_leaves_the_bus_as_it_was():
    _need_bounded_heap()
    for topics in ([EventTopic.Custom("new1"), EventTopic.Custom("new2"), EventTopic.TICK],  # new topics
                   [EventTopic.TICK, EventTopic.Custom("c3")],  # existing topics only
                   [EventTopic.ALL]):  # an ALL subscription rebuilds every topic's entry
        bus = _prepare_bus()
        sub = EventSubscription("late", topics, _ignored)
        failures = _subscribe_atomically(bus, sub)
        assert failures >= 3, failures  # the sweep met MemoryError at several points
        r = bus.publish(Event.Tick(0, 0))
        assert (r.handled, r.ignored) == (20, 1)  # the subscription works once it succeeded


def test_subscribe_to_new_topics_that_raises_memory_error_while_the_index_grows():
    # The index dict allocates a bigger table now and then as topics are added: with
    # these sizes some subscribe in the sweep fails exactly there.
    _need_bounded_heap()
    for n in (0, 2, 5):
        bus = _prepare_bus(n)
        sub = EventSubscription("late", [EventTopic.Custom("new1"), EventTopic.Custom("new2")], _ignored)
        assert _subscribe_atomically(bus, sub) >= 1
        assert bus.publish(Event.Custom("new2")).ignored == 1


def test_priority_change_and_pause_that_raise_memory_error_change_nothing():
    from bus_helpers import atomic_under_exhaustion

    _need_bounded_heap()
    bus = _prepare_bus()
    sub = bus.subscriptions()[3]
    state = lambda: (_bus_state(bus, []), sub.priority, sub.is_active)  # noqa: E731
    failures, _ = atomic_under_exhaustion(lambda: sub.with_priority(1), state)
    assert failures >= 1 and sub.priority == 1
    assert bus._index[EventTopic.TICK._key][2][0] is sub  # first now
    failures, _ = atomic_under_exhaustion(sub.pause, state)
    assert failures >= 1 and not sub.is_active


def test_event_bus_that_raises_memory_error_changes_nothing():
    import helix_ipc.bus as busmod
    from bus_helpers import atomic_under_exhaustion

    _need_bounded_heap()
    EventBus()  # the board profile and every lazily loaded part exist now
    glob = busmod.global_event_bus()

    def state():
        return (busmod._next_id[0], len(busmod._oks), busmod._global[0] is glob, glob.subscription_count())

    failures, bus = atomic_under_exhaustion(EventBus, state)
    assert failures >= 3 and isinstance(bus, EventBus)
    bus.subscribe(EventSubscription("s", [EventTopic.TICK], _none))
    assert bus.publish(Event.Tick(0, 0)).handled == 1


def test_subscribe_unsubscribe_churn_keeps_memory_flat():
    import gc

    _need_bounded_heap()
    bus = _prepare_bus()
    all_sub = EventSubscription("all", [EventTopic.ALL], _none)
    bus.subscribe(all_sub)

    def churn(n):
        for i in range(n):
            s = EventSubscription("churn", [EventTopic.Custom("k%d" % (i % 7)), EventTopic.TICK], _none)
            sid = bus.subscribe(s)
            s.with_priority(i % 256)
            s.pause()
            s.resume()
            bus.publish(Event.Tick(0, i))
            assert bus.unsubscribe(sid)

    churn(200)
    gc.collect()
    before = gc.mem_alloc()
    churn(2000)
    gc.collect()
    after = gc.mem_alloc()
    assert after - before <= 64, (before, after)
    assert bus.subscription_count() == 21 and len(bus._index) == 21  # 20 custom + TICK


def test_a_thousand_subscriptions_on_their_own_topics_grow_in_small_pieces():
    # each subscribe builds the entries of its own topics only: no block as large as the
    # registry (1000 topics would need ~16 KB for one table copy of pointers)
    _need_bounded_heap()
    import gc

    bus = EventBus(isr_capacity=8)
    biggest = [0]
    for i in range(1000):
        gc.collect()
        a = gc.mem_alloc()
        bus.subscribe(EventSubscription("s", [EventTopic.Custom("t%d" % i)], _none))
        grown = gc.mem_alloc() - a
        if grown > biggest[0]:
            biggest[0] = grown
    assert bus.publish(Event.Custom("t999")).handled == 1
    assert bus.subscription_count() == 1000
    # the index dict itself grows by doubling (its table is the only block that scales)
    assert biggest[0] < 40 * 1024


# -- frames on the C stack, counted with micropython.mem_total (board mode too) ----------

def test_publish_frames_allocate_nothing_on_every_path():
    from support import frame_alloc

    event = Event.Interrupt(3, 0)
    fast = _bus(_none, _handled)
    assert frame_alloc(fast.publish, event) == 0  # every handler handled: the shared record
    counted = _bus(_none, _ignored, _deferred, _handled)
    counted.subscribe(EventSubscription("all", [EventTopic.ALL], _ignored))
    assert frame_alloc(counted.publish, event) == 0  # the depth record is filled
    nested = EventBus()
    nested.subscribe(EventSubscription("relay", [EventTopic.TICK], _Relay(nested, Event.Custom("inner"))))
    nested.subscribe(EventSubscription("in", [EventTopic.Custom("inner")], _deferred))
    assert frame_alloc(nested.publish, Event.Tick(0, 0)) == 0
    paused = _bus(_none)
    paused.pause()
    assert frame_alloc(paused.publish, event) == 0
    assert paused.events_dropped > 64


def test_the_frame_count_can_fail():
    from support import frame_alloc

    assert frame_alloc(_BigFrameBus().publish, Event.Interrupt(3, 0)) > 0
