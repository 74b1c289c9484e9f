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
