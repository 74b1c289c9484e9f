# Event values: every variant's fields and topic, topics equal by value, responses,
# priorities, memory pressure levels, and bad input refused at construction.
from support import raises

from helix_ipc import (
    Event, EventTopic, EventResponse, MemoryPressureLevel, SubscriptionPriority,
)

_BUILTIN_TOPICS = (
    EventTopic.TICK, EventTopic.SHUTDOWN, EventTopic.MEMORY_PRESSURE, EventTopic.CPU_HOTPLUG,
    EventTopic.PROCESS, EventTopic.INTERRUPT, EventTopic.ALL,
)


def test_tick_fields_and_topic():
    e = Event.Tick(1000000, 1)
    assert e.timestamp_ns == 1000000 and e.tick_number == 1
    assert e.topic is EventTopic.TICK
    assert isinstance(e, Event) and isinstance(e, Event.Tick)
    assert Event.Tick(timestamp_ns=5, tick_number=6) == Event.Tick(5, 6)
    assert repr(e) == "Event.Tick(timestamp_ns=1000000, tick_number=1)"


def test_shutdown_has_no_fields():
    e = Event.Shutdown()
    assert e.topic is EventTopic.SHUTDOWN
    assert e == Event.Shutdown()
    assert repr(e) == "Event.Shutdown()"
    raises(TypeError, Event.Shutdown, 1)


def test_memory_pressure_fields_and_levels():
    e = Event.MemoryPressure(MemoryPressureLevel.CRITICAL, 4096)
    assert e.level == MemoryPressureLevel.CRITICAL and e.available_bytes == 4096
    assert e.topic is EventTopic.MEMORY_PRESSURE
    levels = (MemoryPressureLevel.NORMAL, MemoryPressureLevel.LOW,
              MemoryPressureLevel.CRITICAL, MemoryPressureLevel.OOM)
    assert list(levels) == sorted(levels) and len(set(levels)) == 4
    assert [MemoryPressureLevel.name(lv) for lv in levels] == ["NORMAL", "LOW", "CRITICAL", "OOM"]
    for lv in levels:
        assert Event.MemoryPressure(lv, 0).level == lv
    e = raises(ValueError, Event.MemoryPressure, 7, 0)
    assert "level" in str(e)
    raises(ValueError, Event.MemoryPressure, "LOW", 0)


def test_cpu_hotplug_fields_and_topic():
    e = Event.CpuHotplug(1, True)
    assert e.cpu_id == 1 and e.online is True
    assert e.topic is EventTopic.CPU_HOTPLUG
    assert Event.CpuHotplug(1, False) != e


def test_process_events_share_the_process_topic():
    c = Event.ProcessCreated(42, 1)
    x = Event.ProcessExited(42, -9)
    assert c.pid == 42 and c.parent_pid == 1
    assert x.pid == 42 and x.exit_code == -9
    assert c.topic is EventTopic.PROCESS and x.topic is EventTopic.PROCESS
    assert not isinstance(c, Event.ProcessExited) and not isinstance(x, Event.ProcessCreated)
    assert Event.ProcessCreated(1, 2) != Event.ProcessExited(1, 2)  # same fields, other variant


def test_interrupt_fields_and_topic():
    e = Event.Interrupt(33, 0)
    assert e.vector == 33 and e.cpu_id == 0
    assert e.topic is EventTopic.INTERRUPT
    assert repr(e) == "Event.Interrupt(vector=33, cpu_id=0)"


def test_custom_event_fields_and_topic():
    e = Event.Custom("net.up", b"\x01")
    assert e.name == "net.up" and e.data == b"\x01"
    assert Event.Custom("net.up").data == b""
    assert e.topic == EventTopic.Custom("net.up")
    assert e.topic != EventTopic.Custom("net.down")
    assert e == Event.Custom("net.up", b"\x01") and e != Event.Custom("net.up", b"\x02")
    assert repr(Event.Custom("a", b"x")) == "Event.Custom(name='a', data=b'x')"


def test_every_variant_builds_positionally_from_its_fields():
    # the interrupt layer builds events as kind(a, b) from `_fields` order
    samples = [
        (Event.Tick, (7, 8)), (Event.Shutdown, ()), (Event.MemoryPressure, (1, 100)),
        (Event.CpuHotplug, (2, False)), (Event.ProcessCreated, (3, 1)),
        (Event.ProcessExited, (3, 0)), (Event.Interrupt, (9, 1)), (Event.Custom, ("c", b"d")),
    ]
    topics = set()
    for kind, values in samples:
        e = kind(*values)
        assert tuple(getattr(e, f) for f in kind._fields) == values
        assert isinstance(e, Event)
        topics.add(e.topic)
    assert len(topics) == 7  # both process events share one topic


def test_events_hash_by_value():
    d = {Event.Tick(1, 2): "a", Event.Custom("x", b"1"): "b"}
    assert d[Event.Tick(1, 2)] == "a" and d[Event.Custom("x", b"1")] == "b"


def test_builtin_topics_are_distinct_and_hashable():
    assert len(set(_BUILTIN_TOPICS)) == 7
    for t in _BUILTIN_TOPICS:
        assert t == t and not (t != t)
        assert isinstance(t, EventTopic)
    assert repr(EventTopic.MEMORY_PRESSURE) == "EventTopic.MEMORY_PRESSURE"
    assert EventTopic.TICK.name == "TICK"


def test_custom_topics_equal_by_name_and_key_a_dict():
    a = EventTopic.Custom("sensor")
    b = EventTopic.Custom("sensor")
    assert a == b and not (a != b) and a is not b
    assert hash(a) == hash(b)
    index = {a: 1}
    assert index[b] == 1
    assert EventTopic.Custom("other") not in index
    assert a.name == "sensor" and repr(a) == "EventTopic.Custom('sensor')"
    assert isinstance(a, EventTopic) and isinstance(a, EventTopic.Custom)
    # a custom topic never equals a built-in one, even by name, nor a plain string
    assert EventTopic.Custom("TICK") != EventTopic.TICK
    assert a != "sensor"
    assert EventTopic.Custom("ALL") != EventTopic.ALL
    # ... whichever side the comparison starts from (a constant compares by identity)
    assert EventTopic.TICK != EventTopic.Custom("TICK") and not (EventTopic.TICK == EventTopic.Custom("TICK"))
    assert EventTopic.ALL != EventTopic.Custom("ALL")
    assert "sensor" != a
    assert EventTopic.Custom("TICK") not in set(_BUILTIN_TOPICS)
    assert len({EventTopic.TICK, EventTopic.Custom("TICK"), EventTopic.Custom("TICK")}) == 2


def test_custom_event_topic_is_built_once():
    e = Event.Custom("net.up")
    assert e.topic is e.topic
    assert isinstance(e.topic, EventTopic.Custom) and e.topic.name == "net.up"


def test_custom_data_must_be_bytes_like():
    for ok in (b"", b"x", bytearray(b"ab"), memoryview(b"cd")):
        assert Event.Custom("c", ok).data is ok
    for bad in (5, "text", None, [1], 1.5):
        e = raises(TypeError, Event.Custom, "c", bad)
        assert "data" in str(e)


def test_custom_name_must_be_a_non_empty_str():
    for make in (EventTopic.Custom, Event.Custom):
        e = raises(TypeError, make, 5)
        assert "name" in str(e)
        e = raises(TypeError, make, 5, 5) if make is Event.Custom else e
        assert "name" in str(e)  # the name is checked first
        raises(TypeError, make, None)
        raises(TypeError, make, b"bytes")
        e = raises(ValueError, make, "")
        assert "name" in str(e)


def test_event_responses():
    consts = (EventResponse.HANDLED, EventResponse.IGNORED, EventResponse.DEFERRED)
    assert len(set(id(c) for c in consts)) == 3
    for c in consts:
        assert isinstance(c, EventResponse)
    assert repr(EventResponse.DEFERRED) == "EventResponse.DEFERRED"
    err = EventResponse.Error("disk on fire")
    assert isinstance(err, EventResponse) and isinstance(err, EventResponse.Error)
    assert err.message == "disk on fire"
    assert err == EventResponse.Error("disk on fire") and err != EventResponse.Error("other")
    assert err != EventResponse.HANDLED and EventResponse.HANDLED != err
    assert hash(err) == hash(EventResponse.Error("disk on fire"))
    assert {err: 1}[EventResponse.Error("disk on fire")] == 1
    assert EventResponse.HANDLED == EventResponse.HANDLED and EventResponse.HANDLED != EventResponse.IGNORED
    assert repr(err) == "EventResponse.Error('disk on fire')"


def test_subscription_priorities():
    p = SubscriptionPriority
    assert (p.HIGHEST, p.HIGH, p.NORMAL, p.LOW, p.LOWEST) == (0, 64, 128, 192, 255)
