# Event bus: delivery order, topic matching, result counts, fault isolation, pause/resume,
# unsubscribe, bad input, the global bus and the seed README example.
from support import raises
from bus_helpers import recorder as _recorder, quiet as _quiet, counts as _counts, where as _where

from helix_ipc import (
    Event, EventBus, EventDispatchResult, EventResponse, EventSubscription, EventTopic,
    SubscriptionPriority, global_event_bus, publish_event, subscribe, unsubscribe,
)


def test_seed_readme_example():
    # The seed's event-bus example, in Python.
    bus = EventBus()
    seen = []

    def on_tick(event):
        if isinstance(event, Event.Tick):
            seen.append("Tick %d at %dns" % (event.tick_number, event.timestamp_ns))
        return EventResponse.HANDLED

    subscription = EventSubscription("my_module", [EventTopic.TICK], on_tick)
    sub_id = bus.subscribe(subscription)
    assert sub_id == subscription.id
    result = bus.publish(Event.Tick(1000000, 1))
    assert result.handled == 1
    assert seen == ["Tick 1 at 1000000ns"]
    critical = EventSubscription("critical", [EventTopic.TICK], _recorder(seen, "critical"))
    bus.subscribe(critical.with_priority(SubscriptionPriority.HIGHEST))  # runs first
    bus.publish(Event.Tick(2000000, 2))
    assert seen[1:] == ["critical", "Tick 2 at 2000000ns"]


def test_priority_and_subscription_order_with_mixed_topics_and_all():
    bus = EventBus()
    log = []
    P = SubscriptionPriority
    bus.subscribe(EventSubscription("t-normal-1", [EventTopic.TICK], _recorder(log, "t-normal-1")))
    bus.subscribe(EventSubscription("all-normal", [EventTopic.ALL], _recorder(log, "all-normal")))
    bus.subscribe(EventSubscription("t-low", [EventTopic.TICK], _recorder(log, "t-low")).with_priority(P.LOW))
    bus.subscribe(EventSubscription("all-highest", [EventTopic.ALL], _recorder(log, "all-highest"))
                  .with_priority(P.HIGHEST))
    bus.subscribe(EventSubscription("ti-normal-2", [EventTopic.INTERRUPT, EventTopic.TICK],
                                    _recorder(log, "ti-normal-2")))
    bus.subscribe(EventSubscription("t-high", [EventTopic.TICK], _recorder(log, "t-high")).with_priority(P.HIGH))
    bus.subscribe(EventSubscription("all-low", [EventTopic.ALL], _recorder(log, "all-low")).with_priority(P.LOW))
    bus.subscribe(EventSubscription("t-5", [EventTopic.TICK], _recorder(log, "t-5")).with_priority(5))
    r = bus.publish(Event.Tick(0, 0))
    assert log == ["all-highest", "t-5", "t-high", "t-normal-1", "all-normal", "ti-normal-2",
                   "t-low", "all-low"]
    assert r.handled == 8
    del log[:]
    bus.publish(Event.Interrupt(1, 0))
    assert log == ["all-highest", "all-normal", "ti-normal-2", "all-low"]
    del log[:]
    bus.publish(Event.Shutdown())  # nobody subscribed SHUTDOWN itself: ALL only
    assert log == ["all-highest", "all-normal", "all-low"]


def test_with_priority_after_subscribe_reorders_from_next_publish():
    bus = EventBus()
    log = []
    a = EventSubscription("a", [EventTopic.TICK], _recorder(log, "a"))
    b = EventSubscription("b", [EventTopic.TICK], _recorder(log, "b"))
    bus.subscribe(a)
    bus.subscribe(b)
    bus.publish(Event.Tick(0, 0))
    assert b.with_priority(10) is b and b.priority == 10
    bus.publish(Event.Tick(0, 1))
    a.with_priority(10)  # equal priorities: subscription order again
    bus.publish(Event.Tick(0, 2))
    assert log == ["a", "b", "b", "a", "a", "b"]


def test_custom_topics_match_by_name():
    bus = EventBus()
    log = []
    bus.subscribe(EventSubscription("temp", [EventTopic.Custom("temp")], _recorder(log, "temp")))
    bus.subscribe(EventSubscription("both", [EventTopic.Custom("temp"), EventTopic.Custom("hum")],
                                    _recorder(log, "both")))
    bus.subscribe(EventSubscription("all", [EventTopic.ALL], _recorder(log, "all")))
    assert bus.publish(Event.Custom("temp", b"21")).handled == 3
    assert log == ["temp", "both", "all"]
    del log[:]
    assert bus.publish(Event.Custom("hum")).handled == 2
    assert log == ["both", "all"]
    del log[:]
    assert bus.publish(Event.Custom("nobody")).handled == 1
    assert log == ["all"]
    del log[:]
    assert bus.publish(Event.Tick(0, 0)).handled == 1  # custom subscribers never see ticks
    assert log == ["all"]


def test_duplicate_topics_and_all_deliver_once():
    bus = EventBus()
    log = []
    bus.subscribe(EventSubscription("dup", [EventTopic.TICK, EventTopic.TICK, EventTopic.ALL,
                                            EventTopic.Custom("x"), EventTopic.Custom("x")],
                                    _recorder(log, "dup")))
    assert bus.publish(Event.Tick(0, 0)).handled == 1
    assert bus.publish(Event.Custom("x")).handled == 1
    assert bus.publish(Event.Shutdown()).handled == 1
    assert log == ["dup", "dup", "dup"]


def test_a_single_topic_is_accepted_without_a_list():
    bus = EventBus()
    log = []
    bus.subscribe(EventSubscription("one", EventTopic.TICK, _recorder(log, "one")))
    bus.publish(Event.Tick(0, 0))
    assert log == ["one"]


def test_result_counts_every_kind_of_return():
    bus = EventBus()
    errors = _quiet(bus)
    log = []
    rets = [None, EventResponse.HANDLED, EventResponse.IGNORED, EventResponse.DEFERRED,
            EventResponse.Error("bad"), 42, EventResponse.IGNORED, None]
    for i, ret in enumerate(rets):
        bus.subscribe(EventSubscription("h%d" % i, [EventTopic.TICK], _recorder(log, i, ret)))
    r = bus.publish(Event.Tick(0, 0))
    assert _counts(r) == (3, 2, 1, 2)
    assert log == list(range(8))
    assert [e[0] for e in errors] == _where("h4", "h5")
    assert errors[0][1] == EventResponse.Error("bad") and errors[1][1] == 42
    assert bus.events_dispatched == 1


def test_raising_handlers_among_good_ones_exact_counts():
    bus = EventBus()
    errors = _quiet(bus)
    log = []

    def boom(event):
        log.append("boom")
        raise ValueError("kaput")

    def other(event):
        log.append("other")
        raise KeyError("k")

    good = _recorder(log, "good")
    plan = [good, boom, good, other, boom, EventResponse.IGNORED, good]
    for i, h in enumerate(plan):
        if h is EventResponse.IGNORED:
            h = _recorder(log, "ign", EventResponse.IGNORED)
        bus.subscribe(EventSubscription("s%d" % i, [EventTopic.INTERRUPT], h))
    for rnd in range(3):
        del log[:]
        del errors[:]
        r = bus.publish(Event.Interrupt(5, 0))
        assert log == ["good", "boom", "good", "other", "boom", "ign", "good"]
        assert _counts(r) == (3, 1, 0, 3)
        assert [e[0] for e in errors] == _where("s1", "s3", "s4")
        assert isinstance(errors[0][1], ValueError) and "kaput" in str(errors[0][1])
        assert isinstance(errors[1][1], KeyError)
    assert bus.events_dispatched == 3


def test_first_handler_raising_and_last_handler_raising():
    bus = EventBus()
    errors = _quiet(bus)
    log = []

    def boom(event):
        log.append("boom")
        raise RuntimeError("x")

    bus.subscribe(EventSubscription("first", [EventTopic.TICK], boom))
    bus.subscribe(EventSubscription("mid", [EventTopic.TICK], _recorder(log, "mid")))
    bus.subscribe(EventSubscription("last", [EventTopic.TICK], boom))
    r = bus.publish(Event.Tick(0, 0))
    assert log == ["boom", "mid", "boom"]
    assert _counts(r) == (1, 0, 0, 2)
    assert [e[0] for e in errors] == _where("first", "last")


def test_same_handler_subscribed_twice_is_tracked_per_subscription():
    bus = EventBus()
    errors = _quiet(bus)
    log = []
    calls = [0]

    def flaky(event):
        calls[0] += 1
        log.append("flaky%d" % calls[0])
        if calls[0] % 2 == 0:  # the second call of each publish fails
            raise ValueError("second")

    bus.subscribe(EventSubscription("f1", [EventTopic.TICK], flaky))
    bus.subscribe(EventSubscription("mid", [EventTopic.TICK], _recorder(log, "mid")))
    bus.subscribe(EventSubscription("f2", [EventTopic.TICK], flaky))
    bus.subscribe(EventSubscription("end", [EventTopic.TICK], _recorder(log, "end")))
    r = bus.publish(Event.Tick(0, 0))
    assert log == ["flaky1", "mid", "flaky2", "end"]
    assert _counts(r) == (3, 0, 0, 1)
    assert errors[0][0] == _where("f2")[0]


def test_default_error_report_does_not_stop_dispatch_and_a_broken_hook_neither():
    bus = EventBus()
    log = []

    def boom(event):
        raise ValueError("printed to stderr")

    bus.subscribe(EventSubscription("boom", [EventTopic.TICK], boom))
    bus.subscribe(EventSubscription("after", [EventTopic.TICK], _recorder(log, "after")))
    assert _counts(bus.publish(Event.Tick(0, 0))) == (1, 0, 0, 1)

    def broken_hook(name, what):
        raise RuntimeError("hook bug")

    bus.error_hook = broken_hook
    assert _counts(bus.publish(Event.Tick(0, 1))) == (1, 0, 0, 1)
    assert log == ["after", "after"]


class _Stop(BaseException):
    pass


def test_base_exception_propagates_and_leaves_bus_usable():
    bus = EventBus()
    log = []
    armed = [True]

    def stopper(event):
        if armed[0]:
            raise _Stop()

    bus.subscribe(EventSubscription("stop", [EventTopic.TICK], stopper))
    bus.subscribe(EventSubscription("after", [EventTopic.TICK], _recorder(log, "after")))
    raises(_Stop, bus.publish, Event.Tick(0, 0))
    assert log == []
    armed[0] = False
    assert bus.publish(Event.Tick(0, 1)).handled == 2
    assert log == ["after"]


def test_result_record_is_reused_and_copy_detaches():
    bus = EventBus()
    bus.subscribe(EventSubscription("a", [EventTopic.TICK], _recorder([], "a", EventResponse.IGNORED)))
    bus.subscribe(EventSubscription("b", [EventTopic.INTERRUPT], _recorder([], "b")))
    r1 = bus.publish(Event.Tick(0, 0))
    kept = r1.copy()
    assert isinstance(r1, EventDispatchResult)
    assert r1 == {"handled": 0, "ignored": 1, "deferred": 0, "errors": 0}
    assert r1["ignored"] == 1
    bus.publish(Event.Interrupt(0, 0))
    assert _counts(kept) == (0, 1, 0, 0)
    assert EventDispatchResult(1, 2, 3, 4).as_dict() == {"handled": 1, "ignored": 2, "deferred": 3, "errors": 4}


def test_publish_with_no_subscribers():
    bus = EventBus()
    r = bus.publish(Event.Tick(0, 0))
    assert _counts(r) == (0, 0, 0, 0)
    assert bus.events_dispatched == 1 and bus.events_dropped == 0


def test_subscription_pause_and_resume():
    bus = EventBus()
    log = []
    a = EventSubscription("a", [EventTopic.TICK], _recorder(log, "a"))
    b = EventSubscription("b", [EventTopic.TICK, EventTopic.ALL], _recorder(log, "b"))
    bus.subscribe(a)
    bus.subscribe(b)
    assert a.is_active and b.is_active
    a.pause()
    assert not a.is_active
    assert bus.publish(Event.Tick(0, 0)).handled == 1
    b.pause()
    assert bus.publish(Event.Tick(0, 1)).handled == 0
    assert bus.publish(Event.Shutdown()).handled == 0
    assert bus.subscription_count() == 2  # paused ones still count
    a.resume()
    b.resume()
    b.resume()  # resuming twice is harmless
    assert bus.publish(Event.Tick(0, 2)).handled == 2
    assert log == ["b", "a", "b"]
    # pausing before subscribing is honoured too
    c = EventSubscription("c", [EventTopic.INTERRUPT], _recorder(log, "c"))
    c.pause()
    bus.subscribe(c)
    assert bus.publish(Event.Interrupt(0, 0)).handled == 1  # b (ALL) only
    c.resume()
    assert bus.publish(Event.Interrupt(0, 0)).handled == 2


def test_bus_pause_counts_what_it_did_not_deliver():
    bus = EventBus()
    log = []
    bus.subscribe(EventSubscription("a", [EventTopic.ALL], _recorder(log, "a")))
    bus.publish(Event.Tick(0, 0))
    assert bus.is_active()
    bus.pause()
    assert not bus.is_active()
    for i in range(5):
        r = bus.publish(Event.Tick(0, i))
        assert _counts(r) == (0, 0, 0, 0)
    bus.publish(Event.Custom("x"))
    assert log == ["a"]
    assert bus.events_dropped == 6 and bus.events_dispatched == 1
    # subscribing while paused takes effect on resume
    bus.subscribe(EventSubscription("b", [EventTopic.TICK], _recorder(log, "b")))
    assert bus.publish(Event.Tick(0, 9)).handled == 0
    bus.resume()
    assert bus.publish(Event.Tick(0, 10)).handled == 2
    assert log == ["a", "a", "b"]
    assert bus.events_dropped == 7 and bus.events_dispatched == 2


def test_unsubscribe():
    bus = EventBus()
    log = []
    a = bus.subscribe(EventSubscription("a", [EventTopic.TICK], _recorder(log, "a")))
    b = bus.subscribe(EventSubscription("b", [EventTopic.ALL], _recorder(log, "b")))
    assert a != b and bus.subscription_count() == 2
    assert bus.unsubscribe(123456789) is False
    assert bus.unsubscribe(a) is True
    assert bus.unsubscribe(a) is False
    assert bus.subscription_count() == 1
    assert bus.publish(Event.Tick(0, 0)).handled == 1
    assert bus.unsubscribe(b) is True
    assert bus.publish(Event.Tick(0, 0)).handled == 0
    assert log == ["b"] and bus.subscription_count() == 0


def test_unsubscribe_finds_paused_multi_topic_and_all_subscriptions():
    bus = EventBus()
    log = []
    multi = EventSubscription("multi", [EventTopic.TICK, EventTopic.Custom("m")], _recorder(log, "multi"))
    paused = EventSubscription("paused", [EventTopic.Custom("p")], _recorder(log, "paused"))
    every = EventSubscription("every", [EventTopic.ALL], _recorder(log, "every"))
    ids = [bus.subscribe(s) for s in (multi, paused, every)]
    paused.pause()
    assert [s.name for s in bus.subscriptions()] == ["multi", "paused", "every"]
    assert bus.unsubscribe(ids[1]) is True and paused._bus is None
    assert bus.unsubscribe(ids[0]) is True
    assert bus.publish(Event.Custom("m")).handled == 1 and log == ["every"]
    assert bus.unsubscribe(ids[2]) is True and bus.subscription_count() == 0
    assert bus.unsubscribe(ids[2]) is False
    assert bus.subscriptions() == [] and bus.publish(Event.Tick(0, 0)).handled == 0


def test_a_subscription_lives_on_one_bus_and_can_come_back():
    bus, other = EventBus(), EventBus()
    sub = EventSubscription("s", [EventTopic.TICK], _recorder([], "s"))
    sid = bus.subscribe(sub)
    e = raises(ValueError, other.subscribe, sub)
    assert "already subscribed" in str(e)
    raises(ValueError, bus.subscribe, sub)
    assert bus.unsubscribe(sid)
    assert other.subscribe(sub) == sid
    assert other.publish(Event.Tick(0, 0)).handled == 1


def test_ids_are_unique():
    ids = set()
    for i in range(50):
        ids.add(EventSubscription("s", [EventTopic.TICK], _recorder([], i)).id)
    assert len(ids) == 50


def test_bad_input_is_refused_at_the_call():
    h = _recorder([], "h")
    e = raises(TypeError, EventSubscription, "s", "TICK", h)
    assert "topics" in str(e)
    e = raises(TypeError, EventSubscription, "s", ["TICK"], h)
    assert "topics" in str(e)
    e = raises(TypeError, EventSubscription, "s", [EventTopic.TICK, None], h)
    assert "topics" in str(e)
    e = raises(ValueError, EventSubscription, "s", [], h)
    assert "topics" in str(e)
    raises(ValueError, EventSubscription, "s", (), h)
    raises(TypeError, EventSubscription, "s", None, h)
    e = raises(TypeError, EventSubscription, "s", [EventTopic.TICK], "not callable")
    assert "handler" in str(e)
    raises(TypeError, EventSubscription, "s", [EventTopic.TICK], None)
    e = raises(TypeError, EventSubscription, 5, [EventTopic.TICK], h)
    assert "name" in str(e)
    raises(ValueError, EventSubscription, "", [EventTopic.TICK], h)
    sub = EventSubscription("s", [EventTopic.TICK], h)
    for bad in (256, -1, 1000):
        e = raises(ValueError, sub.with_priority, bad)
        assert "priority" in str(e)
    for bad in ("1", 1.5, None, True):
        e = raises(TypeError, sub.with_priority, bad)
        assert "priority" in str(e)
    assert sub.priority == SubscriptionPriority.NORMAL
    assert sub.with_priority(0).priority == 0 and sub.with_priority(255).priority == 255
    bus = EventBus()
    e = raises(TypeError, bus.subscribe, "sub")
    assert "subscription" in str(e)
    raises(TypeError, bus.unsubscribe, "1")
    raises(TypeError, bus.unsubscribe, None)
    bus.subscribe(sub)
    for bad in ("tick", None, 5, EventTopic.TICK, object(), Event.Tick, Event.Custom, Event):
        e = raises(TypeError, bus.publish, bad)  # a class is not an event either
        assert "event" in str(e)
    assert bus.events_dispatched == 0 and bus.events_dropped == 0
    assert bus.publish(Event.Tick(0, 0)).handled == 1  # still usable


def test_isr_capacity_is_accepted():
    EventBus(isr_capacity=None)
    EventBus(None)


def test_global_bus_and_module_functions():
    bus = global_event_bus()
    assert global_event_bus() is bus
    log = []
    sid = subscribe(EventSubscription("g", [EventTopic.Custom("test_bus.global")], _recorder(log, "g")))
    try:
        r = publish_event(Event.Custom("test_bus.global", b"x"))
        assert r.handled >= 1 and log == ["g"]
    finally:
        assert unsubscribe(sid) is True
    assert unsubscribe(sid) is False
    publish_event(Event.Custom("test_bus.global"))
    assert log == ["g"]


def test_subscriptions_introspection():
    from helix_ipc import EventBus, EventSubscription, EventTopic

    bus = EventBus()
    a = EventSubscription("a", [EventTopic.TICK, EventTopic.Custom("x")], lambda e: None)
    b = EventSubscription("b", [EventTopic.TICK], lambda e: None)
    bus.subscribe(a)
    bus.subscribe(b)
    b.pause()
    assert [s.name for s in bus.subscriptions()] == ["a", "b"]
    assert bus.subscriptions_by_topic() == {"TICK": ["a", "b (paused)"], "x": ["a"]}


def test_error_hook_gets_where_and_the_exception_object_and_handler_errors_counts():
    bus = EventBus()
    got = _quiet(bus)
    boom = ValueError("kaput")

    def raiser(event):
        raise boom

    bad = EventResponse.Error("bad")
    bus.subscribe(EventSubscription("raiser", [EventTopic.TICK], raiser))
    bus.subscribe(EventSubscription("erring", [EventTopic.TICK], _recorder([], "e", bad)))
    bus.subscribe(EventSubscription("odd", [EventTopic.TICK], _recorder([], "o", "not a response")))
    bus.subscribe(EventSubscription("fine", [EventTopic.TICK], _recorder([], "i", EventResponse.IGNORED)))
    assert bus.handler_errors == 0
    r = bus.publish(Event.Tick(0, 0))
    assert (r.errors, r.ignored) == (3, 1)
    assert got[0] == ("subscription 'raiser'", boom) and got[0][1] is boom  # the object raised
    assert got[1][0] == "subscription 'erring'" and got[1][1] is bad
    assert got[2] == ("subscription 'odd'", "not a response")
    assert bus.handler_errors == 3
    bus.publish(Event.Tick(0, 1))
    assert bus.handler_errors == 6 and bus.events_dispatched == 2


def test_a_broken_hook_is_counted_as_well_and_the_default_hook_prints_without_raising():
    from helix_ipc.bus import print_error

    bus = EventBus()
    calls = []

    def broken(where, error):
        calls.append(where)
        raise RuntimeError("hook bug")

    bus.error_hook = broken
    bus.subscribe(EventSubscription("boom", [EventTopic.TICK], _recorder([], "b", 42)))
    bus.subscribe(EventSubscription("after", [EventTopic.TICK], _recorder([], "a")))
    assert _counts(bus.publish(Event.Tick(0, 0))) == (1, 0, 0, 1)
    assert calls == ["subscription 'boom'"] and bus.handler_errors == 1
    bus.error_hook = None  # the default: one line on stderr
    assert _counts(bus.publish(Event.Tick(0, 1))) == (1, 0, 0, 1)
    print_error("subscription 'x'", ValueError("v"))
    print_error("subscription 'x'", EventResponse.Error("e"))


def test_counters_wrap_below_2_to_the_30():
    bus = EventBus()
    _quiet(bus)
    bus.subscribe(EventSubscription("b", [EventTopic.TICK], _recorder([], "b", 42)))
    top = (1 << 29) - 1
    bus.events_dispatched = bus.handler_errors = bus.events_dropped = top
    bus.publish(Event.Tick(0, 0))
    bus.pause()
    bus.publish(Event.Tick(0, 1))
    assert (bus.events_dispatched, bus.handler_errors, bus.events_dropped) == (0, 0, 0)
