# Event bus reentrancy: handlers that subscribe, unsubscribe (themselves included), pause
# or publish while an event is being dispatched; runaway nesting stopped at MAX_DEPTH.
from support import raises
from bus_helpers import recorder as _recorder, quiet as _quiet, counts as _counts, where as _where

from helix_ipc import (
    Event, EventBus, EventResponse, EventSubscription, EventTopic, InternalError,
)
from helix_ipc.bus import MAX_DEPTH, NestingTooDeep


def test_subscribe_from_a_handler_applies_from_the_next_publish():
    bus = EventBus()
    log = []
    late = EventSubscription("late", [EventTopic.TICK], _recorder(log, "late"))
    late.with_priority(0)  # would run first if it were already subscribed

    def adder(event):
        log.append("adder")
        if late._bus is None:
            bus.subscribe(late)

    bus.subscribe(EventSubscription("adder", [EventTopic.TICK], adder))
    bus.subscribe(EventSubscription("tail", [EventTopic.TICK], _recorder(log, "tail")))
    assert bus.publish(Event.Tick(0, 0)).handled == 2
    assert log == ["adder", "tail"]
    del log[:]
    assert bus.publish(Event.Tick(0, 1)).handled == 3
    assert log == ["late", "adder", "tail"]


def test_unsubscribe_self_and_others_from_a_handler():
    bus = EventBus()
    log = []
    ids = {}

    def once(event):
        log.append("once")
        assert bus.unsubscribe(ids["once"]) is True
        assert bus.unsubscribe(ids["victim"]) is True  # later in this dispatch

    ids["once"] = bus.subscribe(EventSubscription("once", [EventTopic.TICK], once))
    ids["victim"] = bus.subscribe(EventSubscription("victim", [EventTopic.TICK], _recorder(log, "victim")))
    bus.subscribe(EventSubscription("stay", [EventTopic.TICK], _recorder(log, "stay")))
    r = bus.publish(Event.Tick(0, 0))
    # the dispatch in progress is unaffected: the victim still gets this event
    assert log == ["once", "victim", "stay"] and r.handled == 3
    del log[:]
    assert bus.publish(Event.Tick(0, 1)).handled == 1
    assert log == ["stay"]
    assert bus.subscription_count() == 1


def test_pause_from_a_handler():
    bus = EventBus()
    log = []
    other = EventSubscription("other", [EventTopic.TICK], _recorder(log, "other"))

    def pauser(event):
        log.append("pauser")
        other.pause()
        if event.tick_number == 1:
            bus.pause()

    bus.subscribe(EventSubscription("pauser", [EventTopic.TICK], pauser))
    bus.subscribe(other)
    assert bus.publish(Event.Tick(0, 0)).handled == 2  # other paused from the next publish
    assert bus.publish(Event.Tick(0, 1)).handled == 1
    assert log == ["pauser", "other", "pauser"]
    assert bus.publish(Event.Tick(0, 2)).handled == 0  # the bus paused itself
    assert bus.events_dropped == 1 and bus.events_dispatched == 2
    bus.resume()
    other.resume()
    assert bus.publish(Event.Tick(0, 3)).handled == 2


def test_nested_publish_is_delivered_completely_before_the_outer_continues():
    bus = EventBus()
    log = []
    inner_results = []

    def relay(event):
        log.append("relay")
        r = bus.publish(Event.Custom("inner"))
        inner_results.append(_counts(r))

    bus.subscribe(EventSubscription("first", [EventTopic.TICK], _recorder(log, "first")))
    bus.subscribe(EventSubscription("relay", [EventTopic.TICK], relay))
    bus.subscribe(EventSubscription("last", [EventTopic.TICK], _recorder(log, "last", EventResponse.IGNORED)))
    bus.subscribe(EventSubscription("in1", [EventTopic.Custom("inner")], _recorder(log, "in1")))
    bus.subscribe(EventSubscription("in2", [EventTopic.Custom("inner")],
                                    _recorder(log, "in2", EventResponse.DEFERRED)))
    bus.subscribe(EventSubscription("spy", [EventTopic.ALL], _recorder(log, "spy")))
    r = bus.publish(Event.Tick(0, 0))
    assert log == ["first", "relay", "in1", "in2", "spy", "last", "spy"]
    assert inner_results == [(2, 0, 1, 0)]
    assert _counts(r) == (3, 1, 0, 0)  # not corrupted by the nested publish
    assert bus.events_dispatched == 2


def test_nested_failures_at_both_levels_keep_exact_counts():
    bus = EventBus()
    errors = _quiet(bus)
    log = []
    inner_results = []

    def relay_then_fail(event):
        log.append("relay")
        inner_results.append(_counts(bus.publish(Event.Interrupt(1, 0))))
        raise ValueError("outer fails after the nested publish")

    def inner_boom(event):
        log.append("inner-boom")
        raise KeyError("inner")

    bus.subscribe(EventSubscription("o1", [EventTopic.TICK], _recorder(log, "o1", EventResponse.IGNORED)))
    bus.subscribe(EventSubscription("relay", [EventTopic.TICK], relay_then_fail))
    bus.subscribe(EventSubscription("o3", [EventTopic.TICK], _recorder(log, "o3")))
    bus.subscribe(EventSubscription("i1", [EventTopic.INTERRUPT], inner_boom))
    bus.subscribe(EventSubscription("i2", [EventTopic.INTERRUPT], _recorder(log, "i2", EventResponse.IGNORED)))
    bus.subscribe(EventSubscription("i3", [EventTopic.INTERRUPT], _recorder(log, "i3")))
    r = bus.publish(Event.Tick(0, 0))
    assert log == ["o1", "relay", "inner-boom", "i2", "i3", "o3"]
    assert inner_results == [(1, 1, 0, 1)]
    assert _counts(r) == (1, 1, 0, 1)
    assert [e[0] for e in errors] == _where("i1", "relay")


def test_fast_path_failure_after_a_nested_publish_resumes_at_the_right_handler():
    # every outer handler returns None (fast path) until one that published raises
    bus = EventBus()
    errors = _quiet(bus)
    log = []

    def relay_then_fail(event):
        log.append("relay")
        bus.publish(Event.Shutdown())
        raise RuntimeError("after nested")

    bus.subscribe(EventSubscription("a", [EventTopic.TICK], _recorder(log, "a")))
    bus.subscribe(EventSubscription("relay", [EventTopic.TICK], relay_then_fail))
    bus.subscribe(EventSubscription("b", [EventTopic.TICK], _recorder(log, "b")))
    bus.subscribe(EventSubscription("s1", [EventTopic.SHUTDOWN], _recorder(log, "s1")))
    bus.subscribe(EventSubscription("s2", [EventTopic.SHUTDOWN], _recorder(log, "s2")))
    r = bus.publish(Event.Tick(0, 0))
    assert log == ["a", "relay", "s1", "s2", "b"]
    assert _counts(r) == (2, 0, 0, 1)
    assert errors[0][0] == _where("relay")[0]


def test_nested_publish_of_a_bad_event_raises_in_the_handler():
    bus = EventBus()
    caught = []

    def relay(event):
        try:
            bus.publish("not an event")
        except TypeError as e:
            caught.append(str(e))

    bus.subscribe(EventSubscription("relay", [EventTopic.TICK], relay))
    assert bus.publish(Event.Tick(0, 0)).handled == 1
    assert len(caught) == 1 and "event" in caught[0]
    assert bus.publish(Event.Tick(0, 1)).handled == 1


def test_subscribe_inside_a_nested_publish():
    bus = EventBus()
    log = []
    added = EventSubscription("added", [EventTopic.TICK], _recorder(log, "added"))

    def inner(event):
        log.append("inner")
        if added._bus is None:
            bus.subscribe(added)

    def relay(event):
        log.append("relay")
        bus.publish(Event.Custom("in"))

    bus.subscribe(EventSubscription("relay", [EventTopic.TICK], relay))
    bus.subscribe(EventSubscription("inner", [EventTopic.Custom("in")], inner))
    bus.subscribe(EventSubscription("tail", [EventTopic.TICK], _recorder(log, "tail")))
    assert bus.publish(Event.Tick(0, 0)).handled == 2  # outer keeps the tuple it started with
    assert log == ["relay", "inner", "tail"]
    del log[:]
    assert bus.publish(Event.Tick(0, 1)).handled == 3
    assert log == ["relay", "inner", "tail", "added"]


def test_runaway_nesting_is_stopped_at_max_depth():
    bus = EventBus()
    errors = _quiet(bus)
    depth = [0]
    seen = []
    results = []

    def echo(event):
        depth[0] += 1
        seen.append(depth[0])
        try:
            results.append(_counts(bus.publish(Event.Custom("echo"))))
        finally:
            depth[0] -= 1

    bus.subscribe(EventSubscription("echo", [EventTopic.Custom("echo")], echo))
    for rnd in range(2):  # the bus is fully usable after a runaway chain
        del seen[:]
        del results[:]
        del errors[:]
        before = (bus.events_dispatched, bus.events_dropped)
        r = bus.publish(Event.Custom("echo"))
        # depths 0..MAX_DEPTH deliver; the publish at MAX_DEPTH + 1 raises
        assert seen == list(range(1, MAX_DEPTH + 2))
        assert len(errors) == 1 and errors[0][0] == _where("echo")[0]
        assert isinstance(errors[0][1], NestingTooDeep)
        assert isinstance(errors[0][1], InternalError)
        assert str(MAX_DEPTH) in str(errors[0][1])
        # innermost handler failed; every level above it saw a handled nested publish
        assert results[0] == (0, 0, 0, 1)
        assert results[1:] == [(1, 0, 0, 0)] * (MAX_DEPTH - 1)
        assert _counts(r) == (1, 0, 0, 0)
        assert bus.events_dispatched - before[0] == MAX_DEPTH + 1
        assert bus.events_dropped - before[1] == 1


def test_max_depth_is_documented_value():
    assert MAX_DEPTH == 8


def test_handler_can_catch_nesting_too_deep():
    bus = EventBus()
    caught = []

    def echo(event):
        try:
            bus.publish(Event.Custom("loop"))
        except NestingTooDeep as e:
            caught.append(e)
            return EventResponse.DEFERRED

    bus.subscribe(EventSubscription("loop", [EventTopic.Custom("loop")], echo))
    r = bus.publish(Event.Custom("loop"))
    assert len(caught) == 1
    assert _counts(r) == (1, 0, 0, 0)
    raises(TypeError, bus.publish, 1)
